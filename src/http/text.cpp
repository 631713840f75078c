// HTTP's text vocabulary (see text.h).
#include "apigw/http/text.h"

#include <algorithm>

namespace apigw::http {

std::string lower_case(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
  return out;
}

}  // namespace apigw::http
