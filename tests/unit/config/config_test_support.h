// Helpers for tests of config loading: YAML written inline, and assertions on the errors a load reports.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "apigw/config/loader.h"

namespace apigw::config {

// Raw strings in these tests start with a newline so that the YAML's first line is written on its own line;
// dropping it keeps line 1 of the YAML equal to its first written line.
inline std::string yaml(std::string_view text) {
  if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
  return std::string(text);
}

inline LoadResult load(std::string_view text) { return load_string(yaml(text), "test.yaml"); }

inline std::string all_errors(const LoadResult& result) {
  std::string out;
  for (const auto& error : result.errors) out += "\n  " + error.text();
  return out.empty() ? " (none)" : out;
}

// Passes when some error sits on `line` of `file` and its message contains `fragment`.
inline ::testing::AssertionResult has_error(const LoadResult& result, int line, std::string_view fragment,
                                            std::string_view file = "test.yaml") {
  for (const auto& error : result.errors) {
    if (error.position.file == file && error.position.line == line &&
        error.message.find(fragment) != std::string::npos) {
      return ::testing::AssertionSuccess();
    }
  }
  return ::testing::AssertionFailure() << "no error at " << file << ":" << line << " containing '" << fragment
                                       << "'; errors:" << all_errors(result);
}

// As has_error, and that error is the only one.
inline ::testing::AssertionResult only_error(const LoadResult& result, int line, std::string_view fragment) {
  if (result.errors.size() != 1) {
    return ::testing::AssertionFailure() << "expected exactly one error; errors:" << all_errors(result);
  }
  return has_error(result, line, fragment);
}

}  // namespace apigw::config
