#include "ablate/experiments/models.h"

#include "ablate/core/causality.h"
#include "ablate/core/members.h"
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

namespace {

// The attention options of a model's blocks: the model's, with its member count.
core::AttentionOptions block_attention_options(core::AttentionOptions o, int64_t members) {
  return o.members(members);
}

// LayerNorm of one model (its own forward) or of an ensemble whose weight and bias are [E, d]:
// normalised without the affine part, then each member's own.
torch::Tensor apply_layer_norm(const torch::nn::LayerNorm& norm, const torch::Tensor& x,
                               int64_t members) {
  if (members == 0) return torch::nn::LayerNorm(norm)->forward(x);
  const auto& o = norm->options;
  auto y = core::by_member(torch::layer_norm(x, o.normalized_shape(), {}, {}, o.eps()), members);
  return (y * core::member_broadcast(norm->weight, y.dim()) +
          core::member_broadcast(norm->bias, y.dim()))
      .view(x.sizes());
}

}  // namespace

// ----- blocks' dropout seeds -----

void SeededDropout::set_dropout_seed(uint64_t seed) {
  seeds_.assign(1, seed);
  members_ = false;
  block_attention().set_dropout_seeds(mix(seed, 1), mix(seed, 2));
  uint64_t i = 1;
  for (auto* a : more_attentions()) {
    a->set_dropout_seeds(mix(seed, 10 + 2 * i), mix(seed, 11 + 2 * i));
    ++i;
  }
}

void SeededDropout::set_member_dropout_seeds(const std::vector<uint64_t>& seeds) {
  seeds_ = seeds;
  members_ = true;
  std::vector<uint64_t> probabilities, output;
  for (uint64_t s : seeds) {
    probabilities.push_back(mix(s, 1));
    output.push_back(mix(s, 2));
  }
  block_attention().set_member_dropout_seeds(probabilities, output);
  uint64_t i = 1;
  for (auto* a : more_attentions()) {
    probabilities.clear();
    output.clear();
    for (uint64_t s : seeds) {
      probabilities.push_back(mix(s, 10 + 2 * i));
      output.push_back(mix(s, 11 + 2 * i));
    }
    a->set_member_dropout_seeds(probabilities, output);
    ++i;
  }
}

torch::Tensor SeededDropout::mlp_dropout(const torch::Tensor& x, double p, bool training,
                                         uint64_t site) const {
  if (!training || p <= 0.0) return x;
  if (!members_)
    return core::dropout(x, p, core::seeded_generator(x.device(), mix(seeds_[0], 3 + site)));
  const int64_t E = static_cast<int64_t>(seeds_.size()), b = x.size(0) / E;
  std::vector<torch::Tensor> parts;
  for (int64_t e = 0; e < E; ++e) {
    parts.push_back(core::dropout(x.narrow(0, e * b, b), p,
                                  core::seeded_generator(x.device(), mix(seeds_[e], 3 + site))));
  }
  return torch::cat(parts);
}

// ----- language model -----

LmBlockImpl::LmBlockImpl(const LmOptions& options) : options(options) { reset(); }

void LmBlockImpl::reset() {
  norm1 = register_parameter("norm1", torch::ones({options.dim}));
  norm2 = register_parameter("norm2", torch::ones({options.dim}));
  attention = register_module(
      "attention", core::Attention(block_attention_options(options.attention, options.members)));
  gate = register_module(
      "gate", torch::nn::Linear(torch::nn::LinearOptions(options.dim, options.hidden).bias(false)));
  up = register_module(
      "up", torch::nn::Linear(torch::nn::LinearOptions(options.dim, options.hidden).bias(false)));
  down = register_module(
      "down", torch::nn::Linear(torch::nn::LinearOptions(options.hidden, options.dim).bias(false)));
  if (options.members > 0) {
    core::stack_parameters(*this, options.members);
    for (auto* l : {&gate, &up, &down}) core::stack_parameters(**l, options.members);
  }
}

torch::Tensor LmBlockImpl::mlp(const torch::Tensor& n) {
  const int64_t E = options.members;
  const double p = options.mlp_dropout;
  auto a = mlp_dropout(torch::silu(core::apply_linear(gate, n, E)) * core::apply_linear(up, n, E),
                       p, is_training(), 0);
  return mlp_dropout(core::apply_linear(down, a, E), p, is_training(), 1);
}

torch::Tensor LmBlockImpl::forward(const torch::Tensor& x) {
  const int64_t E = options.members;
  auto h = x + attention->forward(core::apply_rms_norm(x, norm1, options.norm_eps, E));
  return h + mlp(core::apply_rms_norm(h, norm2, options.norm_eps, E));
}

torch::Tensor LmBlockImpl::decode_step(const torch::Tensor& x, core::KvCache& cache) {
  auto h = x + attention->decode_step(core::apply_rms_norm(x, norm1, options.norm_eps, 0), cache);
  return h + mlp(core::apply_rms_norm(h, norm2, options.norm_eps, 0));
}

LmImpl::LmImpl(const LmOptions& options) : options(options) { reset(); }

torch::Tensor LmImpl::decode_step(const torch::Tensor& tokens, std::vector<core::KvCache>& caches) {
  if (options.members > 0) throw std::invalid_argument("Lm.decode_step: one model only");
  caches.resize(blocks->size());
  torch::Tensor x = embed->forward(tokens);
  for (size_t i = 0; i < blocks->size(); ++i) {
    x = blocks[i]->as<LmBlock>()->decode_step(x, caches[i]);
  }
  x = core::apply_rms_norm(x, final_norm, options.norm_eps, 0);
  return tied_logits(x, embed->weight, 0);
}

void LmImpl::reset() {
  embed = register_module("embed", torch::nn::Embedding(options.vocab, options.dim));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.depth; ++i) blocks->push_back(LmBlock(options));
  final_norm = register_parameter("final_norm", torch::ones({options.dim}));
  if (options.members > 0) {
    core::stack_parameters(*embed, options.members);
    core::stack_parameters(*this, options.members);
  }
}

torch::Tensor embed_tokens(const torch::nn::Embedding& embed, const torch::Tensor& tokens,
                           int64_t members) {
  const int64_t E = members;
  if (E == 0) return torch::nn::Embedding(embed)->forward(tokens);
  const int64_t V = embed->weight.size(1), d = embed->weight.size(2);
  // Member e's tokens index rows [e * V, (e + 1) * V) of the stacked tables.
  const int64_t b = tokens.size(0) / E;
  auto offset = (torch::arange(E, tokens.options()) * V).repeat_interleave(b).unsqueeze(1);
  return embed->weight.view({E * V, d})
      .index_select(0, (tokens + offset).flatten())
      .view({tokens.size(0), tokens.size(1), d});
}

torch::Tensor tied_logits(const torch::Tensor& x, const torch::Tensor& embed_weight,
                          int64_t members) {
  if (members == 0) return torch::matmul(x, embed_weight.t());
  const int64_t E = members, V = embed_weight.size(1), d = embed_weight.size(2);
  auto logits = torch::bmm(x.reshape({E, -1, d}), embed_weight.transpose(1, 2));
  return logits.view({x.size(0), x.size(1), V});
}

torch::Tensor LmImpl::forward(const torch::Tensor& tokens) {
  const int64_t E = options.members;
  torch::Tensor x = embed_tokens(embed, tokens, E);
  for (const auto& block : *blocks) x = block->as<LmBlock>()->forward(x);
  x = core::apply_rms_norm(x, final_norm, options.norm_eps, E);
  return tied_logits(x, embed->weight, E);  // tied embeddings
}

// ----- vision transformer -----

VitBlockImpl::VitBlockImpl(const VitOptions& options) : options(options) { reset(); }

void VitBlockImpl::reset() {
  auto norm_options = torch::nn::LayerNormOptions({options.dim}).eps(options.norm_eps);
  norm1 = register_module("norm1", torch::nn::LayerNorm(norm_options));
  norm2 = register_module("norm2", torch::nn::LayerNorm(norm_options));
  attention = register_module(
      "attention", core::Attention(block_attention_options(options.attention, options.members)));
  fc1 = register_module("fc1", torch::nn::Linear(options.dim, options.hidden));
  fc2 = register_module("fc2", torch::nn::Linear(options.hidden, options.dim));
  if (options.members > 0) {
    core::stack_parameters(*norm1, options.members);
    core::stack_parameters(*norm2, options.members);
    core::stack_parameters(*fc1, options.members);
    core::stack_parameters(*fc2, options.members);
  }
}

torch::Tensor VitBlockImpl::forward(const torch::Tensor& x) {
  const int64_t E = options.members;
  auto h = x + attention->forward(apply_layer_norm(norm1, x, E));
  const double p = options.mlp_dropout;
  auto a = mlp_dropout(torch::gelu(core::apply_linear(fc1, apply_layer_norm(norm2, h, E), E)), p,
                       is_training(), 0);
  return h + mlp_dropout(core::apply_linear(fc2, a, E), p, is_training(), 1);
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
  if (options.members > 0) {
    for (torch::nn::Module* m : std::initializer_list<torch::nn::Module*>{
             patch_embed.get(), norm.get(), head.get(), this}) {
      core::stack_parameters(*m, options.members);
    }
  }
}

torch::Tensor VitImpl::forward(const torch::Tensor& images) {
  const int64_t E = options.members;
  torch::Tensor x;
  if (E == 0) {
    x = patch_embed->forward(images).flatten(2).transpose(1, 2) + position;  // [B, P, dim]
  } else {
    // One grouped convolution: member e's images meet member e's filters only.
    const int64_t b = images.size(0) / E, C = images.size(1), d = options.dim;
    auto grouped = images.view({E, b, C, images.size(2), images.size(3)})
                       .transpose(0, 1)
                       .reshape({b, E * C, images.size(2), images.size(3)});
    auto w = patch_embed->weight;  // [E, d, C, p, p]
    const std::vector<int64_t> stride{options.patch, options.patch}, padding{0, 0}, dilation{1, 1};
    auto y = torch::conv2d(grouped, w.reshape({E * d, C, w.size(3), w.size(4)}),
                           patch_embed->bias.reshape({E * d}), stride, padding, dilation, E);
    const int64_t P = y.size(2) * y.size(3);
    x = y.view({b, E, d, P}).permute({1, 0, 3, 2}) + position;  // [E, b, P, d]
    x = x.reshape({E * b, P, d});
  }
  for (const auto& block : *blocks) x = block->as<VitBlock>()->forward(x);
  return core::apply_linear(head, apply_layer_norm(norm, x, E).mean(1), E);
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

void set_member_dropout_seeds(torch::nn::Module& model, const std::vector<uint64_t>& step_seeds) {
  uint64_t index = 0;
  for (const auto& module : model.modules(/*include_self=*/false)) {
    if (auto block = std::dynamic_pointer_cast<SeededDropout>(module)) {
      std::vector<uint64_t> seeds;
      for (uint64_t s : step_seeds) seeds.push_back(mix(s, index));
      block->set_member_dropout_seeds(seeds);
      ++index;
    }
  }
}

void init_parameters(torch::nn::Module& model, int64_t seed, double embedding_std) {
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    // Tables: token embeddings, the vit's positions, the s2s relative position biases.
    const bool table = name == "embed.weight" || name == "position" ||
                       name.find("relative_bias") != std::string::npos;
    const bool matrix = p.dim() >= 2 && name.find("k_weight") == std::string::npos &&
                        name.find("v_weight") == std::string::npos;  // not wgqa
    if (!table && !matrix) continue;
    auto generator = at::detail::createCPUGenerator(parameter_seed(seed, name));
    auto values = torch::empty(p.sizes(), torch::kFloat32);
    if (table) {
      values.normal_(0.0, name == "embed.weight" ? embedding_std : 0.02, generator);
    } else {
      const double bound = 1.0 / std::sqrt(static_cast<double>(p[0].numel()));
      values.uniform_(-bound, bound, generator);
    }
    p.copy_(values);
  }
}

double token_causality_leak(
    const torch::nn::Module& model, const torch::Tensor& tokens, int64_t vocab,
    at::Generator generator, int64_t seed,
    const std::function<torch::Tensor(torch::nn::Module&, const torch::Tensor&)>& forward) {
  const int64_t B = tokens.size(0), s = tokens.size(1), t = s / 2;
  double worst = 0.0;
  for (int trial = 0; trial < 3; ++trial) {
    auto perturbed = tokens.clone();
    perturbed.narrow(1, t + 1, s - t - 1)
        .copy_(torch::randint(vocab, {B, s - t - 1}, generator, torch::kInt64));
    auto on_a_copy = [&](const torch::Tensor& x) {
      auto copy = model.clone();
      copy->train();
      torch::NoGradGuard no_grad;
      return forward(*copy, x);
    };
    auto result = core::check_causality(on_a_copy, tokens, perturbed, t, seed + trial);
    if (!result.causal) worst = std::max(worst, std::max(result.max_abs_diff, 1e-300));
  }
  return worst;
}

double causality_leak(const Lm& model, int64_t seq_len, int64_t seed) {
  const int64_t s = std::min<int64_t>(seq_len, 32), vocab = model->options.vocab;
  auto gen = at::detail::createCPUGenerator(parameter_seed(seed, "causality"));
  auto tokens = torch::randint(vocab, {2, s}, gen, torch::kInt64);
  return token_causality_leak(*model, tokens, vocab, gen, seed,
                              [](torch::nn::Module& m, const torch::Tensor& x) {
                                return dynamic_cast<LmImpl&>(m).forward(x);
                              });
}

int64_t parameter_count(const torch::nn::Module& model) {
  int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  return n;
}

}  // namespace ablate::experiments
