// The config loader on arbitrary YAML: config::load_string (every section's reader, the route and migration
// checks, `${VAR}` expansion, includes), then config::build_snapshot (route trie, upstream and side-target indexes)
// and a route match per route when every endpoint is a numeric address (so that nothing is looked up in DNS).
//
// Includes are read relative to the config's directory, which is named under the temporary directory and never
// created: a relative include (with `..` or not, glob or not) can reach no file, because every path through it
// fails to resolve. Inputs whose includes could leave that directory (an absolute path, or `$` and so a
// `${VAR}` that may expand to one) are not run.
//
// Invariants: a load either yields a config or errors, never both; every error names a file and a reason.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

#include "apigw/config/loader.h"
#include "apigw/config/snapshot.h"
#include "apigw/http/client_address.h"
#include "fuzz_support.h"

namespace {

// Whether the document's includes stay under the config's (missing) directory. Parsed as the loader parses it
// (YAML::Load: its first document); an input yaml-cpp refuses never reaches the includes.
bool includes_confined(const std::string& yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception&) {
    return true;
  }
  if (!root.IsMap()) return true;
  for (const auto& entry : root) {
    if (!entry.first.IsScalar() || entry.first.Scalar() != "include") continue;
    if (entry.second.IsScalar()) return false;  // not a list: refused by the loader, but do not rely on it
    if (!entry.second.IsSequence()) continue;
    for (const YAML::Node& item : entry.second) {
      if (!item.IsScalar()) continue;
      const std::string& pattern = item.Scalar();
      if (pattern.starts_with('/') || pattern.find('$') != std::string::npos) return false;
    }
  }
  return true;
}

bool numeric(const std::vector<apigw::config::Endpoint>& endpoints) {
  for (const auto& endpoint : endpoints) {
    if (apigw::http::parse_ip(endpoint.host).size == 0) return false;
  }
  return true;
}

bool resolves_offline(const apigw::config::Config& config) {
  for (const auto& [name, upstream] : config.upstreams) {
    if (!numeric(upstream.endpoints)) return false;
  }
  if (config.auth.enabled && !numeric(config.auth.redis.nodes)) return false;
  if (config.cache.enabled) {
    if (!numeric(config.cache.primary.servers)) return false;
    if (config.cache.secondary && !numeric(config.cache.secondary->servers)) return false;
  }
  return true;
}

const std::string& config_name() {
  static const std::string name =
      (std::filesystem::temp_directory_path() / ("apigw-fuzz-" + std::to_string(::getpid()) + "-absent") /
       "apigw.yaml")
          .string();
  return name;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string yaml(apigw::fuzz::as_text(bytes, size));
  if (!includes_confined(yaml)) return -1;
  const std::string& name = config_name();
  FUZZ_CHECK(!std::filesystem::exists(std::filesystem::path(name).parent_path()));

  const apigw::config::LoadResult loaded = apigw::config::load_string(yaml, name);
  FUZZ_CHECK(loaded.config.has_value() == loaded.errors.empty());
  for (const auto& error : loaded.errors) {
    FUZZ_CHECK(!error.position.file.empty() && !error.message.empty());
    (void)error.text();
  }
  if (!loaded.config) return 0;
  FUZZ_CHECK(!loaded.config->files.empty() && loaded.config->files.front() == name);
  if (!resolves_offline(*loaded.config)) return 0;

  const apigw::config::SnapshotResult built = apigw::config::build_snapshot(*loaded.config, 1);
  FUZZ_CHECK((built.snapshot != nullptr) == built.errors.empty());
  if (!built.snapshot) return 0;
  const apigw::config::Snapshot& snapshot = *built.snapshot;
  FUZZ_CHECK(snapshot.routes.size() == loaded.config->routes.size());
  for (const auto& route : loaded.config->routes) {
    const std::string_view method =
        route.match.methods.empty() ? std::string_view("GET") : std::string_view(route.match.methods.front());
    const auto match = snapshot.trie->match(route.match.host, method, route.match.path);
    if (match.kind == apigw::routing::RouteTrieMatch::Kind::kFound) FUZZ_CHECK(match.route < snapshot.routes.size());
  }
  return 0;
}
