// The loopback ports the test servers take: each is claimed by the process that drew it, against every other test
// process running side by side, until that process exits.
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "redis_server.h"

namespace apigw::test_servers {
namespace {

TEST(FreePort, AClaimedPortIsNotHandedOutAgainHereOrInAnotherProcess) {
  const std::uint16_t port = free_port();
  {
    const std::lock_guard lock(port_mutex());
    EXPECT_FALSE(claim_port(port));
  }
  EXPECT_NE(free_port(), port);

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // A new process with no claims of its own: the lock file is still held by the parent.
    const bool claimed = ::flock(::open(port_lock_file(port).c_str(), O_RDWR), LOCK_EX | LOCK_NB) == 0;
    ::_exit(claimed ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "another process could lock port " << port;
}

}  // namespace
}  // namespace apigw::test_servers
