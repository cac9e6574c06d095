#include "ablate/experiments/device.h"

#include <ATen/autocast_mode.h>
#include <dlfcn.h>
#include <sys/resource.h>
#include <torch/cuda.h>
#include <torch/version.h>
#if defined(ABLATE_WITH_CUDA)
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <stdexcept>
#include <string>

#include "ablate/experiments/blas_kernels.h"
#include "ablate/experiments/device_name.h"
#include "ablate/experiments/train.h"

// LibTorch 2.4 replaced the per-device autocast setters with ones that take the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define ABLATE_AUTOCAST_BY_DEVICE_TYPE 1
#endif

namespace ablate::experiments {

#if defined(ABLATE_WITH_CUDA)
namespace {
// The index of a CUDA device; "cuda" without one means the current device.
c10::DeviceIndex cuda_index(const torch::Device& device) {
  return device.has_index() ? device.index() : c10::cuda::current_device();
}
}  // namespace
#endif

std::string device_problem(const std::string& name) {
  if (!is_cuda_device_name(name)) return device_name_problem(name);  // "" for auto and cpu
  if (!torch::cuda::is_available()) {
#if defined(ABLATE_WITH_CUDA)
    return name + ", but this machine has no CUDA device";
#else
    return name + ", but this ablate was built against a LibTorch without CUDA (" TORCH_VERSION
                  "); see the README, 'Building against your own PyTorch'";
#endif
  }
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  const std::string index = name == "cuda" ? "" : name.substr(5);  // digits, checked above
  if (!index.empty() && (index.size() > 6 || std::stoll(index) >= count)) {
    return name + ", but this machine has " + std::to_string(count) + " CUDA device" +
           (count == 1 ? " (cuda:0)" : "s (cuda:0 to cuda:" + std::to_string(count - 1) + ")");
  }
  return "";
}

void set_cpu_threads(int threads) {
  torch::set_num_threads(threads);
  // Looked up, not linked: the BLAS behind LibTorch may be OpenBLAS, MKL or the reference one.
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(threads);
  }
}

torch::Device choose_device(const std::string& name) {
  if (name == "auto") return torch::cuda::is_available() ? torch::Device("cuda") : torch::kCPU;
  const std::string problem = device_problem(name);
  if (!problem.empty()) throw RunError("train.device = " + problem);
  return torch::Device(name);
}

int64_t peak_memory_bytes(const torch::Device& device) {
#if defined(ABLATE_WITH_CUDA)
  if (device.is_cuda()) {
    return c10::cuda::CUDACachingAllocator::getDeviceStats(cuda_index(device))
        .allocated_bytes[0]
        .peak;
  }
#endif
  (void)device;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

DeviceInfo describe_device(const torch::Device& device) {
  DeviceInfo info;
#if defined(ABLATE_WITH_CUDA)
  if (device.is_cuda()) {
    info.gpu_name = at::cuda::getDeviceProperties(cuda_index(device))->name;
    info.cuda_version =
        std::to_string(CUDA_VERSION / 1000) + "." + std::to_string(CUDA_VERSION % 1000 / 10);
  }
#endif
  if (device.is_cpu()) info.openblas_core = openblas_core_in_use();
  return info;
}

bool uses_bf16_autocast(const std::string& precision, const torch::Device& device) {
  if (precision == "auto") return device.is_cuda();
  if (precision == "bf16") return true;
  if (precision == "fp32") return false;
  throw std::invalid_argument("train.precision = " + precision + ": expected auto, fp32 or bf16");
}

namespace {

void set_autocast(torch::DeviceType type, bool enabled) {
#if defined(ABLATE_AUTOCAST_BY_DEVICE_TYPE)
  at::autocast::set_autocast_dtype(type, at::kBFloat16);
  at::autocast::set_autocast_enabled(type, enabled);
#else
  if (type == torch::kCUDA) {
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}

}  // namespace

AutocastScope::AutocastScope(const torch::Device& device, bool on) : type_(device.type()), on_(on) {
  if (on_) set_autocast(type_, true);
}

AutocastScope::~AutocastScope() {
  if (!on_) return;
  set_autocast(type_, false);
  // The casts cached for this forward (weights cast to bf16) are stale after the optimiser step.
  at::autocast::clear_cache();
}

}  // namespace ablate::experiments
