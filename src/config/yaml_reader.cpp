// YamlReader: the one place that turns yaml-cpp nodes into checked text, with positions and `${VAR}` expansion.
// Never throws for a bad document: every problem becomes a ConfigError and reading goes on.
#include "yaml_reader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "env_expansion.h"

namespace apigw::config {
namespace {

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    default:
      return "nothing";
  }
}

std::string where(const Field& map) { return map.label.empty() ? "at the top level" : "in " + map.label; }

std::string subject(const Field& field) { return field.label.empty() ? "the document" : field.label; }

std::string join(std::span<const std::string_view> names) {
  std::string out;
  for (const auto name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

}  // namespace

std::string child_label(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return std::string(parent) + (parent.back() == '\'' ? " " : ".") + std::string(key);
}

Position YamlReader::position(const YAML::Node& node) const {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null()) return {file_, 0, 0};
  return {file_, mark.line + 1, mark.column + 1};
}

Field YamlReader::root(const YAML::Node& node) const {
  const Position at = position(node);
  return Field{&node, "", at, at};
}

void YamlReader::error(const Position& at, std::string message) {
  errors_.push_back(ConfigError{at, std::move(message)});
}

void YamlReader::warn(const Position& at, std::string message) {
  if (warnings_) warnings_->push_back(ConfigError{at, std::move(message)});
}

bool YamlReader::is_null(const Field& field) const { return field.node->IsNull(); }

bool YamlReader::expect_map(const Field& field) {
  if (field.node->IsMap()) return true;
  if (!field.node->IsNull()) error(field.position, subject(field) + ": expected a map, got " + describe(*field.node));
  return false;
}

bool YamlReader::expect_list(const Field& field) {
  if (field.node->IsSequence()) return true;
  if (!field.node->IsNull()) error(field.position, subject(field) + ": expected a list, got " + describe(*field.node));
  return false;
}

void YamlReader::for_each_field(const Field& map, std::span<const std::string_view> allowed,
                                const FieldVisitor& visit, std::string_view hint) {
  if (!expect_map(map)) return;
  std::vector<std::pair<std::string, int>> seen;  // key and its line
  for (const auto& entry : *map.node) {
    const YAML::Node& key = entry.first;
    const YAML::Node& value = entry.second;
    const Position key_at = position(key);
    if (!key.IsScalar()) {
      error(key_at, "keys must be plain names " + where(map) + ", got " + describe(key));
      continue;
    }
    const std::string& name = key.Scalar();
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      error(key_at, "unknown key '" + name + "' " + where(map) + " (allowed: " + join(allowed) + ")" +
                        std::string(hint));
      continue;
    }
    const auto first = std::find_if(seen.begin(), seen.end(), [&](const auto& s) { return s.first == name; });
    if (first != seen.end()) {
      error(key_at, "key '" + name + "' is given twice " + where(map) + " (first at line " +
                        std::to_string(first->second) + ")");
      continue;
    }
    seen.emplace_back(name, key_at.line);
    visit(name, Field{&value, child_label(map.label, name), value.IsNull() ? key_at : position(value), key_at});
  }
}

void YamlReader::for_each_item(const Field& list, const ItemVisitor& visit) {
  if (!expect_list(list)) return;
  std::size_t index = 0;
  for (const auto& item : *list.node) {
    const Position at = position(item);
    visit(index, Field{&item, list.label + "[" + std::to_string(index) + "]", at, at});
    ++index;
  }
}

std::optional<std::string> YamlReader::text(const Field& field) {
  const YAML::Node& node = *field.node;
  if (node.IsNull()) {
    error(field.position, subject(field) + ": needs a value");
    return std::nullopt;
  }
  if (!node.IsScalar()) {
    error(field.position, subject(field) + ": expected a single value, got " + describe(node));
    return std::nullopt;
  }
  EnvExpansion expanded = expand_env(node.Scalar());
  for (auto& why : expanded.errors) error(field.position, subject(field) + ": " + why);
  if (!expanded.errors.empty()) return std::nullopt;
  return std::move(expanded.text);
}

}  // namespace apigw::config
