// A record sink's writer thread and its destinations (see record_sink.h): a file appended to with one write() per
// batch, and an HTTP collector sent one POST per batch over a kept-alive connection. Only the writer thread does
// I/O, and never under the lock that write() takes.
#include "apigw/sink/record_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <exception>
#include <string_view>
#include <tuple>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "apigw/config/audit_sink_target.h"
#include "apigw/net/no_throw.h"
#include "apigw/upstream/http_client.h"

namespace apigw::sink {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

// Where batches go. Made by reopen() on the main thread; used and destroyed by the writer thread only.
class Destination {
 public:
  // Why a batch was not delivered; the writer warns about each kind at most once per kWarningInterval.
  enum class Failure { kNone, kTarget, kOpen, kWrite, kConnect, kTls, kTimeout, kClosed, kExchange, kAnswer };
  static constexpr std::size_t kFailureKinds = 10;

  struct Delivery {
    Failure failure = Failure::kNone;
    std::string reason;  // one line, for the log
  };

  explicit Destination(std::string target) : target_(std::move(target)) {}
  virtual ~Destination() = default;
  Destination(const Destination&) = delete;
  Destination& operator=(const Destination&) = delete;

  const std::string& target() const { return target_; }
  // Delivers `payload`, whole records each ending in '\n'. An HTTP exchange gives up at `deadline`.
  virtual Delivery deliver(std::string payload, Clock::time_point deadline) = 0;

 private:
  std::string target_;
};

namespace {

using Failure = Destination::Failure;
using Delivery = Destination::Delivery;

using net::kNoThrow;
constexpr auto kOpenRetryInterval = std::chrono::seconds(1);
constexpr auto kWarningInterval = std::chrono::seconds(10);
constexpr mode_t kFileMode = 0640;

// The one io_context of the writer thread, for every HTTP destination it ever uses.
asio::io_context& writer_io() {
  thread_local asio::io_context io;
  return io;
}

// A target that is none (reopen() said why): every batch fails.
class UnusableDestination final : public Destination {
 public:
  UnusableDestination(std::string target, std::string why)
      : Destination(std::move(target)), why_(std::move(why)) {}
  Delivery deliver(std::string, Clock::time_point) override { return {Failure::kTarget, why_}; }

 private:
  std::string why_;
};

// "file:/path". Opened by the constructor; while it cannot be, opened again at most once per kOpenRetryInterval.
class FileDestination final : public Destination {
 public:
  FileDestination(std::string target, std::string path)
      : Destination(std::move(target)), path_(std::move(path)) {
    open();
  }
  ~FileDestination() override {
    if (fd_ >= 0) ::close(fd_);
  }
  const std::string& open_error() const { return open_error_; }

  Delivery deliver(std::string payload, Clock::time_point) override {
    if (fd_ < 0 && (Clock::now() < next_open_ || !open())) return {Failure::kOpen, open_error_};
    ssize_t n = 0;
    do {
      n = ::write(fd_, payload.data(), payload.size());
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(payload.size())) return {};
    if (n < 0) return {Failure::kWrite, fmt::format("cannot write to {}: {}", path_, std::strerror(errno))};
    // The batch counts as failed and is not written again; a record cut short gets its line ended, so that the
    // next batch's records start on lines of their own.
    if (n > 0 && payload[static_cast<std::size_t>(n) - 1] != '\n') {
      [[maybe_unused]] const ssize_t ended = ::write(fd_, "\n", 1);
    }
    return {Failure::kWrite, fmt::format("short write to {}: {} of {} bytes", path_, n, payload.size())};
  }

 private:
  bool open() {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, kFileMode);
    if (fd_ >= 0) return true;
    open_error_ = fmt::format("cannot open {}: {}", path_, std::strerror(errno));
    next_open_ = Clock::now() + kOpenRetryInterval;
    return false;
  }

  std::string path_;
  int fd_ = -1;
  std::string open_error_;  // of the last failed open
  Clock::time_point next_open_{};
};

// "http://host:port/path" or "https://host:port/path": one POST per batch on a connection kept alive across
// batches (over TLS for https, resuming the collector's session when it is opened again). The writer thread's
// io_context runs for the length of one delivery.
class HttpDestination final : public Destination {
 public:
  HttpDestination(const Format& format, std::string target, config::Endpoint endpoint, std::string_view authority,
                  std::string_view path, std::shared_ptr<net::TlsClientContext> tls)
      : Destination(std::move(target)), format_(format), endpoint_(std::move(endpoint)), authority_(authority),
        path_(path) {
    if (tls) {
      upstream::TlsTarget& target_tls = tls_.emplace();
      target_tls.server_name = net::tls_server_name(tls->config().sni, endpoint_.host);
      // An IP literal has no name to verify: its address is, as for an upstream.
      if (target_tls.server_name.empty()) target_tls.address = endpoint_.host;
      target_tls.context = std::move(tls);
    }
  }

  Delivery deliver(std::string payload, Clock::time_point deadline) override;

 private:
  // A POST's head and the batch, sent as they are.
  using Request = std::array<asio::const_buffer, 2>;
  asio::awaitable<Delivery> exchange(Request request, Clock::time_point deadline);
  asio::awaitable<Delivery> post(Request request, Clock::time_point deadline);
  asio::awaitable<Delivery> connect(Clock::time_point deadline);
  // Drops the connection; a timeout is kTimeout whatever the step, other errors are `otherwise`.
  Delivery failure(const error_code& error, bool timed_out, std::string_view doing, Failure otherwise);
  void disconnect() { connection_.reset(); }

  const Format& format_;  // the sink's, which outlives its destinations
  config::Endpoint endpoint_;
  std::string authority_;  // host:port as the target writes it, for the Host header
  std::string path_;
  // The writer thread's io_context (writer_io), taken on that thread only.
  asio::io_context& io() { return writer_io(); }
  std::optional<upstream::TlsTarget> tls_;  // https
  std::optional<upstream::UpstreamConnection> connection_;  // connected, or being connected
  std::chrono::milliseconds budget_{0};  // the time the batch in hand was given
};

Delivery HttpDestination::deliver(std::string payload, Clock::time_point deadline) {
  const Clock::time_point now = Clock::now();
  if (now >= deadline) return {Failure::kTimeout, "no time left to send before the sink stops"};
  budget_ = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
  const std::string head = fmt::format(
      "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
      path_, authority_, format_.user_agent, format_.content_type, payload.size());
  Delivery result{Failure::kExchange, "unexpected error"};
  io().restart();
  const Request request{asio::buffer(head), asio::buffer(payload)};
  asio::co_spawn(io(), exchange(request, deadline), [&result](std::exception_ptr error, Delivery delivery) {
    if (!error) result = std::move(delivery);
  });
  io().run();
  if (result.failure != Failure::kNone) disconnect();
  return result;
}

asio::awaitable<Delivery> HttpDestination::exchange(Request request, Clock::time_point deadline) {
  const bool reused = connection_.has_value();
  Delivery delivery = co_await post(request, deadline);
  // A collector may close a kept-alive connection while it is idle; that costs the batch one more try.
  if (reused && delivery.failure == Failure::kClosed) delivery = co_await post(request, deadline);
  co_return delivery;
}

asio::awaitable<Delivery> HttpDestination::post(Request request, Clock::time_point deadline) {
  if (!connection_) {
    Delivery connected = co_await connect(deadline);
    if (connected.failure != Failure::kNone) co_return connected;
  }
  upstream::UpstreamConnection& connection = *connection_;
  upstream::ExchangeDeadline limit(io().get_executor(), deadline);  // one budget for connect, request and answer
  limit.watch(connection);
  auto [write_error, sent] = co_await upstream::send_request(connection, request);
  if (write_error) {
    limit.unwatch();
    co_return failure(write_error, limit.expired(), "sending the batch", Failure::kClosed);
  }
  upstream::ResponseReader reader;
  bool got_bytes = false;
  error_code read_error = co_await reader.read_head(connection, false, got_bytes);
  // The answer's body is read through and dropped.
  if (!read_error) read_error = co_await reader.read_rest(connection, {});
  limit.unwatch();
  if (read_error) {
    co_return failure(read_error, limit.expired(), "reading the answer",
                      got_bytes ? Failure::kExchange : Failure::kClosed);
  }
  const unsigned status = reader.status();
  if (!reader.reusable(connection)) disconnect();
  if (status >= 200 && status < 300) co_return Delivery{};
  disconnect();
  co_return Delivery{Failure::kAnswer, fmt::format("answered {}", status)};
}

asio::awaitable<Delivery> HttpDestination::connect(Clock::time_point deadline) {
  const std::string doing = fmt::format("connecting to {}", authority_);
  std::vector<asio::ip::tcp::endpoint> candidates;
  error_code error;
  const asio::ip::address address = asio::ip::make_address(endpoint_.host, error);
  if (!error) {
    candidates.emplace_back(address, endpoint_.port);
  } else {
    // A name is resolved at each connect, so that the collector may move.
    asio::ip::tcp::resolver resolver(io());
    auto [resolve_error, endpoints] =
        co_await resolver.async_resolve(endpoint_.host, std::to_string(endpoint_.port), kNoThrow);
    if (resolve_error) co_return failure(resolve_error, false, doing, Failure::kConnect);
    for (const auto& entry : endpoints) candidates.push_back(entry.endpoint());
  }
  std::string tls_failure;
  for (const asio::ip::tcp::endpoint& candidate : candidates) {
    connection_.emplace(io().get_executor(), 0);
    tls_failure.clear();
    error = co_await upstream::connect(*connection_, candidate, deadline, tls_ ? &*tls_ : nullptr, &tls_failure);
    if (!error) co_return Delivery{};
  }
  if (!tls_failure.empty()) {
    disconnect();
    co_return Delivery{Failure::kTls, fmt::format("TLS handshake with {} failed: {}", authority_, tls_failure)};
  }
  co_return failure(error, error == asio::error::timed_out, doing, Failure::kConnect);
}

Delivery HttpDestination::failure(const error_code& error, bool timed_out, std::string_view doing,
                                  Failure otherwise) {
  disconnect();
  return {timed_out ? Failure::kTimeout : otherwise,
          timed_out ? fmt::format("{}: timed out ({} ms for the whole exchange)", doing, budget_.count())
                    : fmt::format("{}: {}", doing, error.message())};
}

// The destination of a target that is not "", or one that fails every batch with `why` when the target is
// malformed. `why` is also set when a file cannot be opened now.
DestinationPtr make_destination(const Format& format, const std::string& target,
                                std::shared_ptr<net::TlsClientContext> tls, std::string& why) {
  std::optional<config::AuditSinkTarget> parsed = config::parse_audit_sink_target(target, why);
  if (parsed && parsed->tls && !tls) why = "an https target needs its TLS settings";
  if (!parsed || (parsed->tls && !tls)) {
    why = fmt::format("bad {} '{}': {}", format.name, target, why);
    return std::make_unique<UnusableDestination>(target, why);
  }
  if (parsed->kind == config::AuditSinkTarget::Kind::kHttp) {
    if (!parsed->tls) tls.reset();
    return std::make_unique<HttpDestination>(format, target, std::move(parsed->endpoint), parsed->authority,
                                             parsed->path, std::move(tls));
  }
  auto file = std::make_unique<FileDestination>(target, std::move(parsed->file));
  why = file->open_error();
  return file;
}

// The writer's log: a warning per kind of failure at most once per kWarningInterval, and a line when the
// destination that failed delivers again.
class DeliveryLog {
 public:
  explicit DeliveryLog(std::string_view name) : name_(name) {}

  void failed(const std::string& target, const Delivery& delivery, std::uint64_t failed_so_far) {
    failing_ = target;
    auto& last = last_warning_[static_cast<std::size_t>(delivery.failure)];
    const auto now = Clock::now();
    if (last && now - *last < kWarningInterval) return;
    last = now;
    spdlog::warn("{} {}: {}; {} records failed so far", name_, target, delivery.reason, failed_so_far);
  }

  void delivered(const std::string& target) {
    if (failing_.empty()) return;
    if (failing_ == target) spdlog::info("{} {}: delivering again", name_, target);
    failing_.clear();
  }

 private:
  std::array<std::optional<Clock::time_point>, Destination::kFailureKinds> last_warning_{};
  std::string failing_;  // the target of the last failure, until a delivery succeeds
  std::string_view name_;
};

std::string joined_lines(const std::vector<std::string>& records) {
  std::size_t size = 0;
  for (const std::string& record : records) size += record.size() + 1;
  std::string lines;
  lines.reserve(size);
  for (const std::string& record : records) {
    lines += record;
    lines += '\n';
  }
  return lines;
}

Format with_defaults(Format format) {
  if (!format.encode) format.encode = joined_lines;
  format.batch = std::clamp<std::size_t>(format.batch, 1, std::max<std::size_t>(1, format.max_pending));
  return format;
}

}  // namespace

RecordSink::RecordSink(Format format)
    : format_(with_defaults(std::move(format))),
      max_pending_(format_.max_pending),
      timeout_(format_.timeout),
      writer_([this] { write_loop(); }) {}

RecordSink::~RecordSink() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    stop_deadline_ = Clock::now() + timeout_;
  }
  wake_.notify_one();
  writer_.join();
}

std::string RecordSink::reopen(const std::string& target, std::shared_ptr<net::TlsClientContext> tls) {
  std::string why;
  DestinationPtr destination = target.empty() ? nullptr : make_destination(format_, target, std::move(tls), why);
  {
    std::lock_guard lock(mutex_);
    next_ = std::move(destination);
    enabled_.store(!target.empty(), std::memory_order_relaxed);
  }
  wake_.notify_one();
  return why;
}

void RecordSink::set_limits(std::size_t max_pending, std::chrono::milliseconds timeout) {
  std::lock_guard lock(mutex_);
  max_pending_ = std::max<std::size_t>(1, max_pending);
  timeout_ = timeout;
}

void RecordSink::write(std::string line) {
  if (!enabled_.load(std::memory_order_relaxed)) return;
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    if (pending_.size() >= max_pending_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    pending_.push_back(std::move(line));
    ++accepted_;
    first = pending_.size() == 1;
  }
  // The writer sleeps only while nothing is pending.
  if (first) wake_.notify_one();
}

void RecordSink::flush() {
  std::unique_lock lock(mutex_);
  const std::uint64_t handed_over = accepted_;
  finished_.wait(lock, [&] { return done_ >= handed_over; });
}

std::vector<std::string> RecordSink::take_batch() {
  const auto end = pending_.begin() + static_cast<std::ptrdiff_t>(std::min(pending_.size(), format_.batch));
  std::vector<std::string> batch(std::make_move_iterator(pending_.begin()), std::make_move_iterator(end));
  pending_.erase(pending_.begin(), end);
  return batch;
}

void RecordSink::write_loop() {
  DestinationPtr destination;
  DeliveryLog log(format_.name);
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || next_ || !pending_.empty(); });
    // A short batch waits a while for more (one request per batch, not per record), unless the sink stops.
    if (format_.linger.count() > 0 && !next_ && !stopping_ && pending_.size() < format_.batch) {
      wake_.wait_for(lock, format_.linger, [this] { return stopping_ || next_ || pending_.size() >= format_.batch; });
    }
    if (next_) {
      DestinationPtr retired = std::exchange(destination, std::move(*next_));
      next_.reset();
      lock.unlock();
      retired.reset();  // closes its file or connection, after the batch it was given
      lock.lock();
      continue;
    }
    if (pending_.empty()) return;  // stopping, and everything is delivered or failed
    const std::vector<std::string> batch = take_batch();
    const Clock::time_point deadline =
        stopping_ ? std::min(Clock::now() + timeout_, stop_deadline_) : Clock::now() + timeout_;
    lock.unlock();
    // Records left over from before the sink was turned off go nowhere and count nowhere.
    if (destination) {
      const Delivery delivery = destination->deliver(format_.encode(batch), deadline);
      if (delivery.failure == Failure::kNone) {
        written_.fetch_add(batch.size(), std::memory_order_relaxed);
        log.delivered(destination->target());
      } else {
        const std::uint64_t failed = failed_.fetch_add(batch.size(), std::memory_order_relaxed) + batch.size();
        log.failed(destination->target(), delivery, failed);
      }
    }
    lock.lock();
    done_ += batch.size();
    finished_.notify_all();
  }
}

}  // namespace apigw::sink
