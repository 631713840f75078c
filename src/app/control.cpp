// The main thread's loop (see control.h).
#include "control.h"

#include <functional>

#include <boost/asio/post.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "service_notify.h"

namespace apigw::app {
namespace asio = boost::asio;

namespace {
// How often a drain checks whether every worker is done.
constexpr auto kExitPoll = std::chrono::milliseconds(20);

// Where the migration audit's records go under `config`: no sink when there is no audit.
AuditTarget audit_target(const config::Config& config) {
  if (!config.migration.enabled || !config.migration.audit.enabled) return {};
  return {config.migration.audit.sink, config.migration.audit.tls};
}

// Points the audit sink at `target`. A destination that does not work yet is no reason to refuse a config: its
// records are counted as failed until it does.
void open_audit_sink(migration::AuditSink& sink, const AuditTarget& target) {
  auto tls = target.tls ? net::TlsClientContext::require(*target.tls) : nullptr;
  if (const std::string why = sink.reopen(target.sink, std::move(tls)); !why.empty()) {
    spdlog::warn("migration.audit.sink: {}; audit records are counted as failed until it works", why);
  }
}

// Points the span exporter at the collector `config` names, or turns it off. As with the audit sink, a collector
// that does not work yet is no reason to refuse a config: its spans are counted as failed until it does.
void configure_span_exporter(tracing::SpanExporter& spans, const config::Config& config) {
  const config::TracingConfig& tracing = config.tracing;
  auto tls = tracing.enabled && tracing.tls ? net::TlsClientContext::require(*tracing.tls) : nullptr;
  if (const std::string why = spans.configure(tracing, std::move(tls)); !why.empty()) {
    spdlog::warn("tracing.otlp: {}; spans are counted as failed until it works", why);
  }
}

// Every client `tls` block of a snapshot, with what it is for ("upstream users", "auth.redis", "cache.primary",
// "cache.secondary": the metric's `use` label and the start of an error) and where to report it.
void for_each_tls_block(const config::Snapshot& snapshot,
                        const std::function<void(const config::TlsClientConfig&, const std::string& use,
                                                 const config::Position& at)>& visit) {
  for (const config::Upstream& upstream : snapshot.upstreams) {
    if (upstream.config.tls) visit(*upstream.config.tls, "upstream " + upstream.config.name, upstream.config.position);
  }
  const config::Config& config = snapshot.config;
  const config::Position file{config.source_file, 0, 0};
  if (config.auth.enabled && config.auth.redis.tls) visit(*config.auth.redis.tls, "auth.redis", file);
  if (config.control.enabled && config.control.redis.tls) visit(*config.control.redis.tls, "control.redis", file);
  if (config.cache.enabled && config.cache.primary.tls) visit(*config.cache.primary.tls, "cache.primary", file);
  if (config.cache.enabled && config.cache.events.enabled && config.cache.events.redis.tls) {
    visit(*config.cache.events.redis.tls, "cache.events.redis", file);
  }
  if (config.cache.enabled && config.cache.secondary && config.cache.secondary->tls) {
    visit(*config.cache.secondary->tls, "cache.secondary", file);
  }
  const config::AuditConfig& audit = config.migration.audit;
  if (config.migration.enabled && audit.enabled && audit.tls) visit(*audit.tls, "migration.audit", file);
  if (config.rate_limits.enabled && config.rate_limits.redis.tls) {
    visit(*config.rate_limits.redis.tls, "rate_limits.redis", file);
  }
  if (config.tracing.enabled && config.tracing.tls) visit(*config.tracing.tls, "tracing", file);
}

// The listeners' `tls` blocks: "server" and "admin".
void for_each_listener_tls(const config::Snapshot& snapshot,
                           const std::function<void(const config::TlsServerConfig&, const std::string& use)>& visit) {
  const config::Config& config = snapshot.config;
  if (config.server.tls) visit(*config.server.tls, "server");
  if (config.admin.enabled && config.admin.tls) visit(*config.admin.tls, "admin");
}

// The admin listener's TLS context (built at load), or null for plain HTTP.
std::shared_ptr<net::TlsServerContext> admin_tls(const config::Config& config) {
  return config.admin.tls ? net::TlsServerContext::require(*config.admin.tls) : nullptr;
}

std::string summary(const config::Snapshot& snapshot) {
  return fmt::format("config generation {}: {} route{}, {} upstream{}", snapshot.generation, snapshot.routes.size(),
                     snapshot.routes.size() == 1 ? "" : "s", snapshot.upstreams.size(),
                     snapshot.upstreams.size() == 1 ? "" : "s");
}
}  // namespace

Loaded load_snapshot(const std::string& path, std::uint64_t generation) {
  Loaded loaded;
  config::LoadResult result = config::load_file(path);
  if (result.config) loaded.files = result.config->files;
  std::vector<config::ConfigError> errors = std::move(result.errors);
  if (result.config) {
    config::SnapshotResult built = config::build_snapshot(*result.config, generation);
    loaded.snapshot = std::move(built.snapshot);
    for (auto& error : built.errors) errors.push_back(std::move(error));
  }
  if (loaded.snapshot) {
    // OpenSSL builds every TLS context now, so that what it refuses rejects the config, like any error.
    for_each_tls_block(*loaded.snapshot, [&](const config::TlsClientConfig& tls, const std::string& use,
                                             const config::Position& at) {
      std::string why;
      auto context = net::TlsClientContext::get(tls, why);
      if (!context) errors.push_back({at, use + " tls: " + why});
      loaded.tls_contexts.push_back(std::move(context));
    });
    const config::Position file{loaded.snapshot->config.source_file, 0, 0};
    for_each_listener_tls(*loaded.snapshot, [&](const config::TlsServerConfig& tls, const std::string& use) {
      std::string why;
      auto context = net::TlsServerContext::get(tls, why);
      if (!context) errors.push_back({file, use + ".tls: " + why});
      loaded.listener_contexts.push_back(std::move(context));
    });
    if (!errors.empty()) loaded.snapshot.reset();
  }
  for (const auto& error : errors) loaded.errors.push_back(error.text());
  for (const auto& warning : result.warnings) loaded.warnings.push_back(warning.text());
  if (loaded.files.empty()) loaded.files.push_back(path);
  return loaded;
}

bool Control::FileStamp::operator==(const FileStamp& other) const {
  return path == other.path && exists == other.exists && device == other.device && inode == other.inode &&
         size == other.size && modified.tv_sec == other.modified.tv_sec &&
         modified.tv_nsec == other.modified.tv_nsec;
}

Control::Control(std::string config_path, config::SnapshotPtr baseline, core::AccessLog& access_log)
    : fleet_(loop_, [this] { request_switch(); },
             [this](std::string_view route, fleet::SideFigures& route_side, fleet::SideFigures& split_side,
                    fleet::AuditFigures& audit) { count_split_figures(route, route_side, split_side, audit); }),
      config_path_(std::move(config_path)),
      baseline_(std::move(baseline)),
      snapshot_(fleet_.start(baseline_)),
      access_log_(access_log),
      access_target_(snapshot_->config.log.access),
      audit_target_(audit_target(snapshot_->config)),
      gateway_(snapshot_, access_log_, health_, audit_sink_, spans_, inherited_sockets()),
      checker_(loop_.get_executor(), health_),
      admin_(loop_.get_executor(),
             admin::AdminSources{[this] { return state_text(); }, [this] { return snapshot_; },
                                 [this] { return render_metrics(); }, &health_, [this] { return admin_cache(); },
                                 [this] { return fleet_.view(); }}),
      reload_successes_(metrics_.counter("apigw_config_reloads_total", "Configuration reloads by result",
                                         {{"result", "success"}})),
      reload_failures_(metrics_.counter("apigw_config_reloads_total", "Configuration reloads by result",
                                        {{"result", "failure"}})),
      generation_gauge_(metrics_.gauge("apigw_config_generation", "Generation of the configuration being served")),
      last_reload_ok_(metrics_.gauge("apigw_config_last_reload_successful",
                                     "1 when the last reload was applied, 0 when it was rejected")) {
  admin_.use_tls(admin_tls(snapshot_->config));
  if (snapshot_->config.admin.enabled) admin_.listen(snapshot_->config.admin.listen);
  open_audit_sink(audit_sink_, audit_target_);
  configure_span_exporter(spans_, snapshot_->config);
  stamps_ = stamp_files(snapshot_->config.files);
  generation_gauge_.set(static_cast<std::int64_t>(snapshot_->generation));
  last_reload_ok_.set(1);
}

Control::~Control() = default;

void Control::run() {
  checker_.update(snapshot_);
  gateway_.start();
  fleet_.run();
  cache_events_.update(snapshot_);
  state_ = State::kReady;
  wait_for_signal();
  wait_for_rotation();
  if (snapshot_->config.reload.watch) schedule_watch();
  if (const auto interval = watchdog_interval()) schedule_watchdog(*interval);
  const config::ServerConfig& server = snapshot_->config.server;
  spdlog::info("apigw {} listening on {} with {} worker{}, {}{}", APIGW_VERSION, server.listen.text(),
               gateway_.worker_count(), gateway_.worker_count() == 1 ? "" : "s", summary(*snapshot_),
               snapshot_->config.admin.enabled ? fmt::format(", admin on {}", admin_.address().text()) : "");
  notify_ready(fmt::format("serving {}", summary(*snapshot_)));
  loop_.run();
  gateway_.join();
}

void Control::wait_for_signal() {
  signals_.async_wait([this](const boost::system::error_code& error, int signal) {
    if (error) return;
    if (signal == SIGHUP) {
      reload("SIGHUP");
    } else if (state_ != State::kDraining) {
      begin_shutdown(signal == SIGINT ? "SIGINT" : "SIGTERM");
    }
    wait_for_signal();
  });
}

// SIGUSR1: the access log file was rotated away; open it again under its configured path.
void Control::wait_for_rotation() {
  rotate_signal_.async_wait([this](const boost::system::error_code& error, int) {
    if (error) return;
    try {
      access_log_.reopen(access_target_);
      spdlog::info("access log reopened (SIGUSR1)");
    } catch (const std::exception& failure) {
      spdlog::error("SIGUSR1: {}; the access log goes on to the file it had", failure.what());
    }
    if (audit_target_.sink.starts_with("file:")) open_audit_sink(audit_sink_, audit_target_);
    wait_for_rotation();
  });
}

std::string_view Control::state_text() const {
  switch (state_) {
    case State::kStarting: return "starting";
    case State::kReady: return "ready";
    case State::kDraining: return "draining";
  }
  return "starting";
}

void Control::reload(std::string_view reason) {
  try {
    try_reload(reason);
  } catch (const std::exception& error) {
    // Whatever went wrong, the running configuration stays; the main loop must not end on it.
    reloading_ = false;
    reload_failed(fmt::format("unexpected error: {}", error.what()));
  }
}

void Control::try_reload(std::string_view reason) {
  if (state_ == State::kDraining) return;
  if (reloading_) {
    reload_again_ = true;  // after the switch in progress
    return;
  }
  spdlog::info("reloading {} ({})", config_path_, reason);
  notify_reloading(fmt::format("reloading {}", config_path_));
  Loaded loaded = load_snapshot(config_path_, next_generation_);
  stamps_ = stamp_files(loaded.files);
  for (const std::string& warning : loaded.warnings) spdlog::warn("{}", warning);
  if (!loaded.snapshot) {
    for (const std::string& error : loaded.errors) spdlog::error("{}", error);
    reload_failed(fmt::format("{} error{} in the new configuration", loaded.errors.size(),
                              loaded.errors.size() == 1 ? "" : "s"));
    return;
  }
  const config::SnapshotPtr baseline = std::move(loaded.snapshot);
  // The fleet's overrides in force stay, over the new YAML.
  const config::SnapshotPtr next = fleet_.on_reload(baseline);
  const config::Config& now = snapshot_->config;
  const config::Config& then = next->config;

  // What can fail is tried first, and undone if a later step fails, so a rejected reload changes nothing.
  const bool reopen_log = then.log.access != access_target_;
  const bool move_admin = then.admin.enabled != now.admin.enabled || !(then.admin.listen == now.admin.listen);
  try {
    if (reopen_log) access_log_.reopen(then.log.access);
    if (reopen_log) access_target_ = then.log.access;
  } catch (const std::exception& error) {
    reload_failed(error.what());
    return;
  }
  try {
    if (move_admin) {
      if (then.admin.enabled) {
        admin_.listen(then.admin.listen);
      } else {
        admin_.stop();
      }
    }
    reloading_ = true;
    gateway_.apply(next, [this, next, baseline, tls = std::move(loaded.tls_contexts),
                          listeners = std::move(loaded.listener_contexts)] {
      // The workers' pools hold the new TLS contexts now; until then the reload did.
      asio::post(loop_, [this, next, baseline] { commit(next, baseline); });
    });
  } catch (const std::exception& error) {
    reloading_ = false;
    if (move_admin && now.admin.enabled) {
      try {
        admin_.listen(now.admin.listen);
      } catch (const std::exception& again) {
        spdlog::error("admin listener: {}", again.what());
      }
    } else if (move_admin) {
      admin_.stop();
    }
    if (reopen_log) {
      try {
        access_log_.reopen(access_target_);
      } catch (const std::exception& again) {
        spdlog::error("access log: {}", again.what());
      }
    }
    reload_failed(error.what());
    return;
  }
  ++next_generation_;
}

void Control::reload_failed(const std::string& why) {
  reload_failures_.add();
  last_reload_ok_.set(0);
  spdlog::error("reload rejected: {}; still serving config generation {}", why, snapshot_->generation);
  notify_ready(fmt::format("serving {}; last reload rejected: {}", summary(*snapshot_), why));
}

// Every worker now serves new requests with `snapshot`.
void Control::commit(const config::SnapshotPtr& snapshot, const config::SnapshotPtr& baseline) {
  reloading_ = false;
  if (state_ == State::kDraining) return;  // the workers switched, but nothing may restart probes or say READY
  const bool watch_was_on = snapshot_->config.reload.watch;
  snapshot_ = snapshot;
  baseline_ = baseline;
  fleet_.reloaded(baseline_, snapshot_->generation);
  cache_events_.update(snapshot_);
  health_.retain(*snapshot_);
  checker_.update(snapshot_);
  apply_process_settings(*snapshot_);
  admin_.use_tls(admin_tls(snapshot_->config));
  // A changed tls block (a rotated client certificate) opens the collector's connection again.
  if (AuditTarget target = audit_target(snapshot_->config); target != audit_target_) {
    audit_target_ = std::move(target);
    open_audit_sink(audit_sink_, audit_target_);
  }
  configure_span_exporter(spans_, snapshot_->config);
  reload_successes_.add();
  last_reload_ok_.set(1);
  generation_gauge_.set(static_cast<std::int64_t>(snapshot_->generation));
  spdlog::info("reloaded: serving {}", summary(*snapshot_));
  notify_ready(fmt::format("serving {}", summary(*snapshot_)));
  if (snapshot_->config.reload.watch && !watch_was_on) schedule_watch();
  if (!snapshot_->config.reload.watch) watch_timer_.cancel();
  after_switch();
}

void Control::request_switch() {
  if (state_ == State::kDraining) return;
  if (reloading_) {
    switch_again_ = true;  // after the switch in progress
    return;
  }
  const config::SnapshotPtr next = fleet_.build(next_generation_);
  if (!next) return;
  ++next_generation_;
  reloading_ = true;
  gateway_.apply(next, [this, next] {
    // The last worker serves it now.
    const std::int64_t at = fleet::unix_ms();
    asio::post(loop_, [this, next, at] { commit_switch(next, at); });
  });
}

void Control::commit_switch(const config::SnapshotPtr& snapshot, std::int64_t switched_at_ms) {
  reloading_ = false;
  if (state_ == State::kDraining) return;
  snapshot_ = snapshot;
  generation_gauge_.set(static_cast<std::int64_t>(snapshot_->generation));
  fleet_.switched(switched_at_ms, snapshot_->generation);
  after_switch();
}

// A reload or a fleet control switch asked for while the last switch went on runs now (the reload first: the
// fleet's state is then laid over the new YAML).
void Control::after_switch() {
  if (reload_again_) {
    reload_again_ = false;
    reload("a reload asked for during the last one");
    if (reloading_) return;  // else it was rejected
  }
  if (switch_again_) {
    switch_again_ = false;
    request_switch();
  }
}

// The workers' per-side series of a split route, summed (read from this thread; the workers keep writing).
void Control::count_split_figures(std::string_view route, fleet::SideFigures& route_side,
                                  fleet::SideFigures& split_side, fleet::AuditFigures& audit) const {
  for (const auto& worker : gateway_.workers()) {
    const core::MetricsRegistry& registry = worker->metrics();
    for (const char* result : {"match", "mismatch"}) {
      const core::Labels labels{{"route", std::string(route)}, {"result", result}};
      if (const core::Counter* records = registry.find_counter("apigw_migration_audit_records_total", labels)) {
        audit.compared += records->value();
        if (std::string_view(result) == "match") audit.matched += records->value();
      }
    }
    for (const bool moved : {false, true}) {
      fleet::SideFigures& figures = moved ? split_side : route_side;
      const std::string side = moved ? "split" : "route";
      const core::Labels labels{{"route", std::string(route)}, {"side", side}};
      if (const core::Counter* requests = registry.find_counter("apigw_migration_split_requests_total", labels)) {
        figures.requests += requests->value();
      }
      for (const auto& [kind, field] : {std::pair{"upstream_5xx", &fleet::SideFigures::upstream_errors},
                                        std::pair{"gateway", &fleet::SideFigures::gateway_errors}}) {
        core::Labels with_kind = labels;
        with_kind.emplace_back("kind", kind);
        if (const core::Counter* errors = registry.find_counter("apigw_migration_split_errors_total", with_kind)) {
          figures.*field += errors->value();
        }
      }
      if (const core::Histogram* durations =
              registry.find_histogram("apigw_migration_split_duration_seconds", labels)) {
        for (std::size_t i = 0; i < figures.latency.size() && i <= durations->bounds().size(); ++i) {
          figures.latency[i] += durations->bucket(i);
        }
      }
    }
  }
}

std::shared_ptr<cache::ResponseCache> Control::admin_cache() {
  const config::CacheConfig& cache = snapshot_->config.cache;
  if (!cache.enabled) {
    admin_cache_.reset();
    return nullptr;
  }
  const bool same = admin_cache_ && admin_cache_source_->config.cache == cache &&
                    admin_cache_source_->cache_primary == snapshot_->cache_primary &&
                    admin_cache_source_->cache_secondary == snapshot_->cache_secondary;
  if (!same) {
    // Calls in flight keep the previous client until they end.
    admin_cache_ = std::make_shared<cache::ResponseCache>(loop_.get_executor(), cache,
                                                          cache::memcache_servers(snapshot_->cache_primary),
                                                          cache::memcache_servers(snapshot_->cache_secondary),
                                                          cache_stats_);
    admin_cache_source_ = snapshot_;
  }
  return admin_cache_;
}

void Control::apply_process_settings(const config::Snapshot& snapshot) {
  const auto level = spdlog::level::from_str(snapshot.config.log.level);
  spdlog::default_logger()->set_level(level);
}

void Control::begin_shutdown(std::string_view signal) {
  state_ = State::kDraining;
  spdlog::info("received {}, draining (up to {} ms)", signal,
               snapshot_->config.server.drain_timeout.count());
  notify_stopping(fmt::format("draining after {}", signal));
  watch_timer_.cancel();
  checker_.stop();
  fleet_.stop();
  cache_events_.stop();
  gateway_.drain();
  wait_for_workers();
}

void Control::wait_for_workers() {
  if (gateway_.exited()) {
    admin_.stop();
    signals_.cancel();
    rotate_signal_.cancel();
    watchdog_timer_.cancel();
    loop_.stop();
    return;
  }
  exit_timer_.expires_after(kExitPoll);
  exit_timer_.async_wait([this](const boost::system::error_code& error) {
    if (!error) wait_for_workers();
  });
}

std::vector<Control::FileStamp> Control::stamp_files(const std::vector<std::string>& files) const {
  std::vector<FileStamp> stamps;
  for (const std::string& file : files) {
    FileStamp stamp;
    stamp.path = file;
    struct stat info {};
    if (::stat(file.c_str(), &info) == 0) {
      stamp.exists = true;
      stamp.device = info.st_dev;
      stamp.inode = info.st_ino;
      stamp.size = info.st_size;
      stamp.modified = info.st_mtim;
    }
    stamps.push_back(std::move(stamp));
  }
  return stamps;
}

void Control::schedule_watch() {
  watch_timer_.expires_after(snapshot_->config.reload.interval);
  watch_timer_.async_wait([this](const boost::system::error_code& error) {
    if (error || state_ == State::kDraining || !snapshot_->config.reload.watch) return;
    std::vector<std::string> files;
    for (const FileStamp& stamp : stamps_) files.push_back(stamp.path);
    // A change to any file the last load read (an include too) reloads; a bad file is tried once per change.
    if (!reloading_ && stamp_files(files) != stamps_) reload("a config file changed");
    schedule_watch();
  });
}

void Control::schedule_watchdog(std::chrono::microseconds interval) {
  watchdog_timer_.expires_after(interval / 2);
  watchdog_timer_.async_wait([this, interval](const boost::system::error_code& error) {
    if (error) return;
    // A worker stuck for more than half the interval withholds the ping, so that systemd restarts apigw.
    const auto now = std::chrono::steady_clock::now();
    bool alive = true;
    for (const auto& worker : gateway_.workers()) {
      if (!worker->exited() && now - worker->heartbeat() > interval / 2) alive = false;
    }
    if (alive) {
      notify_watchdog();
    } else {
      spdlog::error("a worker has not run its loop for over {} ms: withholding the watchdog ping",
                    std::chrono::duration_cast<std::chrono::milliseconds>(interval / 2).count());
    }
    schedule_watchdog(interval);
  });
}

std::string Control::render_metrics() {
  // Values read from shared state at scrape time go in a registry of their own, so removed endpoints vanish.
  core::MetricsRegistry scrape;
  scrape.counter("apigw_access_log_dropped_lines_total", "Access log lines lost (writer behind or write failed)")
      .add(access_log_.dropped_lines());
  scrape.counter("apigw_health_checks_total", "Active health check probes run").add(checker_.probes());
  scrape.counter("apigw_health_check_failures_total", "Active health check probes that failed")
      .add(checker_.failures());
  const core::Labels written{{"outcome", "written"}}, dropped{{"outcome", "dropped"}}, failed{{"outcome", "failed"}};
  constexpr std::string_view kAuditHelp =
      "Audit records by what became of them: written to the sink, dropped (sink behind), failed (sink failing)";
  scrape.counter("apigw_migration_audit_sink_records_total", kAuditHelp, written).add(audit_sink_.written());
  scrape.counter("apigw_migration_audit_sink_records_total", kAuditHelp, dropped).add(audit_sink_.dropped());
  scrape.counter("apigw_migration_audit_sink_records_total", kAuditHelp, failed).add(audit_sink_.failed());
  constexpr std::string_view kSpansHelp =
      "Spans of sampled requests by what became of them: exported to the collector, dropped (export queue full), "
      "failed (collector failing)";
  scrape.counter("apigw_tracing_spans_total", kSpansHelp, {{"result", "exported"}}).add(spans_.exported());
  scrape.counter("apigw_tracing_spans_total", kSpansHelp, {{"result", "dropped"}}).add(spans_.dropped());
  scrape.counter("apigw_tracing_spans_total", kSpansHelp, {{"result", "failed"}}).add(spans_.failed());
  scrape.gauge("apigw_ready", "1 when ready to serve, 0 while starting or draining")
      .set(state_ == State::kReady ? 1 : 0);
  for_each_tls_block(*snapshot_, [&scrape](const config::TlsClientConfig& tls, const std::string& use,
                                            const config::Position&) {
    if (!tls.cert) return;
    scrape.gauge("apigw_tls_certificate_expiry_timestamp_seconds",
                 "When each configured certificate expires (Unix time): client certificates and listeners'",
                 {{"use", use}, {"file", tls.cert->path}})
        .set(tls.cert_not_after);
  });
  for_each_listener_tls(*snapshot_, [&scrape](const config::TlsServerConfig& tls, const std::string& use) {
    scrape.gauge("apigw_tls_certificate_expiry_timestamp_seconds",
                 "When each configured certificate expires (Unix time): client certificates and listeners'",
                 {{"use", use}, {"file", tls.cert.path}})
        .set(tls.cert_not_after);
  });
  for (const upstream::EndpointHealthPtr& entry : health_.all()) {
    const core::Labels labels{{"upstream", entry->upstream}, {"endpoint", entry->endpoint}};
    scrape.gauge("apigw_upstream_endpoint_healthy", "1 when the endpoint gets traffic (checks pass, not ejected)",
                 labels)
        .set(entry->available() ? 1 : 0);
    scrape.counter("apigw_upstream_ejections_total", "Passive ejections after consecutive connect failures",
                   labels)
        .add(entry->ejections.load());
  }
  std::vector<const core::MetricsRegistry*> shards{&metrics_, &scrape, &fleet_.metrics()};
  for (const auto& worker : gateway_.workers()) shards.push_back(&worker->metrics());
  return core::render_prometheus(shards);
}

}  // namespace apigw::app
