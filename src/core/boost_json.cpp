// Boost.JSON compiled into the project once (header-only mode).
#include <boost/json/src.hpp>
