#include "ablate/core/attention.h"

#include <torch/torch.h>

#include <sstream>
#include <stdexcept>

namespace ablate::core {
namespace {

namespace F = torch::nn::functional;

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

bool is_pgqa_scores(const AttentionOptions& o) {
  return o.variant() == Variant::kPgqa && !o.faithful() && o.noise_target() == NoiseTarget::kScores;
}

// Queries per key/value head of a static layout.
std::vector<int64_t> layout_counts(const HeadLayout& layout) {
  std::vector<int64_t> counts(layout.n_kv, 0);
  for (int64_t kv : layout.kv_of_head) ++counts[kv];
  return counts;
}

// pgqa with noise_target: scores (robust mode only): noise with the row statistics of the scores
// a query position can see, never touching masked entries.
struct PgqaScoreNoise : ScoreNoise {
  NoiseKind kind;
  double scale;
  torch::Tensor* norm_out;
  at::Generator generator;  // undefined: the global one
  PgqaScoreNoise(NoiseKind k, double s, torch::Tensor* n, at::Generator g = {})
      : kind(k), scale(s), norm_out(n), generator(std::move(g)) {}
  torch::Tensor operator()(const torch::Tensor& scores,
                           const torch::Tensor& visible) const override {
    auto noise = draw_noise(scores, kind, visible, generator).noise * scale;
    torch::NoGradGuard no_grad;
    norm_out->copy_(noise.detach().norm());
    return noise;
  }
};

// What decides the attention path of a training forward, for resolve_path: the asked path, score
// noise (pgqa scores mode) and attention dropout.
AttendOptions path_probe(const AttentionOptions& o) {
  static const PgqaScoreNoise kAnyScoreNoise(NoiseKind::kGaussian, 0.0, nullptr);
  AttendOptions probe;
  probe.path = o.path();
  probe.dropout = o.attn_dropout();
  if (is_pgqa_scores(o)) probe.score_noise = &kAnyScoreNoise;
  return probe;
}

// Dropout of `x` with a mask from a generator seeded with `seed` (the layer's own stream).
torch::Tensor dropout_with(const torch::Tensor& x, double p, const torch::Device& device,
                           uint64_t seed) {
  return dropout(x, p, seeded_generator(device, seed));
}

}  // namespace

HeadLayout validate(const AttentionOptions& o) {
  if (o.heads() <= 0) fail("attention.heads = " + std::to_string(o.heads()) + " must be >= 1");
  if (o.dim() <= 0 || o.dim() % o.heads() != 0) {
    fail("model.dim = " + std::to_string(o.dim()) + " must be a positive multiple of " +
         "attention.heads = " + std::to_string(o.heads()));
  }
  auto layout = make_head_layout(
      {o.variant(), o.heads(), o.kv_heads(), o.q_heads(), o.q_groups(), o.kv_groups()});
  const int64_t d_h = o.dim() / o.heads();
  if (o.rope() && d_h % 2 != 0) {
    fail("attention.rope needs an even head size, but model.dim / attention.heads = " +
         std::to_string(d_h));
  }
  if (o.norm_eps() <= 0) fail("attention.norm_eps must be > 0");
  if (o.rope_theta() <= 0) fail("attention.rope_theta must be > 0");
  if (is_dynamic(o.variant()) && !o.faithful()) {
    if (o.min_per_group() < 0 || o.min_per_group() * layout.n_kv > o.heads()) {
      fail("attention.min_per_group = " + std::to_string(o.min_per_group()) +
           " is invalid: it must be in [0, heads / kv_heads] = [0, " +
           std::to_string(o.heads() / layout.n_kv) + "]");
    }
    if (o.eps() < 0) fail("attention.eps must be >= 0");
  }
  if (o.ema_window() < 1) fail("attention.ema_window must be >= 1");
  if (o.ema_beta() > 1.0 || o.ema_beta() == 0.0) {
    fail("attention.ema_beta must be in (0, 1], or negative for the default");
  }
  if (o.noise_scale() < 0) fail("attention.noise_scale must be >= 0");
  if (o.attn_dropout() < 0 || o.attn_dropout() >= 1)
    fail("attention.attn_dropout must be in [0, 1)");
  if (o.out_dropout() < 0 || o.out_dropout() >= 1) fail("attention.out_dropout must be in [0, 1)");
  if (o.path() == AttentionPath::kFused) {
    resolve_path(path_probe(o));  // throws with the reason when fused cannot apply
  }
  if (o.members() < 0) fail("attention members must be >= 0");
  return layout;
}

double resolved_ema_beta(const AttentionOptions& o) {
  if (o.ema_beta() > 0) return o.ema_beta();
  return o.faithful() ? 0.9 : 2.0 / (static_cast<double>(o.ema_window()) + 1.0);
}

AttentionImpl::AttentionImpl(const AttentionOptions& options_) : options(options_) { reset(); }

void AttentionImpl::reset() {
  layout_ = validate(options);
  const int64_t d = options.dim(), H = options.heads(), d_h = head_dim();
  const int64_t G = layout_.n_kv, kv_proj = layout_.kv_projection_heads;
  auto linear = [&](int64_t out) {
    return torch::nn::Linear(torch::nn::LinearOptions(d, out).bias(options.bias()));
  };
  q_proj = register_module("q_proj", linear(layout_.n_q * d_h));
  k_proj = register_module("k_proj", linear(kv_proj * d_h));
  v_proj = register_module("v_proj", linear(kv_proj * d_h));
  o_proj = register_module(
      "o_proj",
      torch::nn::Linear(torch::nn::LinearOptions(d, d).bias(options.bias() || options.out_bias())));
  if (options.qk_norm()) {
    q_norm = register_parameter("q_norm", torch::ones({d_h}));
    k_norm = register_parameter("k_norm", torch::ones({d_h}));
  }
  const int64_t E = options.members();
  // An ensemble's state buffers hold one row per member (members.h).
  auto per_member = [E](torch::Tensor t) {
    if (E == 0) return t;
    auto shape = t.sizes().vec();
    shape.insert(shape.begin(), E);
    return t.unsqueeze(0).expand(shape).clone();
  };
  if (options.variant() == Variant::kWgqa) {
    const int64_t m = H / G;
    std::vector<int64_t> shape = {G, m};
    if (options.weight_form() == WeightForm::kRow) shape.push_back(d);
    if (options.weight_form() == WeightForm::kCol) shape.push_back(d_h);
    auto init = [&] {
      return options.weight_init() == WeightInit::kMean
                 ? torch::full(shape, static_cast<double>(G) / static_cast<double>(H))
                 : torch::randn(shape);
    };
    k_weight = register_parameter("k_weight", init());
    v_weight = register_parameter("v_weight", init());
  }
  if (E > 0) {
    for (auto* linear : {&q_proj, &k_proj, &v_proj, &o_proj}) stack_parameters(**linear, E);
    stack_parameters(*this, E);  // qk_norm gains, wgqa weights
  }
  counts =
      register_buffer("counts", per_member(torch::tensor(layout_counts(layout_), torch::kLong)));
  if (layout_.n_q != H) {  // the layout's, shared by the members
    q_index_ = register_buffer("q_index", torch::tensor(layout_.q_of_head, torch::kLong));
  }
  if (is_dynamic(options.variant())) {
    cache = register_buffer("cache", per_member(torch::zeros({G})));
    boundary_cache = register_buffer("boundary_cache", per_member(torch::zeros({G})));
    step = register_buffer("step", per_member(torch::zeros({}, torch::kLong)));
    degenerate = register_buffer("degenerate", per_member(torch::zeros({}, torch::kLong)));
  }
  if (options.variant() == Variant::kPgqa) {
    noise_norm = register_buffer("noise_norm", per_member(torch::zeros({})));
  }
  probabilities_seeds_.assign(std::max<int64_t>(1, E), 0);
  output_seeds_.assign(std::max<int64_t>(1, E), 0);
  last_counts_ = torch::Tensor();
  last_key_norms_ = torch::Tensor();
}

void AttentionImpl::pretty_print(std::ostream& stream) const {
  stream << "ablate::Attention(variant=" << to_string(options.variant())
         << ", dim=" << options.dim() << ", heads=" << options.heads() << ", n_q=" << layout_.n_q
         << ", n_kv=" << layout_.n_kv << (options.faithful() ? ", faithful" : "")
         << (options.causal() ? ", causal" : "") << ")";
}

void AttentionImpl::to(torch::Device device, torch::Dtype dtype, bool non_blocking) {
  cast(device, dtype, non_blocking);
}
void AttentionImpl::to(torch::Dtype dtype, bool non_blocking) {
  cast(std::nullopt, dtype, non_blocking);
}
void AttentionImpl::to(torch::Device device, bool non_blocking) {
  cast(device, std::nullopt, non_blocking);
}

void AttentionImpl::cast(const std::optional<torch::Device>& device,
                         const std::optional<torch::Dtype>& dtype, bool non_blocking) {
  for (auto& child : children()) {
    if (device && dtype)
      child->to(*device, *dtype, non_blocking);
    else if (dtype)
      child->to(*dtype, non_blocking);
    else
      child->to(*device, non_blocking);
  }
  auto move = [&](torch::Tensor t, bool take_dtype) {
    auto options = t.options();
    if (device) options = options.device(*device);
    if (dtype && take_dtype) options = options.dtype(*dtype);
    t.set_data(t.to(options, non_blocking));
  };
  for (auto& p : named_parameters(/*recurse=*/false)) move(p.value(), true);
  for (auto& b : named_buffers(/*recurse=*/false)) move(b.value(), false);
  rope_ = RopeTables();
}

std::pair<torch::Tensor, torch::Tensor> AttentionImpl::folded_kv(bool key) const {
  const auto& proj = key ? k_proj : v_proj;
  const auto& w = key ? k_weight : v_weight;
  const int64_t d = options.dim(), d_h = head_dim(), G = layout_.n_kv;
  const int64_t m = options.heads() / G, E = options.members();
  // Shapes with the member dimension in front for an ensemble; the group sum is then over dim 2.
  auto shaped = [E](std::vector<int64_t> shape) {
    if (E > 0) shape.insert(shape.begin(), E);
    return shape;
  };
  const int64_t over = E > 0 ? 2 : 1;
  auto W = proj->weight.view(shaped({G, m, d_h, d}));
  std::vector<int64_t> wshape;
  switch (options.weight_form()) {
    case WeightForm::kScalar:
      wshape = {G, m, 1, 1};
      break;
    case WeightForm::kRow:
      wshape = {G, m, 1, d};
      break;  // scales input features
    case WeightForm::kCol:
      wshape = {G, m, d_h, 1};
      break;  // scales output features
  }
  auto weight = (w.view(shaped(wshape)) * W).sum(over).reshape(shaped({G * d_h, d}));
  torch::Tensor bias;
  if (proj->bias.defined()) {
    auto b = proj->bias.view(shaped({G, m, d_h}));
    // A bias lives in output space: scalar and col weights scale it directly; a row weight
    // scales inputs only, so the bias takes the mean of its row (G/H at mean init, i.e. the
    // mean-pooled bias).
    auto bw = options.weight_form() == WeightForm::kScalar ? w.view(shaped({G, m, 1}))
              : options.weight_form() == WeightForm::kCol  ? w.view(shaped({G, m, d_h}))
                                                           : w.mean(-1).view(shaped({G, m, 1}));
    bias = (bw * b).sum(over).reshape(shaped({G * d_h}));
  }
  return {weight, bias};
}

AttentionImpl::State AttentionImpl::state_of(int64_t member) {
  if (member < 0) return {counts, cache, boundary_cache, step, degenerate, noise_norm};
  auto slice = [member](const torch::Tensor& t) { return t.defined() ? t.select(0, member) : t; };
  return {slice(counts), slice(cache),      slice(boundary_cache),
          slice(step),   slice(degenerate), slice(noise_norm)};
}

const MemberRandom* AttentionImpl::random_of(int64_t member) const {
  if (member < 0) return nullptr;
  if (member >= static_cast<int64_t>(random_.size())) {
    fail("Attention: ensemble member " + std::to_string(member) +
         " has no random streams (set_member_random)");
  }
  return &random_[member];
}

AttentionImpl::Used AttentionImpl::kv_index_for(const torch::Tensor& k, State& s,
                                                const at::Generator& cpu) {
  if (!is_dynamic(options.variant())) return {};
  torch::NoGradGuard no_grad;
  const int64_t H = options.heads();
  const bool faithful = options.faithful();
  auto norms = key_head_norms(k);
  Used used;
  used.key_norms = norms.detach();
  auto note = [&](const Allocation& a, const torch::Tensor& applied) {
    s.degenerate.add_(a.degenerate.logical_and(applied).to(torch::kLong));
  };
  auto yes = torch::ones({}, torch::TensorOptions().dtype(torch::kBool).device(k.device()));
  auto finish = [&](const torch::Tensor& counts_used) {
    used.counts = counts_used;
    used.kv_index = kv_index_from_counts(counts_used, H);
    return used;
  };

  if (options.variant() == Variant::kKdgqa) {
    if (faithful) {
      auto a = allocate_queries(minmax_scale(norms, 0.0), {H, 0, FixRule::kLargestSmallest});
      s.counts.copy_(a.counts);
      note(a, yes);
      return finish(s.counts.clone());
    }
    // Robust: this step uses the allocation from the previous step's keys (one-step lag).
    auto lagged = s.counts.clone();
    if (is_training()) {
      auto a = allocate_queries(minmax_scale(norms, options.eps()),
                                {H, options.min_per_group(), FixRule::kLargestSmallest});
      s.counts.copy_(a.counts);
      note(a, yes);
    }
    return finish(lagged);
  }

  // dgqa
  const double beta = resolved_ema_beta(options);
  const bool ema = options.dgqa_mode() == DgqaMode::kEma;
  const auto window = options.ema_window();
  if (faithful) {
    // As the authors' code: the allocation is computed only where it is used (a training step at
    // a window boundary, every eval batch), so its random repair draws happen only there. Reading
    // the step is a host synchronisation, as their .tolist() is.
    if (!is_training() || s.step.item<int64_t>() % window == 0) {
      auto shares = ema ? beta * norms + (1.0 - beta) * s.cache : (s.cache - norms).abs();
      auto a = allocate_queries(shares, {H, 0, FixRule::kRandom}, cpu);
      s.counts.copy_(a.counts);
      s.cache.copy_(is_training() ? (s.cache + norms) / static_cast<double>(window) : norms);
      note(a, yes);
    }
    if (is_training()) s.step.add_(1);
  } else if (is_training()) {
    // Robust: a boundary reallocates from statistics of earlier steps only.
    auto boundary = s.step.gt(0).logical_and(s.step.remainder(window) == 0);
    auto shares = ema ? s.cache.clone() : (s.cache - s.boundary_cache).abs();
    auto a = allocate_queries(shares, {H, options.min_per_group(), FixRule::kLargestSmallest});
    s.counts.copy_(torch::where(boundary, a.counts, s.counts));
    s.boundary_cache.copy_(torch::where(boundary, s.cache, s.boundary_cache));
    note(a, boundary);
    s.cache.copy_(torch::where(s.step == 0, norms, beta * norms + (1.0 - beta) * s.cache));
    s.step.add_(1);
  }
  return finish(s.counts.clone());
}

torch::Tensor AttentionImpl::perturb_output(const torch::Tensor& out, State& s,
                                            const at::Generator& generator) {
  const int64_t B = out.size(0), H = out.size(1), S = out.size(2), d_h = out.size(3);
  torch::Tensor noise;
  if (options.faithful()) {
    // As the original code: one (m, S * d_h) matrix per group, shared by the batch.
    const int64_t G = layout_.n_kv, m = H / G;
    auto rows = out.reshape({B, G, m, S * d_h});
    noise = draw_shared_group_noise(rows, generator).noise;
    noise = noise.view({B, H, S, d_h});
  } else {
    // One (S, d_h) matrix per batch element and head: each row is one query position.
    noise = draw_noise(out, options.noise(), {}, generator).noise;
  }
  noise = noise * options.noise_scale();
  {
    torch::NoGradGuard no_grad;
    s.noise_norm.copy_(noise.detach().norm());
  }
  return out - noise;
}

AttendOptions AttentionImpl::attend_options(const torch::Tensor& bias) const {
  AttendOptions o;
  o.causal = options.causal();
  o.path = options.path();
  o.scale = options.scale() == ScoreScale::kNone ? 1.0 : 0.0;
  o.bias = bias;
  return o;
}

torch::Tensor AttentionImpl::attend_heads(const torch::Tensor& q, const torch::Tensor& k,
                                          const torch::Tensor& v, const torch::Tensor& bias,
                                          int64_t member, Used& used) {
  State s = state_of(member);
  const MemberRandom* random = random_of(member);
  const size_t seeds = member < 0 ? 0 : static_cast<size_t>(member);
  AttendOptions attend_options = this->attend_options(bias);
  used = kv_index_for(k, s, random ? random->cpu : at::Generator());
  attend_options.kv_index = used.kv_index;
  const bool perturb = options.variant() == Variant::kPgqa &&
                       (options.faithful() || is_training() || options.noise_at_eval());
  PgqaScoreNoise score_noise(options.noise(), options.noise_scale(), &s.noise_norm,
                             random ? random->device : at::Generator());
  if (perturb && is_pgqa_scores(options)) attend_options.score_noise = &score_noise;

  if (is_training() && options.attn_dropout() > 0.0) {
    attend_options.dropout = options.attn_dropout();
    attend_options.dropout_generator = seeded_generator(q.device(), probabilities_seeds_.at(seeds));
  }
  auto out = attend(q, k, v, attend_options);
  if (perturb && !is_pgqa_scores(options)) {
    out = perturb_output(out, s, random ? random->device : at::Generator());
  }
  return out;
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& memory,
                                     const torch::Tensor& bias) {
  const int64_t E = options.members();
  const torch::Tensor& source = memory.defined() ? memory : x;  // of keys and values
  auto bad_shape = [&](const torch::Tensor& t) {
    return t.dim() != 3 || t.size(2) != options.dim() || (E > 0 && t.size(0) % E != 0) ||
           t.size(0) != x.size(0);
  };
  if (bad_shape(x) || bad_shape(source)) {
    std::ostringstream out;
    out << "Attention.forward: expected input" << (memory.defined() ? " and memory" : "") << " ["
        << (E > 0 ? std::to_string(E) + " * B" : "B") << ", S, " << options.dim() << "], got "
        << x.sizes();
    if (memory.defined()) out << " and " << memory.sizes();
    fail(out.str());
  }
  if (memory.defined() && options.causal()) {
    fail("Attention.forward: cross-attention (memory) cannot be causal");
  }
  const int64_t B = x.size(0), S = x.size(1), Sk = source.size(1), d_h = head_dim();
  const int64_t n_q = layout_.n_q;
  auto q = apply_linear(q_proj, x, E).view({B, S, n_q, d_h});
  auto [k, v] = keys_values(source, B, Sk);
  if (options.qk_norm()) q = apply_rms_norm(q, q_norm, options.norm_eps(), E);
  // RoPE rotates by the token index of one sequence; queries and keys of cross-attention index
  // two different sequences, so it applies to self-attention only.
  if (options.rope() && !memory.defined()) {
    const RopeTables& tables = rope_for(S, x);
    q = apply_rope(q, tables);
    k = apply_rope(k, tables);
  }
  q = q.transpose(1, 2);  // [B, n_q, S, d_h]
  k = k.transpose(1, 2);  // [B, n_kv, Sk, d_h]
  v = v.transpose(1, 2);
  if (q_index_.defined()) q = q.index_select(1, q_index_);  // share queries across heads
  if (bias.defined()) {
    const int64_t rows = bias.size(0);
    if (bias.dim() != 4 || (rows != 1 && rows != B && rows != E) ||
        (bias.size(1) != 1 && bias.size(1) != options.heads()) ||
        (bias.size(2) != 1 && bias.size(2) != S) || bias.size(3) != Sk) {
      std::ostringstream out;
      out << "Attention.forward: bias " << bias.sizes() << " does not fit scores [" << B << ", "
          << options.heads() << ", " << S << ", " << Sk << "]";
      fail(out.str());
    }
  }
  // Member e's rows of the bias (every row's when it has one row).
  auto member_bias = [&](int64_t e) -> torch::Tensor {
    if (!bias.defined() || bias.size(0) == 1) return bias;
    if (bias.size(0) == B) return bias.narrow(0, e * (B / E), B / E);
    return bias.narrow(0, e, 1);
  };

  torch::Tensor out;
  Used used;
  const bool dropout = is_training() && options.attn_dropout() > 0.0;
  if (E == 0) {
    out = attend_heads(q, k, v, bias, -1, used);
    if (used.counts.defined()) last_counts_ = used.counts;
    if (used.key_norms.defined()) last_key_norms_ = used.key_norms;
  } else if (!is_dynamic(options.variant()) && options.variant() != Variant::kPgqa && !dropout) {
    // Nothing member-specific inside the attention itself: one call over the folded batch. A
    // per-member bias is repeated over each member's rows.
    torch::Tensor folded_bias = bias;
    if (bias.defined() && bias.size(0) == E && E != B && E > 1) {
      folded_bias = bias.repeat_interleave(B / E, 0);
    }
    out = attend(q, k, v, attend_options(folded_bias));
  } else {
    const int64_t b = B / E;
    std::vector<torch::Tensor> outs, counts_used, norms;
    for (int64_t e = 0; e < E; ++e) {
      outs.push_back(attend_heads(q.narrow(0, e * b, b), k.narrow(0, e * b, b),
                                  v.narrow(0, e * b, b), member_bias(e), e, used));
      if (used.counts.defined()) counts_used.push_back(used.counts);
      if (used.key_norms.defined()) norms.push_back(used.key_norms);
    }
    out = torch::cat(outs);
    if (!counts_used.empty()) last_counts_ = torch::stack(counts_used);
    if (!norms.empty()) last_key_norms_ = torch::stack(norms);
  }
  out = apply_linear(o_proj, out.transpose(1, 2).reshape({B, S, options.dim()}), E);
  if (is_training() && options.out_dropout() > 0.0) {
    if (E == 0) {
      out = dropout_with(out, options.out_dropout(), x.device(), output_seeds_[0]);
    } else {
      const int64_t b = B / E;
      std::vector<torch::Tensor> outs;
      for (int64_t e = 0; e < E; ++e) {
        outs.push_back(dropout_with(out.narrow(0, e * b, b), options.out_dropout(), x.device(),
                                    output_seeds_[e]));
      }
      out = torch::cat(outs);
    }
  }
  return out;
}

std::pair<torch::Tensor, torch::Tensor> AttentionImpl::keys_values(const torch::Tensor& source,
                                                                   int64_t B, int64_t S) {
  const int64_t E = options.members(), n_kv = layout_.n_kv, d_h = head_dim();
  torch::Tensor k, v;
  if (options.variant() == Variant::kWgqa) {
    auto [wk, bk] = folded_kv(true);
    auto [wv, bv] = folded_kv(false);
    k = E > 0 ? member_linear(source, wk, bk) : F::linear(source, wk, bk);
    v = E > 0 ? member_linear(source, wv, bv) : F::linear(source, wv, bv);
  } else {
    k = apply_linear(k_proj, source, E);
    v = apply_linear(v_proj, source, E);
  }
  k = k.view({B, S, n_kv, d_h});
  v = v.view({B, S, n_kv, d_h});
  if (options.qk_norm()) k = apply_rms_norm(k, k_norm, options.norm_eps(), E);
  return {k, v};
}

const RopeTables& AttentionImpl::rope_for(int64_t length, const torch::Tensor& like) {
  const auto table_dtype = like.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  // Tables made under inference mode (an evaluation before the first training step) cannot be
  // saved for backward: outside inference mode they are made again, as normal tensors.
  const bool inference_only =
      rope_.cos.defined() && rope_.cos.is_inference() && !c10::InferenceMode::is_enabled();
  if (!rope_.cos.defined() || inference_only || rope_.cos.size(0) < length ||
      rope_.cos.device() != like.device() || rope_.cos.scalar_type() != table_dtype) {
    rope_ = rope_tables(length, head_dim(), options.rope_theta(), like.device(), table_dtype);
  }
  return rope_;
}

torch::Tensor AttentionImpl::decode_step(const torch::Tensor& x, KvCache& cache,
                                         const torch::Tensor& memory, const torch::Tensor& bias) {
  if (is_training()) fail("Attention.decode_step: decoding runs in eval mode");
  if (options.members() > 0) fail("Attention.decode_step: one model, not an ensemble");
  const bool perturb =
      options.variant() == Variant::kPgqa && (options.faithful() || options.noise_at_eval());
  if (perturb) {
    fail(
        "Attention.decode_step: pgqa that perturbs at eval (faithful, or noise_at_eval) draws "
        "noise over whole sequences and cannot decode with a cache");
  }
  const bool cross = memory.defined();
  if (cross && options.causal()) fail("Attention.decode_step: cross-attention cannot be causal");
  const int64_t B = x.size(0), s = x.size(1), d_h = head_dim(), start = cache.length();
  auto q = apply_linear(q_proj, x, 0).view({B, s, layout_.n_q, d_h});
  if (options.qk_norm()) q = apply_rms_norm(q, q_norm, options.norm_eps(), 0);
  if (!cross || cache.length() == 0) {
    const torch::Tensor& source = cross ? memory : x;
    auto [k, v] = keys_values(source, B, source.size(1));
    if (options.rope() && !cross) k = apply_rope(k, rope_for(start + s, x), start);
    k = k.transpose(1, 2);  // [B, n_kv, s, d_h]
    v = v.transpose(1, 2);
    cache.k = cache.k.defined() ? torch::cat({cache.k, k}, 2) : k;
    cache.v = cache.v.defined() ? torch::cat({cache.v, v}, 2) : v;
  }
  if (options.rope() && !cross) q = apply_rope(q, rope_for(start + s, x), start);
  q = q.transpose(1, 2);
  if (q_index_.defined()) q = q.index_select(1, q_index_);
  AttendOptions o = attend_options(bias);
  // Dynamic variants read their allocation frozen: the layout of the counts they hold.
  if (is_dynamic(options.variant())) {
    last_counts_ = counts.clone();
    o.kv_index = kv_index_from_counts(counts, options.heads());
  }
  auto out = attend(q, cache.k, cache.v, o);
  return apply_linear(o_proj, out.transpose(1, 2).reshape({B, s, options.dim()}), 0);
}

int64_t KvCache::bytes() const {
  if (!k.defined()) return 0;
  return static_cast<int64_t>(k.numel() * k.element_size() + v.numel() * v.element_size());
}

int64_t kv_cache_bytes_per_token(const AttentionOptions& options, torch::ScalarType dtype) {
  const HeadLayout layout = validate(options);
  const int64_t d_h = options.dim() / options.heads();
  return 2 * layout.n_kv * d_h * static_cast<int64_t>(c10::elementSize(dtype));
}

void AttentionImpl::set_dropout_seeds(uint64_t probabilities, uint64_t output) {
  probabilities_seeds_.assign(1, probabilities);
  output_seeds_.assign(1, output);
}

void AttentionImpl::set_member_dropout_seeds(const std::vector<uint64_t>& probabilities,
                                             const std::vector<uint64_t>& output) {
  if (static_cast<int64_t>(probabilities.size()) != options.members() ||
      probabilities.size() != output.size()) {
    fail("Attention: " + std::to_string(probabilities.size()) + " dropout seeds for " +
         std::to_string(options.members()) + " members");
  }
  probabilities_seeds_ = probabilities;
  output_seeds_ = output;
}

void AttentionImpl::set_member_random(std::vector<MemberRandom> random) {
  random_ = std::move(random);
}

void AttentionImpl::start_epoch() {
  if (options.variant() == Variant::kDgqa && options.faithful()) {
    torch::NoGradGuard no_grad;
    step.zero_();
  }
}

torch::Tensor AttentionImpl::allocation() const {
  return last_counts_.defined() ? last_counts_ : counts;
}

int64_t AttentionImpl::degenerate_steps(int64_t member) const {
  if (!degenerate.defined()) return 0;
  return (options.members() > 0 ? degenerate.select(0, member) : degenerate).item<int64_t>();
}

AttentionPath AttentionImpl::path() const { return resolve_path(path_probe(options)); }

int64_t expected_parameter_count(const AttentionOptions& o) {
  const auto layout = validate(o);
  const int64_t d = o.dim(), d_h = d / o.heads(), kv = layout.kv_projection_heads;
  int64_t count = d * d_h * (layout.n_q + 2 * kv) + d * d;
  if (o.bias()) count += (layout.n_q + 2 * kv) * d_h;
  if (o.bias() || o.out_bias()) count += d;
  if (o.qk_norm()) count += 2 * d_h;
  if (o.variant() == Variant::kWgqa) {
    const int64_t per = o.weight_form() == WeightForm::kScalar ? 1
                        : o.weight_form() == WeightForm::kRow  ? d
                                                               : d_h;
    count += 2 * o.heads() * per;  // G groups x m members = H weights each for k and v
  }
  return count;
}

}  // namespace ablate::core
