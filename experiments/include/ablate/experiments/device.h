// Where a run trains and in what precision: the device, its peak memory and description, and
// bf16 autocast. Every CUDA-only call of the training code lives behind these functions (in
// device.cpp), so a build without CUDA and one with it differ in one file, and the CUDA build
// compiles (and CI checks) every CUDA path even on a machine without a GPU.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>

namespace ablate::experiments {

// train.device: "auto" (cuda when there is one), "cpu", "cuda" or "cuda:N". Throws RunError when
// device_problem (train.h) finds one: a CUDA device asked for and none there (or this build has
// no CUDA), or cuda:N beyond the devices there are.
torch::Device choose_device(const std::string& name);

// CPU threads: LibTorch's intra-op pool (and through it OpenMP and MKL) and, when the BLAS loaded
// is OpenBLAS, its pool too: OPENBLAS_NUM_THREADS is read when the library loads, so an `ablate
// train` started by hand with train.threads=1 would otherwise keep a worker per core (`ablate
// run` also sets the variables in each job's environment).
void set_cpu_threads(int threads);

// Peak memory so far: on CUDA the caching allocator's peak of allocated bytes on that device; on
// the CPU the process's peak resident set size.
int64_t peak_memory_bytes(const torch::Device& device);

// What a summary records about the accelerator; empty strings on the CPU.
struct DeviceInfo {
  std::string gpu_name;      // e.g. "NVIDIA H100 80GB HBM3"
  std::string cuda_version;  // the CUDA runtime LibTorch was built with, e.g. "13.0"
  // On the CPU, the kernels of the OpenBLAS doing the matrix products, e.g. "SkylakeX" (they
  // decide the last bits of a run's results); "" with another BLAS (MKL) or on CUDA.
  std::string openblas_core;
};
DeviceInfo describe_device(const torch::Device& device);

// train.precision: "fp32" never autocasts; "bf16" autocasts to bfloat16 on any device (matrix
// products in bf16, parameters, optimiser state and the loss in fp32); "auto" is bf16 on CUDA and
// fp32 on the CPU. Throws std::invalid_argument for anything else.
bool uses_bf16_autocast(const std::string& precision, const torch::Device& device);

// bf16 autocast on `device` for the scope of a forward pass (PyTorch's `torch.autocast`); does
// nothing when `on` is false. Not nestable with another AutocastScope on the same thread.
class AutocastScope {
 public:
  AutocastScope(const torch::Device& device, bool on);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  torch::DeviceType type_;
  bool on_;
};

}  // namespace ablate::experiments
