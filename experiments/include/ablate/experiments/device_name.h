#pragma once
// The spelling of a device name (train.device, `ablate run --devices`), checked without LibTorch:
// the `ablate` command refuses a misspelt device before anything is written, and asks
// `ablate-train` (which loads LibTorch) only about CUDA devices (device_problem, train.h).
// Torch-free.
#include <string>

namespace ablate::experiments {

// "" when `name` is auto, cpu, cuda or cuda:N; else why not, written to follow "train.device = "
// or "--devices ": "gpu, which is neither auto, cpu, cuda nor cuda:N".
std::string device_name_problem(const std::string& name);

// Whether the machine must be asked about `name` (a well-spelt CUDA device); auto and cpu can
// always be used.
bool is_cuda_device_name(const std::string& name);

}  // namespace ablate::experiments
