// Devices and precision: train.precision on the CPU (bf16 autocast against fp32), the device
// choice and its errors, and the CUDA paths, which run where a GPU is present and are skipped,
// with a message saying so, where none is.
#include "ablate/experiments/device.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "ablate/experiments/train.h"
#include "ablate/runner/config.h"
#include "ablate/testing/cuda.h"
#include "ablate/testing/temp_dir.h"
#include "train_test_support.h"

namespace ablate::experiments {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using ablate::testing::TempDir;

void write_corpus(const fs::path& file) { test_helpers::write_word_corpus(file); }

runner::Config lm_config(const fs::path& corpus, const std::string& precision,
                         const std::string& device = "cpu") {
  runner::Config c;
  c.task = "lm";
  c.data.dataset = "text";
  c.data.path = corpus.string();
  c.data.seq_len = 32;
  c.model.dim = 64;
  c.model.depth = 2;
  c.model.heads = 4;
  c.attention.variant = "gqa";
  c.attention.kv_heads = 2;
  c.train.steps = 60;
  c.train.batch_size = 8;
  c.train.lr = 3e-3;
  c.train.warmup = 5;
  c.train.eval_every = 60;
  c.train.eval_batches = 4;
  c.train.checkpoint_every = 0;
  c.train.log_every = 10;
  c.train.device = device;
  c.train.precision = precision;
  return c;
}

struct Run {
  TrainResult result;
  json summary;
};

Run train_in(const runner::Config& c, const fs::path& dir) {
  return {test_helpers::run_quietly(c, dir), test_helpers::read_json(dir / "summary.json")};
}

TEST(Precision, AutoIsBf16OnCudaAndFp32OnTheCpu) {
  EXPECT_FALSE(uses_bf16_autocast("auto", torch::kCPU));
  EXPECT_TRUE(uses_bf16_autocast("auto", torch::Device("cuda:0")));
  EXPECT_TRUE(uses_bf16_autocast("bf16", torch::kCPU));
  EXPECT_FALSE(uses_bf16_autocast("fp32", torch::Device("cuda:0")));
  EXPECT_THROW(uses_bf16_autocast("fp16", torch::kCPU), std::invalid_argument);
}

TEST(Precision, AutocastScopeCastsMatrixProductsOnlyInsideItsScope) {
  auto a = torch::randn({4, 8}), b = torch::randn({8, 3});
  {
    AutocastScope scope(torch::kCPU, true);
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat);
  AutocastScope off(torch::kCPU, false);
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat);
}

// A short lm run in bf16 autocast ends within 3% of the fp32 run's held-out loss (bf16 keeps 8
// bits of mantissa: its matrix products differ from fp32 by ~0.4% per element, which training
// for 60 steps must absorb, not amplify), and differs from it (autocast was on).
TEST(Precision, Bf16TrainingOnTheCpuStaysCloseToFp32) {
  TempDir tmp;
  write_corpus(tmp.path() / "corpus.txt");
  auto fp32 = train_in(lm_config(tmp.path() / "corpus.txt", "fp32"), tmp.path() / "fp32");
  auto bf16 = train_in(lm_config(tmp.path() / "corpus.txt", "bf16"), tmp.path() / "bf16");
  auto autod = train_in(lm_config(tmp.path() / "corpus.txt", "auto"), tmp.path() / "auto");
  ASSERT_EQ(fp32.result.status, "done");
  ASSERT_EQ(bf16.result.status, "done");
  EXPECT_EQ(fp32.summary["precision"], "fp32");
  EXPECT_EQ(bf16.summary["precision"], "bf16");
  EXPECT_EQ(autod.summary["precision"], "fp32");  // auto on the CPU
  const double a = fp32.result.final.at("val_loss"), b = bf16.result.final.at("val_loss");
  // The model learned (the uniform guess over 256 bytes is ln 256 = 5.55 nats).
  EXPECT_LT(a, 3.0);
  EXPECT_LE(std::abs(b - a), 0.03 * a) << "fp32 " << a << ", bf16 " << b;
  EXPECT_NE(a, b);
  EXPECT_EQ(autod.result.final, fp32.result.final);  // auto on the CPU is exactly fp32
}

TEST(Device, CudaWithoutAGpuIsAClearError) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this machine has a GPU";
  try {
    choose_device("cuda:0");
    FAIL() << "no error";
  } catch (const RunError& e) {
    EXPECT_NE(std::string(e.what()).find("train.device = cuda:0"), std::string::npos) << e.what();
  }
  EXPECT_EQ(choose_device("auto"), torch::Device(torch::kCPU));
  EXPECT_TRUE(describe_device(torch::kCPU).gpu_name.empty());
}

TEST(Device, PeakMemoryOfTheCpuIsTheResidentSetPeak) {
  const int64_t before = peak_memory_bytes(torch::kCPU);
  EXPECT_GT(before, 0);
  auto big = torch::ones({64, 1024, 1024});  // 256 MiB, touched
  EXPECT_GE(peak_memory_bytes(torch::kCPU), before);
  EXPECT_GT(peak_memory_bytes(torch::kCPU), 256LL << 20);
}

TEST(Device, CpuThreadsSetLibTorchsPoolAndOpenBlassToo) {
  const int before = torch::get_num_threads();
  set_cpu_threads(1);
  EXPECT_EQ(torch::get_num_threads(), 1);
  using GetThreads = int (*)();
  auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (get != nullptr) {
    EXPECT_EQ(get(), 1);
    set_cpu_threads(2);
    EXPECT_EQ(get(), 2);
  }
  set_cpu_threads(before);
  if (get == nullptr) GTEST_SKIP() << "the BLAS loaded is not OpenBLAS (LibTorch's pool checked)";
}

TEST(Cuda, DescribesTheGpuAndCountsItsPeakMemory) {
  ABLATE_SKIP_WITHOUT_CUDA();
  const torch::Device gpu("cuda:0");
  const auto info = describe_device(gpu);
  EXPECT_FALSE(info.gpu_name.empty());
  EXPECT_FALSE(info.cuda_version.empty());
  auto big = torch::ones({64, 1024, 1024}, torch::TensorOptions().device(gpu));
  EXPECT_GE(peak_memory_bytes(gpu), 256LL << 20);
}

// The lm on the GPU in bf16 (the default there) learns as it does on the CPU in fp32.
TEST(Cuda, LmTrainsInBf16OnTheGpu) {
  ABLATE_SKIP_WITHOUT_CUDA();
  TempDir tmp;
  write_corpus(tmp.path() / "corpus.txt");
  auto cpu = train_in(lm_config(tmp.path() / "corpus.txt", "fp32"), tmp.path() / "cpu");
  auto gpu = train_in(lm_config(tmp.path() / "corpus.txt", "auto", "cuda"), tmp.path() / "gpu");
  EXPECT_EQ(gpu.summary["precision"], "bf16");
  EXPECT_EQ(gpu.summary["device"], "cuda");
  EXPECT_FALSE(gpu.summary["gpu_name"].get<std::string>().empty());
  const double a = cpu.result.final.at("val_loss"), b = gpu.result.final.at("val_loss");
  EXPECT_LE(std::abs(b - a), 0.05 * a) << "cpu fp32 " << a << ", gpu bf16 " << b;
}

}  // namespace
}  // namespace ablate::experiments
