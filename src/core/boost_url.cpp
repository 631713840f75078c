// Boost.URL compiled into the project once (header-only mode).
#include <boost/url/src.hpp>
