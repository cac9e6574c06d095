#pragma once
// Small helpers the runner shares for external commands (git, sbatch, squeue, scancel) and the
// files their jobs leave behind. Torch-free.
#include <string>
#include <vector>

namespace ablate::runner {

struct CommandResult {
  int status = -1;     // exit status; 127 when the program was not found; -1 when it did not exit
  std::string output;  // stdout and stderr together
};

// Runs argv through /bin/sh with every word quoted (so names need no care), stdin from
// /dev/null, and waits for it.
CommandResult run_command(const std::vector<std::string>& argv);

// A single-quoted shell word: 'it'\''s'.
std::string shell_quote(const std::string& s);

// The whole file; "" when it is missing or unreadable (a pid file, an exit status not yet there).
std::string read_text(const std::string& path);

}  // namespace ablate::runner
