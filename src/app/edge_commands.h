// `apigw edge-export` and `apigw route-test`: the route table exported for the edge, and tested before it ships.
#pragma once

namespace apigw::app {

// `args` are the words after the command's name. Each returns the exit code: 0 done (every case passed), 1 a
// config with errors, a failed case or an output that could not be written (the reason on stderr), 2 a usage error.
int run_edge_export(int argc, char** argv);
int run_route_test(int argc, char** argv);

}  // namespace apigw::app
