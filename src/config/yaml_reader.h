// Reads yaml-cpp nodes for the loader: 1-based positions, `${VAR}` expansion, type and key checks, error collection.
// Private to src/config. yaml-cpp is only forward-declared here; its headers are included by .cpp files alone.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "apigw/config/loader.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace apigw::config {

// One value of the document, with what is needed to report on it.
struct Field {
  const YAML::Node* node = nullptr;
  std::string label;  // "server.workers", "route 'users' match.path"; empty for a document's root
  Position position;  // the value's; its key's when the value is empty (yaml-cpp marks those at the next token)
  Position key;       // the key's, for a map value; else the same as position
};

// "server" + "workers" gives "server.workers"; "route 'a'" + "match" gives "route 'a' match".
std::string child_label(std::string_view parent, std::string_view key);

class YamlReader {
 public:
  using FieldVisitor = std::function<void(std::string_view key, const Field& value)>;
  using ItemVisitor = std::function<void(std::size_t index, const Field& item)>;

  YamlReader(std::string file, std::vector<ConfigError>& errors, std::vector<ConfigError>* warnings = nullptr)
      : file_(std::move(file)), errors_(errors), warnings_(warnings) {}

  const std::string& file() const { return file_; }
  Position position(const YAML::Node& node) const;
  Field root(const YAML::Node& node) const;
  void error(const Position& at, std::string message);
  // Something accepted that weakens the gateway (a TLS peer left unverified): said at load, never refused.
  void warn(const Position& at, std::string message);

  bool is_null(const Field& field) const;
  // A null value counts as an empty map or list: false, no error. Any other wrong type is reported.
  bool expect_map(const Field& field);
  bool expect_list(const Field& field);

  // Visits a map's keys in order. Unknown keys (when `allowed` is not empty), repeated keys and non-scalar keys
  // are reported and skipped; `hint` is appended to the unknown-key message.
  void for_each_field(const Field& map, std::span<const std::string_view> allowed, const FieldVisitor& visit,
                      std::string_view hint = {});
  void for_each_item(const Field& list, const ItemVisitor& visit);

  // The scalar's text after `${VAR}` expansion; nullopt, with the error recorded, for a non-scalar, an empty value
  // or a failed expansion.
  std::optional<std::string> text(const Field& field);

  // text() handed to a parser from value_parsers.h; its failure is reported as "<label>: <why>".
  template <typename Parse>
  auto value(const Field& field, Parse&& parse) -> decltype(parse(std::string_view{}, std::declval<std::string&>())) {
    const auto raw = text(field);
    if (!raw) return std::nullopt;
    std::string why;
    auto result = parse(std::string_view(*raw), why);
    if (!result) error(field.position, field.label + ": " + why);
    return result;
  }

 private:
  std::string file_;
  std::vector<ConfigError>& errors_;
  std::vector<ConfigError>* warnings_;
};

// Sets `target` from what YamlReader::value returned; leaves it (the default) when the value was refused.
template <typename T, typename U>
void assign(T& target, std::optional<U> value) {
  if (value) target = std::move(*value);
}

}  // namespace apigw::config
