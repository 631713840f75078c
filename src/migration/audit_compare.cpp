// The audit's comparison (see audit_compare.h). Both bodies are parsed into one arena that dies with the call, and
// the parser's depth limit bounds the recursion of the walk; a body nested deeper is compared as bytes.
#include "apigw/migration/audit_compare.h"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>

#include "apigw/core/digest.h"
#include "apigw/core/json_pointer.h"

namespace apigw::migration {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxDepth = 64;
constexpr std::size_t kMaxIndexDigits = 18;  // an index past 10^18 cannot exist; fewer digits cannot overflow

// An array index as RFC 6901 writes one: "0", or digits without a leading zero ("-" and "01" are none).
std::optional<std::size_t> array_index(std::string_view token) {
  if (token.empty() || token.size() > kMaxIndexDigits || (token.size() > 1 && token.front() == '0')) {
    return std::nullopt;
  }
  std::size_t index = 0;
  for (const char c : token) {
    if (c < '0' || c > '9') return std::nullopt;
    index = index * 10 + static_cast<std::size_t>(c - '0');
  }
  return index;
}

// The member or element `token` names in `parent`, or null when there is none.
json::value* child(json::value& parent, const std::string& token) {
  if (json::object* object = parent.if_object()) return object->if_contains(token);
  if (json::array* array = parent.if_array()) {
    const auto index = array_index(token);
    return index && *index < array->size() ? &(*array)[*index] : nullptr;
  }
  return nullptr;
}

// Takes the value at `tokens` out of the comparison: an object member is erased; an array element becomes null,
// so that the elements after it keep their indexes; the whole document ("") becomes null. Nothing happens when
// the value is not there.
void ignore_field(json::value& root, const std::vector<std::string>& tokens) {
  if (tokens.empty()) {
    root = nullptr;
    return;
  }
  json::value* parent = &root;
  for (std::size_t i = 0; parent != nullptr && i + 1 < tokens.size(); ++i) parent = child(*parent, tokens[i]);
  if (parent == nullptr) return;
  if (json::object* object = parent->if_object()) {
    object->erase(tokens.back());
  } else if (json::value* element = child(*parent, tokens.back())) {
    *element = nullptr;
  }
}

// Whether an integer and a double are the same number (1 == 1.0), without the rounding of a plain conversion.
bool same_number(std::int64_t integer, double number) {
  constexpr double kTwoTo63 = 9223372036854775808.0;
  if (!(number >= -kTwoTo63 && number < kTwoTo63) || std::trunc(number) != number) return false;
  return static_cast<std::int64_t>(number) == integer;
}

bool same_number(std::uint64_t integer, double number) {
  constexpr double kTwoTo64 = 18446744073709551616.0;
  if (!(number >= 0 && number < kTwoTo64) || std::trunc(number) != number) return false;
  return static_cast<std::uint64_t>(number) == integer;
}

// A double's value. Boost.JSON 1.81 parses a zero with an exponent past 308 ("0e309") as NaN, zero times an
// infinite power of ten; JSON has no NaN, and that number is 0.
double double_of(const json::value& number) {
  const double value = number.get_double();
  return std::isnan(value) ? 0.0 : value;
}

// Both are numbers, of any of Boost.JSON's three kinds.
bool same_number(const json::value& a, const json::value& b) {
  switch (a.kind()) {
    case json::kind::int64:
      if (b.is_int64()) return a.get_int64() == b.get_int64();
      if (b.is_uint64()) return a.get_int64() >= 0 && static_cast<std::uint64_t>(a.get_int64()) == b.get_uint64();
      return same_number(a.get_int64(), double_of(b));
    case json::kind::uint64:
      if (b.is_uint64()) return a.get_uint64() == b.get_uint64();
      if (b.is_double()) return same_number(a.get_uint64(), double_of(b));
      return same_number(b, a);
    default:
      return b.is_double() ? double_of(a) == double_of(b) : same_number(b, a);
  }
}

// Walks two documents side by side and records the pointer of every value that differs.
class Differ {
 public:
  explicit Differ(Comparison& result) : result_(result) {}

  void compare(const json::value& a, const json::value& b) {
    if (a.is_number() && b.is_number()) {
      if (!same_number(a, b)) report();
    } else if (a.kind() != b.kind()) {
      report();
    } else if (a.is_object()) {
      compare_objects(a.get_object(), b.get_object());
    } else if (a.is_array()) {
      compare_arrays(a.get_array(), b.get_array());
    } else if (a != b) {
      report();
    }
  }

 private:
  // Key order does not count; a key on one side only is a difference at that key.
  void compare_objects(const json::object& a, const json::object& b) {
    for (const auto& member : a) {
      path_.emplace_back(member.key());
      if (const json::value* other = b.if_contains(member.key())) {
        compare(member.value(), *other);
      } else {
        report();
      }
      path_.pop_back();
    }
    for (const auto& member : b) {
      if (a.contains(member.key())) continue;
      path_.emplace_back(member.key());
      report();
      path_.pop_back();
    }
  }

  // Index by index; each element past the shorter array's end is a difference of its own.
  void compare_arrays(const json::array& a, const json::array& b) {
    const std::size_t common = std::min(a.size(), b.size());
    for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
      path_.push_back(std::to_string(i));
      if (i < common) {
        compare(a[i], b[i]);
      } else {
        report();
      }
      path_.pop_back();
    }
  }

  void report() {
    if (result_.differences.size() < kMaxReportedDifferences) {
      result_.differences.push_back(core::json_pointer(path_));
    } else {
      ++result_.more;
    }
  }

  Comparison& result_;
  std::vector<std::string> path_;  // unescaped tokens of the values being compared
};

}  // namespace

Comparison compare_responses(unsigned status_a, std::string_view body_a, unsigned status_b, std::string_view body_b,
                             std::span<const std::string> ignore_fields) {
  Comparison result;
  json::monotonic_resource arena;  // declared first: it must outlive both documents
  json::parse_options options;
  options.max_depth = kMaxDepth;
  boost::system::error_code error;
  json::value a = json::parse(body_a, error, &arena, options);
  json::value b;
  if (!error) b = json::parse(body_b, error, &arena, options);
  if (!error) {
    result.json = true;
    for (const std::string& field : ignore_fields) {
      const auto tokens = core::parse_json_pointer(field);
      if (!tokens) continue;  // the config loader refuses these
      ignore_field(a, *tokens);
      ignore_field(b, *tokens);
    }
    Differ(result).compare(a, b);
  } else if (body_a != body_b) {
    result.differences.emplace_back();
  }
  result.match = status_a == status_b && result.differences.empty() && result.more == 0;
  return result;
}

std::string body_hash(std::string_view body) { return core::sha256_hex(body); }

}  // namespace apigw::migration
