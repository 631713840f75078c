// The migration shadow's part of a request (see ClientSession::plan_shadow): a copy of the request the primary
// side received whole, sent to the shadow side once the primary exchange is over, its answer read and set aside,
// and, for an audited request, the record comparing the two answers. Nothing here delays, changes or fails the
// primary exchange.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "apigw/core/digest.h"
#include "apigw/migration/audit_record.h"
#include "apigw/proxy/forwarder.h"
#include "apigw/server/request_stats.h"
#include "apigw/server/worker.h"

namespace apigw::server {

// One side's answer as the audit keeps it: status, size and hash, and the body while it fits max_body_bytes.
class AnswerCapture {
 public:
  explicit AnswerCapture(std::uint64_t max_body) : max_body_(max_body) {}

  void start() { start_ = std::chrono::steady_clock::now(); }
  void head(unsigned status) { side_.status = status; }
  void body(std::string_view bytes);
  void complete();
  void fail(std::string error);
  bool finished() const { return finished_; }
  migration::AuditSide& side() { return side_; }

 private:
  std::uint64_t max_body_;
  std::chrono::steady_clock::time_point start_{};
  core::Sha256 hash_;
  migration::AuditSide side_;
  bool finished_ = false;
};

class ShadowCopy final : public proxy::RequestObserver, public std::enable_shared_from_this<ShadowCopy> {
 public:
  struct Params {
    Worker& worker;
    GenerationPtr generation;
    std::uint32_t route_index = 0;
    std::size_t shadow_upstream = 0;  // snapshot upstream index
    bool framed = false;              // the request had a Content-Length or a chunked body
    bool idempotent = false;          // a stale keep-alive connection may be retried
    bool head_method = false;         // a HEAD request: the answer has no body
    bool audited = false;
    migration::AuditRecord record;    // what identifies the request (the sides are filled as they answer)
  };
  explicit ShadowCopy(Params params);
  ~ShadowCopy();
  ShadowCopy(const ShadowCopy&) = delete;
  ShadowCopy& operator=(const ShadowCopy&) = delete;

  void on_request_body(std::string_view bytes) override;
  void on_request_sent(std::string_view head) override;

  // The primary answer's observer (null unless audited).
  proxy::ResponseObserver* primary_observer() { return audit_ ? &primary_observer_ : nullptr; }
  // The primary exchange is over (after Forwarder::run), however it ended: a copy made ready leaves now.
  void primary_finished(const proxy::ForwardResult& result);

 private:
  class PrimaryObserver final : public proxy::ResponseObserver {
   public:
    explicit PrimaryObserver(ShadowCopy& copy) : copy_(copy) {}
    void on_head(unsigned status, std::span<const proxy::ResponseParser::Field> fields) override;
    void on_body(std::string_view bytes) override;
    void on_complete() override;

   private:
    ShadowCopy& copy_;
  };
  struct Audit {
    explicit Audit(std::uint64_t max_body) : primary(max_body), shadow(max_body) {}
    AnswerCapture primary;
    AnswerCapture shadow;
  };

  static boost::asio::awaitable<void> send(std::shared_ptr<ShadowCopy> self);
  boost::asio::awaitable<std::optional<ShadowFailure>> exchange(upstream::UpstreamPool& pool);
  boost::asio::awaitable<boost::system::error_code> round_trip(upstream::UpstreamConnection& connection,
                                                               bool& answered, bool& reusable);
  RouteStats& stats() const { return *generation_->route_stats[route_index_]; }
  void write_audit();  // both answers are in

  Worker& worker_;
  GenerationPtr generation_;
  std::uint32_t route_index_;
  std::size_t shadow_upstream_;
  bool framed_;
  bool idempotent_;
  bool head_method_;
  std::uint64_t max_body_;
  bool overflow_ = false;   // the body outgrew migration.shadow.max_body_bytes: no copy
  bool launched_ = false;   // the copy is on its way: the worker counts it in flight
  bool timed_out_ = false;
  std::string body_;
  std::string head_;
  boost::asio::ip::tcp::socket* socket_ = nullptr;  // the shadow connection, while the exchange uses it
  std::optional<Audit> audit_;
  migration::AuditRecord record_;
  PrimaryObserver primary_observer_{*this};
};

}  // namespace apigw::server
