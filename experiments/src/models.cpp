#include "ablate/experiments/models.h"

#include "ablate/core/causality.h"
#include "streams.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace ablate::experiments {
namespace {

template <typename Enum>
Enum choose(const std::string& key, const std::string& value,
            std::initializer_list<std::pair<const char*, Enum>> choices) {
  for (const auto& [name, e] : choices) {
    if (value == name) return e;
  }
  throw std::invalid_argument("attention." + key + " = " + value + " is not a valid choice");
}

// FNV-1a: a stable 64-bit hash of (seed, name) for per-parameter generators.
uint64_t parameter_seed(int64_t seed, const std::string& name) {
  uint64_t h = 1469598103934665603ull ^ static_cast<uint64_t>(seed);
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

core::AttentionOptions attention_options(const runner::AttentionConfig& c, int64_t dim,
                                         int64_t heads, double norm_eps, bool causal) {
  core::AttentionOptions o(dim, heads);
  o.variant(core::parse_variant(c.variant))
      .kv_heads(c.kv_heads)
      .q_heads(c.q_heads)
      .q_groups(c.q_groups)
      .kv_groups(c.kv_groups)
      .bias(c.bias)
      .qk_norm(c.qk_norm)
      .norm_eps(norm_eps)
      .rope(c.rope)
      .rope_theta(c.rope_theta)
      .causal(causal)
      .faithful(c.faithful)
      .min_per_group(c.min_per_group)
      .eps(c.eps)
      .ema_window(c.ema_window)
      .ema_beta(c.ema_beta)
      .noise_scale(c.noise_scale)
      .noise_at_eval(c.noise_at_eval)
      .out_bias(c.out_bias)
      .attn_dropout(c.attn_dropout)
      .out_dropout(c.out_dropout);
  o.dgqa_mode(choose<core::DgqaMode>(
      "dgqa_mode", c.dgqa_mode, {{"ema", core::DgqaMode::kEma}, {"diff", core::DgqaMode::kDiff}}));
  o.noise(choose<core::NoiseKind>(
      "noise", c.noise,
      {{"gaussian", core::NoiseKind::kGaussian}, {"uniform", core::NoiseKind::kUniform}}));
  o.noise_target(choose<core::NoiseTarget>(
      "noise_target", c.noise_target,
      {{"output", core::NoiseTarget::kOutput}, {"scores", core::NoiseTarget::kScores}}));
  o.weight_form(choose<core::WeightForm>("weight_form", c.weight_form,
                                         {{"scalar", core::WeightForm::kScalar},
                                          {"row", core::WeightForm::kRow},
                                          {"col", core::WeightForm::kCol}}));
  o.weight_init(choose<core::WeightInit>(
      "weight_init", c.weight_init,
      {{"mean", core::WeightInit::kMean}, {"random", core::WeightInit::kRandom}}));
  o.path(choose<core::AttentionPath>("path", c.path,
                                     {{"auto", core::AttentionPath::kAuto},
                                      {"reference", core::AttentionPath::kReference},
                                      {"fused", core::AttentionPath::kFused}}));
  return o;
}

int64_t mlp_hidden(const runner::ModelConfig& model, bool swiglu) {
  if (model.mlp_hidden > 0) return model.mlp_hidden;
  if (!swiglu) return 4 * model.dim;
  const int64_t raw = (8 * model.dim + 2) / 3;
  return (raw + 63) / 64 * 64;
}

// ----- blocks' dropout seeds -----

void SeededDropout::set_dropout_seed(uint64_t seed) {
  seed_ = seed;
  block_attention().set_dropout_seeds(mix(seed, 1), mix(seed, 2));
}

uint64_t SeededDropout::mlp_dropout_seed(uint64_t site) const { return mix(seed_, 3 + site); }

// ----- language model -----

LmBlockImpl::LmBlockImpl(const LmOptions& options) : options(options) { reset(); }

void LmBlockImpl::reset() {
  norm1 = register_parameter("norm1", torch::ones({options.dim}));
  norm2 = register_parameter("norm2", torch::ones({options.dim}));
  attention = register_module("attention", core::Attention(options.attention));
  gate = register_module(
      "gate", torch::nn::Linear(torch::nn::LinearOptions(options.dim, options.hidden).bias(false)));
  up = register_module(
      "up", torch::nn::Linear(torch::nn::LinearOptions(options.dim, options.hidden).bias(false)));
  down = register_module(
      "down", torch::nn::Linear(torch::nn::LinearOptions(options.hidden, options.dim).bias(false)));
}

namespace {

// The MLP's two dropout sites (after the activation, after the output), each from its own
// generator; nothing is drawn at eval or with p = 0.
torch::Tensor mlp_dropout(const torch::Tensor& x, double p, bool training, uint64_t seed) {
  if (!training || p <= 0.0) return x;
  return core::dropout(x, p, core::seeded_generator(x.device(), seed));
}

}  // namespace

torch::Tensor LmBlockImpl::forward(const torch::Tensor& x) {
  auto h = x + attention->forward(core::rms_norm(x, norm1, options.norm_eps));
  auto n = core::rms_norm(h, norm2, options.norm_eps);
  const double p = options.mlp_dropout;
  auto a = mlp_dropout(torch::silu(gate->forward(n)) * up->forward(n), p, is_training(),
                       mlp_dropout_seed(0));
  return h + mlp_dropout(down->forward(a), p, is_training(), mlp_dropout_seed(1));
}

LmImpl::LmImpl(const LmOptions& options) : options(options) { reset(); }

void LmImpl::reset() {
  embed = register_module("embed", torch::nn::Embedding(options.vocab, options.dim));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.depth; ++i) blocks->push_back(LmBlock(options));
  final_norm = register_parameter("final_norm", torch::ones({options.dim}));
}

torch::Tensor LmImpl::forward(const torch::Tensor& tokens) {
  auto x = embed->forward(tokens);
  for (const auto& block : *blocks) x = block->as<LmBlock>()->forward(x);
  x = core::rms_norm(x, final_norm, options.norm_eps);
  return torch::matmul(x, embed->weight.t());  // tied embeddings
}

// ----- vision transformer -----

VitBlockImpl::VitBlockImpl(const VitOptions& options) : options(options) { reset(); }

void VitBlockImpl::reset() {
  auto norm_options = torch::nn::LayerNormOptions({options.dim}).eps(options.norm_eps);
  norm1 = register_module("norm1", torch::nn::LayerNorm(norm_options));
  norm2 = register_module("norm2", torch::nn::LayerNorm(norm_options));
  attention = register_module("attention", core::Attention(options.attention));
  fc1 = register_module("fc1", torch::nn::Linear(options.dim, options.hidden));
  fc2 = register_module("fc2", torch::nn::Linear(options.hidden, options.dim));
}

torch::Tensor VitBlockImpl::forward(const torch::Tensor& x) {
  auto h = x + attention->forward(norm1->forward(x));
  const double p = options.mlp_dropout;
  auto a = mlp_dropout(torch::gelu(fc1->forward(norm2->forward(h))), p, is_training(),
                       mlp_dropout_seed(0));
  return h + mlp_dropout(fc2->forward(a), p, is_training(), mlp_dropout_seed(1));
}

VitImpl::VitImpl(const VitOptions& options) : options(options) { reset(); }

void VitImpl::reset() {
  if (options.patch <= 0 || options.image % options.patch != 0) {
    throw std::invalid_argument("model.patch = " + std::to_string(options.patch) +
                                " must divide the image side " + std::to_string(options.image));
  }
  const int64_t side = options.image / options.patch;
  patch_embed = register_module(
      "patch_embed",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(options.channels, options.dim, options.patch)
                            .stride(options.patch)));
  position = register_parameter("position", torch::zeros({1, side * side, options.dim}));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.depth; ++i) blocks->push_back(VitBlock(options));
  norm = register_module(
      "norm",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.dim}).eps(options.norm_eps)));
  head = register_module("head", torch::nn::Linear(options.dim, options.classes));
}

torch::Tensor VitImpl::forward(const torch::Tensor& images) {
  auto x = patch_embed->forward(images).flatten(2).transpose(1, 2) + position;  // [B, P, dim]
  for (const auto& block : *blocks) x = block->as<VitBlock>()->forward(x);
  return head->forward(norm->forward(x).mean(1));
}

// ----- shared -----

std::vector<core::Attention> attention_layers(torch::nn::Module& model) {
  std::vector<core::Attention> layers;
  for (const auto& module : model.modules(/*include_self=*/false)) {
    if (auto attention = std::dynamic_pointer_cast<core::AttentionImpl>(module)) {
      layers.emplace_back(attention);
    }
  }
  return layers;
}

void set_dropout_seeds(torch::nn::Module& model, uint64_t step_seed) {
  uint64_t index = 0;
  for (const auto& module : model.modules(/*include_self=*/false)) {
    if (auto block = std::dynamic_pointer_cast<SeededDropout>(module)) {
      block->set_dropout_seed(mix(step_seed, index++));
    }
  }
}

void init_parameters(torch::nn::Module& model, int64_t seed) {
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    const bool table = name == "embed.weight" || name == "position";
    const bool matrix = p.dim() >= 2 && name.find("_weight") == std::string::npos;  // not wgqa
    if (!table && !matrix) continue;
    auto generator = at::detail::createCPUGenerator(parameter_seed(seed, name));
    auto values = torch::empty(p.sizes(), torch::kFloat32);
    if (table) {
      values.normal_(0.0, 0.02, generator);
    } else {
      const double bound = 1.0 / std::sqrt(static_cast<double>(p[0].numel()));
      values.uniform_(-bound, bound, generator);
    }
    p.copy_(values);
  }
}

double causality_leak(const Lm& model, int64_t seq_len, int64_t seed) {
  const int64_t s = std::min<int64_t>(seq_len, 32), t = s / 2, vocab = model->options.vocab;
  auto gen = at::detail::createCPUGenerator(parameter_seed(seed, "causality"));
  auto tokens = torch::randint(vocab, {2, s}, gen, torch::kInt64);
  double worst = 0.0;
  for (int trial = 0; trial < 3; ++trial) {
    auto perturbed = tokens.clone();
    perturbed.narrow(1, t + 1, s - t - 1)
        .copy_(torch::randint(vocab, {2, s - t - 1}, gen, torch::kInt64));
    auto forward = [&](const torch::Tensor& x) {
      auto copy = std::dynamic_pointer_cast<LmImpl>(model->clone());
      copy->train();
      torch::NoGradGuard no_grad;
      return copy->forward(x);
    };
    auto result = core::check_causality(forward, tokens, perturbed, t, seed + trial);
    if (!result.causal) worst = std::max(worst, std::max(result.max_abs_diff, 1e-300));
  }
  return worst;
}

int64_t parameter_count(const torch::nn::Module& model) {
  int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  return n;
}

}  // namespace ablate::experiments
