// The fleet's state as an instance reads it from Redis (where anyone who can write to that Redis can put anything)
// or from its state file: fleet::decode on any text.
//
// Invariants: what decode refuses has a reason; a decoded state encodes to text that decodes to the same state;
// describing the change between two decoded override sets never fails, and finds nothing between equal ones.
#include <cstdint>
#include <string>

#include "apigw/fleet/state.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string why;
  const auto state = apigw::fleet::decode(apigw::fuzz::as_text(data, size), why);
  if (!state) {
    FUZZ_CHECK(!why.empty());
    return 0;
  }
  const auto again = apigw::fleet::decode(apigw::fleet::encode(*state), why);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(*again == *state);
  const auto items = apigw::fleet::describe_change(state->previous, state->overrides);
  if (state->previous == state->overrides) FUZZ_CHECK(items.empty());
  return 0;
}
