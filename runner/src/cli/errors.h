#pragma once
// The one error policy of the command line (docs/design.md section 7), shared by `ablate` and
// `ablate-train`: every error a command lets escape becomes a message on stderr and an exit
// status: 2 for bad input (nothing was written), 1 for a failure while running.
#include <functional>
#include <string>

namespace ablate::cli {

// Runs `body` (a command `command`, e.g. "train") and returns its exit status, or the status of
// the error it threw after printing what and where.
int guarded(const std::string& command, const std::function<int()>& body);

}  // namespace ablate::cli
