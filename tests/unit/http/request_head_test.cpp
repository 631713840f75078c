// Raw request-head checks: what Beast's parser would tolerate but the gateway refuses.
#include "apigw/http/request_head.h"

#include <gtest/gtest.h>

#include <string>

namespace apigw::http {
namespace {

HeadScan scan_all(std::string_view data) {
  RequestHeadScanner scanner;
  return scanner.scan(data);
}

TEST(RequestHeadScanner, CompleteHeadReportsItsLength) {
  const std::string head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  const HeadScan scan = scan_all(head + "body");
  ASSERT_EQ(scan.state, HeadScan::State::kComplete);
  EXPECT_EQ(scan.length, head.size());
}

TEST(RequestHeadScanner, IncompleteHeadNeedsMore) {
  EXPECT_EQ(scan_all("GET / HTTP/1.1\r\nHost: a\r\n").state, HeadScan::State::kNeedMore);
  EXPECT_EQ(scan_all("GET / HTTP/1.1\r").state, HeadScan::State::kNeedMore);
  EXPECT_EQ(scan_all("GET / HTTP/1.1\r\n\r").state, HeadScan::State::kNeedMore);
}

TEST(RequestHeadScanner, ResumesAcrossReads) {
  RequestHeadScanner scanner;
  std::string data = "GET / HTTP/1.1\r";
  EXPECT_EQ(scanner.scan(data).state, HeadScan::State::kNeedMore);
  data += "\nHost: a\r\n";
  EXPECT_EQ(scanner.scan(data).state, HeadScan::State::kNeedMore);
  EXPECT_FALSE(scanner.in_request_line());
  data += "\r\n";
  const HeadScan scan = scanner.scan(data);
  ASSERT_EQ(scan.state, HeadScan::State::kComplete);
  EXPECT_EQ(scan.length, data.size());
}

TEST(RequestHeadScanner, RejectsSmugglingVectors) {
  struct Case {
    std::string data;
    std::string_view reason_part;
  };
  const Case cases[] = {
      {std::string("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 27), "NUL"},
      {"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", "bare CR"},
      {"GET / HTTP/1.1\nHost: a\n\n", "bare LF"},
      {"GET / HTTP/1.1\r\nHost: a\n\r\n", "bare LF"},
      {"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", "obs-fold"},
      {"GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", "obs-fold"},
      {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", "obs-fold"},
      {"GET / HTTP/1.1\r\n\r\r\n", "bare CR"},
  };
  for (const Case& c : cases) {
    const HeadScan scan = scan_all(c.data);
    EXPECT_EQ(scan.state, HeadScan::State::kBad) << c.data;
    EXPECT_NE(scan.reason.find(c.reason_part), std::string_view::npos) << scan.reason;
  }
}

TEST(RequestHeadScanner, TracksTheRequestLine) {
  RequestHeadScanner scanner;
  EXPECT_EQ(scanner.scan("GET /very/long").state, HeadScan::State::kNeedMore);
  EXPECT_TRUE(scanner.in_request_line());
}

TEST(RequestHeadScanner, LeadingEmptyLinesAreCounted) {
  EXPECT_EQ(leading_empty_lines("\r\n\r\nGET"), 4u);
  EXPECT_EQ(leading_empty_lines("\r"), 0u);
  EXPECT_EQ(leading_empty_lines("GET"), 0u);
}

HeadVerdict judge(std::string_view data, HeadLimits limits = {64, 256}) {
  RequestHeadScanner scanner;
  return judge_head(scanner, data, limits);
}

TEST(JudgeHead, ACompleteHeadWithinTheLimitIsAHead) {
  const HeadVerdict verdict = judge("GET / HTTP/1.1\r\nHost: a\r\n\r\nbody");
  EXPECT_EQ(verdict.kind, HeadVerdict::Kind::kHead);
  EXPECT_EQ(verdict.length, 27u);
  EXPECT_EQ(judge("GET / HTTP/1.1\r\nHost: a\r\n").kind, HeadVerdict::Kind::kNeedMore);
}

TEST(JudgeHead, AMalformedHeadIs400) {
  const HeadVerdict verdict = judge("GET / HTTP/1.1\nHost: a\r\n\r\n");
  EXPECT_EQ(verdict.kind, HeadVerdict::Kind::kRefuse);
  EXPECT_EQ(verdict.status, 400u);
}

TEST(JudgeHead, ALongRequestLineIs414WhileItIsStillArriving) {
  const HeadVerdict verdict = judge("GET /" + std::string(100, 'a'));
  EXPECT_EQ(verdict.kind, HeadVerdict::Kind::kRefuse);
  EXPECT_EQ(verdict.status, 414u);
  // Under the URI limit plus the method and version's room, it may still come whole.
  EXPECT_EQ(judge("GET /" + std::string(80, 'a')).kind, HeadVerdict::Kind::kNeedMore);
}

TEST(JudgeHead, ALongHeadIs431WhetherArrivingOrWhole) {
  const std::string fields = "GET / HTTP/1.1\r\nX-A: " + std::string(300, 'a') + "\r\n";
  EXPECT_EQ(judge(fields).status, 431u);
  EXPECT_EQ(judge(fields + "\r\n").status, 431u);
  // A head over the limit whose request line is itself over max_uri_bytes is 414.
  EXPECT_EQ(judge("GET /" + std::string(70, 'a') + " HTTP/1.1\r\n" + std::string(300, 'b'), {64, 256}).status, 414u);
}

}  // namespace
}  // namespace apigw::http
