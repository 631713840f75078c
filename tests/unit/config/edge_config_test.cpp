// Tests for the `edge` config section and route `site`: values, defaults, and each error with its line and column.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <string_view>

#include "apigw/admin/admin_server.h"
#include "apigw/config/loader.h"
#include "apigw/config/snapshot.h"
#include "config_test_support.h"

namespace apigw::config {
namespace {

// Appended to an edge section: one upstream and two routes, the second served by `cloud` where one exists.
constexpr std::string_view kEdgeRoutes = R"(
upstreams:
  users: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: plain, match: { path: /plain }, upstream: users }
)";

LoadResult load_edge(std::string_view section) { return load(std::string(section) + std::string(kEdgeRoutes)); }

TEST(EdgeConfig, NoSectionMeansNoEdge) {
  const LoadResult result = load(kEdgeRoutes);
  ASSERT_TRUE(result.config) << all_errors(result);
  EXPECT_FALSE(result.config->edge.enabled);
  EXPECT_TRUE(result.config->edge.sites.empty());
}

TEST(EdgeConfig, SitesInFileOrderWithTheirOrigins) {
  const LoadResult result = load(R"(
edge:
  sites:
    onprem: https://api-onprem.example.com
    cloud: http://10.0.0.7:8080/
    v6: https://[2001:db8::1]:8443
  default: onprem
  header: X-Edge-Site
upstreams:
  users: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: a, match: { path: /a }, upstream: users, site: cloud }
  - { name: b, match: { path: /b }, upstream: users }
)");
  ASSERT_TRUE(result.config) << all_errors(result);
  const EdgeConfig& edge = result.config->edge;
  EXPECT_TRUE(edge.enabled);
  ASSERT_EQ(edge.sites.size(), 3u);
  EXPECT_EQ(edge.sites[0].name, "onprem");
  EXPECT_EQ(edge.sites[0].origin, "https://api-onprem.example.com");
  EXPECT_TRUE(edge.sites[0].tls);
  EXPECT_EQ(edge.sites[0].host, "api-onprem.example.com");
  EXPECT_EQ(edge.sites[0].port, 443);
  EXPECT_EQ(edge.sites[0].position.line, 3);
  EXPECT_EQ(edge.sites[1].name, "cloud");
  EXPECT_EQ(edge.sites[1].origin, "http://10.0.0.7:8080");  // the trailing '/' dropped
  EXPECT_FALSE(edge.sites[1].tls);
  EXPECT_EQ(edge.sites[1].port, 8080);
  EXPECT_EQ(edge.sites[2].host, "2001:db8::1");
  EXPECT_EQ(edge.sites[2].port, 8443);
  EXPECT_EQ(edge.default_site, "onprem");
  EXPECT_EQ(edge.header, "X-Edge-Site");
  ASSERT_NE(edge.find("cloud"), nullptr);
  EXPECT_EQ(edge.find("nowhere"), nullptr);
  EXPECT_EQ(result.config->routes[0].site, "cloud");
  EXPECT_EQ(result.config->routes[1].site, "");
}

TEST(EdgeConfig, OneSiteIsTheDefaultAndPlainHttpTakesPort80) {
  const LoadResult result = load_edge("edge: { sites: { only: http://origin.example.com } }\n");
  ASSERT_TRUE(result.config) << all_errors(result);
  EXPECT_EQ(result.config->edge.default_site, "only");
  EXPECT_EQ(result.config->edge.sites[0].port, 80);
  EXPECT_EQ(result.config->edge.header, "X-Apigw-Site");
}

TEST(EdgeConfig, SeveralSitesNeedADefault) {
  const LoadResult result = load_edge(R"(
edge:
  sites:
    onprem: https://a.example.com
    cloud: https://b.example.com
)");
  EXPECT_TRUE(only_error(result, 3, "edge: needs a default")) << all_errors(result);
  EXPECT_TRUE(has_error(result, 3, "one of onprem, cloud"));
}

TEST(EdgeConfig, DefaultMustNameASite) {
  const LoadResult result = load_edge(R"(
edge:
  sites: { onprem: https://a.example.com }
  default: cloud
)");
  EXPECT_TRUE(only_error(result, 3, "edge.default: site 'cloud' is not in edge.sites (onprem)"));
}

TEST(EdgeConfig, SitesAreRequired) {
  EXPECT_TRUE(only_error(load_edge("edge: { default: onprem }\n"), 1, "edge: needs sites"));
  EXPECT_TRUE(only_error(load_edge("edge:\n"), 1, "edge: needs sites"));
  EXPECT_TRUE(only_error(load_edge("edge: { sites: {} }\n"), 1, "edge: needs sites"));
}

TEST(EdgeConfig, UnknownKeysAreRefused) {
  const LoadResult result = load_edge(R"(
edge:
  sites: { onprem: https://a.example.com }
  origin: https://b.example.com
)");
  EXPECT_TRUE(only_error(result, 3, "origin")) << all_errors(result);
}

TEST(EdgeConfig, OriginsMustBeOriginsAlone) {
  EXPECT_TRUE(only_error(load_edge("edge: { sites: { a: api.example.com } }\n"), 1,
                         "expected an origin such as https://"));
  EXPECT_TRUE(only_error(load_edge("edge: { sites: { a: ftp://api.example.com } }\n"), 1,
                         "expected an origin such as https://"));
  EXPECT_TRUE(only_error(load_edge("edge: { sites: { a: https://api.example.com/v1 } }\n"), 1,
                         "must be an origin alone"));
  EXPECT_TRUE(only_error(load_edge("edge: { sites: { a: \"https://api.example.com?x=1\" } }\n"), 1,
                         "must be an origin alone"));
  EXPECT_TRUE(only_error(load_edge("edge: { sites: { a: https://user@api.example.com } }\n"), 1,
                         "must be an origin alone"));
  EXPECT_TRUE(only_error(load_edge("edge: { sites: { a: https://api.example.com:99999 } }\n"), 1,
                         "bad origin"));
}

TEST(EdgeConfig, SiteNamesAreCheckedWhereTheyAreWritten) {
  const LoadResult result = load_edge(R"(
edge:
  sites:
    on prem: https://a.example.com
    9cloud: https://b.example.com
  default: a
)");
  EXPECT_TRUE(has_error(result, 3, "bad site name 'on prem'")) << all_errors(result);
  EXPECT_TRUE(has_error(result, 4, "bad site name '9cloud'"));
  const std::string long_name(33, 'x');
  EXPECT_TRUE(has_error(load_edge("edge: { sites: { " + long_name + ": https://a.example.com } }\n"), 1,
                        "at most 32 characters"));
}

TEST(EdgeConfig, HeaderMustBeAHeaderName) {
  EXPECT_TRUE(only_error(load_edge("edge: { sites: { a: https://a.example.com }, header: \"X Site\" }\n"), 1,
                         "X Site"));
}

TEST(EdgeConfig, RouteSiteMustBeASite) {
  const LoadResult result = load(R"(
edge: { sites: { onprem: https://a.example.com } }
upstreams:
  users: { endpoints: [127.0.0.1:9001] }
routes:
  - name: moved
    match: { path: /moved }
    upstream: users
    site: cloud
)");
  EXPECT_TRUE(only_error(result, 8, "route 'moved' site: 'cloud' is not in edge.sites (onprem)"))
      << all_errors(result);
}

TEST(EdgeConfig, RouteSiteNeedsAnEdgeSection) {
  const LoadResult result = load(R"(
upstreams:
  users: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: moved, match: { path: /moved }, upstream: users, site: cloud }
)");
  EXPECT_TRUE(only_error(result, 4, "site: there is no edge section")) << all_errors(result);
}

TEST(EdgeConfig, RouteSiteNameIsChecked) {
  const LoadResult result = load(R"(
edge: { sites: { onprem: https://a.example.com } }
upstreams:
  users: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: moved, match: { path: /moved }, upstream: users, site: "bad site" }
)");
  EXPECT_TRUE(has_error(result, 5, "bad site name 'bad site'")) << all_errors(result);
}

TEST(EdgeConfig, ConfigViewShowsSitesAndEachRoutesSite) {
  const LoadResult result = load(R"(
edge: { sites: { onprem: https://a.example.com, cloud: http://b.example.com:8080 }, default: onprem }
upstreams:
  users: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: moved, match: { path: /moved }, upstream: users, site: cloud }
  - { name: stays, match: { path: /stays }, upstream: users }
)");
  ASSERT_TRUE(result.config) << all_errors(result);
  const boost::json::value doc =
      boost::json::parse(admin::config_json(*build_snapshot(*result.config, 1).snapshot));
  const auto& edge = doc.at("edge");
  EXPECT_EQ(edge.at("sites").at("cloud").as_string(), "http://b.example.com:8080");
  EXPECT_EQ(edge.at("default").as_string(), "onprem");
  EXPECT_EQ(edge.at("header").as_string(), "X-Apigw-Site");
  EXPECT_EQ(doc.at("routes").at(0).at("site").as_string(), "cloud");
  EXPECT_EQ(doc.at("routes").at(1).at("site").as_string(), "onprem");
  const LoadResult plain = load(kEdgeRoutes);
  ASSERT_TRUE(plain.config);
  const boost::json::value none = boost::json::parse(admin::config_json(*build_snapshot(*plain.config, 1).snapshot));
  EXPECT_TRUE(none.at("edge").is_null());
  EXPECT_FALSE(none.at("routes").at(0).as_object().contains("site"));
}

}  // namespace
}  // namespace apigw::config
