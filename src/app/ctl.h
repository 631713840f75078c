// `apigw ctl -c FILE COMMAND`: reads and changes the fleet's state in Redis (fleet control).
#pragma once

namespace apigw::app {

// `args` are the words after "ctl". Returns the exit code: 0 done (or nothing to change), 1 refused or failed
// (the reason on stderr), 2 a usage error.
int run_ctl(int argc, char** argv);

}  // namespace apigw::app
