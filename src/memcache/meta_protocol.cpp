// The meta protocol's requests and replies (see meta_protocol.h). Pure.
#include "apigw/memcache/meta_protocol.h"

#include <charconv>

namespace apigw::memcache {
namespace {

constexpr std::string_view kClientError = "CLIENT_ERROR";
constexpr std::string_view kServerError = "SERVER_ERROR";

template <class Number>
bool parse_number(std::string_view text, Number& number) {
  if (text.empty()) return false;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  return error == std::errc() && end == text.data() + text.size();
}

template <class Number>
void append_number(std::string& out, Number number) {
  char digits[24];
  const auto [end, error] = std::to_chars(digits, digits + sizeof digits, number);
  out.append(digits, end);
}

// Splits off the next space-separated token of `line`.
std::string_view next_token(std::string_view& line) {
  while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
  const std::size_t end = line.find(' ');
  const std::string_view token = line.substr(0, end);
  line.remove_prefix(end == std::string_view::npos ? line.size() : end);
  return token;
}

// The return flags after a reply's code; the ones not asked for are skipped.
bool parse_flags(std::string_view line, Reply& reply) {
  for (std::string_view token = next_token(line); !token.empty(); token = next_token(line)) {
    const std::string_view argument = token.substr(1);
    switch (token.front()) {
      case 'f':
        if (!parse_number(argument, reply.flags)) return false;
        break;
      case 't': {
        std::int64_t ttl = 0;
        if (!parse_number(argument, ttl)) return false;
        reply.ttl = ttl;
        break;
      }
      case 'c':
        if (!parse_number(argument, reply.cas)) return false;
        break;
      case 'W': reply.won = true; break;
      case 'Z': reply.fill_elsewhere = true; break;
      case 'X': reply.stale = true; break;
      case 'O': {
        std::uint32_t opaque = 0;
        if (!parse_number(argument, opaque)) return false;
        reply.opaque = opaque;
        break;
      }
      default: break;
    }
  }
  return true;
}

std::optional<Reply::Code> status_code(std::string_view code) {
  if (code == "HD") return Reply::Code::kHeader;
  if (code == "EN") return Reply::Code::kMiss;
  if (code == "NS") return Reply::Code::kNotStored;
  if (code == "EX") return Reply::Code::kExists;
  if (code == "NF") return Reply::Code::kNotFound;
  return std::nullopt;
}

}  // namespace

bool valid_key(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeyLength) return false;
  for (const char c : key) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= ' ' || byte == 0x7f) return false;
  }
  return true;
}

void encode_get(std::string& out, std::string_view key, std::uint32_t opaque, const GetOptions& options) {
  out += "mg ";
  out += key;
  out += " v f t";
  if (options.vivify > 0) {
    out += " N";
    append_number(out, options.vivify);
  }
  if (options.recache > 0) {
    out += " R";
    append_number(out, options.recache);
  }
  if (options.cas) out += " c";
  out += " O";
  append_number(out, opaque);
  out += "\r\n";
}

void encode_set(std::string& out, std::string_view key, std::string_view value, std::uint32_t flags,
                std::int64_t exptime, std::uint32_t opaque, bool add) {
  out.reserve(out.size() + key.size() + value.size() + 64);
  out += "ms ";
  out += key;
  out += ' ';
  append_number(out, static_cast<std::int64_t>(value.size()));
  out += " F";
  append_number(out, flags);
  out += " T";
  append_number(out, exptime);
  out += " O";
  append_number(out, opaque);
  if (add) out += " ME";
  out += "\r\n";
  out += value;
  out += "\r\n";
}

void encode_delete(std::string& out, std::string_view key, std::uint32_t opaque, const DeleteOptions& options) {
  out += "md ";
  out += key;
  if (options.invalidate) {
    out += " I";
    if (options.ttl > 0) {
      out += " T";
      append_number(out, options.ttl);
    }
  }
  if (options.cas != 0) {
    out += " C";
    append_number(out, options.cas);
  }
  out += " O";
  append_number(out, opaque);
  out += "\r\n";
}

ParseStatus parse_reply(std::string_view input, Reply& reply, std::size_t& consumed) {
  const std::size_t newline = input.substr(0, kMaxReplyLine).find("\r\n");
  if (newline == std::string_view::npos) {
    return input.size() >= kMaxReplyLine ? ParseStatus::kMalformed : ParseStatus::kIncomplete;
  }
  std::string_view line = input.substr(0, newline);
  std::size_t length = newline + 2;
  reply = Reply{};

  // Error replies: a whole line, no flags.
  if (line == "ERROR") {
    reply.code = Reply::Code::kError;
  } else if (line.starts_with(kClientError)) {
    reply.code = Reply::Code::kClientError;
    line.remove_prefix(kClientError.size());
    reply.message = line.substr(line.starts_with(' ') ? 1 : 0);
  } else if (line.starts_with(kServerError)) {
    reply.code = Reply::Code::kServerError;
    line.remove_prefix(kServerError.size());
    reply.message = line.substr(line.starts_with(' ') ? 1 : 0);
  } else {
    const std::string_view code = next_token(line);
    if (code == "VA") {
      std::uint64_t size = 0;
      if (!parse_number(next_token(line), size) || size > kMaxValueLength) return ParseStatus::kMalformed;
      if (input.size() - length < size + 2) return ParseStatus::kIncomplete;
      if (input.substr(length + size, 2) != "\r\n") return ParseStatus::kMalformed;
      reply.code = Reply::Code::kValue;
      reply.value.assign(input.substr(length, size));
      length += size + 2;
    } else if (const std::optional<Reply::Code> status = status_code(code)) {
      reply.code = *status;
    } else {
      return ParseStatus::kMalformed;
    }
    if (!parse_flags(line, reply)) return ParseStatus::kMalformed;
  }
  consumed = length;
  return ParseStatus::kDone;
}

}  // namespace apigw::memcache
