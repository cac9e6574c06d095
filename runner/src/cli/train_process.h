#pragma once
// `ablate` and `ablate-train` (docs/design.md section 7). Only training needs LibTorch, and
// loading it (about 290 shared libraries) costs half a second, so the `ablate` command is
// torch-free and `ablate train` hands over to the `ablate-train` executable beside it, which
// links LibTorch: plan, run, status, query, report, import, schema and --help start in
// milliseconds. The user and `ablate run` only ever type `ablate train`.
#include <map>
#include <string>
#include <vector>

namespace ablate::cli {

// The `ablate-train` beside this executable (the build puts both in one folder).
std::string train_binary();

// Sets, in this process's environment, what a training process needs before LibTorch loads
// (each only when the user has not set it): OMP_WAIT_POLICY=PASSIVE, and OPENBLAS_CORETYPE where
// OpenBLAS would pick kernels below the CPU (experiments/blas_kernels.h).
void prepare_train_environment();

// Replaces this process by `ablate-train ARGS...` (the same pid: `ablate run`'s pid files and
// kills stay right), after prepare_train_environment. Returns only when that fails, with
// kFailure after saying why.
int exec_train(const std::vector<std::string>& args);

// Why each device in `names` cannot be used here ("" when it can), as
// experiments::device_problem says it. Misspelt names, auto and cpu are answered without LibTorch;
// CUDA devices by one `ablate-train --device-problems NAME...` for all of them.
std::map<std::string, std::string> device_problems(const std::vector<std::string>& names);

// `ablate-train --device-problems`'s answer for one device: a line of its own, so LibTorch's
// warnings on the same stream (CUDA initialisation) cannot be mistaken for it.
std::string device_problem_line(const std::string& name, const std::string& problem);

}  // namespace ablate::cli
