// memc_ketama: a tiny libmemcached client, configured the way legacy clients of a shared pool are (the servers
// added in the given order with memcached_server_add, MEMCACHED_BEHAVIOR_KETAMA set to 1), so that end-to-end
// tests can check that apigw places keys where libmemcached does.
//
//   memc_ketama --servers HOST:PORT[,HOST:PORT...] set KEY VALUE [TTL] [FLAGS]   VALUE "-" reads stdin
//   memc_ketama --servers ... get KEY       the value, raw, on stdout
//   memc_ketama --servers ... flags KEY     the item's client flags, in decimal, on stdout
//   memc_ketama --servers ... delete KEY
//   memc_ketama --servers ... server KEY [KEY...]   for each KEY, one line: the 0-based index (in --servers order) of
//                                                   the server that holds it
//
// Exit status: 0 done; 1 a miss (get, flags, delete of an absent key); 2 bad usage or a failure.
#include <libmemcached/memcached.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr int kOk = 0;
constexpr int kMiss = 1;
constexpr int kFail = 2;

struct Address {
  std::string host;
  in_port_t port = 0;
};

int usage(const char* why) {
  std::cerr << "memc_ketama: " << why << "\n"
            << "usage: memc_ketama --servers HOST:PORT[,HOST:PORT...] set KEY VALUE [TTL] [FLAGS]\n"
            << "       memc_ketama --servers ... get|flags|delete KEY\n"
            << "       memc_ketama --servers ... server KEY [KEY...]\n";
  return kFail;
}

std::optional<unsigned long long> parse_number(std::string_view text, unsigned long long max) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  unsigned long long value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const unsigned digit = static_cast<unsigned>(c - '0');
    if (value > (max - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

// "127.0.0.1:11211", "localhost:11211", "[::1]:11211".
std::optional<Address> parse_address(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return std::nullopt;
    host = host.substr(1, host.size() - 2);
  }
  const auto port = parse_number(text.substr(colon + 1), 65535);
  if (!port || *port == 0) return std::nullopt;
  return Address{std::string(host), static_cast<in_port_t>(*port)};
}

std::optional<std::vector<Address>> parse_servers(std::string_view list) {
  std::vector<Address> servers;
  while (true) {
    const std::size_t comma = list.find(',');
    const auto address = parse_address(list.substr(0, comma));
    if (!address) return std::nullopt;
    servers.push_back(*address);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return servers;
}

int fail(memcached_st* memc, memcached_return_t rc, const char* what, std::string_view key) {
  std::cerr << "memc_ketama: " << what << " " << key << ": " << memcached_strerror(memc, rc);
  if (const char* detail = memcached_last_error_message(memc)) std::cerr << " (" << detail << ")";
  std::cerr << "\n";
  return kFail;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  std::optional<std::vector<Address>> servers;
  if (args.size() >= 2 && args[0] == "--servers") {
    servers = parse_servers(args[1]);
    if (!servers) return usage("--servers wants HOST:PORT[,HOST:PORT...]");
    args.erase(args.begin(), args.begin() + 2);
  } else if (!args.empty() && args[0].starts_with("--servers=")) {
    servers = parse_servers(args[0].substr(std::strlen("--servers=")));
    if (!servers) return usage("--servers wants HOST:PORT[,HOST:PORT...]");
    args.erase(args.begin());
  }
  if (!servers) return usage("--servers is required");
  if (args.size() < 2) return usage("a command and a key are required");
  const std::string_view command = args[0];
  const std::string key(args[1]);

  std::unique_ptr<memcached_st, void (*)(memcached_st*)> memc(memcached_create(nullptr), memcached_free);
  if (!memc) return usage("memcached_create failed");
  for (const Address& server : *servers) {
    const memcached_return_t rc = memcached_server_add(memc.get(), server.host.c_str(), server.port);
    if (rc != MEMCACHED_SUCCESS) return fail(memc.get(), rc, "cannot add server", server.host);
  }
  memcached_behavior_set(memc.get(), MEMCACHED_BEHAVIOR_KETAMA, 1);
  // Fail fast rather than hang on a stopped or paused server.
  memcached_behavior_set(memc.get(), MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, 2000);
  memcached_behavior_set(memc.get(), MEMCACHED_BEHAVIOR_POLL_TIMEOUT, 2000);
  memcached_behavior_set(memc.get(), MEMCACHED_BEHAVIOR_SND_TIMEOUT, 2000000);
  memcached_behavior_set(memc.get(), MEMCACHED_BEHAVIOR_RCV_TIMEOUT, 2000000);

  if (command == "server") {
    for (std::size_t i = 1; i < args.size(); ++i) {
      std::cout << memcached_generate_hash(memc.get(), args[i].data(), args[i].size()) << "\n";
    }
    return std::cout.flush() ? kOk : kFail;
  }

  if (command == "set") {
    if (args.size() < 3 || args.size() > 5) return usage("set takes KEY VALUE [TTL] [FLAGS]");
    std::string value(args[2]);
    if (value == "-") {
      value.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    }
    time_t ttl = 0;
    std::uint32_t flags = 0;
    if (args.size() >= 4) {
      const auto parsed = parse_number(args[3], 60ull * 60 * 24 * 365 * 100);
      if (!parsed) return usage("TTL is a number of seconds");
      ttl = static_cast<time_t>(*parsed);
    }
    if (args.size() >= 5) {
      const auto parsed = parse_number(args[4], UINT32_MAX);
      if (!parsed) return usage("FLAGS is a number from 0 to 4294967295");
      flags = static_cast<std::uint32_t>(*parsed);
    }
    const memcached_return_t rc =
        memcached_set(memc.get(), key.data(), key.size(), value.data(), value.size(), ttl, flags);
    if (rc != MEMCACHED_SUCCESS) return fail(memc.get(), rc, "set", key);
    return kOk;
  }

  if (command == "get" || command == "flags") {
    if (args.size() != 2) return usage("get and flags take KEY");
    std::size_t length = 0;
    std::uint32_t flags = 0;
    memcached_return_t rc = MEMCACHED_SUCCESS;
    char* value = memcached_get(memc.get(), key.data(), key.size(), &length, &flags, &rc);
    std::unique_ptr<char, void (*)(void*)> owned(value, std::free);
    if (rc == MEMCACHED_NOTFOUND) return kMiss;
    if (rc != MEMCACHED_SUCCESS) return fail(memc.get(), rc, "get", key);
    if (command == "flags") {
      std::cout << flags << "\n";
    } else if (length > 0) {
      std::cout.write(value, static_cast<std::streamsize>(length));
    }
    std::cout.flush();
    return std::cout ? kOk : kFail;
  }

  if (command == "delete") {
    if (args.size() != 2) return usage("delete takes KEY");
    const memcached_return_t rc = memcached_delete(memc.get(), key.data(), key.size(), 0);
    if (rc == MEMCACHED_NOTFOUND) return kMiss;
    if (rc != MEMCACHED_SUCCESS) return fail(memc.get(), rc, "delete", key);
    return kOk;
  }

  return usage("unknown command (set, get, flags, delete, server)");
}
