// The audit's comparison of the two sides' answers to one request (pure).
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace apigw::migration {

// Pointers reported per mismatch at most; more differences are summed up in `more`.
inline constexpr std::size_t kMaxReportedDifferences = 64;

struct Comparison {
  bool match = false;                   // statuses equal and bodies equal (after ignore_fields, when both are JSON)
  bool json = false;                    // both bodies parsed as JSON and were compared as values
  std::vector<std::string> differences;  // JSON pointers (RFC 6901) of the values that differ; "" is the whole body
  std::size_t more = 0;                  // differences beyond kMaxReportedDifferences
};

// Compares two answers. When both bodies are JSON (an empty body is not; nor one nested over 64 levels), they are
// compared as values with every `ignore_fields` pointer removed from both: an object member is erased, an array
// element is set to null so that the later ones keep their indexes, "" ignores the whole body, and a pointer that
// names nothing (or is malformed) changes nothing. Objects compare by key, not by key order (a key on one side only
// differs); arrays by index (each extra element differs); numbers by value (1 == 1.0 == 1e0); strings, booleans
// and null by equality. Otherwise the bodies compare byte for byte, and a difference is reported as "".
Comparison compare_responses(unsigned status_a, std::string_view body_a, unsigned status_b, std::string_view body_b,
                             std::span<const std::string> ignore_fields);

// Lower-case hex SHA-256 of a body, for the audit record.
std::string body_hash(std::string_view body);

}  // namespace apigw::migration
