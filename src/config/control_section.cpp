// The `control` section (see control_section.h).
#include "control_section.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <filesystem>

#include "auth_section.h"
#include "value_parsers.h"

namespace apigw::config {
namespace {

constexpr std::array<std::string_view, 5> kControlKeys{"redis", "fleet", "delay", "poll", "state_file"};
constexpr std::size_t kMaxFleetBytes = 64;
constexpr core::Duration kMaxDelay = std::chrono::minutes(10);
constexpr core::Duration kMinPoll = std::chrono::milliseconds(100);
constexpr core::Duration kMaxPoll = std::chrono::minutes(10);

std::optional<std::string> parse_fleet(std::string_view text, std::string& why) {
  const bool valid = std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
  });
  if (valid && !text.empty() && text.size() <= kMaxFleetBytes) return std::string(text);
  why = "bad fleet name '" + std::string(text) + "': letters, digits, '_', '.' and '-', at most " +
        std::to_string(kMaxFleetBytes) + " characters";
  return std::nullopt;
}

std::optional<core::Duration> parse_delay(std::string_view text, std::string& why) {
  auto delay = parse_duration_value(text, why);
  if (delay && *delay > kMaxDelay) {
    why = "at most 10m, got " + std::string(text);
    return std::nullopt;
  }
  return delay;
}

std::optional<core::Duration> parse_poll(std::string_view text, std::string& why) {
  auto poll = parse_duration_value(text, why);
  if (poll && (*poll < kMinPoll || *poll > kMaxPoll)) {
    why = "must be from 100ms to 10m, got " + std::string(text);
    return std::nullopt;
  }
  return poll;
}

// A file apigw writes: its directory must exist.
std::optional<std::string> parse_state_file(std::string_view text, std::string& why) {
  namespace fs = std::filesystem;
  const fs::path path(text);
  if (!path.has_filename()) {
    why = "'" + std::string(text) + "' names a directory; name the file, e.g. /var/lib/apigw/control-state.json";
    return std::nullopt;
  }
  std::error_code ec;
  const fs::path directory = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (!fs::is_directory(directory, ec)) {
    why = "directory " + directory.string() + " does not exist";
    return std::nullopt;
  }
  return std::string(text);
}

}  // namespace

void read_control(YamlReader& reader, const Field& field, ControlConfig& control) {
  control.enabled = true;
  bool has_fleet = false;
  reader.for_each_field(field, kControlKeys, [&](std::string_view key, const Field& value) {
    if (key == "redis") return read_redis(reader, value, control.redis);
    if (key == "fleet") {
      has_fleet = true;
      return assign(control.fleet, reader.value(value, parse_fleet));
    }
    if (key == "delay") return assign(control.delay, reader.value(value, parse_delay));
    if (key == "poll") return assign(control.poll, reader.value(value, parse_poll));
    assign(control.state_file, reader.value(value, parse_state_file));
  });
  if (!has_fleet) {
    reader.error(field.position, field.label + ": needs a fleet name (instances with the same fleet share one "
                                               "state), e.g. fleet: api-gateway");
  }
}

}  // namespace apigw::config
