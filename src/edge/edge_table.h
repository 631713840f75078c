// The compiled edge table shared by the export formats. Private to src/edge.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "apigw/config/snapshot.h"

namespace apigw::edge {

// The table as JSON: header, default, sites, routes and the trie. `positions` adds each route's "at"
// (file:line:column, the file relative to the main file's directory), which table_version leaves out.
boost::json::object table_object(const config::Snapshot& snapshot, bool positions);

// "apigw.yaml:12:5", the file relative to the main file's directory.
std::string position_label(const config::Config& config, const config::Position& position);

// One line of the table in precedence order: a request matching host, method and path takes `route` unless an
// earlier line matched. The trie's depth-first order flattened, so the first matching line is the trie's answer.
struct PrecedenceLine {
  const routing::TrieTableView* table = nullptr;
  std::vector<std::string> methods;  // empty: any method
  std::string path_regex;            // anchored by the caller; text as \xHH escapes where not alphanumeric
  std::uint32_t route = 0;
};

// `tables` must outlive the lines (they point into it).
std::vector<PrecedenceLine> precedence(const std::vector<routing::TrieTableView>& tables);

// A PCRE fragment matching `text` literally: letters, digits, '/', '_' and '-' as they are, every other byte as
// \xHH (safe inside an NGINX string, where '$' would start a variable and '\\' an escape).
std::string regex_literal(std::string_view text);

std::string export_nginx(const config::Snapshot& snapshot, const std::string& banner);

}  // namespace apigw::edge
