// Tests for config::load_string / load_file: typed values, defaults, ${VAR} expansion, includes, and every
// error the loader must report with its exact line and reason.
#include "apigw/config/loader.h"
#include "config_test_support.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace apigw::config {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// A minimal valid tail: one upstream, one route. Tests that break one thing add it in front of this.
constexpr std::string_view kValidTail = R"(
upstreams:
  u: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: r, match: { path: /r }, upstream: u }
)";

// Loads `head` (whose lines come first, so its line numbers hold) followed by kValidTail.
LoadResult load_with_tail(std::string_view head) { return load(yaml(head) + yaml(kValidTail)); }

// A directory under the system temp dir, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string name = (fs::temp_directory_path() / "apigw-config-test-XXXXXX").string();
    if (::mkdtemp(name.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = name;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string write(const std::string& relative, std::string_view text) const {
    const fs::path file = path_ / relative;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << yaml(text);
    return file.string();
  }
  std::string path(const std::string& relative) const { return (path_ / relative).string(); }

 private:
  fs::path path_;
};

// Sets an environment variable for one test and restores the old state afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = ::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// ---- valid configs ------------------------------------------------------------------------------------------

TEST(ConfigLoader, FullConfigRoundTripsIntoTypedValues) {
  const auto result = load(R"(
server:
  listen: "[::1]:8443"
  workers: 4
  trusted_proxies: [10.0.0.0/8, 192.168.1.77/24, ::1, 127.0.0.1]
  limits: { max_header_bytes: 32KiB, max_uri_bytes: 4096, max_body_bytes: 1GiB, header_timeout: 3s, idle_timeout: 2m }
  debug_headers: false
  drain_timeout: 1h
log: { access: /var/log/apigw/access.log, level: debug }
upstreams:
  users-onprem:
    endpoints: [127.0.0.1:9001, "[::1]:9002", users.internal:80]
    balance: least_request
    connect_timeout: 100ms
    timeout: 30s
    max_connections: 10
    retries: { attempts: 3 }
  other: { endpoints: [10.1.2.3:80], balance: random }
routes:
  - name: user-profile
    match: { path: /v1/users/:id, methods: [GET, HEAD], host: API.Example.com }
    upstream: users-onprem
    rewrite: { strip_prefix: /v1 }
  - name: catch_all.2
    match: { path: /*rest, host: "*.example.com" }
    upstream: other
)");
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  ASSERT_TRUE(result.config.has_value());
  const Config& config = *result.config;
  EXPECT_EQ(config.source_file, "test.yaml");
  EXPECT_EQ(config.files, std::vector<std::string>{"test.yaml"});

  EXPECT_EQ(config.server.listen.host, "::1");
  EXPECT_EQ(config.server.listen.port, 8443);
  EXPECT_EQ(config.server.listen.text(), "[::1]:8443");
  EXPECT_EQ(config.server.workers, 4u);
  ASSERT_EQ(config.server.trusted_proxies.size(), 4u);
  EXPECT_EQ(config.server.trusted_proxies[0].text, "10.0.0.0/8");
  EXPECT_EQ(config.server.trusted_proxies[0].net, (std::vector<std::uint8_t>{10, 0, 0, 0}));
  EXPECT_EQ(config.server.trusted_proxies[0].prefix, 8);
  EXPECT_EQ(config.server.trusted_proxies[1].net, (std::vector<std::uint8_t>{192, 168, 1, 0}));  // host bits cleared
  EXPECT_EQ(config.server.trusted_proxies[2].net.size(), 16u);
  EXPECT_EQ(config.server.trusted_proxies[2].net.back(), 1);
  EXPECT_EQ(config.server.trusted_proxies[2].prefix, 128);
  EXPECT_EQ(config.server.trusted_proxies[3].prefix, 32);
  EXPECT_EQ(config.server.limits.max_header_bytes, 32u * 1024);
  EXPECT_EQ(config.server.limits.max_uri_bytes, 4096u);
  EXPECT_EQ(config.server.limits.max_body_bytes, 1024u * 1024 * 1024);
  EXPECT_EQ(config.server.limits.header_timeout, milliseconds(3'000));
  EXPECT_EQ(config.server.limits.idle_timeout, milliseconds(120'000));
  EXPECT_FALSE(config.server.debug_headers);
  EXPECT_EQ(config.server.drain_timeout, milliseconds(3'600'000));
  EXPECT_EQ(config.log.access, "/var/log/apigw/access.log");
  EXPECT_EQ(config.log.level, "debug");

  ASSERT_EQ(config.upstreams.size(), 2u);
  const UpstreamConfig& users = config.upstreams.at("users-onprem");
  EXPECT_EQ(users.name, "users-onprem");
  ASSERT_EQ(users.endpoints.size(), 3u);
  EXPECT_EQ(users.endpoints[0].text(), "127.0.0.1:9001");
  EXPECT_EQ(users.endpoints[1].host, "::1");
  EXPECT_EQ(users.endpoints[1].text(), "[::1]:9002");
  EXPECT_EQ(users.endpoints[2].host, "users.internal");
  EXPECT_EQ(users.endpoints[2].port, 80);
  EXPECT_EQ(users.balance, Balance::kLeastRequest);
  EXPECT_EQ(users.connect_timeout, milliseconds(100));
  EXPECT_EQ(users.timeout, milliseconds(30'000));
  EXPECT_EQ(users.max_connections, 10u);
  EXPECT_EQ(users.retry_attempts, 3u);
  EXPECT_EQ(users.position.line, 10);
  EXPECT_EQ(users.position.column, 3);
  EXPECT_EQ(config.upstreams.at("other").balance, Balance::kRandom);

  ASSERT_EQ(config.routes.size(), 2u);
  const RouteConfig& profile = config.routes[0];
  EXPECT_EQ(profile.name, "user-profile");
  EXPECT_EQ(profile.match.path, "/v1/users/:id");
  EXPECT_EQ(profile.match.methods, (std::vector<std::string>{"GET", "HEAD"}));
  EXPECT_EQ(profile.match.host, "api.example.com");
  EXPECT_EQ(profile.upstream, "users-onprem");
  EXPECT_EQ(profile.strip_prefix, "/v1");
  EXPECT_EQ(profile.position.file, "test.yaml");
  EXPECT_EQ(profile.position.line, 19);
  EXPECT_EQ(config.routes[1].match.host, "*.example.com");
  EXPECT_TRUE(config.routes[1].match.methods.empty());
  EXPECT_TRUE(config.routes[1].strip_prefix.empty());
}

TEST(ConfigLoader, OmittedKeysTakeTheDefaults) {
  const auto result = load(kValidTail);
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const Config defaults;
  const Config& config = *result.config;
  EXPECT_EQ(config.server.listen.text(), "127.0.0.1:8080");
  EXPECT_EQ(config.server.workers, 0u);
  EXPECT_TRUE(config.server.trusted_proxies.empty());
  EXPECT_EQ(config.server.limits.max_header_bytes, 16u * 1024);
  EXPECT_EQ(config.server.limits.max_uri_bytes, 8u * 1024);
  EXPECT_EQ(config.server.limits.max_body_bytes, 8u * 1024 * 1024);
  EXPECT_EQ(config.server.limits.header_timeout, milliseconds(10'000));
  EXPECT_EQ(config.server.limits.idle_timeout, milliseconds(75'000));
  EXPECT_TRUE(config.server.debug_headers);
  EXPECT_EQ(config.server.drain_timeout, milliseconds(15'000));
  EXPECT_EQ(config.log.access, "stdout");
  EXPECT_EQ(config.log.level, "info");
  const UpstreamConfig& upstream = config.upstreams.at("u");
  EXPECT_EQ(upstream.balance, Balance::kRoundRobin);
  EXPECT_EQ(upstream.connect_timeout, milliseconds(250));
  EXPECT_EQ(upstream.timeout, milliseconds(5'000));
  EXPECT_EQ(upstream.max_connections, 256u);
  EXPECT_EQ(upstream.retry_attempts, 1u);
  EXPECT_EQ(config.routes[0].match.host, "");
  EXPECT_EQ(config.routes[0].strip_prefix, "");
}

TEST(ConfigLoader, EmptyDocumentAndEmptySectionsAreDefaults) {
  const auto empty = load("");
  ASSERT_TRUE(empty.errors.empty()) << all_errors(empty);
  EXPECT_TRUE(empty.config->routes.empty());
  const auto sections = load(R"(
server:
log:
upstreams:
routes:
)");
  ASSERT_TRUE(sections.errors.empty()) << all_errors(sections);
  EXPECT_EQ(sections.config->server.listen.text(), "127.0.0.1:8080");
}

TEST(ConfigLoader, ExampleConfigLoads) {
  const fs::path example = fs::path(__FILE__).parent_path() / "../../../config/apigw.example.yaml";
  const auto result = load_file(example.string());
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const Config& config = *result.config;
  EXPECT_EQ(config.server.listen.text(), "127.0.0.1:8080");
  EXPECT_EQ(config.server.workers, 0u);
  ASSERT_EQ(config.upstreams.size(), 1u);
  EXPECT_EQ(config.upstreams.at("demo").endpoints.at(0).text(), "127.0.0.1:9001");
  ASSERT_EQ(config.routes.size(), 6u);
  EXPECT_EQ(config.routes[0].name, "users");
  EXPECT_EQ(config.routes[0].match.methods, (std::vector<std::string>{"GET", "HEAD"}));
  EXPECT_EQ(config.routes[0].auth, RouteAuth::kOptional);
  EXPECT_EQ(config.routes[1].name, "orders");
  EXPECT_TRUE(config.routes[1].match.methods.empty());
  EXPECT_EQ(config.routes[1].strip_prefix, "");
  EXPECT_EQ(config.routes[2].match.path, "/health");
  EXPECT_EQ(config.routes[3].name, "account");
  EXPECT_EQ(config.routes[3].auth, RouteAuth::kRequired);
  EXPECT_EQ(config.routes[3].cache.scope, CacheScope::kUser);
  EXPECT_EQ(config.routes[4].name, "catalog");
  EXPECT_EQ(config.routes[4].cache.vary, (std::vector<std::string>{"Accept-Language"}));
  EXPECT_EQ(config.routes[5].name, "v1-users");
  EXPECT_EQ(config.routes[5].strip_prefix, "/v1");
  EXPECT_TRUE(config.auth.enabled);
  EXPECT_EQ(config.auth.redis.nodes.at(0).text(), "127.0.0.1:6390");
  EXPECT_EQ(config.auth.token_from.size(), 3u);
  EXPECT_TRUE(config.cache.enabled);
  EXPECT_EQ(config.cache.primary.servers.size(), 2u);
  ASSERT_TRUE(config.cache.secondary);
  EXPECT_TRUE(config.cache.api.enabled);
}

TEST(ConfigLoader, RoutesOnDifferentHostsOrMethodsDoNotConflict) {
  const auto result = load(R"(
upstreams: { u: { endpoints: [127.0.0.1:1] } }
routes:
  - { name: a, match: { path: /x/:id, methods: [GET] }, upstream: u }
  - { name: b, match: { path: /x/:key, methods: [POST] }, upstream: u }
  - { name: c, match: { path: /x/:id }, upstream: u }
  - { name: d, match: { path: /x/:id, methods: [GET], host: a.example.com }, upstream: u }
)");
  EXPECT_TRUE(result.errors.empty()) << all_errors(result);
}

// ---- environment variables -----------------------------------------------------------------------------------

TEST(ConfigLoader, ExpandsEnvironmentVariablesInScalars) {
  ScopedEnv host("APIGW_TEST_HOST", "10.9.8.7");
  ScopedEnv port("APIGW_TEST_PORT", "9100");
  ScopedEnv empty("APIGW_TEST_EMPTY", "");
  ScopedEnv unset("APIGW_TEST_UNSET", nullptr);
  const auto result = load(R"(
server:
  listen: ${APIGW_TEST_HOST}:${APIGW_TEST_PORT}
  workers: ${APIGW_TEST_UNSET:-3}
  drain_timeout: ${APIGW_TEST_EMPTY:-20s}
log: { access: "/logs/$$HOME/${APIGW_TEST_EMPTY}a$b.log" }
upstreams:
  u: { endpoints: ["${APIGW_TEST_UNSET:-localhost}:${APIGW_TEST_PORT}"] }
routes:
  - { name: r, match: { path: /r }, upstream: u }
)");
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  EXPECT_EQ(result.config->server.listen.text(), "10.9.8.7:9100");
  EXPECT_EQ(result.config->server.workers, 3u);
  EXPECT_EQ(result.config->server.drain_timeout, milliseconds(20'000));
  EXPECT_EQ(result.config->log.access, "/logs/$HOME/a$b.log");
  EXPECT_EQ(result.config->upstreams.at("u").endpoints.at(0).text(), "localhost:9100");
}

TEST(ConfigLoader, UnsetVariableWithoutDefaultIsAnError) {
  ScopedEnv unset("APIGW_TEST_MISSING", nullptr);
  const auto result = load_with_tail(R"(
server:
  workers: 2
  listen: 127.0.0.1:${APIGW_TEST_MISSING}
)");
  ASSERT_TRUE(only_error(result, 3, "environment variable 'APIGW_TEST_MISSING' is not set"));
  EXPECT_EQ(result.errors[0].position.column, 11);
  EXPECT_FALSE(result.config.has_value());
}

TEST(ConfigLoader, MalformedVariableReferencesAreErrors) {
  const auto result = load_with_tail(R"(
log:
  access: /x/${UNTERMINATED
  level: ${1BAD}
)");
  EXPECT_TRUE(has_error(result, 2, "unterminated '${'"));
  EXPECT_TRUE(has_error(result, 3, "bad variable name '1BAD'"));
}

// ---- includes -------------------------------------------------------------------------------------------------

TEST(ConfigLoader, IncludesMergeInOrderWithSortedGlobs) {
  TempDir dir;
  const std::string main = dir.write("main.yaml", R"(
include: [routes.d/*.yaml, extra/more.yaml]
routes:
  - { name: main-route, match: { path: /main }, upstream: shared }
)");
  const std::string b = dir.write("routes.d/b.yaml", R"(
routes:
  - { name: from-b, match: { path: /b }, upstream: shared }
)");
  const std::string a = dir.write("routes.d/a.yaml", R"(
upstreams:
  shared: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: from-a, match: { path: /a }, upstream: shared }
)");
  dir.write("routes.d/ignored.txt", "not: yaml: at all");
  const std::string more = dir.write("extra/more.yaml", R"(
routes:
  - { name: from-more, match: { path: /more }, upstream: shared }
)");
  const auto result = load_file(main);
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const Config& config = *result.config;
  EXPECT_EQ(config.source_file, main);
  EXPECT_EQ(config.files, (std::vector<std::string>{main, a, b, more}));
  ASSERT_EQ(config.routes.size(), 4u);
  EXPECT_EQ(config.routes[0].name, "main-route");
  EXPECT_EQ(config.routes[1].name, "from-a");
  EXPECT_EQ(config.routes[2].name, "from-b");
  EXPECT_EQ(config.routes[3].name, "from-more");
  EXPECT_EQ(config.routes[2].position.file, b);
  EXPECT_EQ(config.routes[2].position.line, 2);
  EXPECT_EQ(config.upstreams.at("shared").position.file, a);
}

TEST(ConfigLoader, LoadStringResolvesIncludesAgainstItsName) {
  TempDir dir;
  dir.write("sub/routes.yaml", R"(
routes:
  - { name: included, match: { path: /inc }, upstream: u }
)");
  const auto result = load_string(yaml(R"(
include: [sub/routes.yaml]
upstreams: { u: { endpoints: [127.0.0.1:1] } }
)"),
                                  dir.path("virtual.yaml"));
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  EXPECT_EQ(result.config->files.size(), 2u);
  EXPECT_EQ(result.config->routes.at(0).name, "included");
}

TEST(ConfigLoader, GlobMatchingNothingIsNotAnError) {
  TempDir dir;
  const std::string main = dir.write("main.yaml", std::string("include: [nothing.d/*.yaml, \"*.none\"]\n") +
                                                      yaml(kValidTail));
  const auto result = load_file(main);
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  EXPECT_EQ(result.config->files, std::vector<std::string>{main});
}

TEST(ConfigLoader, GlobDoesNotReadTheMainFileAgain) {
  TempDir dir;
  const std::string main = dir.write("main.yaml", std::string("include: [\"*.yaml\"]\n") + yaml(kValidTail));
  const std::string other = dir.write("other.yaml", "routes: []\n");
  const auto result = load_file(main);
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  EXPECT_EQ(result.config->files, (std::vector<std::string>{main, other}));
}

TEST(ConfigLoader, MissingPlainIncludeIsAnError) {
  TempDir dir;
  const std::string main = dir.write("main.yaml", R"(
upstreams: { u: { endpoints: [127.0.0.1:1] } }
include:
  - routes.d/*.yaml
  - missing.yaml
)");
  const auto result = load_file(main);
  ASSERT_EQ(result.errors.size(), 1u) << all_errors(result);
  EXPECT_TRUE(has_error(result, 4, "include 'missing.yaml'", main));
  EXPECT_NE(result.errors[0].message.find("does not exist"), std::string::npos);
}

TEST(ConfigLoader, DuplicateUpstreamAcrossFilesNamesTheFirst) {
  TempDir dir;
  const std::string main = dir.write("main.yaml", R"(
include: [dup.yaml]
upstreams:
  u: { endpoints: [127.0.0.1:1] }
)");
  const std::string dup = dir.write("dup.yaml", R"(
# same name again
upstreams:
  u: { endpoints: [127.0.0.1:2] }
)");
  const auto result = load_file(main);
  ASSERT_EQ(result.errors.size(), 1u) << all_errors(result);
  EXPECT_TRUE(has_error(result, 3, "upstream 'u' is already defined at " + main + ":3:3", dup));
}

TEST(ConfigLoader, ErrorInsideAnIncludeNamesTheIncludedFile) {
  TempDir dir;
  const std::string main = dir.write("main.yaml", std::string("include: [routes.d/*.yaml]\n") + yaml(kValidTail));
  const std::string bad = dir.write("routes.d/bad.yaml", R"(
routes:
  - name: broken
    match: { path: /broken, methods: [get] }
    upstream: u
)");
  const std::string syntax = dir.write("routes.d/syntax.yaml", R"(
routes:
  - name: [unclosed
)");
  const auto result = load_file(main);
  EXPECT_EQ(result.errors.size(), 2u) << all_errors(result);
  EXPECT_TRUE(has_error(result, 3, "must be upper case", bad));
  EXPECT_TRUE(has_error(result, 3, "YAML syntax error", syntax));
}

TEST(ConfigLoader, IncludeFileHoldsOnlyRoutesAndUpstreams) {
  TempDir dir;
  const std::string main = dir.write("main.yaml", std::string("include: [inc.yaml]\n") + yaml(kValidTail));
  const std::string inc = dir.write("inc.yaml", R"(
routes: []
server: { workers: 2 }
include: [other.yaml]
)");
  const auto result = load_file(main);
  ASSERT_EQ(result.errors.size(), 2u) << all_errors(result);
  EXPECT_TRUE(has_error(result, 2, "unknown key 'server' at the top level (allowed: upstreams, routes)", inc));
  EXPECT_TRUE(has_error(result, 3, "unknown key 'include'", inc));
}

TEST(ConfigLoader, MissingMainFileIsAnError) {
  const auto result = load_file("/nonexistent/apigw-test/main.yaml");
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].position.file, "/nonexistent/apigw-test/main.yaml");
  EXPECT_NE(result.errors[0].message.find("cannot read config file"), std::string::npos);
}

// ---- errors ---------------------------------------------------------------------------------------------------

// One broken config and the single error it must give.
struct ErrorCase {
  std::string yaml;  // its lines come first; kValidTail is appended when `with_tail`
  int line;
  std::string_view fragment;
  bool with_tail = true;
};

void expect_each_alone(std::initializer_list<ErrorCase> cases) {
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.yaml);
    const auto result = c.with_tail ? load_with_tail(c.yaml) : load(c.yaml);
    EXPECT_TRUE(only_error(result, c.line, c.fragment));
    EXPECT_FALSE(result.config.has_value());
  }
}

TEST(ConfigLoader, UnknownKeysNameTheKeyAndTheAllowedOnes) {
  // Lines 1-4; the route's match comes next, on line 5.
  const std::string route = "upstreams: { u: { endpoints: [127.0.0.1:1] } }\nroutes:\n  - name: r\n    upstream: u\n";
  expect_each_alone({
      {"serve: {}\n", 1,
       "unknown key 'serve' at the top level (allowed: server, log, admin, reload, auth, cache, migration, control, "
       "rate_limits, tracing, edge, upstreams, routes, include)"},
      {"admin: { port: 1 }\n", 1, "unknown key 'port' in admin (allowed: listen, tls)"},
      {"reload: { watch: true, every: 2s }\n", 1, "unknown key 'every' in reload (allowed: watch, interval)"},
      {"upstreams:\n  u:\n    endpoints: [127.0.0.1:1]\n    health_check: { url: /h }\n", 4,
       "unknown key 'url' in upstream 'u' health_check (allowed: path, interval, timeout, unhealthy_after,", false},
      {"upstreams:\n  u:\n    endpoints: [127.0.0.1:1]\n    passive_health: { failures: 2 }\n", 4,
       "unknown key 'failures' in upstream 'u' passive_health (allowed: unhealthy_after, eject_for)", false},
      {"server:\n  lisen: 1.2.3.4:80\n", 2,
       "unknown key 'lisen' in server (allowed: listen, workers, trusted_proxies, limits, debug_headers, "
       "drain_timeout, tls)"},
      {"server:\n  limits: { max_body: 1 }\n", 2, "unknown key 'max_body' in server.limits (allowed: max_header_bytes"},
      {"log: { format: json }\n", 1, "unknown key 'format' in log (allowed: access, level)"},
      {"upstreams:\n  u:\n    endpoints: [127.0.0.1:1]\n    balanse: random\n", 4,
       "unknown key 'balanse' in upstream 'u' (allowed: endpoints, balance,", false},
      {"upstreams:\n  u:\n    endpoints: [127.0.0.1:1]\n    retries: { attempt: 2 }\n", 4,
       "unknown key 'attempt' in upstream 'u' retries (allowed: attempts)", false},
      {route + "    match:\n      path: /r\n      method: GET\n", 7,
       "unknown key 'method' in route 'r' match (allowed: path, methods, host)", false},
      {route + "    match: { path: /r }\n    rewrite: { strip: /v1 }\n", 6,
       "unknown key 'strip' in route 'r' rewrite (allowed: strip_prefix)", false},
      {route + "    match: { path: /r }\n    timeout: 5s\n", 6,
       "unknown key 'timeout' in route 'r' (allowed: name, match, upstream, rewrite, auth, cache, split, shadow, "
       "rate_limit, site)", false},
  });
}

TEST(ConfigLoader, AdminReloadAndHealthKeys) {
  const auto result = load(
      "admin: { listen: '[::1]:9911' }\n"
      "reload: { watch: true, interval: 500ms }\n"
      "upstreams:\n"
      "  u:\n"
      "    endpoints: [127.0.0.1:1]\n"
      "    health_check: { path: /ping, interval: 1s, timeout: 200ms, unhealthy_after: 2, healthy_after: 4 }\n"
      "    passive_health: { unhealthy_after: 0, eject_for: 30s }\n"
      "  v:\n"
      "    endpoints: [127.0.0.1:2]\n"
      "routes:\n"
      "  - { name: r, match: { path: /r }, upstream: u }\n");
  ASSERT_TRUE(result.config.has_value()) << (result.errors.empty() ? "" : result.errors[0].text());
  const Config& config = *result.config;
  EXPECT_TRUE(config.admin.enabled);
  EXPECT_EQ(config.admin.listen.text(), "[::1]:9911");
  EXPECT_TRUE(config.reload.watch);
  EXPECT_EQ(config.reload.interval, std::chrono::milliseconds(500));
  const UpstreamConfig& u = config.upstreams.at("u");
  EXPECT_TRUE(u.health_check.enabled);
  EXPECT_EQ(u.health_check.path, "/ping");
  EXPECT_EQ(u.health_check.interval, std::chrono::seconds(1));
  EXPECT_EQ(u.health_check.timeout, std::chrono::milliseconds(200));
  EXPECT_EQ(u.health_check.unhealthy_after, 2u);
  EXPECT_EQ(u.health_check.healthy_after, 4u);
  EXPECT_EQ(u.passive_health.unhealthy_after, 0u);
  EXPECT_EQ(u.passive_health.eject_for, std::chrono::seconds(30));
  // Defaults: no active check, passive ejection after 5 connect failures for 10 s, admin on loopback 9901.
  const UpstreamConfig& v = config.upstreams.at("v");
  EXPECT_FALSE(v.health_check.enabled);
  EXPECT_EQ(v.passive_health.unhealthy_after, 5u);
  EXPECT_EQ(v.passive_health.eject_for, std::chrono::seconds(10));
  const auto defaults = load("upstreams: { u: { endpoints: [127.0.0.1:1] } }\n");
  ASSERT_TRUE(defaults.config.has_value());
  EXPECT_EQ(defaults.config->admin.listen.text(), "127.0.0.1:9901");
  EXPECT_FALSE(defaults.config->reload.watch);

  const auto off = load("admin: { listen: off }\n");
  ASSERT_TRUE(off.config.has_value());
  EXPECT_FALSE(off.config->admin.enabled);
}

TEST(ConfigLoader, WrongTypesAreErrors) {
  expect_each_alone({
      {"server: 5\n", 1, "server: expected a map, got '5'"},
      {"server:\n  trusted_proxies: { a: 1 }\n", 2, "server.trusted_proxies: expected a list, got a map"},
      {"server:\n  listen: [127.0.0.1:80]\n", 2, "server.listen: expected a single value, got a list"},
      {"server:\n  workers: abc\n", 2, "server.workers: expected a whole number from 0 to 1024, got 'abc'"},
      {"server:\n  workers: -1\n", 2, "expected a whole number from 0 to 1024, got '-1'"},
      {"server:\n  workers:\n", 2, "server.workers: needs a value"},
      {"admin: { listen: localhost:9901 }\n", 1, "admin.listen: "},
      {"reload: { watch: yes-please }\n", 1, "reload.watch: expected true or false"},
      {"reload: { interval: 0 }\n", 1, "reload.interval: "},
      {"upstreams:\n  u:\n    endpoints: [127.0.0.1:1]\n    health_check: { path: ping }\n", 4,
       "bad path 'ping': must start with '/'", false},
      {"upstreams:\n  u:\n    endpoints: [127.0.0.1:1]\n    health_check: { unhealthy_after: 0 }\n", 4,
       "upstream 'u' health_check.unhealthy_after: must be from 1 to 1000, got 0", false},
      {"server:\n  debug_headers: yes\n", 2, "server.debug_headers: expected true or false, got 'yes'"},
      {"- a\n- b\n", 1, "the document: expected a map, got a list", false},
      {"routes: { a: 1 }\n", 1, "routes: expected a list, got a map", false},
      {"upstreams: [a, b]\n", 1, "upstreams: expected a map, got a list", false},
      {"include: routes.yaml\n", 1, "include: expected a list, got 'routes.yaml'"},
  });
}

TEST(ConfigLoader, NumbersOutOfRangeAreErrors) {
  expect_each_alone({
      {"server:\n  workers: 1025\n", 2, "server.workers: must be from 0 to 1024, got 1025"},
      {"server:\n  workers: 99999999999999999999\n", 2, "must be from 0 to 1024"},
      {"upstreams:\n  u:\n    endpoints: [127.0.0.1:1]\n    max_connections: 0\n", 4,
       "upstream 'u' max_connections: must be from 1 to", false},
      {"upstreams:\n  u:\n    endpoints: [127.0.0.1:1]\n    retries: { attempts: 11 }\n", 4,
       "upstream 'u' retries.attempts: must be from 0 to 10, got 11", false},
  });
}

TEST(ConfigLoader, BadDurationsAndSizesAreErrors) {
  expect_each_alone({
      {"server:\n  drain_timeout: 15\n", 2, "server.drain_timeout: bad duration '15' (expected e.g. 250ms, 5s"},
      {"server:\n  limits:\n    idle_timeout: 5sec\n", 3, "server.limits.idle_timeout: bad duration '5sec'"},
      {"server:\n  limits:\n    max_body_bytes: 8MB8\n", 3, "server.limits.max_body_bytes: bad size '8MB8'"},
      {"server:\n  limits:\n    max_uri_bytes: 1.5KiB\n", 3, "bad size '1.5KiB'"},
      {"upstreams:\n  u:\n    endpoints: [127.0.0.1:1]\n    timeout: fast\n", 4,
       "upstream 'u' timeout: bad duration 'fast'", false},
  });
}

TEST(ConfigLoader, ZeroLimitsAndTimeoutsAreErrors) {
  expect_each_alone({
      {"server:\n  limits:\n    max_header_bytes: 0\n", 3, "server.limits.max_header_bytes: must be greater than zero"},
      {"server:\n  limits:\n    max_uri_bytes: 0KiB\n", 3, "server.limits.max_uri_bytes: must be greater than zero"},
      {"server:\n  limits:\n    max_body_bytes: 0\n", 3, "server.limits.max_body_bytes: must be greater than zero"},
      {"server:\n  limits:\n    header_timeout: 0\n", 3, "server.limits.header_timeout: must be greater than zero"},
      {"server:\n  limits:\n    idle_timeout: 0s\n", 3, "server.limits.idle_timeout: must be greater than zero"},
      {"upstreams:\n  u:\n    endpoints: [127.0.0.1:1]\n    connect_timeout: 0ms\n", 4,
       "upstream 'u' connect_timeout: must be greater than zero", false},
  });
  const auto zero_drain = load_with_tail("server: { drain_timeout: 0 }\n");
  EXPECT_TRUE(zero_drain.errors.empty()) << all_errors(zero_drain);
}

TEST(ConfigLoader, BadListenAddressesAreErrors) {
  expect_each_alone({
      {"server: { listen: localhost:8080 }\n", 1,
       "server.listen: expected an IP address (IPv4, or IPv6 in brackets), got 'localhost'"},
      {"server: { listen: 127.0.0.1 }\n", 1, "server.listen: expected host:port, got '127.0.0.1'"},
      {"server: { listen: 127.0.0.1:0 }\n", 1, "port must be a number from 1 to 65535, got '0'"},
      {"server: { listen: 127.0.0.1:65536 }\n", 1, "port must be a number from 1 to 65535, got '65536'"},
      {"server: { listen: 127.0.0.1:http }\n", 1, "port must be a number from 1 to 65535, got 'http'"},
      {"server: { listen: \"::1:8080\" }\n", 1, "an IPv6 address must be written in brackets, e.g. [::1]:8080"},
      {"server: { listen: \"[::1]\" }\n", 1, "expected [IPv6]:port, got '[::1]'"},
      {"server: { listen: \"[fe80::zz]:80\" }\n", 1, "'fe80::zz' is not a valid IPv6 address"},
      {"server: { listen: 256.0.0.1:80 }\n", 1, "'256.0.0.1' is not a valid IPv4 address"},
  });
  const auto v6 = load_with_tail("server: { listen: \"[::]:80\" }\n");
  ASSERT_TRUE(v6.errors.empty()) << all_errors(v6);
  EXPECT_EQ(v6.config->server.listen.text(), "[::]:80");
}

TEST(ConfigLoader, BadEndpointsAreErrors) {
  const auto result = load(R"(
upstreams:
  u:
    endpoints:
      - 127.0.0.1:9001
      - bad host:80
      - -dash.example.com:80
      - users.internal
      - "[::1]:99999"
)");
  ASSERT_EQ(result.errors.size(), 4u) << all_errors(result);
  EXPECT_TRUE(has_error(result, 5, "upstream 'u' endpoints[1]: 'bad host' is not a valid host name or IP address"));
  EXPECT_TRUE(has_error(result, 6, "'-dash.example.com' is not a valid host name"));
  EXPECT_TRUE(has_error(result, 7, "expected host:port, got 'users.internal'"));
  EXPECT_TRUE(has_error(result, 8, "port must be a number from 1 to 65535, got '99999'"));
}

TEST(ConfigLoader, BadCidrsAreErrors) {
  const auto result = load_with_tail(R"(
server:
  trusted_proxies:
    - 10.0.0.0/33
    - 10.0.0/8
    - fe80::/129
    - 10.0.0.0/
    - "[::1]/128"
    - 10.0.0.0/8
    - ::ffff:10.0.0.0/104
)");
  ASSERT_EQ(result.errors.size(), 5u) << all_errors(result);
  EXPECT_TRUE(has_error(result, 3, "bad CIDR '10.0.0.0/33': prefix length must be from 0 to 32"));
  EXPECT_TRUE(has_error(result, 4, "bad CIDR '10.0.0/8': '10.0.0' is not an IPv4 or IPv6 address"));
  EXPECT_TRUE(has_error(result, 5, "bad CIDR 'fe80::/129': prefix length must be from 0 to 128"));
  EXPECT_TRUE(has_error(result, 6, "bad CIDR '10.0.0.0/'"));
  EXPECT_TRUE(has_error(result, 7, "bad CIDR '[::1]/128'"));
}

TEST(ConfigLoader, Ipv4MappedCidrIsKeptAsIpv4) {
  const auto result = load_with_tail("server: { trusted_proxies: [\"::ffff:10.1.0.0/112\"] }\n");
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const Cidr& cidr = result.config->server.trusted_proxies.at(0);
  EXPECT_EQ(cidr.net, (std::vector<std::uint8_t>{10, 1, 0, 0}));
  EXPECT_EQ(cidr.prefix, 16);
}

TEST(ConfigLoader, BadLogSettingsAreErrors) {
  expect_each_alone({
      {"log:\n  level: verbose\n", 2,
       "log.level: unknown log level 'verbose' (allowed: trace, debug, info, warn, error, critical, off)"},
      {"log:\n  level: INFO\n", 2, "unknown log level 'INFO'"},
      {"log:\n  access: \"\"\n", 2, "log.access: must be stdout, off or a file path"},
  });
}

TEST(ConfigLoader, BadUpstreamsAreErrors) {
  expect_each_alone({
      {"upstreams:\n  u:\n    endpoints: [127.0.0.1:1]\n    balance: fastest\n", 4,
       "upstream 'u' balance: unknown balance 'fastest' (allowed: round_robin, least_request, random)", false},
      {"upstreams:\n  empty: {}\n", 2, "upstream 'empty' has no endpoints", false},
      {"upstreams:\n  empty:\n    endpoints: []\n", 2, "upstream 'empty' has no endpoints", false},
      {"upstreams:\n  nothing:\n", 2, "upstream 'nothing' has no endpoints", false},
      {"upstreams:\n  one:\n    endpoints: 127.0.0.1:1\n", 3,
       "upstream 'one' endpoints: expected a list, got '127.0.0.1:1'", false},
      {"upstreams:\n  bad name!: { endpoints: [127.0.0.1:1] }\n", 2,
       "upstream name: bad name 'bad name!': use only letters, digits, '_', '.' and '-'", false},
      {"upstreams:\n  u: { endpoints: [127.0.0.1:1] }\n  u: { endpoints: [127.0.0.1:2] }\n", 3,
       "key 'u' is given twice in upstreams (first at line 2)", false},
  });
}

// Routes under a valid upstream `u`; the route list starts on line 3.
LoadResult load_routes(std::string_view routes) {
  return load("upstreams: { u: { endpoints: [127.0.0.1:1] } }\nroutes:\n" + yaml(routes));
}

TEST(ConfigLoader, DanglingUpstreamIsAnError) {
  const auto result = load_routes(R"(
  - name: r
    match: { path: /r }
    upstream: nope
)");
  EXPECT_TRUE(only_error(result, 5, "route 'r': upstream 'nope' is not defined (defined: u)"));
  EXPECT_EQ(result.errors[0].position.column, 15);
}

TEST(ConfigLoader, DuplicateRouteNameNamesTheFirst) {
  const auto result = load_routes(R"(
  - name: same
    match: { path: /a }
    upstream: u
  - name: same
    match: { path: /b }
    upstream: u
)");
  EXPECT_TRUE(only_error(result, 6, "route name 'same' is already used by the route at test.yaml:3:5"));
}

TEST(ConfigLoader, BadMethodsAreErrors) {
  const auto result = load_routes(R"(
  - name: lower
    match: { path: /a, methods: [get] }
    upstream: u
  - name: token
    match: { path: /b, methods: ["GE T"] }
    upstream: u
  - name: twice
    match: { path: /c, methods: [GET, GET] }
    upstream: u
  - name: empty
    match: { path: /d, methods: [] }
    upstream: u
  - name: scalar
    match: { path: /e, methods: GET }
    upstream: u
)");
  ASSERT_EQ(result.errors.size(), 5u) << all_errors(result);
  EXPECT_TRUE(has_error(result, 4, "route 'lower' match.methods[0]: method 'get' must be upper case (GET)"));
  EXPECT_TRUE(has_error(result, 7, "'GE T' is not an HTTP method token"));
  EXPECT_TRUE(has_error(result, 10, "route 'twice' match.methods: 'GET' is listed twice"));
  EXPECT_TRUE(has_error(result, 13, "route 'empty' match.methods: is empty; leave it out to match any method"));
  EXPECT_TRUE(has_error(result, 16, "route 'scalar' match.methods: expected a list, got 'GET'"));
}

TEST(ConfigLoader, PathPatternErrorsComeFromTheRouter) {
  const auto result = load_routes(R"(
  - { name: a, match: { path: "/users/:" }, upstream: u }
  - { name: b, match: { path: /files/*rest/more }, upstream: u }
  - { name: c, match: { path: users }, upstream: u }
  - { name: d, match: { path: "/x/:", host: "bad host" }, upstream: u }
)");
  ASSERT_EQ(result.errors.size(), 5u) << all_errors(result);
  EXPECT_TRUE(has_error(result, 3, "route 'a' match.path: pattern '/users/:': ':' needs a name"));
  EXPECT_TRUE(has_error(result, 4, "route 'b' match.path: pattern '/files/*rest/more'"));
  EXPECT_TRUE(has_error(result, 5, "route 'c' match.path: pattern 'users': must start with '/'"));
  // A route whose host is bad still has its pattern checked.
  EXPECT_TRUE(has_error(result, 6, "route 'd' match.path: pattern '/x/:'"));
  EXPECT_TRUE(has_error(result, 6, "route 'd' match.host: bad host 'bad host'"));
}

TEST(ConfigLoader, RouteConflictNamesTheOtherRoute) {
  const auto result = load_routes(R"(
  - name: first
    match: { path: "/users/:id", methods: [GET, POST], host: API.example.com }
    upstream: u
  - name: second
    match: { path: "/users/:name", methods: [GET], host: api.EXAMPLE.com }
    upstream: u
)");
  EXPECT_TRUE(
      only_error(result, 7, "route 'second': path '/users/:name' conflicts with route 'first' at test.yaml:3:5"));
  EXPECT_NE(result.errors[0].message.find("GET"), std::string::npos) << result.errors[0].message;
}

TEST(ConfigLoader, RouteWithoutPathUpstreamOrNameIsAnError) {
  const auto result = load_routes(R"(
  - name: no-path
    match: { methods: [GET] }
    upstream: u
  - name: no-match
    upstream: u
  - name: no-upstream
    match: { path: /x }
  - match: { path: /y }
    upstream: u
  - just-a-string
)");
  ASSERT_EQ(result.errors.size(), 5u) << all_errors(result);
  EXPECT_TRUE(has_error(result, 4, "route 'no-path' match: needs a path"));
  EXPECT_TRUE(has_error(result, 6, "route 'no-match': needs a match with a path"));
  EXPECT_TRUE(has_error(result, 8, "route 'no-upstream': needs an upstream"));
  EXPECT_TRUE(has_error(result, 10, "routes[3]: needs a name"));
  EXPECT_TRUE(has_error(result, 12, "routes[4]: expected a map, got 'just-a-string'"));
}

TEST(ConfigLoader, BadNamesHostsAndPrefixesAreErrors) {
  const auto result = load_routes(R"(
  - { name: "bad name", match: { path: /a }, upstream: u }
  - { name: port, match: { path: /b, host: "api.example.com:8080" }, upstream: u }
  - { name: star, match: { path: /c, host: "a.*.com" }, upstream: u }
  - { name: relative, match: { path: /v1/d }, upstream: u, rewrite: { strip_prefix: v1 } }
  - { name: trailing, match: { path: /v1/e }, upstream: u, rewrite: { strip_prefix: /v1/ } }
  - { name: never, match: { path: /v1/users/:id }, upstream: u, rewrite: { strip_prefix: /v2 } }
  - { name: maybe, match: { path: "/:version/f" }, upstream: u, rewrite: { strip_prefix: /v2/f } }
)");
  ASSERT_EQ(result.errors.size(), 6u) << all_errors(result);
  EXPECT_TRUE(has_error(result, 3, "bad name 'bad name': use only letters, digits"));
  EXPECT_TRUE(has_error(result, 4, "route 'port' match.host: host 'api.example.com:8080' must not carry a port"));
  EXPECT_TRUE(has_error(result, 5, "route 'star' match.host: bad host 'a.*.com'"));
  EXPECT_TRUE(has_error(result, 6, "route 'relative' rewrite.strip_prefix: bad prefix 'v1': must start with '/'"));
  EXPECT_TRUE(has_error(result, 7, "bad prefix '/v1/'"));
  EXPECT_TRUE(has_error(result, 8, "route 'never' rewrite.strip_prefix: prefix '/v2' can never match path"));
}

TEST(ConfigLoader, YamlSyntaxErrorsHavePositions) {
  const auto result = load(R"(
server:
  listen: 127.0.0.1:8080
  trusted_proxies: [127.0.0.1
log: { level: info }
)");
  ASSERT_EQ(result.errors.size(), 1u) << all_errors(result);
  EXPECT_EQ(result.errors[0].position.file, "test.yaml");
  EXPECT_GE(result.errors[0].position.line, 4);
  EXPECT_GT(result.errors[0].position.column, 0);
  EXPECT_NE(result.errors[0].message.find("YAML syntax error"), std::string::npos);

  EXPECT_TRUE(only_error(load("a: b: c\n"), 1, "YAML syntax error: illegal map value"));
  EXPECT_TRUE(only_error(load(std::string(yaml(kValidTail)) + "---\nserver: {}\n"), 6, "found a second one"));
}

TEST(ConfigLoader, AStrayCommaIsASyntaxErrorNotAHang) {
  // yaml-cpp 0.7's LoadAll loops forever on these (adding a null document per turn, so memory grows too): start-up,
  // `apigw -t` and every reload would hang. The load runs in a child process with an alarm, so that a hang fails
  // the test instead of holding it.
  for (const std::string_view text : {",\n", "server: {}\n,\n", ",\nserver: {}\n"}) {
    EXPECT_EXIT(
        {
          alarm(10);
          const LoadResult result = load(text);
          std::_Exit(has_error(result, 1 + (text.front() != ','), "YAML syntax error") ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "")
        << text;
  }
}

TEST(ConfigLoader, RepeatedKeyIsAnError) {
  EXPECT_TRUE(only_error(load_with_tail("server:\n  workers: 1\n  workers: 2\n"), 3,
                         "key 'workers' is given twice in server (first at line 2)"));
}

TEST(ConfigLoader, CollectsEveryErrorInOneLoadInFileOrder) {
  const auto result = load(R"(
server:
  workers: 2000
  listen: nowhere
log: { level: loud }
upstreams:
  u: { endpoints: [127.0.0.1:1], balance: best }
routes:
  - { name: a, match: { path: /a, methods: [get] }, upstream: u }
  - { name: b, match: { path: /b }, upstream: missing }
)");
  ASSERT_EQ(result.errors.size(), 6u) << all_errors(result);
  const std::vector<int> lines{2, 3, 4, 6, 8, 9};
  for (std::size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(result.errors[i].position.line, lines[i]) << i;
  EXPECT_NE(result.errors[5].message.find("upstream 'missing' is not defined"), std::string::npos);
  EXPECT_FALSE(result.config.has_value());
}

TEST(ConfigLoader, ErrorAndEndpointText) {
  EXPECT_EQ((ConfigError{{"f.yaml", 3, 7}, "boom"}).text(), "f.yaml:3:7: boom");
  EXPECT_EQ((ConfigError{{"f.yaml", 0, 0}, "boom"}).text(), "f.yaml: boom");
  EXPECT_EQ((Endpoint{"127.0.0.1", 9001}).text(), "127.0.0.1:9001");
  EXPECT_EQ((Endpoint{"::1", 9001}).text(), "[::1]:9001");
  EXPECT_EQ((Endpoint{"users.internal", 80}).text(), "users.internal:80");
}

}  // namespace
}  // namespace apigw::config
