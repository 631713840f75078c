// The audit sink against real destinations: files in a fresh directory, and a recording HTTP/1.1 collector on a
// loopback port that answers as told (2xx, 500, never, or closing its connection after each answer).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "apigw/migration/audit_sink.h"

namespace apigw::migration {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using asio::ip::tcp;

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// A directory of the test's own, removed with what it holds.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "audit-sink-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string path(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> lines;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> file_lines(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return lines_of(text.str());
}

std::vector<std::string> numbered_records(std::size_t count) {
  std::vector<std::string> records;
  for (std::size_t i = 0; i < count; ++i) records.push_back("{\"n\":" + std::to_string(i) + "}");
  return records;
}

void write_all(AuditSink& sink, const std::vector<std::string>& records) {
  for (const std::string& record : records) sink.write(record);
}

// Writes `count` records one batch at a time: each is flushed, then `pause` passes, before the next.
void write_batches(AuditSink& sink, int count, std::chrono::milliseconds pause = 0ms) {
  for (int i = 0; i < count; ++i) {
    sink.write("{\"batch\":" + std::to_string(i) + "}");
    sink.flush();
    std::this_thread::sleep_for(pause);
  }
}

// Once the file at `path` can be created: a record written now and then arrives within a second or so, since an
// unopenable file is tried again once a second.
void expect_recovery(AuditSink& sink, const std::string& path) {
  const std::uint64_t written = sink.written();
  const auto fixed = Clock::now();
  while (sink.written() == written && Clock::now() - fixed < 3s) {
    sink.write("{\"kept\":true}");
    sink.flush();
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_LT(Clock::now() - fixed, 1500ms);
  EXPECT_EQ(sink.written(), written + 1);
  EXPECT_EQ(file_lines(path), std::vector<std::string>{"{\"kept\":true}"});
}

// What the collector received of one request.
struct ReceivedRequest {
  std::string method;
  std::string target;
  std::string host;
  std::string content_type;
  std::string body;
  std::size_t connection = 0;  // 1 for the first connection accepted, ...
};

// A tiny HTTP/1.1 collector on 127.0.0.1, on a thread of its own, recording what it is sent.
class Collector {
 public:
  // kStatusThenClose closes the connection after the answer without saying so; kStatusSayingClose answers with
  // "Connection: close" and leaves it open.
  enum class Answer { kStatus, kNever, kStatusThenClose, kStatusSayingClose };

  explicit Collector(unsigned status = 200, Answer answer = Answer::kStatus)
      : status_(status), answer_(answer), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Collector() {
    io_.stop();
    thread_.join();
  }

  std::string target(const std::string& path = "/audit") const { return "http://" + authority() + path; }
  std::string authority() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<ReceivedRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::size_t connections() const {
    std::lock_guard lock(mutex_);
    return connections_;
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [error, socket] = co_await acceptor_.async_accept(kNoThrow);
      if (error) co_return;
      std::size_t connection = 0;
      {
        std::lock_guard lock(mutex_);
        connection = ++connections_;
      }
      asio::co_spawn(io_, serve(std::move(socket), connection), asio::detached);
    }
  }

  asio::awaitable<void> serve(tcp::socket socket, std::size_t connection) {
    boost::beast::flat_buffer buffer;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(64 * 1024 * 1024);
      auto [read_error, read] = co_await bhttp::async_read(socket, buffer, parser, kNoThrow);
      if (read_error) co_return;
      const auto& request = parser.get();
      {
        std::lock_guard lock(mutex_);
        requests_.push_back({std::string(request.method_string()), std::string(request.target()),
                             std::string(request[bhttp::field::host]),
                             std::string(request[bhttp::field::content_type]), request.body(), connection});
      }
      if (answer_ == Answer::kNever) {
        asio::steady_timer never(io_, 1h);
        co_await never.async_wait(kNoThrow);
        co_return;
      }
      bhttp::response<bhttp::string_body> response(static_cast<bhttp::status>(status_), 11);
      response.body() = "ok";
      response.keep_alive(answer_ != Answer::kStatusSayingClose);
      response.prepare_payload();
      auto [write_error, written] = co_await bhttp::async_write(socket, response, kNoThrow);
      if (write_error || answer_ == Answer::kStatusThenClose) co_return;
    }
  }

  const unsigned status_;
  const Answer answer_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  mutable std::mutex mutex_;
  std::vector<ReceivedRequest> requests_;
  std::size_t connections_ = 0;
  std::thread thread_;
};

// A loopback port that nothing listens on (it was free a moment ago).
std::uint16_t closed_port() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

TEST(AuditSink, OffWantsNothingAndCountsNothing) {
  TempDir dir;
  AuditSink sink;
  write_all(sink, numbered_records(10));
  sink.flush();
  EXPECT_EQ(sink.reopen("file:" + dir.path("audit.ndjson")), "");
  EXPECT_EQ(sink.reopen(""), "");
  write_all(sink, numbered_records(10));
  sink.flush();
  EXPECT_EQ(sink.written(), 0u);
  EXPECT_EQ(sink.dropped(), 0u);
  EXPECT_EQ(sink.failed(), 0u);
  EXPECT_TRUE(file_lines(dir.path("audit.ndjson")).empty());
}

TEST(AuditSink, AppendsRecordsInOrderToAFileItCreates) {
  TempDir dir;
  const std::string path = dir.path("audit.ndjson");
  { std::ofstream(path) << "{\"before\":true}\n"; }
  AuditSink sink;
  ASSERT_EQ(sink.reopen("file:" + path), "");
  const std::vector<std::string> records = numbered_records(2500);  // more than one batch
  write_all(sink, records);
  sink.flush();
  EXPECT_EQ(sink.written(), records.size());
  EXPECT_EQ(sink.failed(), 0u);
  std::vector<std::string> expected{"{\"before\":true}"};
  expected.insert(expected.end(), records.begin(), records.end());
  EXPECT_EQ(file_lines(path), expected);

  const std::string created = dir.path("new.ndjson");
  ASSERT_EQ(sink.reopen("file:" + created), "");
  sink.write("{}");
  sink.flush();
  struct stat info {};
  ASSERT_EQ(::stat(created.c_str(), &info), 0);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(info.st_mode & 0777, 0640 & ~mask);
}

TEST(AuditSink, ReopenAfterRotationWritesANewFile) {
  TempDir dir;
  const std::string path = dir.path("audit.ndjson");
  AuditSink sink;
  ASSERT_EQ(sink.reopen("file:" + path), "");
  write_all(sink, {"{\"a\":1}", "{\"a\":2}"});
  sink.flush();
  std::filesystem::rename(path, path + ".1");
  ASSERT_EQ(sink.reopen("file:" + path), "");
  sink.write("{\"a\":3}");
  sink.flush();
  EXPECT_EQ(file_lines(path + ".1"), (std::vector<std::string>{"{\"a\":1}", "{\"a\":2}"}));
  EXPECT_EQ(file_lines(path), std::vector<std::string>{"{\"a\":3}"});
  EXPECT_EQ(sink.written(), 3u);
}

TEST(AuditSink, MissingDirectoryFailsUntilItIsCreated) {
  TempDir dir;
  const std::string path = dir.path("logs") + "/audit.ndjson";
  AuditSink sink;
  EXPECT_EQ(sink.reopen("file:" + path), "cannot open " + path + ": No such file or directory");
  write_all(sink, {"{\"lost\":1}", "{\"lost\":2}"});
  sink.flush();
  EXPECT_EQ(sink.failed(), 2u);
  EXPECT_EQ(sink.written(), 0u);

  std::filesystem::create_directory(dir.path("logs"));
  expect_recovery(sink, path);
}

TEST(AuditSink, ReadOnlyDirectoryFailsUntilItIsWritable) {
  if (::geteuid() == 0) GTEST_SKIP() << "root may write into a read-only directory";
  TempDir dir;
  std::filesystem::create_directory(dir.path("locked"));
  ASSERT_EQ(::chmod(dir.path("locked").c_str(), 0500), 0);
  const std::string path = dir.path("locked") + "/audit.ndjson";
  AuditSink sink;
  EXPECT_EQ(sink.reopen("file:" + path), "cannot open " + path + ": Permission denied");
  sink.write("{}");
  sink.flush();
  EXPECT_EQ(sink.failed(), 1u);
  ASSERT_EQ(::chmod(dir.path("locked").c_str(), 0700), 0);
  expect_recovery(sink, path);
}

TEST(AuditSink, TakesTheConfigGrammarAndFailsTheRest) {
  AuditSink sink;
  EXPECT_EQ(sink.reopen("http://[::1]:9/audit"), "");
  EXPECT_EQ(sink.reopen("http://audit.internal:8080/v1/audit"), "");
  for (const char* bad : {"file:relative/audit.ndjson", "file:/var/log/", "http://127.0.0.1/audit",
                          "http://127.0.0.1:8080", "http://[::1/audit", "https://127.0.0.1:443/audit", "audit"}) {
    const std::string why = sink.reopen(bad);
    EXPECT_TRUE(why.starts_with("bad audit sink '" + std::string(bad) + "': ")) << why;
  }
  write_all(sink, {"{}", "{}"});
  sink.flush();
  EXPECT_EQ(sink.failed(), 2u);
}

TEST(AuditSink, PostsBatchesOfNdjsonToTheCollector) {
  Collector collector;
  AuditSink sink;
  ASSERT_EQ(sink.reopen(collector.target("/v1/audit")), "");
  const std::vector<std::string> records = numbered_records(2500);
  write_all(sink, records);
  sink.flush();
  EXPECT_EQ(sink.written(), records.size());
  const std::vector<ReceivedRequest> requests = collector.requests();
  ASSERT_GE(requests.size(), 3u);
  std::string bodies;
  for (const ReceivedRequest& request : requests) {
    EXPECT_EQ(request.method, "POST");
    EXPECT_EQ(request.target, "/v1/audit");
    EXPECT_EQ(request.host, collector.authority());
    EXPECT_EQ(request.content_type, "application/x-ndjson");
    EXPECT_TRUE(request.body.ends_with('\n'));
    EXPECT_LE(lines_of(request.body).size(), AuditSink::kBatchRecords);
    bodies += request.body;
  }
  EXPECT_EQ(lines_of(bodies), records);
  EXPECT_EQ(collector.connections(), 1u);
}

// One collector behaviour, and what three batches sent one at a time come to.
struct ConnectionCase {
  const char* what;
  unsigned status;
  Collector::Answer answer;
  std::chrono::milliseconds pause;  // between batches
  std::uint64_t written;
  std::uint64_t failed;
  std::size_t connections;
};

TEST(AuditSink, KeepsTheConnectionAliveUntilTheCollectorEndsItOrFails) {
  using Answer = Collector::Answer;
  const ConnectionCase cases[] = {
      {"kept alive across batches", 200, Answer::kStatus, 0ms, 3, 0, 1},
      {"closed while idle: sent again, once, on a new connection", 202, Answer::kStatusThenClose, 20ms, 3, 0, 3},
      {"Connection: close is honoured", 200, Answer::kStatusSayingClose, 0ms, 3, 0, 3},
      {"an error answer fails its batch and drops the connection", 500, Answer::kStatus, 0ms, 0, 3, 3},
  };
  for (const ConnectionCase& c : cases) {
    SCOPED_TRACE(c.what);
    Collector collector(c.status, c.answer);
    AuditSink sink;
    ASSERT_EQ(sink.reopen(collector.target()), "");
    write_batches(sink, 3, c.pause);
    EXPECT_EQ(sink.written(), c.written);
    EXPECT_EQ(sink.failed(), c.failed);
    EXPECT_EQ(collector.requests().size(), 3u);
    EXPECT_EQ(collector.connections(), c.connections);
  }
}

TEST(AuditSink, RefusedConnectionFails) {
  AuditSink sink;
  ASSERT_EQ(sink.reopen("http://127.0.0.1:" + std::to_string(closed_port()) + "/audit"), "");
  const auto start = Clock::now();
  sink.write("{}");
  sink.flush();
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_EQ(sink.failed(), 1u);
  EXPECT_EQ(sink.written(), 0u);
}

TEST(AuditSink, SilentCollectorTimesOutThenTheNextOneWorks) {
  Collector silent(200, Collector::Answer::kNever);
  Collector working;
  AuditSink sink;
  ASSERT_EQ(sink.reopen(silent.target()), "");
  const auto start = Clock::now();
  sink.write("{\"a\":1}");
  sink.flush();
  const auto waited = Clock::now() - start;
  EXPECT_GE(waited, AuditSink::kHttpTimeout - 100ms);
  EXPECT_LT(waited, AuditSink::kHttpTimeout + 1s);
  EXPECT_EQ(sink.failed(), 1u);
  EXPECT_EQ(silent.requests().size(), 1u);

  ASSERT_EQ(sink.reopen(working.target()), "");
  sink.write("{\"a\":2}");
  sink.flush();
  EXPECT_EQ(sink.written(), 1u);
  ASSERT_EQ(working.requests().size(), 1u);
  EXPECT_EQ(working.requests()[0].body, "{\"a\":2}\n");
}

TEST(AuditSink, DropsWhenTheDestinationIsStuckAndStopsWithinTheTimeout) {
  Collector silent(200, Collector::Answer::kNever);
  std::optional<AuditSink> sink(std::in_place);
  ASSERT_EQ(sink->reopen(silent.target()), "");
  const std::size_t count = AuditSink::kMaxPendingRecords + AuditSink::kBatchRecords + 500;
  const auto start = Clock::now();
  for (std::size_t i = 0; i < count; ++i) sink->write("{\"n\":" + std::to_string(i) + "}");
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_GT(sink->dropped(), 0u);
  EXPECT_GE(sink->dropped(), count - AuditSink::kMaxPendingRecords - AuditSink::kBatchRecords);
  const auto stopping = Clock::now();
  sink.reset();
  EXPECT_LT(Clock::now() - stopping, AuditSink::kHttpTimeout + 1s);
}

}  // namespace
}  // namespace apigw::migration
