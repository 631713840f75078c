// A Redis reply, owned: what redis::Connection returns and the pure cluster code reads.
#pragma once

#include <string>
#include <vector>

namespace apigw::redis {

struct Reply {
  enum class Type { kNil, kString, kStatus, kError, kInteger, kArray };
  Type type = Type::kNil;
  std::string text;             // kString, kStatus, kError
  long long integer = 0;        // kInteger
  std::vector<Reply> elements;  // kArray
};

}  // namespace apigw::redis
