// ensemble_bench: images per second of a training step (forward, backward, AdamW) of the
// quickstart-sized ViT (dim 32, depth 2, heads 4, patch 7, batch 64, 28x28 images, 10 classes),
// one model (E = 0) against E members trained as one ensemble model (core/members.h). On the CPU
// always; on CUDA too when built with CUDA and a GPU is present, up to E = 64. The label gives
// the peak memory per member on CUDA (the process peak so far over E: E grows, so it is this E's).
// docs/benchmarks.md records the figures.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "ablate/experiments/device.h"
#include "ablate/experiments/models.h"
#include "member_optimizer.h"

namespace ablate::experiments {
namespace {

constexpr int64_t kBatch = 64;

Vit quickstart_vit(int64_t members) {
  VitOptions o;
  o.dim = 32;
  o.depth = 2;
  o.hidden = 128;
  o.patch = 7;
  o.attention = core::AttentionOptions(32, 4).variant(core::Variant::kGqa).kv_heads(2);
  o.members = members;
  return Vit(o);
}

void TrainStep(benchmark::State& state, const torch::Device& device) {
  const int64_t members = state.range(0), E = std::max<int64_t>(1, members);
  torch::manual_seed(0);
  Vit model = quickstart_vit(members);
  model->to(device);
  runner::TrainConfig t;
  auto optimizer = make_optimizer(*model, t, members > 0 ? 1 : 0);
  auto images = torch::randn({E * kBatch, 1, 28, 28}, device);
  auto labels =
      torch::randint(10, {E * kBatch}, torch::TensorOptions().dtype(torch::kLong).device(device));
  for (auto _ : state) {
    optimizer->zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(images), labels);
    loss.backward();
    optimizer->step();
    if (device.is_cuda()) torch::cuda::synchronize();
  }
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(E * kBatch),
                                                  benchmark::Counter::kIsIterationInvariantRate);
  if (device.is_cuda()) {
    state.SetLabel("peak MiB per member " +
                   std::to_string(peak_memory_bytes(device) / E / (1024 * 1024)));
  }
}

void register_all() {
  auto* cpu =
      benchmark::RegisterBenchmark("VitTrainStep/cpu", TrainStep, torch::Device(torch::kCPU));
  for (int64_t e : {0, 2, 3, 4, 8}) cpu->Arg(e);
  cpu->Unit(benchmark::kMillisecond);
  if (torch::cuda::is_available()) {
    auto* gpu = benchmark::RegisterBenchmark("VitTrainStep/cuda", TrainStep,
                                             torch::Device(torch::kCUDA, 0));
    for (int64_t e : {0, 8, 32, 64}) gpu->Arg(e);
    gpu->Unit(benchmark::kMillisecond);
  }
}

}  // namespace
}  // namespace ablate::experiments

int main(int argc, char** argv) {
  torch::set_num_threads(1);  // one job's share of a core, as `ablate run` gives CPU jobs
  benchmark::Initialize(&argc, argv);
  ablate::experiments::register_all();
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
