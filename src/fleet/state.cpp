// The fleet state's JSON form and its description (see state.h).
#include "apigw/fleet/state.h"

#include <ctime>

#include <boost/json.hpp>
#include <fmt/format.h>

namespace apigw::fleet {
namespace json = boost::json;

namespace {

json::array to_array(const std::set<std::string>& items) {
  json::array array;
  for (const std::string& item : items) array.emplace_back(item);
  return array;
}

json::object encode_overrides(const Overrides& overrides) {
  json::object routes;
  for (const auto& [name, route] : overrides.routes) {
    json::object entry;
    if (route.split) entry["split"] = *route.split;
    if (route.shadow) entry["shadow"] = *route.shadow;
    routes[name] = std::move(entry);
  }
  json::object object;
  object["abort"] = overrides.abort;
  object["routes"] = std::move(routes);
  object["beta_users"] = {{"add", to_array(overrides.beta_add)}, {"remove", to_array(overrides.beta_remove)}};
  object["shadow_ignore"] = {{"add", to_array(overrides.ignore_add)},
                             {"remove", to_array(overrides.ignore_remove)}};
  return object;
}

// Reading fails by throwing this, with the reason; decode() turns it into its `why`.
struct Invalid {
  std::string why;
};

const json::value* find_member(const json::object& object, std::string_view key) { return object.if_contains(key); }

const json::object& as_object(const json::value& value, std::string_view what) {
  if (!value.is_object()) throw Invalid{std::string(what) + " is not an object"};
  return value.get_object();
}

std::string as_string(const json::value& value, std::string_view what) {
  if (!value.is_string()) throw Invalid{std::string(what) + " is not a string"};
  return std::string(value.get_string());
}

std::int64_t as_integer(const json::value& value, std::string_view what) {
  if (value.is_int64()) return value.get_int64();
  if (value.is_uint64() && value.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(value.get_uint64());
  }
  throw Invalid{std::string(what) + " is not an integer"};
}

std::uint64_t as_version(const json::value& value, std::string_view what) {
  const std::int64_t version = as_integer(value, what);
  if (version < 0) throw Invalid{std::string(what) + " is negative"};
  return static_cast<std::uint64_t>(version);
}

std::set<std::string> as_set(const json::object& object, std::string_view key, std::string_view what) {
  std::set<std::string> items;
  const json::value* value = find_member(object, key);
  if (value == nullptr) return items;
  const std::string label = std::string(what) + "." + std::string(key);
  if (!value->is_array()) throw Invalid{label + " is not a list"};
  for (const json::value& item : value->get_array()) items.insert(as_string(item, label + " item"));
  return items;
}

std::optional<std::string> as_target(const json::object& object, std::string_view key, const std::string& what) {
  const json::value* value = find_member(object, key);
  if (value == nullptr) return std::nullopt;
  return as_string(*value, what + "." + std::string(key));
}

Overrides decode_overrides(const json::value& value, std::string_view what) {
  const json::object& object = as_object(value, what);
  Overrides overrides;
  if (const json::value* abort = find_member(object, "abort")) {
    if (!abort->is_bool()) throw Invalid{std::string(what) + ".abort is not true or false"};
    overrides.abort = abort->get_bool();
  }
  if (const json::value* routes = find_member(object, "routes")) {
    for (const auto& entry : as_object(*routes, std::string(what) + ".routes")) {
      const std::string label = std::string(what) + ".routes." + std::string(entry.key());
      const json::object& route = as_object(entry.value(), label);
      RouteOverride target{as_target(route, "split", label), as_target(route, "shadow", label)};
      if (!target.empty()) overrides.routes.emplace(std::string(entry.key()), std::move(target));
    }
  }
  if (const json::value* beta = find_member(object, "beta_users")) {
    const std::string label = std::string(what) + ".beta_users";
    overrides.beta_add = as_set(as_object(*beta, label), "add", label);
    overrides.beta_remove = as_set(as_object(*beta, label), "remove", label);
  }
  if (const json::value* ignore = find_member(object, "shadow_ignore")) {
    const std::string label = std::string(what) + ".shadow_ignore";
    overrides.ignore_add = as_set(as_object(*ignore, label), "add", label);
    overrides.ignore_remove = as_set(as_object(*ignore, label), "remove", label);
  }
  return overrides;
}

std::string value_text(const std::optional<std::string>& value) { return value ? *value : "yaml"; }

// "+a +b -c" for a list's add and remove sets going from `before` to `after`.
void describe_list(std::string_view name, const std::set<std::string>& add_before,
                   const std::set<std::string>& remove_before, const std::set<std::string>& add_after,
                   const std::set<std::string>& remove_after, std::vector<std::string>& items) {
  std::string text;
  const auto note = [&](std::string_view sign, const std::string& item) {
    text += fmt::format("{}{}{}", text.empty() ? "" : " ", sign, item);
  };
  for (const std::string& item : add_after) {
    if (!add_before.contains(item)) note("+", item);
  }
  for (const std::string& item : remove_after) {
    if (!remove_before.contains(item)) note("-", item);
  }
  // An override dropped returns the item to what the YAML says.
  for (const std::string& item : add_before) {
    if (!add_after.contains(item) && !remove_after.contains(item)) note("yaml ", item);
  }
  for (const std::string& item : remove_before) {
    if (!remove_after.contains(item) && !add_after.contains(item)) note("yaml ", item);
  }
  if (!text.empty()) items.push_back(fmt::format("{}: {}", name, text));
}

}  // namespace

bool Overrides::empty() const {
  return routes.empty() && beta_add.empty() && beta_remove.empty() && ignore_add.empty() && ignore_remove.empty() &&
         !abort;
}

std::string encode(const State& state) {
  json::object object;
  object["version"] = state.version;
  object["written_at_ms"] = state.written_at_ms;
  object["effective_at_ms"] = state.effective_at_ms;
  object["author"] = state.author;
  object["why"] = state.why;
  object["change"] = state.change;
  object["overrides"] = encode_overrides(state.overrides);
  object["previous"] = {{"version", state.previous_version}, {"overrides", encode_overrides(state.previous)}};
  return json::serialize(object);
}

std::optional<State> decode(std::string_view text, std::string& why) {
  boost::system::error_code error;
  const json::value value = json::parse(text, error);
  if (error) {
    why = "not JSON: " + error.message();
    return std::nullopt;
  }
  try {
    const json::object& object = as_object(value, "the state");
    const auto required = [&](std::string_view key) -> const json::value& {
      const json::value* found = find_member(object, key);
      if (found == nullptr) throw Invalid{"the state has no " + std::string(key)};
      return *found;
    };
    State state;
    state.version = as_version(required("version"), "version");
    state.written_at_ms = as_integer(required("written_at_ms"), "written_at_ms");
    state.effective_at_ms = as_integer(required("effective_at_ms"), "effective_at_ms");
    if (const json::value* author = find_member(object, "author")) state.author = as_string(*author, "author");
    if (const json::value* text_why = find_member(object, "why")) state.why = as_string(*text_why, "why");
    if (const json::value* change = find_member(object, "change")) state.change = as_string(*change, "change");
    state.overrides = decode_overrides(required("overrides"), "overrides");
    if (const json::value* previous = find_member(object, "previous")) {
      const json::object& before = as_object(*previous, "previous");
      if (const json::value* version = find_member(before, "version")) {
        state.previous_version = as_version(*version, "previous.version");
      }
      if (const json::value* overrides = find_member(before, "overrides")) {
        state.previous = decode_overrides(*overrides, "previous.overrides");
      }
    }
    return state;
  } catch (const Invalid& invalid) {
    why = invalid.why;
    return std::nullopt;
  }
}

std::vector<std::string> describe_change(const Overrides& before, const Overrides& after) {
  std::vector<std::string> items;
  if (before.abort != after.abort) items.push_back(after.abort ? "abort: on" : "abort: off");
  std::set<std::string> names;
  for (const auto& entry : before.routes) names.insert(entry.first);
  for (const auto& entry : after.routes) names.insert(entry.first);
  const RouteOverride none;
  for (const std::string& name : names) {
    const auto old_entry = before.routes.find(name);
    const auto new_entry = after.routes.find(name);
    const RouteOverride& old_route = old_entry == before.routes.end() ? none : old_entry->second;
    const RouteOverride& new_route = new_entry == after.routes.end() ? none : new_entry->second;
    if (old_route.split != new_route.split) {
      items.push_back(
          fmt::format("{}.split: {} -> {}", name, value_text(old_route.split), value_text(new_route.split)));
    }
    if (old_route.shadow != new_route.shadow) {
      items.push_back(
          fmt::format("{}.shadow: {} -> {}", name, value_text(old_route.shadow), value_text(new_route.shadow)));
    }
  }
  describe_list("beta_users", before.beta_add, before.beta_remove, after.beta_add, after.beta_remove, items);
  describe_list("shadow_ignore", before.ignore_add, before.ignore_remove, after.ignore_add, after.ignore_remove,
                items);
  return items;
}

std::string join_change(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : "; ") + item;
  return text;
}

std::string utc_time(std::int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", parts.tm_year + 1900, parts.tm_mon + 1,
                     parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec, ms % 1000);
}

}  // namespace apigw::fleet
