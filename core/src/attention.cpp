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
  PgqaScoreNoise(NoiseKind k, double s, torch::Tensor* n) : kind(k), scale(s), norm_out(n) {}
  torch::Tensor operator()(const torch::Tensor& scores,
                           const torch::Tensor& visible) const override {
    auto noise = draw_noise(scores, kind, visible).noise * scale;
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
  counts = register_buffer("counts", torch::tensor(layout_counts(layout_), torch::kLong));
  if (layout_.n_q != H) {
    q_index_ = register_buffer("q_index", torch::tensor(layout_.q_of_head, torch::kLong));
  }
  if (is_dynamic(options.variant())) {
    cache = register_buffer("cache", torch::zeros({G}));
    boundary_cache = register_buffer("boundary_cache", torch::zeros({G}));
    step = register_buffer("step", torch::zeros({}, torch::kLong));
    degenerate = register_buffer("degenerate", torch::zeros({}, torch::kLong));
  }
  if (options.variant() == Variant::kPgqa) {
    noise_norm = register_buffer("noise_norm", torch::zeros({}));
  }
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
  const int64_t m = options.heads() / G;
  auto W = proj->weight.view({G, m, d_h, d});
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
  auto weight = (w.view(wshape) * W).sum(1).reshape({G * d_h, d});
  torch::Tensor bias;
  if (proj->bias.defined()) {
    auto b = proj->bias.view({G, m, d_h});
    // A bias lives in output space: scalar and col weights scale it directly; a row weight
    // scales inputs only, so the bias takes the mean of its row (G/H at mean init, i.e. the
    // mean-pooled bias).
    auto bw = options.weight_form() == WeightForm::kScalar ? w.view({G, m, 1})
              : options.weight_form() == WeightForm::kCol  ? w.view({G, m, d_h})
                                                           : w.mean(-1).view({G, m, 1});
    bias = (bw * b).sum(1).reshape({G * d_h});
  }
  return {weight, bias};
}

torch::Tensor AttentionImpl::kv_index_for(const torch::Tensor& k) {
  if (!is_dynamic(options.variant())) return {};
  torch::NoGradGuard no_grad;
  const int64_t H = options.heads();
  const bool faithful = options.faithful();
  auto norms = key_head_norms(k);
  last_key_norms_ = norms.detach();
  auto note = [&](const Allocation& a, const torch::Tensor& applied) {
    degenerate.add_(a.degenerate.logical_and(applied).to(torch::kLong));
  };
  auto yes = torch::ones({}, torch::TensorOptions().dtype(torch::kBool).device(k.device()));

  if (options.variant() == Variant::kKdgqa) {
    if (faithful) {
      auto a = allocate_queries(minmax_scale(norms, 0.0), {H, 0, FixRule::kLargestSmallest});
      counts.copy_(a.counts);
      note(a, yes);
      last_counts_ = counts.clone();
      return kv_index_from_counts(counts, H);
    }
    // Robust: this step uses the allocation from the previous step's keys (one-step lag).
    last_counts_ = counts.clone();
    if (is_training()) {
      auto a = allocate_queries(minmax_scale(norms, options.eps()),
                                {H, options.min_per_group(), FixRule::kLargestSmallest});
      counts.copy_(a.counts);
      note(a, yes);
    }
    return kv_index_from_counts(last_counts_, H);
  }

  // dgqa
  const double beta = resolved_ema_beta(options);
  const bool ema = options.dgqa_mode() == DgqaMode::kEma;
  const auto window = options.ema_window();
  if (faithful) {
    // As the authors' code: the allocation is computed only where it is used (a training step at
    // a window boundary, every eval batch), so its random repair draws happen only there. Reading
    // the step is a host synchronisation, as their .tolist() is.
    if (!is_training() || step.item<int64_t>() % window == 0) {
      auto shares = ema ? beta * norms + (1.0 - beta) * cache : (cache - norms).abs();
      auto a = allocate_queries(shares, {H, 0, FixRule::kRandom});
      counts.copy_(a.counts);
      cache.copy_(is_training() ? (cache + norms) / static_cast<double>(window) : norms);
      note(a, yes);
    }
    if (is_training()) step.add_(1);
  } else if (is_training()) {
    // Robust: a boundary reallocates from statistics of earlier steps only.
    auto boundary = step.gt(0).logical_and(step.remainder(window) == 0);
    auto shares = ema ? cache.clone() : (cache - boundary_cache).abs();
    auto a = allocate_queries(shares, {H, options.min_per_group(), FixRule::kLargestSmallest});
    counts.copy_(torch::where(boundary, a.counts, counts));
    boundary_cache.copy_(torch::where(boundary, cache, boundary_cache));
    note(a, boundary);
    cache.copy_(torch::where(step == 0, norms, beta * norms + (1.0 - beta) * cache));
    step.add_(1);
  }
  last_counts_ = counts.clone();
  return kv_index_from_counts(last_counts_, H);
}

torch::Tensor AttentionImpl::perturb_output(const torch::Tensor& out) {
  const int64_t B = out.size(0), H = out.size(1), S = out.size(2), d_h = out.size(3);
  torch::Tensor noise;
  if (options.faithful()) {
    // As the original code: one (m, S * d_h) matrix per group, shared by the batch.
    const int64_t G = layout_.n_kv, m = H / G;
    auto rows = out.reshape({B, G, m, S * d_h});
    noise = draw_shared_group_noise(rows).noise;
    noise = noise.view({B, H, S, d_h});
  } else {
    // One (S, d_h) matrix per batch element and head: each row is one query position.
    noise = draw_noise(out, options.noise()).noise;
  }
  noise = noise * options.noise_scale();
  {
    torch::NoGradGuard no_grad;
    noise_norm.copy_(noise.detach().norm());
  }
  return out - noise;
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  if (x.dim() != 3 || x.size(2) != options.dim()) {
    std::ostringstream out;
    out << "Attention.forward: expected input [B, S, " << options.dim() << "], got " << x.sizes();
    fail(out.str());
  }
  const int64_t B = x.size(0), S = x.size(1), d_h = head_dim();
  const int64_t n_q = layout_.n_q, n_kv = layout_.n_kv;
  auto q = q_proj(x).view({B, S, n_q, d_h});
  torch::Tensor k, v;
  if (options.variant() == Variant::kWgqa) {
    auto [wk, bk] = folded_kv(true);
    auto [wv, bv] = folded_kv(false);
    k = F::linear(x, wk, bk);
    v = F::linear(x, wv, bv);
  } else {
    k = k_proj(x);
    v = v_proj(x);
  }
  k = k.view({B, S, n_kv, d_h});
  v = v.view({B, S, n_kv, d_h});
  if (options.qk_norm()) {
    q = rms_norm(q, q_norm, options.norm_eps());
    k = rms_norm(k, k_norm, options.norm_eps());
  }
  if (options.rope()) {
    const auto table_dtype = x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
    if (!rope_.cos.defined() || rope_.cos.size(0) < S || rope_.cos.device() != x.device() ||
        rope_.cos.scalar_type() != table_dtype) {
      rope_ = rope_tables(S, d_h, options.rope_theta(), x.device(), table_dtype);
    }
    q = apply_rope(q, rope_);
    k = apply_rope(k, rope_);
  }
  q = q.transpose(1, 2);  // [B, n_q, S, d_h]
  k = k.transpose(1, 2);  // [B, n_kv, S, d_h]
  v = v.transpose(1, 2);
  if (q_index_.defined()) q = q.index_select(1, q_index_);  // share queries across heads

  AttendOptions attend_options;
  attend_options.causal = options.causal();
  attend_options.path = options.path();
  attend_options.kv_index = kv_index_for(k);
  const bool perturb = options.variant() == Variant::kPgqa &&
                       (options.faithful() || is_training() || options.noise_at_eval());
  PgqaScoreNoise score_noise(options.noise(), options.noise_scale(), &noise_norm);
  if (perturb && is_pgqa_scores(options)) attend_options.score_noise = &score_noise;

  if (is_training() && options.attn_dropout() > 0.0) {
    attend_options.dropout = options.attn_dropout();
    attend_options.dropout_generator = seeded_generator(x.device(), probabilities_seed_);
  }

  auto out = attend(q, k, v, attend_options);
  if (perturb && !is_pgqa_scores(options)) out = perturb_output(out);
  out = o_proj(out.transpose(1, 2).reshape({B, S, options.dim()}));
  if (is_training() && options.out_dropout() > 0.0) {
    out = dropout(out, options.out_dropout(), seeded_generator(x.device(), output_seed_));
  }
  return out;
}

void AttentionImpl::set_dropout_seeds(uint64_t probabilities, uint64_t output) {
  probabilities_seed_ = probabilities;
  output_seed_ = output;
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

int64_t AttentionImpl::degenerate_steps() const {
  return degenerate.defined() ? degenerate.item<int64_t>() : 0;
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
