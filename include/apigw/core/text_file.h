// Whole files as text: read at once, and written so that a reader (or a crash) sees the old file or the new one,
// never half of one. Blocking: main thread and command-line tools only.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace apigw::core {

// A file's whole text; false with the reason ("is a directory", strerror) otherwise.
bool read_text_file(const std::filesystem::path& path, std::string& text, std::string& why);

// Writes `text` to PATH.tmp, flushes it to disk, then renames it over `path`; false with the reason otherwise
// (the temporary file removed).
bool write_file_atomically(const std::filesystem::path& path, std::string_view text, std::string& why);

}  // namespace apigw::core
