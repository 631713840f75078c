// The route table compiled for the edge (`apigw edge-export`): which site (deployment) serves each request, as a
// JSON table, as a self-contained JavaScript module for edge workers, and as an include file for an NGINX front.
// Pure: the caller reads the files and writes the output. The same snapshot and source give the same bytes.
#pragma once

#include <string>

#include "apigw/config/snapshot.h"

namespace apigw::edge {

enum class Format { kJson, kWorker, kNginx };

// Where a table came from, said in every output.
struct ExportSource {
  std::string config;         // the main file, as the operator named it (its file name alone)
  std::string config_sha256;  // over the content of every file read, in order
  std::string generator;      // "apigw 0.1.0"
};

// The site each route is served by: its own `site`, else `edge.default`. The snapshot's config has an `edge`
// section (the caller checks).
const std::string& route_site(const config::Config& config, std::size_t route);

// The table's version: the first 16 hex digits of the SHA-256 of what decides routing (sites, default, header,
// routes and the trie), so that a new version means the edge routes differently, whatever else changed.
std::string table_version(const config::Snapshot& snapshot);

std::string export_table(const config::Snapshot& snapshot, const ExportSource& source, Format format);

}  // namespace apigw::edge
