#include "ablate/experiments/decode.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <chrono>
#include <stdexcept>
#include <vector>

namespace ablate::experiments {
namespace {

// The last position's logits and their argmax, appended to the decoded lists.
torch::Tensor choose(const torch::Tensor& logits, std::vector<torch::Tensor>& chosen,
                     std::vector<torch::Tensor>& scores) {
  auto last = logits.select(1, logits.size(1) - 1);
  auto next = last.argmax(-1);
  chosen.push_back(next);
  scores.push_back(last);
  return next.unsqueeze(1);
}

Decoded stack(const std::vector<torch::Tensor>& chosen, const std::vector<torch::Tensor>& scores) {
  return {torch::stack(chosen, 1), torch::stack(scores, 1)};
}

}  // namespace

Decoded lm_greedy(LmImpl& model, const torch::Tensor& prompt, int64_t steps, bool cached) {
  torch::NoGradGuard no_grad;
  model.eval();
  std::vector<torch::Tensor> chosen, scores;
  if (cached) {
    std::vector<core::KvCache> caches;
    auto next = choose(model.decode_step(prompt, caches), chosen, scores);
    for (int64_t s = 1; s < steps; ++s) {
      next = choose(model.decode_step(next, caches), chosen, scores);
    }
  } else {
    auto sequence = prompt;
    for (int64_t s = 0; s < steps; ++s) {
      sequence = torch::cat({sequence, choose(model.forward(sequence), chosen, scores)}, 1);
    }
  }
  return stack(chosen, scores);
}

Decoded s2s_greedy(S2sImpl& model, const torch::Tensor& source, int64_t steps, bool cached) {
  torch::NoGradGuard no_grad;
  model.eval();
  std::vector<torch::Tensor> chosen, scores;
  const auto encoded = model.encode(source);
  auto input = torch::full({source.size(0), 1}, model.options.pad, source.options());
  if (cached) {
    S2sImpl::Caches caches;
    auto next = input;
    for (int64_t s = 0; s < steps; ++s) {
      next = choose(model.decode_step(encoded, next, caches), chosen, scores);
    }
  } else {
    for (int64_t s = 0; s < steps; ++s) {
      input = torch::cat({input, choose(model.decode(encoded, input), chosen, scores)}, 1);
    }
  }
  return stack(chosen, scores);
}

namespace {

// Sums kv_cache_bytes_per_token over the attention layers `pick` selects.
template <typename Pick>
int64_t sum_layers(torch::nn::Module& model, torch::ScalarType dtype, Pick pick) {
  int64_t bytes = 0;
  for (const auto& item : model.named_modules()) {
    auto layer = std::dynamic_pointer_cast<core::AttentionImpl>(item.value());
    if (layer && pick(item.key())) bytes += core::kv_cache_bytes_per_token(layer->options, dtype);
  }
  return bytes;
}

bool is_s2s(torch::nn::Module& model) { return dynamic_cast<S2sImpl*>(&model) != nullptr; }

}  // namespace

int64_t kv_cache_bytes_per_token(torch::nn::Module& model, torch::ScalarType dtype) {
  if (!is_s2s(model)) return sum_layers(model, dtype, [](const std::string&) { return true; });
  return sum_layers(model, dtype, [](const std::string& name) {
    return name.find("self_attention") != std::string::npos;
  });
}

int64_t kv_cache_bytes_per_source_token(torch::nn::Module& model, torch::ScalarType dtype) {
  if (!is_s2s(model)) return 0;
  return sum_layers(model, dtype, [](const std::string& name) {
    return name.find("cross_attention") != std::string::npos;
  });
}

DecodeSpeed measure_decode(torch::nn::Module& model, int64_t batch, int64_t prompt, int64_t steps,
                           const torch::Device& device) {
  auto* lm = dynamic_cast<LmImpl*>(&model);
  auto* s2s = dynamic_cast<S2sImpl*>(&model);
  if (lm == nullptr && s2s == nullptr) {
    throw std::invalid_argument("measure_decode: only the lm and s2s models decode");
  }
  const int64_t vocab = lm ? lm->options.vocab : std::min(s2s->options.vocab, s2s->options.pad);
  auto generator = at::detail::createCPUGenerator(12345);
  auto tokens = torch::randint(vocab, {batch, prompt}, generator, torch::kInt64).to(device);
  auto run = [&](int64_t n) {
    return lm ? lm_greedy(*lm, tokens, n, true) : s2s_greedy(*s2s, tokens, n, true);
  };
  run(1).tokens.to(torch::kCPU);  // warm-up: first-call allocations and kernel choices
  const auto start = std::chrono::steady_clock::now();
  run(steps).tokens.to(torch::kCPU);  // the copy waits for a GPU to finish
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  DecodeSpeed speed;
  speed.tokens_per_s = static_cast<double>(batch * steps) / std::max(seconds, 1e-9);
  speed.batch = batch;
  speed.prompt = prompt;
  speed.steps = steps;
  return speed;
}

}  // namespace ablate::experiments
