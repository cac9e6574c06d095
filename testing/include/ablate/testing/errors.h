#pragma once
// What a call under test throws, for tests that check error messages (header-only; needs gtest).
#include <gtest/gtest.h>

#include <string>

namespace ablate::testing {

// The E that `f` throws; a failed test and `fallback` when it throws none.
template <typename E, typename F>
E thrown(F f, E fallback) {
  try {
    f();
  } catch (const E& e) {
    return e;
  }
  ADD_FAILURE() << "the expected exception was not thrown";
  return fallback;
}

// The message of the E that `f` throws; a failed test and "" when it throws none.
template <typename E, typename F>
std::string thrown_message(F f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "the expected exception was not thrown";
  return "";
}

}  // namespace ablate::testing
