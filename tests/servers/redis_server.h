// Real redis-servers for a test: one started on a free loopback port with no persistence, stopped by its PID; or a
// Redis Cluster of such servers in a temporary directory (removed afterwards).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace apigw::test_servers {

// The lower end of the kernel's range for the local ports of outgoing connections (ip_local_port_range).
inline int ephemeral_low() {
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  return range >> low && low > 0 ? low : 32768;
}

inline sockaddr_in loopback_address(std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  return address;
}

// Whether a listener could bind 127.0.0.1:port now.
inline bool bindable(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const sockaddr_in address = loopback_address(port);
  const bool ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

// The file whose lock claims `port` (see claim_port).
inline std::string port_lock_file(std::uint16_t port) {
  // Per user, so that each can create its files.
  const std::filesystem::path directory =
      std::filesystem::temp_directory_path() / ("apigw-test-ports-" + std::to_string(::getuid()));
  std::error_code ignored;
  std::filesystem::create_directory(directory, ignored);
  return (directory / std::to_string(port)).string();
}

// Reserves `port` for this process against every other test process of this user (the Python harness takes the
// same locks): an exclusive lock on a file named after it, held until this process exits. False if another
// process, or this one, holds it already, or if the port is not bindable now. The caller holds the mutex.
inline bool claim_port(std::uint16_t port) {
  static std::map<std::uint16_t, int> claimed;  // port -> descriptor holding its lock
  if (claimed.contains(port)) return false;
  const std::string file = port_lock_file(port);
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot open the port lock " + file);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0 || !bindable(port)) {
    ::close(fd);
    return false;
  }
  claimed.emplace(port, fd);
  return true;
}

inline std::mutex& port_mutex() {
  static std::mutex mutex;
  return mutex;
}

// A loopback port that was free a moment ago and is now claimed by this process (`claim_port`), so no other test
// process, running side by side, and no other caller here gets it. It is drawn at random below the ephemeral range
// (and below `below`): a port the kernel hands out for bind(0) is one it may give, before the test's server binds
// it, to the local end of another test's outgoing connection.
inline std::uint16_t free_port(int below = 65536) {
  static std::mt19937 choice{std::random_device{}()};
  constexpr int kLowest = 10000;
  const std::lock_guard lock(port_mutex());
  const int ceiling = std::min(ephemeral_low(), below);
  if (ceiling - kLowest >= 1000) {
    std::uniform_int_distribution<int> draw(kLowest, ceiling - 1);
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const auto port = static_cast<std::uint16_t>(draw(choice));
      if (claim_port(port)) return port;
    }
  }
  for (int attempt = 0; attempt < 100; ++attempt) {  // no room below the ephemeral range: the kernel's choice
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address = loopback_address(0);
    socklen_t length = sizeof address;
    ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    ::close(fd);
    const std::uint16_t port = ntohs(address.sin_port);
    if (port < below && claim_port(port)) return port;
  }
  throw std::runtime_error("no free port that no test process has claimed");
}

inline bool accepts(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const sockaddr_in address = loopback_address(port);
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

// A server program run by a test: forked and executed (found on PATH) with its arguments, ready once it accepts on
// its loopback port, and stopped by SIGKILL to its own PID and reaped, with everything it held, as a crashed server
// would stop.
class ServerProcess {
 public:
  ServerProcess() = default;
  ~ServerProcess() { stop(); }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Throws when the program does not accept connections on `port` within 2 s.
  void start(std::vector<std::string> args, std::uint16_t port) {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !accepts(port); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!accepts(port)) throw std::runtime_error(args[0] + " did not start on port " + std::to_string(port));
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // SIGSTOP, returning once the whole process has stopped. kill() returns before that: a multi-threaded server
  // stops only when each of its threads has run to take the signal, and meanwhile one of them could still answer a
  // request sent right after kill(). As the parent, waitpid(WUNTRACED) sees the stop once every thread has stopped.
  void pause() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGSTOP);
    int status = 0;
    ::waitpid(pid_, &status, WUNTRACED);
  }

  void resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
  }

  bool running() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

class RedisServer {
 public:
  explicit RedisServer(std::vector<std::string> extra = {}, std::uint16_t port = 0)
      : port_(port ? port : free_port()), extra_(std::move(extra)) {
    start();
  }

  std::uint16_t port() const { return port_; }

  void start() {
    std::vector<std::string> args{"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    process_.start(std::move(args), port_);
  }

  void stop() { process_.stop(); }

  bool running() const { return process_.running(); }

 private:
  std::uint16_t port_;
  std::vector<std::string> extra_;
  ServerProcess process_;
};

// Runs `args` (a program on PATH and its arguments) to completion; returns its output. Throws when it
// cannot be started or exits with a failure status.
inline std::string run_program(const std::vector<std::string>& args) {
  int out[2];
  if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(out[1], STDERR_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    std::vector<char*> argv;
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) != 0;) {
    if (n > 0) text.append(buffer, static_cast<std::size_t>(n));
    else if (errno != EINTR) break;
  }
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error(args[0] + " " + (args.size() > 1 ? args[1] : "") + " failed: " + text);
  }
  return text;
}

// `redis-cli -p port args...`, its output without the trailing newline.
template <class... Args>
std::string redis_cli(std::uint16_t port, const Args&... args) {
  std::string text = run_program({"redis-cli", "-p", std::to_string(port), std::string(args)...});
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// A Redis Cluster on loopback: `masters` masters with `replicas` replicas each, node timeout 1 s, node configs and
// logs in a temporary directory. Construction returns once the cluster has settled (see wait_settled).
class RedisCluster {
 public:
  using Owners = std::array<std::uint16_t, 16384>;  // slot -> master port (0: none)

  explicit RedisCluster(int masters = 3, int replicas = 1) {
    char dir[] = "/tmp/apigw-redis-cluster-XXXXXX";
    if (::mkdtemp(dir) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = dir;
    try {
      std::vector<std::string> create{"redis-cli", "--cluster", "create"};
      for (int i = 0; i < masters * (1 + replicas); ++i) {
        const std::uint16_t port = cluster_port();
        const std::string name = (dir_ / ("node-" + std::to_string(port))).string();
        nodes_.push_back(std::make_unique<RedisServer>(
            std::vector<std::string>{"--cluster-enabled", "yes", "--cluster-config-file", name + ".conf",
                                     "--cluster-node-timeout", "1000", "--repl-diskless-sync-delay", "0",
                                     "--dir", dir_.string(), "--logfile", name + ".log"},
            port));
        create.push_back("127.0.0.1:" + std::to_string(port));
      }
      create.insert(create.end(), {"--cluster-replicas", std::to_string(replicas), "--cluster-yes"});
      run_program(create);
      wait_settled();
    } catch (...) {
      remove();
      throw;
    }
  }
  ~RedisCluster() { remove(); }
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  std::vector<std::uint16_t> ports() const {
    std::vector<std::uint16_t> ports;
    for (const auto& node : nodes_) ports.push_back(node->port());
    return ports;
  }
  RedisServer& node(std::uint16_t port) {
    for (auto& node : nodes_) {
      if (node->port() == port) return *node;
    }
    throw std::runtime_error("no cluster node on port " + std::to_string(port));
  }
  // Any running node.
  std::uint16_t live_port() const {
    for (const auto& node : nodes_) {
      if (node->running()) return node->port();
    }
    throw std::runtime_error("no cluster node is running");
  }

  std::string node_id(std::uint16_t port) const { return redis_cli(port, "CLUSTER", "MYID"); }

  // Slot owners as the node on `port` sees them (from CLUSTER NODES; failed masters serve nothing).
  static Owners owners(std::uint16_t port) {
    Owners owners{};
    std::istringstream lines(redis_cli(port, "CLUSTER", "NODES"));
    for (std::string line; std::getline(lines, line);) {
      std::istringstream fields(line);
      std::string id, address, flags, master, ping, pong, epoch, link;
      fields >> id >> address >> flags >> master >> ping >> pong >> epoch >> link;
      if (flags.find("master") == std::string::npos || flags.find("fail") != std::string::npos) continue;
      const auto node_port = static_cast<std::uint16_t>(std::stoi(address.substr(address.find(':') + 1)));
      for (std::string range; fields >> range;) {
        if (range.front() == '[') continue;  // a migration in progress, not ownership
        const std::size_t dash = range.find('-');
        const int first = std::stoi(range.substr(0, dash));
        const int last = dash == std::string::npos ? first : std::stoi(range.substr(dash + 1));
        for (int slot = first; slot <= last; ++slot) owners[static_cast<std::size_t>(slot)] = node_port;
      }
    }
    return owners;
  }
  // The master serving `slot`, as a live node sees it.
  std::uint16_t master_of(std::uint16_t slot) const { return owners(live_port())[slot]; }
  std::vector<std::uint16_t> masters() const {
    const Owners all = owners(live_port());
    const std::set<std::uint16_t> unique(all.begin(), all.end());
    return {unique.begin(), unique.end()};
  }

  // Waits until every running node reports cluster_state:ok, sees no failed node, and all agree on the owner of
  // every slot, and every replica is in sync with its master. Throws after `limit`.
  void wait_settled(std::chrono::milliseconds limit = std::chrono::seconds(20)) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!settled()) {
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("the cluster did not settle");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  // Resharding by hand: `slot` starts moving from the master on `from` to the one on `to`; `keys` move along;
  // finish_migration() hands the slot to `to` on every master.
  void begin_migration(std::uint16_t slot, std::uint16_t from, std::uint16_t to) const {
    const std::string text = std::to_string(slot);
    redis_cli(to, "CLUSTER", "SETSLOT", text, "IMPORTING", node_id(from));
    redis_cli(from, "CLUSTER", "SETSLOT", text, "MIGRATING", node_id(to));
  }
  void migrate_keys(std::uint16_t from, std::uint16_t to, const std::vector<std::string>& keys) const {
    std::vector<std::string> args{"redis-cli", "-p", std::to_string(from), "MIGRATE", "127.0.0.1",
                                  std::to_string(to), "", "0", "5000", "KEYS"};
    args.insert(args.end(), keys.begin(), keys.end());
    const std::string reply = run_program(args);
    if (reply.rfind("OK", 0) != 0) throw std::runtime_error("MIGRATE failed: " + reply);
  }
  void finish_migration(std::uint16_t slot, std::uint16_t to) const {
    const std::string id = node_id(to);
    redis_cli(to, "CLUSTER", "SETSLOT", std::to_string(slot), "NODE", id);
    for (const std::uint16_t master : masters()) {
      if (master != to) redis_cli(master, "CLUSTER", "SETSLOT", std::to_string(slot), "NODE", id);
    }
  }

 private:
  // A free port whose cluster bus port (port + 10000) is free too, both claimed (`claim_port`), below the ephemeral
  // range if there is room.
  static std::uint16_t cluster_port() {
    const int bus_ceiling = ephemeral_low() >= 21000 ? ephemeral_low() : 65536;
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const std::uint16_t port = free_port(bus_ceiling - 10000);
      const std::lock_guard lock(port_mutex());
      if (claim_port(static_cast<std::uint16_t>(port + 10000))) return port;
    }
    throw std::runtime_error("no free port pair for a cluster node");
  }

  bool settled() const {
    try {
      std::optional<Owners> agreed;
      for (const auto& node : nodes_) {
        if (!node->running()) continue;
        if (redis_cli(node->port(), "CLUSTER", "INFO").find("cluster_state:ok") == std::string::npos) return false;
        if (redis_cli(node->port(), "CLUSTER", "NODES").find("fail") != std::string::npos) return false;
        const std::string replication = redis_cli(node->port(), "INFO", "replication");
        const bool replica = replication.find("role:slave") != std::string::npos;
        if (replica && replication.find("master_link_status:up") == std::string::npos) return false;
        const Owners seen = owners(node->port());
        if (std::find(seen.begin(), seen.end(), 0) != seen.end()) return false;
        if (agreed && *agreed != seen) return false;
        agreed = seen;
      }
      return agreed.has_value();
    } catch (const std::runtime_error&) {
      return false;  // a node still loading or restarting
    }
  }

  void remove() {
    for (auto& node : nodes_) node->stop();
    nodes_.clear();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::filesystem::path dir_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

}  // namespace apigw::test_servers
