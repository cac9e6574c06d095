// The attention core on a CUDA GPU: state placement, agreement with the CPU, the CUDA generator
// behind pgqa's noise, and no host synchronisation inside the forward of the dynamic and
// perturbed variants (a layer must never wait for the GPU). Every test is skipped, with a message
// saying so, where there is no GPU; the code compiles in every CUDA build (CI's PyPI build).
#include <gtest/gtest.h>
#include <torch/torch.h>
#if defined(ABLATE_WITH_CUDA)
#include <c10/cuda/CUDAFunctions.h>
#endif

#include <sstream>

#include "ablate/core/attention.h"
#include "ablate/testing/cuda.h"
#include "test_support.h"

namespace ablate::core {
namespace {

using testing::copy_parameters;
using testing::max_abs_diff;
using testing::random_input;
using testing::randomize;

TEST(Cuda, ModuleStateMovesToTheGpuWithItsTypes) {
  ABLATE_SKIP_WITHOUT_CUDA();
  const torch::Device gpu(torch::kCUDA, 0);
  Attention m(AttentionOptions(64, 8).variant(Variant::kDgqa).kv_heads(2).qk_norm(true));
  m->to(gpu, torch::kBFloat16);
  for (const auto& p : m->named_parameters()) {
    EXPECT_TRUE(p.value().is_cuda()) << p.key();
    EXPECT_EQ(p.value().scalar_type(), torch::kBFloat16) << p.key();
  }
  for (const auto& b : m->named_buffers()) EXPECT_TRUE(b.value().is_cuda()) << b.key();
  EXPECT_EQ(m->counts.scalar_type(), torch::kLong);
  EXPECT_EQ(m->cache.scalar_type(), torch::kFloat);
  auto y = m->forward(random_input(2, 9, 64, 1).to(gpu, torch::kBFloat16));
  EXPECT_TRUE(y.is_cuda());
  EXPECT_TRUE(m->allocation().is_cuda());
}

// The same weights and input give the same output (and the same allocations) on GPU and CPU, in
// fp32, on every variant; pgqa is left out (its noise comes from another generator).
TEST(Cuda, EveryVariantAgreesWithTheCpu) {
  ABLATE_SKIP_WITHOUT_CUDA();
  const torch::Device gpu(torch::kCUDA, 0);
  auto o = [](Variant v) { return AttentionOptions(64, 8).variant(v).causal(true).rope(true); };
  for (const auto& options :
       {o(Variant::kMha), o(Variant::kGqa).kv_heads(2), o(Variant::kMqa), o(Variant::kMkva),
        o(Variant::kGkva).q_heads(2), o(Variant::kGqkva).q_groups(2).kv_groups(4),
        o(Variant::kKdgqa).kv_heads(2), o(Variant::kDgqa).kv_heads(2).ema_window(1),
        o(Variant::kWgqa).kv_heads(2)}) {
    Attention cpu(options), cuda(options);
    randomize(*cpu, 3);
    copy_parameters(*cpu, *cuda);
    cuda->to(gpu);
    for (int step = 0; step < 3; ++step) {
      auto x = random_input(2, 33, 64, 10 + step);
      auto a = cpu->forward(x), b = cuda->forward(x.to(gpu));
      EXPECT_LT(max_abs_diff(a, b.cpu()), 1e-4) << *cpu << " step " << step;
      EXPECT_TRUE(torch::equal(cpu->allocation(), cuda->allocation().cpu())) << *cpu;
    }
  }
}

// pgqa's noise comes from the CUDA generator: the same seed gives the same perturbation, another
// seed another one.
TEST(Cuda, PgqaNoiseFollowsTheSeedOnTheGpu) {
  ABLATE_SKIP_WITHOUT_CUDA();
  const torch::Device gpu(torch::kCUDA, 0);
  for (auto target : {NoiseTarget::kOutput, NoiseTarget::kScores}) {
    Attention m(AttentionOptions(64, 8).variant(Variant::kPgqa).kv_heads(2).noise_target(target));
    m->to(gpu);
    auto x = random_input(2, 9, 64, 2).to(gpu);
    auto with_seed = [&](uint64_t seed) {
      torch::manual_seed(seed);
      return m->forward(x);
    };
    EXPECT_TRUE(torch::equal(with_seed(5), with_seed(5)));
    EXPECT_GT(max_abs_diff(with_seed(5), with_seed(6)), 1e-4);
  }
}

#if defined(ABLATE_WITH_CUDA)
std::vector<AttentionOptions> dynamic_and_perturbed() {
  auto o = [](Variant v) { return AttentionOptions(64, 8).variant(v).kv_heads(2); };
  return {
      o(Variant::kKdgqa).causal(true).rope(true),
      o(Variant::kKdgqa).faithful(true),
      o(Variant::kDgqa).ema_window(2).causal(true).rope(true),
      o(Variant::kDgqa).ema_window(2).dgqa_mode(DgqaMode::kDiff),
      o(Variant::kPgqa).causal(true),
      o(Variant::kPgqa).noise_target(NoiseTarget::kScores).causal(true),
      o(Variant::kPgqa).faithful(true),
  };
}

// Faithful dgqa is left out: it fixes its rounded total on the host, as the authors' code does.
// Sync debug mode "error" turns every host synchronisation (a device-to-host copy, .item(), a
// synchronising host-to-device copy) into an exception.
class SyncIsAnError {
 public:
  SyncIsAnError() {
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR);
  }
  ~SyncIsAnError() {
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
  }
  SyncIsAnError(const SyncIsAnError&) = delete;
  SyncIsAnError& operator=(const SyncIsAnError&) = delete;
};
#endif

TEST(Cuda, DynamicAndPerturbedForwardsNeverSynchroniseWithTheHost) {
  ABLATE_SKIP_WITHOUT_CUDA();
#if defined(ABLATE_WITH_CUDA)
  const torch::Device gpu(torch::kCUDA, 0);
  for (const auto& options : dynamic_and_perturbed()) {
    Attention m(options);
    m->to(gpu);
    auto x = random_input(2, 17, 64, 4).to(gpu).requires_grad_(true);
    m->forward(x);  // the first forward builds and uploads the RoPE tables, once
    for (bool training : {true, false}) {
      m->train(training);
      std::ostringstream what;
      what << *m << (training ? " training" : " eval");
      try {
        SyncIsAnError guard;
        for (int step = 0; step < 4; ++step) {
          auto y = m->forward(x);
          if (training) y.sum().backward();
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << what.str() << " synchronised with the host: " << e.what();
      }
    }
    torch::cuda::synchronize();
  }
#endif
}

}  // namespace
}  // namespace ablate::core
