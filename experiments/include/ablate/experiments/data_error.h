#pragma once
// The one error type of the dataset readers: a missing, malformed or truncated dataset. Messages
// name the path and, where one exists, the Debian package or the file format that provides it.
// Torch-free header.
#include <stdexcept>

namespace ablate::experiments {

struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace ablate::experiments
