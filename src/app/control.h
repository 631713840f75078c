// The main thread's loop: signals, reloads, the admin listener, health probes, the config file watch and the
// service manager's notifications around the gateway's workers.
#pragma once

#include <sys/stat.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "apigw/admin/admin_server.h"
#include "apigw/cache/invalidation_events.h"
#include "apigw/config/snapshot.h"
#include "apigw/core/access_log.h"
#include "apigw/core/metrics.h"
#include "apigw/migration/audit_sink.h"
#include "apigw/net/tls.h"
#include "apigw/server/gateway.h"
#include "apigw/tracing/span_exporter.h"
#include "apigw/upstream/health.h"
#include "apigw/upstream/health_checker.h"
#include "fleet_control.h"

namespace apigw::app {

struct Loaded {
  config::SnapshotPtr snapshot;     // null when the config has errors
  std::vector<std::string> errors;  // "file:line:column: reason"
  std::vector<std::string> warnings;  // the same, for what was accepted but weakens the gateway
  // The TLS contexts of the snapshot, built (and so checked by OpenSSL) at load; held until the workers' pools
  // hold them.
  std::vector<std::shared_ptr<net::TlsClientContext>> tls_contexts;
  std::vector<std::shared_ptr<net::TlsServerContext>> listener_contexts;
  std::vector<std::string> files;   // every file read, for the watch (as far as reading got)
};
// Where the migration audit's records go: migration.audit.sink ("" without an audit) and, for an https sink, its
// TLS settings.
struct AuditTarget {
  std::string sink;
  std::optional<config::TlsClientConfig> tls;
  bool operator==(const AuditTarget&) const = default;
};

// Loads, validates and builds a snapshot; blocking (DNS): main thread only.
Loaded load_snapshot(const std::string& path, std::uint64_t generation);

class Control {
 public:
  // Binds the listeners and the admin address; throws std::runtime_error when one cannot be bound. With a
  // `control` section, the first snapshot served is `baseline` (the YAML's) with the fleet's state laid over it.
  Control(std::string config_path, config::SnapshotPtr baseline, core::AccessLog& access_log);
  ~Control();

  // Serves until SIGTERM or SIGINT has drained the workers.
  void run();

 private:
  enum class State { kStarting, kReady, kDraining };
  struct FileStamp {
    std::string path;
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    timespec modified{};
    bool exists = false;
    bool operator==(const FileStamp& other) const;
  };

  void wait_for_signal();
  void wait_for_rotation();
  void reload(std::string_view reason);
  void try_reload(std::string_view reason);
  void reload_failed(const std::string& why);
  void commit(const config::SnapshotPtr& snapshot, const config::SnapshotPtr& baseline);
  // Fleet control has a state due: switch to it now, or after the switch in progress.
  void request_switch();
  void commit_switch(const config::SnapshotPtr& snapshot, std::int64_t switched_at_ms);
  void after_switch();
  void apply_process_settings(const config::Snapshot& snapshot);
  void begin_shutdown(std::string_view signal);
  void wait_for_workers();
  void schedule_watch();
  void schedule_watchdog(std::chrono::microseconds interval);
  std::vector<FileStamp> stamp_files(const std::vector<std::string>& files) const;
  std::string render_metrics();
  std::string_view state_text() const;
  // The admin loop's client of the running config's cache pools (for the cache API), rebuilt when they change.
  std::shared_ptr<cache::ResponseCache> admin_cache();
  void count_split_figures(std::string_view route, fleet::SideFigures& route_side, fleet::SideFigures& split_side,
                           fleet::AuditFigures& audit) const;

  boost::asio::io_context loop_{1};
  FleetControl fleet_;            // before the snapshot, which it decides
  std::string config_path_;
  config::SnapshotPtr baseline_;  // the YAML's (fleet control's overrides are laid over it)
  config::SnapshotPtr snapshot_;  // what every worker serves with (after the last reload's switch-over)
  core::AccessLog& access_log_;
  std::string access_target_;  // what the access log writes to now (changes on reload, before the switch)
  migration::AuditSink audit_sink_;  // before the gateway, whose workers write to it
  AuditTarget audit_target_;         // where audit records go now (no sink without an audit)
  tracing::SpanExporter spans_;      // before the gateway, whose workers export to it
  upstream::HealthTable health_;
  server::Gateway gateway_;
  upstream::HealthChecker checker_;
  admin::AdminServer admin_;
  core::MetricsRegistry metrics_;  // written on this thread only
  core::Counter& reload_successes_;
  core::Counter& reload_failures_;
  core::Gauge& generation_gauge_;
  core::Gauge& last_reload_ok_;
  cache::CacheStats cache_stats_{metrics_};
  std::shared_ptr<cache::ResponseCache> admin_cache_;
  config::SnapshotPtr admin_cache_source_;  // the snapshot admin_cache_ was built from
  cache::InvalidationEvents cache_events_{loop_.get_executor(), metrics_, [this] { return admin_cache(); }};
  boost::asio::signal_set signals_{loop_, SIGINT, SIGTERM, SIGHUP};
  boost::asio::signal_set rotate_signal_{loop_, SIGUSR1};
  boost::asio::steady_timer watch_timer_{loop_};
  boost::asio::steady_timer watchdog_timer_{loop_};
  boost::asio::steady_timer exit_timer_{loop_};
  std::vector<FileStamp> stamps_;  // of the files the last load attempt read
  State state_ = State::kStarting;
  bool reloading_ = false;       // workers are switching to a new snapshot
  bool reload_again_ = false;    // a reload was asked for meanwhile
  bool switch_again_ = false;    // fleet control asked for a switch meanwhile
  std::uint64_t next_generation_ = 2;
};

}  // namespace apigw::app
