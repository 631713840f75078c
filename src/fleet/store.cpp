// The fleet's state in Redis (see store.h).
#include "apigw/fleet/store.h"

#include <algorithm>
#include <cstdlib>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "apigw/redis/command.h"

namespace apigw::fleet {
namespace json = boost::json;
using redis::Reply;

namespace {

// KEYS: state, history. ARGV: the version expected, the new state, the history's length.
// Answers {1, version found} when written, {0, version found} when refused.
constexpr std::string_view kWriteScript = R"lua(
local current = redis.call('GET', KEYS[1])
local found = 0
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and tonumber(decoded['version']) then found = tonumber(decoded['version']) end
end
if found ~= tonumber(ARGV[1]) then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], '*', 'kind', 'refused', 'found', tostring(found), 'state', ARGV[2])
  return {0, found}
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], '*', 'kind', 'change', 'state', ARGV[2])
return {1, found}
)lua";

// KEYS: ramps. ARGV: the route, the revision expected, the new ramp. Answers {1, found} or {0, found}.
constexpr std::string_view kWriteRampScript = R"lua(
local current = redis.call('HGET', KEYS[1], ARGV[1])
local found = 0
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and tonumber(decoded['revision']) then found = tonumber(decoded['revision']) end
end
if found ~= tonumber(ARGV[2]) then return {0, found} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return {1, found}
)lua";

// KEYS: one bucket's hash. ARGV: its TTL in ms, then field and increment pairs.
constexpr std::string_view kAddFiguresScript = R"lua(
for i = 2, #ARGV, 2 do
  if ARGV[i + 1] ~= '0' then redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
)lua";

// KEYS: the buckets of a window. Answers the sum of each field, as a flat list of field and value.
constexpr std::string_view kSumFiguresScript = R"lua(
local sums = {}
for _, key in ipairs(KEYS) do
  local values = redis.call('HGETALL', key)
  for i = 1, #values, 2 do sums[values[i]] = (sums[values[i]] or 0) + tonumber(values[i + 1]) end
end
local out = {}
for field, value in pairs(sums) do
  out[#out + 1] = field
  out[#out + 1] = tostring(value)
end
return out
)lua";

// KEYS: the lease. ARGV: the holder, the TTL in ms. Answers 1 when the holder has it (taken or renewed).
constexpr std::string_view kLeaseScript = R"lua(
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
)lua";

// The field names of one side's figures in a bucket: "route.requests", "split.lat.3", ...
std::vector<std::pair<std::string, std::uint64_t>> figure_fields(std::string_view side, const SideFigures& figures) {
  std::vector<std::pair<std::string, std::uint64_t>> fields{
      {fmt::format("{}.requests", side), figures.requests},
      {fmt::format("{}.upstream_errors", side), figures.upstream_errors},
      {fmt::format("{}.gateway_errors", side), figures.gateway_errors}};
  for (std::size_t i = 0; i < figures.latency.size(); ++i) {
    fields.emplace_back(fmt::format("{}.lat.{}", side, i), figures.latency[i]);
  }
  return fields;
}

std::vector<std::pair<std::string, std::uint64_t>> all_fields(const SideFigures& route_side,
                                                              const SideFigures& split_side,
                                                              const AuditFigures& audit) {
  auto fields = figure_fields("route", route_side);
  for (auto& field : figure_fields("split", split_side)) fields.push_back(std::move(field));
  fields.emplace_back("audit.compared", audit.compared);
  fields.emplace_back("audit.matched", audit.matched);
  return fields;
}

// Adds a summed field to the side it names; false for a field apigw does not write.
bool add_field(std::string_view field, std::uint64_t value, FiguresResult& out) {
  if (field == "audit.compared") {
    out.audit.compared += value;
    return true;
  }
  if (field == "audit.matched") {
    out.audit.matched += value;
    return true;
  }
  SideFigures& route_side = out.route_side;
  SideFigures& split_side = out.split_side;
  const std::size_t dot = field.find('.');
  if (dot == std::string_view::npos) return false;
  const std::string_view side = field.substr(0, dot);
  const std::string_view name = field.substr(dot + 1);
  SideFigures* figures = side == "route" ? &route_side : side == "split" ? &split_side : nullptr;
  if (figures == nullptr) return false;
  if (name == "requests") {
    figures->requests += value;
  } else if (name == "upstream_errors") {
    figures->upstream_errors += value;
  } else if (name == "gateway_errors") {
    figures->gateway_errors += value;
  } else if (name.starts_with("lat.")) {
    const std::size_t index = std::strtoull(std::string(name.substr(4)).c_str(), nullptr, 10);
    if (index >= kLatencyBuckets) return false;
    figures->latency[index] += value;
  } else {
    return false;
  }
  return true;
}

// The failure a command's result holds, if any.
Failure failure_of(const redis::Result& result, std::string_view what) {
  if (result.error) return {"redis", fmt::format("{}: {}", what, result.error.message())};
  if (result.reply.type == Reply::Type::kError) {
    return {"redis", fmt::format("{}: Redis answered {}", what, result.reply.text)};
  }
  return {};
}

using redis::command;

Failure unexpected(std::string_view what) { return {"redis", fmt::format("{}: unexpected reply", what)}; }

// The failure of a command whose reply must be an array.
Failure array_failure(const redis::Result& result, std::string_view what) {
  if (Failure failure = failure_of(result, what)) return failure;
  if (result.reply.type != Reply::Type::kArray) return unexpected(what);
  return {};
}

// A stream entry [id, [field, value, ...]] as a history entry; nullopt when it is not one of ours.
std::optional<HistoryEntry> history_entry(const Reply& entry) {
  if (entry.type != Reply::Type::kArray || entry.elements.size() != 2) return std::nullopt;
  const Reply& fields = entry.elements[1];
  if (fields.type != Reply::Type::kArray) return std::nullopt;
  HistoryEntry out;
  out.id = entry.elements[0].text;
  std::string kind;
  const std::string* state = nullptr;
  for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
    const std::string& name = fields.elements[i].text;
    const std::string& value = fields.elements[i + 1].text;
    if (name == "kind") kind = value;
    if (name == "found") out.found = std::strtoull(value.c_str(), nullptr, 10);
    if (name == "state") state = &value;
  }
  if (state == nullptr || (kind != "change" && kind != "refused")) return std::nullopt;
  std::string why;
  auto decoded = decode(*state, why);
  if (!decoded) return std::nullopt;
  out.refused = kind == "refused";
  out.state = std::move(*decoded);
  return out;
}

std::int64_t to_ms(const std::chrono::milliseconds duration) { return duration.count(); }

std::int64_t integer_member(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  if (value == nullptr) return 0;
  if (value->is_int64()) return value->get_int64();
  if (value->is_uint64()) return static_cast<std::int64_t>(value->get_uint64());
  return 0;
}

std::string string_member(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : std::string();
}

}  // namespace

Keys::Keys(std::string_view fleet) : prefix_(fmt::format("apigw:control:{{{}}}:", fleet)) {
  state = prefix_ + "state";
  history = prefix_ + "history";
  instances = prefix_ + "instances";
  ramps = prefix_ + "ramps";
  judge = prefix_ + "judge";
}

std::string Keys::instance(std::string_view id) const { return prefix_ + "instance:" + std::string(id); }

std::string Keys::stats(std::string_view route, std::int64_t bucket_ms) const {
  return fmt::format("{}stats:{}:{}", prefix_, route, bucket_ms);
}

std::string encode(const Instance& instance) {
  return json::serialize(json::object{{"id", instance.id},
                                      {"host", instance.host},
                                      {"pid", instance.pid},
                                      {"version", instance.version},
                                      {"effective_at_ms", instance.effective_at_ms},
                                      {"applied_at_ms", instance.applied_at_ms},
                                      {"source", instance.source},
                                      {"heartbeat_at_ms", instance.heartbeat_at_ms},
                                      {"generation", instance.generation},
                                      {"error", instance.error}});
}

std::optional<Instance> decode_instance(std::string_view text) {
  boost::system::error_code error;
  const json::value value = json::parse(text, error);
  if (error || !value.is_object()) return std::nullopt;
  const json::object& object = value.get_object();
  Instance instance;
  instance.id = string_member(object, "id");
  instance.host = string_member(object, "host");
  instance.pid = integer_member(object, "pid");
  instance.version = static_cast<std::uint64_t>(integer_member(object, "version"));
  instance.effective_at_ms = integer_member(object, "effective_at_ms");
  instance.applied_at_ms = integer_member(object, "applied_at_ms");
  instance.source = string_member(object, "source");
  instance.heartbeat_at_ms = integer_member(object, "heartbeat_at_ms");
  instance.generation = static_cast<std::uint64_t>(integer_member(object, "generation"));
  instance.error = string_member(object, "error");
  if (instance.id.empty()) return std::nullopt;
  return instance;
}

boost::asio::awaitable<ReadResult> Store::read() {
  ReadResult out;
  const redis::Result result = co_await client_.command(command("GET", keys_.state), keys_.state);
  if ((out.failure = failure_of(result, "reading the state"))) co_return out;
  if (result.reply.type == Reply::Type::kNil) co_return out;
  if (result.reply.type != Reply::Type::kString) {
    out.failure = unexpected("reading the state");
    co_return out;
  }
  std::string why;
  out.state = decode(result.reply.text, why);
  if (!out.state) out.failure = {"state", fmt::format("the state at {} is not readable: {}", keys_.state, why)};
  co_return out;
}

boost::asio::awaitable<WriteResult> Store::write(const State& next, std::uint64_t expected) {
  WriteResult out;
  const redis::Result result =
      co_await client_.command(command("EVAL", kWriteScript, "2", keys_.state, keys_.history, std::to_string(expected),
                                     encode(next), std::to_string(kHistoryLength)),
                               keys_.state);
  if ((out.failure = failure_of(result, "writing the state"))) co_return out;
  const Reply& reply = result.reply;
  if (reply.type != Reply::Type::kArray || reply.elements.size() != 2 ||
      reply.elements[0].type != Reply::Type::kInteger || reply.elements[1].type != Reply::Type::kInteger) {
    out.failure = unexpected("writing the state");
    co_return out;
  }
  out.written = reply.elements[0].integer == 1;
  out.found = static_cast<std::uint64_t>(reply.elements[1].integer);
  co_return out;
}

boost::asio::awaitable<TimeResult> Store::now() {
  TimeResult out;
  const redis::Result result = co_await client_.command(command("TIME"), keys_.state);
  if ((out.failure = failure_of(result, "reading Redis's clock"))) co_return out;
  const Reply& reply = result.reply;
  if (reply.type != Reply::Type::kArray || reply.elements.size() != 2) {
    out.failure = unexpected("reading Redis's clock");
    co_return out;
  }
  const long long seconds = std::strtoll(reply.elements[0].text.c_str(), nullptr, 10);
  const long long micros = std::strtoll(reply.elements[1].text.c_str(), nullptr, 10);
  out.now_ms = seconds * 1000 + micros / 1000;
  co_return out;
}

boost::asio::awaitable<HistoryResult> Store::history(std::size_t count) {
  HistoryResult out;
  const redis::Result result =
      co_await client_.command(command("XREVRANGE", keys_.history, "+", "-", "COUNT", std::to_string(count)),
                               keys_.history);
  if ((out.failure = array_failure(result, "reading the history"))) co_return out;
  for (const Reply& entry : result.reply.elements) {
    if (auto parsed = history_entry(entry)) out.entries.push_back(std::move(*parsed));
  }
  co_return out;
}

boost::asio::awaitable<Failure> Store::heartbeat(Instance instance, std::chrono::milliseconds ttl) {
  const std::string key = keys_.instance(instance.id);
  const redis::Result set =
      co_await client_.command(command("SET", key, encode(instance), "PX", std::to_string(to_ms(ttl))), key);
  if (Failure failure = failure_of(set, "writing the heartbeat")) co_return failure;
  const std::string expiry = std::to_string(instance.heartbeat_at_ms + to_ms(ttl));
  const redis::Result add =
      co_await client_.command(command("ZADD", keys_.instances, expiry, instance.id), keys_.instances);
  co_return failure_of(add, "writing the heartbeat");
}

boost::asio::awaitable<Failure> Store::forget(std::string id) {
  const std::string key = keys_.instance(id);
  const redis::Result del = co_await client_.command(command("DEL", key), key);
  if (Failure failure = failure_of(del, "removing the heartbeat")) co_return failure;
  const redis::Result rem = co_await client_.command(command("ZREM", keys_.instances, id), keys_.instances);
  co_return failure_of(rem, "removing the heartbeat");
}

boost::asio::awaitable<InstancesResult> Store::instances() {
  InstancesResult out;
  const TimeResult clock = co_await now();
  if ((out.failure = clock.failure)) co_return out;
  // Instances whose heartbeat expired are forgotten here: the sorted set holds each one's expiry.
  const redis::Result pruned = co_await client_.command(
      command("ZREMRANGEBYSCORE", keys_.instances, "-inf", std::to_string(clock.now_ms)), keys_.instances);
  if ((out.failure = failure_of(pruned, "reading the instances"))) co_return out;
  const redis::Result ids = co_await client_.command(command("ZRANGE", keys_.instances, "0", "-1"), keys_.instances);
  if ((out.failure = array_failure(ids, "reading the instances"))) co_return out;
  if (ids.reply.elements.empty()) co_return out;
  std::vector<std::string> args = command("MGET");
  for (const Reply& id : ids.reply.elements) args.push_back(keys_.instance(id.text));
  const redis::Result values = co_await client_.command(std::move(args), keys_.instances);
  if ((out.failure = array_failure(values, "reading the instances"))) co_return out;
  for (const Reply& value : values.reply.elements) {
    if (value.type != Reply::Type::kString) continue;  // expired since
    if (auto instance = decode_instance(value.text)) out.instances.push_back(std::move(*instance));
  }
  std::sort(out.instances.begin(), out.instances.end(),
            [](const Instance& a, const Instance& b) { return a.id < b.id; });
  co_return out;
}

boost::asio::awaitable<WaitResult> Store::last_id() {
  WaitResult out;
  const redis::Result result =
      co_await client_.command(command("XREVRANGE", keys_.history, "+", "-", "COUNT", "1"), keys_.history);
  if ((out.failure = array_failure(result, "reading the history"))) co_return out;
  const auto& entries = result.reply.elements;
  if (entries.empty()) {
    out.last_id = "0-0";
  } else if (entries[0].type == Reply::Type::kArray && !entries[0].elements.empty()) {
    out.last_id = entries[0].elements[0].text;
  } else {
    out.failure = unexpected("reading the history");
  }
  co_return out;
}

boost::asio::awaitable<WaitResult> Store::wait(std::string after, std::chrono::milliseconds block) {
  WaitResult out;
  const redis::Result result = co_await client_.command(
      command("XREAD", "COUNT", "100", "BLOCK", std::to_string(to_ms(block)), "STREAMS", keys_.history, after),
      keys_.history);
  if ((out.failure = failure_of(result, "waiting for a change"))) co_return out;
  out.last_id = std::move(after);
  const Reply& reply = result.reply;
  if (reply.type == Reply::Type::kNil) co_return out;  // nothing new within `block`
  // [[stream, [[id, fields], ...]]]
  if (reply.type != Reply::Type::kArray || reply.elements.empty() || reply.elements[0].elements.size() != 2) {
    out.failure = unexpected("waiting for a change");
    co_return out;
  }
  const Reply& entries = reply.elements[0].elements[1];
  if (!entries.elements.empty() && !entries.elements.back().elements.empty()) {
    out.last_id = entries.elements.back().elements[0].text;
  }
  co_return out;
}

boost::asio::awaitable<RampsResult> Store::ramps() {
  RampsResult out;
  const redis::Result result = co_await client_.command(command("HGETALL", keys_.ramps), keys_.ramps);
  if ((out.failure = array_failure(result, "reading the ramps"))) co_return out;
  const auto& items = result.reply.elements;
  for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
    std::string why;
    auto ramp = decode_ramp(items[i + 1].text, why);
    if (!ramp) {
      out.failure = {"state", fmt::format("the ramp of route '{}' is not readable: {}", items[i].text, why)};
      continue;
    }
    out.ramps.push_back(std::move(*ramp));
  }
  std::sort(out.ramps.begin(), out.ramps.end(),
            [](const RampState& a, const RampState& b) { return a.plan.route < b.plan.route; });
  co_return out;
}

boost::asio::awaitable<WriteResult> Store::write_ramp(RampState next, std::uint64_t expected) {
  WriteResult out;
  next.revision = expected + 1;
  const redis::Result result = co_await client_.command(
      command("EVAL", kWriteRampScript, "1", keys_.ramps, next.plan.route, std::to_string(expected), encode(next)),
      keys_.ramps);
  if ((out.failure = failure_of(result, "writing the ramp"))) co_return out;
  const Reply& reply = result.reply;
  if (reply.type != Reply::Type::kArray || reply.elements.size() != 2) {
    out.failure = unexpected("writing the ramp");
    co_return out;
  }
  out.written = reply.elements[0].integer == 1;
  out.found = static_cast<std::uint64_t>(reply.elements[1].integer);
  co_return out;
}

boost::asio::awaitable<Failure> Store::add_figures(std::string route, std::int64_t at_ms, SideFigures route_side,
                                                   SideFigures split_side, AuditFigures audit) {
  const std::string key = keys_.stats(route, at_ms - at_ms % kStatsBucketMs);
  std::vector<std::string> args = command("EVAL", kAddFiguresScript, "1", key, std::to_string(kStatsTtlMs));
  for (const auto& [field, value] : all_fields(route_side, split_side, audit)) {
    args.push_back(field);
    args.push_back(std::to_string(value));
  }
  const redis::Result result = co_await client_.command(std::move(args), key);
  co_return failure_of(result, "adding the ramp figures");
}

boost::asio::awaitable<FiguresResult> Store::figures(std::string route, std::int64_t from_ms, std::int64_t to_ms) {
  FiguresResult out;
  // Instances add what they counted over the last publication interval (one bucket) to the bucket of the moment
  // they publish: the buckets that start a bucket or more after the window's start hold none of what came before
  // it. Buckets older than their TTL are gone: a longer window is its last kStatsTtlMs.
  const std::int64_t from = std::max(from_ms + kStatsBucketMs, to_ms - kStatsTtlMs + kStatsBucketMs);
  const std::int64_t first = (from + kStatsBucketMs - 1) / kStatsBucketMs * kStatsBucketMs;
  std::vector<std::string> keys;
  for (std::int64_t bucket = first; bucket <= to_ms; bucket += kStatsBucketMs) {
    keys.push_back(keys_.stats(route, bucket));
  }
  if (keys.empty()) co_return out;
  std::vector<std::string> args = command("EVAL", kSumFiguresScript, std::to_string(keys.size()));
  args.insert(args.end(), keys.begin(), keys.end());
  const redis::Result result = co_await client_.command(std::move(args), keys.front());
  if ((out.failure = array_failure(result, "reading the ramp figures"))) co_return out;
  const auto& items = result.reply.elements;
  for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
    add_field(items[i].text, std::strtoull(items[i + 1].text.c_str(), nullptr, 10), out);
  }
  co_return out;
}

boost::asio::awaitable<LeaseResult> Store::lease(std::string holder, std::chrono::milliseconds ttl) {
  LeaseResult out;
  const redis::Result result = co_await client_.command(
      command("EVAL", kLeaseScript, "1", keys_.judge, holder, std::to_string(ttl.count())), keys_.judge);
  if ((out.failure = failure_of(result, "taking the judge's lease"))) co_return out;
  out.held = result.reply.type == Reply::Type::kInteger && result.reply.integer == 1;
  co_return out;
}

}  // namespace apigw::fleet
