// Tests for the `migration` config section and route `split` and `shadow`: values, defaults, exact percent
// thresholds, the snapshot's effective targets, the /config view, and each error with its line and column.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "apigw/admin/admin_server.h"
#include "apigw/config/loader.h"
#include "apigw/config/snapshot.h"
#include "config_test_support.h"

namespace apigw::config {
namespace {

using std::chrono::seconds;
using Kind = AffinitySource::Kind;

// Passes when some error sits at `line` and `column` of test.yaml and its message contains `fragment`.
::testing::AssertionResult error_at(const LoadResult& result, int line, int column, std::string_view fragment) {
  for (const auto& error : result.errors) {
    if (error.position.file == "test.yaml" && error.position.line == line && error.position.column == column &&
        error.message.find(fragment) != std::string::npos) {
      return ::testing::AssertionSuccess();
    }
  }
  return ::testing::AssertionFailure() << "no error at test.yaml:" << line << ":" << column << " containing '"
                                       << fragment << "'; errors:" << all_errors(result);
}

// As error_at, and that error is the only one.
::testing::AssertionResult only_error_at(const LoadResult& result, int line, int column, std::string_view fragment) {
  if (result.errors.size() != 1) {
    return ::testing::AssertionFailure() << "expected exactly one error; errors:" << all_errors(result);
  }
  return error_at(result, line, column, fragment);
}

// Appended to a section: two upstreams and one plain route on the old side.
constexpr std::string_view kMigrationRoutes = R"(
upstreams:
  old: { endpoints: [127.0.0.1:9001] }
  new: { endpoints: [127.0.0.1:9002] }
routes:
  - { name: plain, match: { path: /plain }, upstream: old }
)";

LoadResult load_section(std::string_view section) { return load(std::string(section) + std::string(kMigrationRoutes)); }

// The threshold of the `migration.split` default for `percent` with `buckets`, or the load's errors.
LoadResult load_split(std::string_view percent, std::string_view buckets = "10000") {
  return load_section("migration:\n  buckets: " + std::string(buckets) + "\n  split: { upstream: new, percent: " +
                      std::string(percent) + " }\n");
}

TEST(MigrationConfig, NoSectionMeansNoMigration) {
  const LoadResult result = load(kMigrationRoutes);
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  EXPECT_FALSE(result.config->migration.enabled);
  EXPECT_FALSE(result.config->routes[0].split.has_value());
  const SnapshotResult built = build_snapshot(*result.config, 1);
  ASSERT_TRUE(built.errors.empty());
  EXPECT_FALSE(built.snapshot->routes[0].split.has_value());
  EXPECT_FALSE(built.snapshot->routes[0].shadow.has_value());
  EXPECT_TRUE(built.snapshot->shadow_ignore.empty());
}

TEST(MigrationConfig, DefaultsWhenTheSectionIsEmpty) {
  const LoadResult result = load_section("migration: {}");
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const MigrationConfig& migration = result.config->migration;
  EXPECT_TRUE(migration.enabled);
  EXPECT_EQ(migration.buckets, 10000u);
  EXPECT_EQ(migration.affinity, (std::vector<AffinitySource>{{Kind::kUserId, {}}, {Kind::kClientIp, {}}}));
  EXPECT_TRUE(migration.beta_users.empty());
  EXPECT_TRUE(migration.shadow_ignore.empty());
  EXPECT_EQ(migration.shadow.max_in_flight, 1000u);
  EXPECT_EQ(migration.shadow.timeout, seconds(5));
  EXPECT_EQ(migration.shadow.header, "X-Apigw-Shadow");
  EXPECT_EQ(migration.shadow.max_body_bytes, 1024u * 1024);
  EXPECT_EQ(migration.shadow.pipeline, 16u);
  EXPECT_FALSE(migration.shadow_target.has_value());
  EXPECT_FALSE(migration.split.has_value());
  EXPECT_FALSE(migration.audit.enabled);
  EXPECT_EQ(migration.audit.sample, 100u);
  EXPECT_EQ(migration.audit.max_body_bytes, 64u * 1024);
  EXPECT_TRUE(load_section("migration:\n").errors.empty()) << "an empty value is an empty section";
}

TEST(MigrationConfig, EveryKeyAsInTheContract) {
  const LoadResult result = load(R"(
migration:
  buckets: 10000
  affinity: [user_id, header:X-Device-Id, cookie:device_id, client_ip]
  beta_users: ["1001", "1002"]
  shadow_ignore: ["POST /payments/**", "/notifications/**"]
  shadow: { max_in_flight: 1000, timeout: 5s, header: X-Apigw-Shadow }
  audit:
    sink: file:/var/log/apigw/audit.ndjson
    sample: 100
    ignore_fields: [/meta/server_time, /request_id]
    max_body_bytes: 64KiB
upstreams:
  users-onprem: { endpoints: [127.0.0.1:9001] }
  users-cloud: { endpoints: [127.0.0.1:9002] }
routes:
  - name: user-profile
    match: { path: /users/:id }
    upstream: users-onprem
    split:  { upstream: users-cloud, percent: 0.01 }
    shadow: { upstream: users-cloud, percent: 10 }
)");
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const MigrationConfig& migration = result.config->migration;
  EXPECT_EQ(migration.affinity, (std::vector<AffinitySource>{{Kind::kUserId, {}},
                                                             {Kind::kHeader, "X-Device-Id"},
                                                             {Kind::kCookie, "device_id"},
                                                             {Kind::kClientIp, {}}}));
  EXPECT_EQ(migration.beta_users, (std::vector<std::string>{"1001", "1002"}));
  EXPECT_EQ(migration.shadow_ignore, (std::vector<std::string>{"POST /payments/**", "/notifications/**"}));
  EXPECT_EQ(migration.shadow, ShadowSettings{});
  EXPECT_FALSE(migration.shadow_target.has_value()) << "settings alone give routes no default shadow";
  EXPECT_TRUE(migration.audit.enabled);
  EXPECT_EQ(migration.audit.sink, "file:/var/log/apigw/audit.ndjson");
  EXPECT_EQ(migration.audit.sample, 100u);
  EXPECT_EQ(migration.audit.ignore_fields, (std::vector<std::string>{"/meta/server_time", "/request_id"}));
  EXPECT_EQ(migration.audit.max_body_bytes, 64u * 1024);
  const RouteConfig& route = result.config->routes[0];
  EXPECT_EQ(route.split, (MigrationTarget{"users-cloud", "0.01", 1}));
  EXPECT_EQ(route.shadow, (MigrationTarget{"users-cloud", "10", 1000}));
}

TEST(MigrationConfig, OtherValues) {
  const LoadResult result = load_section(R"(migration:
  buckets: 1000000
  affinity: [cookie:sid, header:x-sid, header:X-Other, cookie:SID]
  beta_users: [7, alice@example.com]
  shadow_ignore: ["/**", "GET /a/*/b", "/"]
  shadow: { max_in_flight: 1000000, timeout: 250ms, header: X-Shadow-Copy, max_body_bytes: 512, upstream: new,
            percent: 100, pipeline: 1 }
  split: { upstream: new, percent: 0.0001 }
  audit:
    sink: http://audit.internal:8080/audit/v1
    sample: 0
    ignore_fields: ["/a~1b", "/c~0d/0"]
    max_body_bytes: 16MiB)");
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const MigrationConfig& migration = result.config->migration;
  EXPECT_EQ(migration.buckets, 1'000'000u);
  ASSERT_EQ(migration.affinity.size(), 4u) << "cookie names are case-sensitive";
  EXPECT_EQ(migration.affinity[1], (AffinitySource{Kind::kHeader, "x-sid"}));
  EXPECT_EQ(migration.beta_users, (std::vector<std::string>{"7", "alice@example.com"}));
  EXPECT_EQ(migration.shadow.max_in_flight, 1'000'000u);
  EXPECT_EQ(migration.shadow.timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(migration.shadow.header, "X-Shadow-Copy");
  EXPECT_EQ(migration.shadow.max_body_bytes, 512u);
  EXPECT_EQ(migration.shadow.pipeline, 1u);
  EXPECT_EQ(migration.shadow_target, (MigrationTarget{"new", "100", 1'000'000}));
  EXPECT_EQ(migration.split, (MigrationTarget{"new", "0.0001", 1}));
  EXPECT_EQ(migration.audit.sink, "http://audit.internal:8080/audit/v1");
  EXPECT_EQ(migration.audit.sample, 0u);
  EXPECT_EQ(migration.audit.max_body_bytes, 16u * 1024 * 1024);
  EXPECT_TRUE(load_section("migration:\n  audit: { sink: \"http://[::1]:9/a\", max_body_bytes: 1KiB }\n")
                  .errors.empty());
  EXPECT_TRUE(load_section("migration:\n  audit: { sink: \"http://10.0.0.7:80/\" }\n").errors.empty());
  EXPECT_FALSE(migration.audit.tls.has_value());
}

TEST(MigrationConfig, AnHttpsAuditSinkHasTlsSettingsWrittenOrDefault) {
  LoadResult result = load_section("migration:\n  audit: { sink: \"https://audit.internal:443/in\" }\n");
  ASSERT_TRUE(result.config.has_value());
  const AuditConfig& audit = result.config->migration.audit;
  ASSERT_TRUE(audit.tls.has_value());
  EXPECT_EQ(*audit.tls, TlsClientConfig{});  // the system's trust anchors, verified, TLS 1.2 or later
  result = load_section(
      "migration:\n  audit: { sink: \"https://10.0.0.7:8443/in\", tls: { sni: audit.internal, min_version: "
      "\"1.3\" } }\n");
  ASSERT_TRUE(result.config.has_value()) << all_errors(result);
  const AuditConfig& written = result.config->migration.audit;
  ASSERT_TRUE(written.tls.has_value());
  EXPECT_EQ(written.tls->sni, "audit.internal");
  EXPECT_EQ(written.tls->min_version, TlsVersion::k13);
}

struct Threshold {
  std::string_view percent;
  std::string_view buckets;
  std::uint32_t threshold;
};

class PercentThresholds : public ::testing::TestWithParam<Threshold> {};

TEST_P(PercentThresholds, AreExact) {
  const LoadResult result = load_split(GetParam().percent, GetParam().buckets);
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  EXPECT_EQ(result.config->migration.split->threshold, GetParam().threshold);
  EXPECT_EQ(result.config->migration.split->percent, GetParam().percent) << "kept as written";
}

INSTANTIATE_TEST_SUITE_P(
    Migration, PercentThresholds,
    ::testing::Values(Threshold{"0.01", "10000", 1}, Threshold{"25", "10000", 2500},
                      Threshold{"100", "10000", 10000}, Threshold{"0", "10000", 0}, Threshold{"0.0", "10000", 0},
                      Threshold{"0.10", "10000", 10}, Threshold{"100.000", "10000", 10000},
                      Threshold{"007", "10000", 700}, Threshold{"99.99", "10000", 9999},
                      Threshold{"0.005", "100000", 5}, Threshold{"0.0001", "1000000", 1},
                      Threshold{"12.5", "8", 1}, Threshold{"100", "3", 3}, Threshold{"0", "1", 0},
                      Threshold{"100", "1", 1},
                      // 100 / 2^19: the longest decimal a whole share can need with at most 1,000,000 buckets.
                      Threshold{"0.00019073486328125", "524288", 1},
                      Threshold{"99.99980926513671875", "524288", 524287}));

TEST(MigrationConfig, BucketsMayComeAfterThePercent) {
  const LoadResult result = load(R"(
migration:
  split: { upstream: new, percent: 0.005 }
  shadow: { upstream: new, percent: 0.001 }
  buckets: 100000
upstreams:
  old: { endpoints: [127.0.0.1:9001] }
  new: { endpoints: [127.0.0.1:9002] }
routes:
  - { name: r, match: { path: /r }, upstream: old, split: { upstream: new, percent: 0.125 } }
)");
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  EXPECT_EQ(result.config->migration.split->threshold, 5u);
  EXPECT_EQ(result.config->migration.shadow_target->threshold, 1u);
  EXPECT_EQ(result.config->routes[0].split->threshold, 125u);
}

TEST(MigrationConfig, PercentFinerThanTheBuckets) {
  EXPECT_TRUE(only_error_at(load_split("0.005"), 3, 36,
                            "migration.split.percent: 0.005 is finer than buckets 10000 allows (steps of 0.01)"));
  EXPECT_TRUE(only_error_at(load_split("0.3", "400"), 3, 36,
                            "migration.split.percent: 0.3 is not a multiple of 0.25, the step buckets 400 allows"));
  EXPECT_TRUE(only_error_at(load_split("0.1", "400"), 3, 36, "0.1 is finer than buckets 400 allows (steps of 0.25)"));
  EXPECT_TRUE(only_error_at(load_split("50", "3"), 3, 36,
                            "50 is not a multiple of 100/3 (about 33.333333), the step buckets 3 allows"));
  EXPECT_TRUE(only_error_at(load_split("0.000000000000000000000001"), 3, 36,
                            "0.000000000000000000000001 is finer than buckets 10000 allows (steps of 0.01)"));
  EXPECT_TRUE(only_error_at(load_split("0.0000000001", "524288"), 3, 36,
                            "finer than buckets 524288 allows (steps of 0.00019073486328125)"));
  EXPECT_TRUE(only_error_at(load_split("0.01", "3000"), 3, 36,
                            "0.01 is finer than buckets 3000 allows (steps of 100/3000, about 0.033333)"));
  EXPECT_TRUE(only_error_at(load_split("50.00000000000000000001"), 3, 36,
                            "50.00000000000000000001 is finer than buckets 10000 allows (steps of 0.01)"));
  EXPECT_TRUE(only_error_at(load_split("20", "8"), 3, 36, "20 is not a multiple of 12.5, the step buckets 8 allows"));
}

TEST(MigrationConfig, SnapshotRoutesCarryTheirEffectiveTargets) {
  const LoadResult result = load(R"(
migration:
  shadow_ignore: ["POST /payments/**", "/notifications/**"]
  shadow: { upstream: new, percent: 10 }
  split: { upstream: new, percent: 0.01 }
upstreams:
  new: { endpoints: [127.0.0.1:9002] }
  old: { endpoints: [127.0.0.1:9001] }
  third: { endpoints: [127.0.0.1:9003] }
routes:
  - { name: defaults, match: { path: /a }, upstream: old }
  - { name: own, match: { path: /b }, upstream: old, split: { upstream: third, percent: 25 } }
  - { name: off, match: { path: /c }, upstream: old, split: off, shadow: off }
  - { name: own-shadow, match: { path: /d }, upstream: old, shadow: { upstream: third, percent: 100 } }
)");
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  EXPECT_EQ(result.config->routes[2].split, (MigrationTarget{})) << "off: a target without upstream";
  const SnapshotResult built = build_snapshot(*result.config, 1);
  ASSERT_TRUE(built.errors.empty());
  const Snapshot& snapshot = *built.snapshot;
  ASSERT_EQ(snapshot.upstreams.size(), 3u);  // sorted by name: new, old, third
  ASSERT_EQ(snapshot.routes.size(), 4u);
  EXPECT_EQ(snapshot.routes[0].split, (SideTarget{0, 1}));
  EXPECT_EQ(snapshot.routes[0].shadow, (SideTarget{0, 1000}));
  EXPECT_EQ(snapshot.routes[1].split, (SideTarget{2, 2500}));
  EXPECT_EQ(snapshot.routes[1].shadow, (SideTarget{0, 1000}));
  EXPECT_FALSE(snapshot.routes[2].split.has_value());
  EXPECT_FALSE(snapshot.routes[2].shadow.has_value());
  EXPECT_EQ(snapshot.routes[3].split, (SideTarget{0, 1}));
  EXPECT_EQ(snapshot.routes[3].shadow, (SideTarget{2, 10000}));
  ASSERT_EQ(snapshot.shadow_ignore.size(), 2u);
  EXPECT_EQ(snapshot.shadow_ignore[0].text(), "POST /payments/**");
  EXPECT_EQ(snapshot.shadow_ignore[1].text(), "/notifications/**");
}

TEST(MigrationConfig, RoutesWithoutDefaultsHaveNoTargets) {
  const LoadResult result = load(R"(
migration: {}
upstreams:
  old: { endpoints: [127.0.0.1:9001] }
  new: { endpoints: [127.0.0.1:9002] }
routes:
  - { name: a, match: { path: /a }, upstream: old }
  - { name: b, match: { path: /b }, upstream: old, shadow: { upstream: new, percent: 0 } }
)");
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const SnapshotResult built = build_snapshot(*result.config, 1);
  ASSERT_TRUE(built.errors.empty());
  EXPECT_FALSE(built.snapshot->routes[0].split.has_value());
  EXPECT_FALSE(built.snapshot->routes[0].shadow.has_value());
  EXPECT_FALSE(built.snapshot->routes[1].split.has_value());
  EXPECT_EQ(built.snapshot->routes[1].shadow, (SideTarget{0, 0})) << "percent 0 is a target that takes no bucket";
}

TEST(MigrationConfig, ConfigViewShowsTheSectionAndEachRoutesTargets) {
  const LoadResult result = load(R"(
migration:
  affinity: [header:X-Device-Id, client_ip]
  beta_users: ["1001"]
  shadow: { timeout: 2s, upstream: new, percent: 10 }
  audit: { sink: "file:/tmp/audit.ndjson", ignore_fields: [/id] }
upstreams:
  old: { endpoints: [127.0.0.1:9001] }
  new: { endpoints: [127.0.0.1:9002] }
routes:
  - { name: a, match: { path: /a }, upstream: old, split: { upstream: new, percent: 0.5 } }
  - { name: b, match: { path: /b }, upstream: old, shadow: off }
)");
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const SnapshotResult built = build_snapshot(*result.config, 3);
  ASSERT_TRUE(built.errors.empty());
  const boost::json::value doc = boost::json::parse(admin::config_json(*built.snapshot));
  const boost::json::object& migration = doc.at("migration").as_object();
  EXPECT_EQ(migration.at("buckets"), 10000);
  EXPECT_EQ(migration.at("affinity"), (boost::json::array{"header:X-Device-Id", "client_ip"}));
  EXPECT_EQ(migration.at("beta_users"), (boost::json::array{"1001"}));
  EXPECT_EQ(migration.at("shadow"), (boost::json::object{{"max_in_flight", 1000},
                                                         {"timeout", "2s"},
                                                         {"header", "X-Apigw-Shadow"},
                                                         {"max_body_bytes", 1024 * 1024},
                                                         {"pipeline", 16},
                                                         {"upstream", "new"},
                                                         {"percent", "10"},
                                                         {"threshold", 1000}}));
  EXPECT_TRUE(migration.at("split").is_null());
  EXPECT_EQ(migration.at("audit"), (boost::json::object{{"sink", "file:/tmp/audit.ndjson"},
                                                        {"sample", 100},
                                                        {"ignore_fields", boost::json::array{"/id"}},
                                                        {"max_body_bytes", 65536}}));
  const boost::json::array& routes = doc.at("routes").as_array();
  EXPECT_EQ(routes[0].at("split"),
            (boost::json::object{{"upstream", "new"}, {"percent", "0.5"}, {"threshold", 50}, {"from", "route"}}));
  EXPECT_EQ(routes[0].at("shadow"), (boost::json::object{{"upstream", "new"},
                                                         {"percent", "10"},
                                                         {"threshold", 1000},
                                                         {"from", "migration"}}));
  EXPECT_TRUE(routes[1].at("split").is_null());
  EXPECT_TRUE(routes[1].at("shadow").is_null()) << "off";

  const LoadResult plain = load(kMigrationRoutes);
  ASSERT_TRUE(plain.errors.empty()) << all_errors(plain);
  const boost::json::value none = boost::json::parse(admin::config_json(*build_snapshot(*plain.config, 1).snapshot));
  EXPECT_TRUE(none.at("migration").is_null());
}

TEST(MigrationConfig, ADefaultCannotGoWhereARouteAlreadyGoes) {
  const LoadResult result = load(R"(
migration:
  split: { upstream: new, percent: 1 }
upstreams:
  old: { endpoints: [127.0.0.1:9001] }
  new: { endpoints: [127.0.0.1:9002] }
routes:
  - { name: on-old, match: { path: /a }, upstream: old }
  - { name: on-new, match: { path: /b }, upstream: new }
  - { name: on-new-off, match: { path: /c }, upstream: new, split: off }
)");
  EXPECT_TRUE(only_error_at(result, 8, 52,
                            "route 'on-new': upstream 'new' is also the migration.split default's; give the route "
                            "split: off or a split of its own"));
}

TEST(MigrationConfig, RouteTargetsNeedTheSection) {
  const LoadResult result = load(R"(
upstreams:
  old: { endpoints: [127.0.0.1:9001] }
  new: { endpoints: [127.0.0.1:9002] }
routes:
  - { name: a, match: { path: /a }, upstream: old, split: { upstream: new, percent: 1 } }
  - { name: b, match: { path: /b }, upstream: old, shadow: off }
)");
  ASSERT_EQ(result.errors.size(), 2u) << all_errors(result);
  EXPECT_TRUE(error_at(result, 5, 59, "route 'a': split needs a migration section (migration.buckets, ...) in the "
                                      "main file"));
  EXPECT_TRUE(error_at(result, 6, 60, "route 'b': shadow needs a migration section"));
}

TEST(MigrationConfig, TheSectionBelongsInTheMainFile) {
  const auto dir = std::filesystem::temp_directory_path() / "apigw_migration_config_test";
  std::filesystem::create_directories(dir);
  {
    std::ofstream include(dir / "extra.yaml");
    include << "migration: {}\nroutes:\n"
               "  - { name: b, match: { path: /b }, upstream: old, split: { upstream: nowhere, percent: 1 } }\n";
  }
  const LoadResult result = load_string(
      "include: [extra.yaml]\nmigration: {}\nupstreams:\n  old: { endpoints: [127.0.0.1:9001] }\n",
      (dir / "main.yaml").string());
  const std::string extra = (dir / "extra.yaml").string();
  EXPECT_TRUE(has_error(result, 1, "unknown key 'migration' at the top level", extra));
  EXPECT_TRUE(has_error(result, 3, "route 'b' split: upstream 'nowhere' is not defined (defined: old)", extra));
  std::filesystem::remove_all(dir);
}

struct BadSection {
  std::string_view section;
  int line;
  int column;
  std::string_view fragment;
};

class MigrationConfigErrors : public ::testing::TestWithParam<BadSection> {};

TEST_P(MigrationConfigErrors, ReportedWithLineAndColumn) {
  const LoadResult result = load_section(GetParam().section);
  EXPECT_TRUE(only_error_at(result, GetParam().line, GetParam().column, GetParam().fragment));
  EXPECT_FALSE(result.config.has_value());
}

INSTANTIATE_TEST_SUITE_P(
    Section, MigrationConfigErrors,
    ::testing::Values(
        BadSection{"migration: [a]\n", 1, 12, "migration: expected a map, got a list"},
        BadSection{"migration:\n  bucket: 100\n", 2, 3,
                   "unknown key 'bucket' in migration (allowed: buckets, affinity, beta_users, shadow_ignore, "
                   "shadow, split, audit)"},
        BadSection{"migration:\n  buckets: 0\n", 2, 12, "migration.buckets: must be from 1 to 1000000, got 0"},
        BadSection{"migration:\n  buckets: 1000001\n", 2, 12, "migration.buckets: must be from 1 to 1000000"},
        BadSection{"migration:\n  buckets: many\n", 2, 12, "migration.buckets: expected a whole number"},
        BadSection{"migration:\n  buckets: [1]\n", 2, 12, "migration.buckets: expected a single value, got a list"},
        BadSection{"migration:\n  affinity: [user_id, ip]\n", 2, 23,
                   "migration.affinity[1]: bad affinity source 'ip': expected user_id, header:NAME, cookie:NAME or "
                   "client_ip"},
        BadSection{"migration:\n  affinity: [\"header:\"]\n", 2, 14,
                   "bad affinity source 'header:': the name after ':' must be an HTTP token"},
        BadSection{"migration:\n  affinity: [\"cookie:a b\"]\n", 2, 14, "bad affinity source 'cookie:a b'"},
        BadSection{"migration:\n  affinity: [header:X-A, client_ip, header:x-a]\n", 2, 37,
                   "migration.affinity: 'header:x-a' is listed twice"},
        BadSection{"migration:\n  affinity: [user_id, user_id]\n", 2, 23,
                   "migration.affinity: 'user_id' is listed twice"},
        BadSection{"migration:\n  affinity: []\n", 2, 13, "migration.affinity: needs at least one source"},
        BadSection{"migration:\n  affinity:\n", 2, 3, "migration.affinity: needs at least one source"},
        BadSection{"migration:\n  affinity: user_id\n", 2, 13, "migration.affinity: expected a list, got 'user_id'"},
        BadSection{"migration:\n  beta_users: [\"\"]\n", 2, 16, "migration.beta_users[0]: a user id cannot be empty"},
        BadSection{"migration:\n  beta_users: [\"1\", 2, \"1\"]\n", 2, 24, "migration.beta_users: '1' is listed twice"},
        BadSection{"migration:\n  beta_users: 1001\n", 2, 15, "migration.beta_users: expected a list"},
        BadSection{"migration:\n  shadow_ignore: [\"/ok\", \"POST payments\"]\n", 2, 26,
                   "migration.shadow_ignore[1]: bad pattern 'POST payments': "},
        BadSection{"migration:\n  shadow_ignore: [\"/a//b\"]\n", 2, 19,
                   "migration.shadow_ignore[0]: bad pattern '/a//b': "},
        BadSection{"migration:\n  shadow_ignore: [\"/a\", \"/a\"]\n", 2, 25,
                   "migration.shadow_ignore: '/a' is listed twice"},
        BadSection{"migration:\n  shadow: { max_in_flight: 0 }\n", 2, 28,
                   "migration.shadow.max_in_flight: must be from 1 to 1000000, got 0"},
        BadSection{"migration:\n  shadow: { pipeline: 65 }\n", 2, 23,
                   "migration.shadow.pipeline: must be from 1 to 64, got 65"},
        BadSection{"migration:\n  shadow: { timeout: 0s }\n", 2, 22,
                   "migration.shadow.timeout: must be greater than zero"},
        BadSection{"migration:\n  shadow: { timeout: soon }\n", 2, 22, "migration.shadow.timeout: bad duration"},
        BadSection{"migration:\n  shadow: { header: \"X Shadow\" }\n", 2, 21,
                   "migration.shadow.header: 'X Shadow' is not a header name"},
        BadSection{"migration:\n  shadow: { header: Host }\n", 2, 21,
                   "migration.shadow.header: 'Host' is a header apigw manages itself"},
        BadSection{"migration:\n  shadow: { upstream: new }\n", 2, 11,
                   "migration.shadow: needs a percent ({ upstream: NAME, percent: P })"},
        BadSection{"migration:\n  shadow: { percent: 5, timeout: 1s }\n", 2, 11, "migration.shadow: needs an upstream"},
        BadSection{"migration:\n  shadow: { upstream: missing, percent: 5 }\n", 2, 23,
                   "migration.shadow: upstream 'missing' is not defined (defined: new, old)"},
        BadSection{"migration:\n  shadow: { copies: 2 }\n", 2, 13,
                   "unknown key 'copies' in migration.shadow (allowed: max_in_flight, timeout, header, "
                   "max_body_bytes, pipeline, upstream, percent)"},
        BadSection{"migration:\n  shadow: { max_body_bytes: 65MiB }\n", 2, 29,
                   "migration.shadow.max_body_bytes: must be from 1 to 64MiB, got 65MiB"},
        BadSection{"migration:\n  split: {}\n", 2, 10,
                   "migration.split: needs an upstream and a percent ({ upstream: NAME, percent: P })"},
        BadSection{"migration:\n  split:\n", 2, 3, "migration.split: needs an upstream and a percent"},
        BadSection{"migration:\n  split: off\n", 2, 10, "migration.split: expected a map, got 'off'"},
        BadSection{"migration:\n  split: { upstream: new, percent: 1, weight: 2 }\n", 2, 39,
                   "unknown key 'weight' in migration.split (allowed: upstream, percent)"},
        BadSection{"migration:\n  split: { upstream: new, percent: 101 }\n", 2, 36,
                   "migration.split.percent: must be from 0 to 100, got 101"},
        BadSection{"migration:\n  split: { upstream: new, percent: 100.01 }\n", 2, 36,
                   "migration.split.percent: must be from 0 to 100, got 100.01"},
        BadSection{"migration:\n  split: { upstream: new, percent: -1 }\n", 2, 36,
                   "migration.split.percent: must be from 0 to 100, got -1"},
        BadSection{"migration:\n  split: { upstream: new, percent: abc }\n", 2, 36,
                   "migration.split.percent: expected a decimal number from 0 to 100 (e.g. 0.01 or 25; no sign, no "
                   "exponent), got 'abc'"},
        BadSection{"migration:\n  split: { upstream: new, percent: 1e2 }\n", 2, 36,
                   "expected a decimal number from 0 to 100 (e.g. 0.01 or 25; no sign, no exponent), got '1e2'"},
        BadSection{"migration:\n  split: { upstream: new, percent: +5 }\n", 2, 36, "got '+5'"},
        BadSection{"migration:\n  split: { upstream: new, percent: .5 }\n", 2, 36, "got '.5'"},
        BadSection{"migration:\n  split: { upstream: new, percent: 5. }\n", 2, 36, "got '5.'"},
        BadSection{"migration:\n  split: { upstream: new, percent: 25% }\n", 2, 36,
                   "migration.split.percent: write the number without '%', got '25%'"},
        BadSection{"migration:\n  split: { upstream: new, percent: 0.005 }\n", 2, 36,
                   "migration.split.percent: 0.005 is finer than buckets 10000 allows (steps of 0.01)"},
        BadSection{"migration:\n  audit: {}\n", 2, 10,
                   "migration.audit: needs a sink (file:/absolute/path, http://host:port/path or "
                   "https://host:port/path)"},
        BadSection{"migration:\n  audit:\n", 2, 3, "migration.audit: needs a sink"},
        BadSection{"migration:\n  audit: { sink: /var/log/audit.ndjson }\n", 2, 18,
                   "migration.audit.sink: bad sink '/var/log/audit.ndjson': expected file:/absolute/path, "
                   "http://host:port/path or https://host:port/path"},
        BadSection{"migration:\n  audit: { sink: \"file:audit.ndjson\" }\n", 2, 18,
                   "bad sink 'file:audit.ndjson': a file sink needs an absolute file path"},
        BadSection{"migration:\n  audit: { sink: \"file:/var/log/\" }\n", 2, 18,
                   "a file sink needs an absolute file path"},
        BadSection{"migration:\n  audit: { sink: \"http://audit.internal/audit\" }\n", 2, 18,
                   "bad sink 'http://audit.internal/audit': expected host:port, got 'audit.internal' (an http sink "
                   "is http://host:port/path)"},
        BadSection{"migration:\n  audit: { sink: \"http://audit.internal:8080\" }\n", 2, 18,
                   "an http sink needs a path, e.g. http://audit.internal:8080/audit"},
        BadSection{"migration:\n  audit: { sink: \"http://audit.internal:0/a\" }\n", 2, 18,
                   "port must be a number from 1 to 65535"},
        BadSection{"migration:\n  audit: { sink: \"http://a:1/a b\" }\n", 2, 18,
                   "the path must hold no spaces or control characters"},
        BadSection{"migration:\n  audit: { sink: \"ftp://a:1/a\" }\n", 2, 18,
                   "expected file:/absolute/path, http://host:port/path or https://host:port/path"},
        BadSection{"migration:\n  audit: { sink: \"https://a:1\" }\n", 2, 18,
                   "an https sink needs a path, e.g. https://audit.internal:8080/audit"},
        BadSection{"migration:\n  audit: { sink: \"https://a/x\" }\n", 2, 18,
                   "(an https sink is https://host:port/path)"},
        BadSection{"migration:\n  audit: { sink: \"http://a:1/x\", tls: {} }\n", 2, 34,
                   "migration.audit.tls: applies to an https:// sink only (the sink is 'http://a:1/x')"},
        BadSection{"migration:\n  audit: { sink: \"https://a:1/x\", tls: { min_version: \"1.0\" } }\n", 2, 55,
                   "migration.audit.tls.min_version: '1.0' is not a TLS version"},
        BadSection{"migration:\n  audit: { sink: \"file:/a\", sample: 101 }\n", 2, 37,
                   "migration.audit.sample: must be from 0 to 100, got 101"},
        BadSection{"migration:\n  audit: { sink: \"file:/a\", ignore_fields: [meta] }\n", 2, 45,
                   "migration.audit.ignore_fields[0]: 'meta' is not a JSON pointer"},
        BadSection{"migration:\n  audit: { sink: \"file:/a\", ignore_fields: [\"/a~2\"] }\n", 2, 45,
                   "'/a~2' is not a JSON pointer"},
        BadSection{"migration:\n  audit: { sink: \"file:/a\", ignore_fields: [\"\"] }\n", 2, 45,
                   "'' is the whole body; name the fields to leave out"},
        BadSection{"migration:\n  audit: { sink: \"file:/a\", ignore_fields: [/a, /a] }\n", 2, 49,
                   "migration.audit.ignore_fields: '/a' is listed twice"},
        BadSection{"migration:\n  audit: { sink: \"file:/a\", max_body_bytes: 1023 }\n", 2, 45,
                   "migration.audit.max_body_bytes: must be from 1KiB to 16MiB, got 1023"},
        BadSection{"migration:\n  audit: { sink: \"file:/a\", max_body_bytes: 17MiB }\n", 2, 45,
                   "must be from 1KiB to 16MiB, got 17MiB"},
        BadSection{"migration:\n  audit: { sink: \"file:/a\", rate: 1 }\n", 2, 29,
                   "unknown key 'rate' in migration.audit (allowed: sink, sample, ignore_fields, max_body_bytes, tls)"}));

// Route errors: the section is present; the route under test is on line 7, its `split` value at column 59.
struct BadRoute {
  std::string_view key;  // "split: ..." or "shadow: ..."
  int column;
  std::string_view fragment;
};

class RouteTargetErrors : public ::testing::TestWithParam<BadRoute> {};

TEST_P(RouteTargetErrors, ReportedWithLineAndColumn) {
  const LoadResult result = load("migration: {}" + std::string(kMigrationRoutes) +
                                 "  - { name: r, match: { path: /r }, upstream: old, " + std::string(GetParam().key) +
                                 " }\n");
  EXPECT_TRUE(only_error_at(result, 7, GetParam().column, GetParam().fragment));
  EXPECT_FALSE(result.config.has_value());
}

INSTANTIATE_TEST_SUITE_P(
    Route, RouteTargetErrors,
    ::testing::Values(
        BadRoute{"split: { upstream: nowhere, percent: 1 }", 71,
                 "route 'r' split: upstream 'nowhere' is not defined (defined: new, old)"},
        BadRoute{"split: { upstream: old, percent: 1 }", 71,
                 "route 'r' split: upstream 'old' is the route's own; split sends to the other side"},
        BadRoute{"shadow: { upstream: old, percent: 1 }", 72, "route 'r' shadow: upstream 'old' is the route's own"},
        BadRoute{"split: { upstream: new }", 59, "route 'r' split: needs a percent ({ upstream: NAME, percent: P })"},
        BadRoute{"shadow: { percent: 1 }", 60, "route 'r' shadow: needs an upstream"},
        BadRoute{"split: {}", 59, "route 'r' split: needs an upstream and a percent"},
        BadRoute{"split: on", 59, "route 'r' split: expected { upstream: NAME, percent: P } or off, got 'on'"},
        BadRoute{"split: [new, 1]", 59, "route 'r' split: expected { upstream: NAME, percent: P } or off, got a list"},
        BadRoute{"split: { upstream: new, percent: 0.005 }", 85,
                 "route 'r' split.percent: 0.005 is finer than buckets 10000 allows (steps of 0.01)"},
        BadRoute{"shadow: { upstream: new, percent: 200 }", 86,
                 "route 'r' shadow.percent: must be from 0 to 100, got 200"},
        BadRoute{"shadow: { upstream: new, percent: 5, copies: 2 }", 89,
                 "unknown key 'copies' in route 'r' shadow (allowed: upstream, percent)"},
        BadRoute{"split: { upstream: new, percent: 1 }, split: off", 90,
                 "key 'split' is given twice in route 'r' (first at line 7)"}));

}  // namespace
}  // namespace apigw::config
