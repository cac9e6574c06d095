#include "ablate/core/convert.h"

#include <torch/torch.h>

#include <stdexcept>

namespace ablate::core {
namespace {

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

void copy_linear(const torch::nn::Linear& from, torch::nn::Linear& to) {
  to->weight.copy_(from->weight);
  if (from->bias.defined()) to->bias.copy_(from->bias);
}

// Copies what every conversion keeps: queries, output projection, qk_norm gains.
void copy_shared(const AttentionImpl& from, AttentionImpl& to) {
  copy_linear(from.q_proj, to.q_proj);
  copy_linear(from.o_proj, to.o_proj);
  if (from.options.qk_norm()) {
    to.q_norm.copy_(from.q_norm);
    to.k_norm.copy_(from.k_norm);
  }
}

// Average of each contiguous block of `group` rows-of-d_h: [H * d_h, ...] -> [G * d_h, ...].
torch::Tensor mean_pool_heads(const torch::Tensor& t, int64_t heads, int64_t groups) {
  auto sizes = t.sizes().vec();
  const int64_t d_h = sizes[0] / heads;
  std::vector<int64_t> view = {groups, heads / groups, d_h};
  view.insert(view.end(), sizes.begin() + 1, sizes.end());
  sizes[0] = groups * d_h;
  return t.reshape(view).mean(1).reshape(sizes);
}

Attention on_device_of(const Attention& reference, Attention created) {
  created->to(reference->q_proj->weight.device(), reference->q_proj->weight.scalar_type());
  created->train(reference->is_training());
  return created;
}

}  // namespace

Attention convert(const Attention& source, const AttentionOptions& target, Conversion kind) {
  const auto& s = source->options;
  if (s.variant() != Variant::kMha) {
    fail("convert: the source must be mha, got " + to_string(s.variant()));
  }
  if (target.dim() != s.dim() || target.heads() != s.heads()) {
    fail("convert: target dim/heads (" + std::to_string(target.dim()) + "/" +
         std::to_string(target.heads()) + ") differ from the source's (" + std::to_string(s.dim()) +
         "/" + std::to_string(s.heads()) + ")");
  }
  if (target.bias() != s.bias()) fail("convert: attention.bias differs between source and target");
  if (target.out_bias() != s.out_bias()) {
    fail("convert: attention.out_bias differs between source and target");
  }
  if (target.qk_norm() != s.qk_norm()) {
    fail("convert: attention.qk_norm differs between source and target");
  }
  const auto layout = validate(target);
  if (kind == Conversion::kWgqa && target.variant() != Variant::kWgqa) {
    fail("convert: the wgqa conversion needs attention.variant = wgqa, got " +
         to_string(target.variant()));
  }
  if (kind == Conversion::kMeanPool && (target.variant() == Variant::kWgqa ||
                                        layout.n_q != target.heads() || !layout.kv_contiguous)) {
    fail(
        "convert: mean_pool needs a target with H queries and contiguous key/value groups "
        "(gqa, mqa, kdgqa, dgqa, pgqa), got " +
        to_string(target.variant()));
  }

  Attention out = on_device_of(source, Attention(target));
  torch::NoGradGuard no_grad;
  copy_shared(*source, *out);
  if (kind == Conversion::kWgqa) {
    copy_linear(source->k_proj, out->k_proj);
    copy_linear(source->v_proj, out->v_proj);
    return out;
  }
  const int64_t H = target.heads(), G = layout.n_kv;
  for (auto [from, to] :
       {std::make_pair(source->k_proj, out->k_proj), std::make_pair(source->v_proj, out->v_proj)}) {
    to->weight.copy_(mean_pool_heads(from->weight, H, G));
    if (from->bias.defined()) to->bias.copy_(mean_pool_heads(from->bias, H, G));
  }
  return out;
}

Attention fold_wgqa(const Attention& wgqa) {
  const auto& w = wgqa->options;
  if (w.variant() != Variant::kWgqa)
    fail("fold_wgqa: expected a wgqa module, got " + to_string(w.variant()));
  AttentionOptions target = w;
  target.variant(Variant::kGqa);
  Attention out = on_device_of(wgqa, Attention(target));
  torch::NoGradGuard no_grad;
  copy_shared(*wgqa, *out);
  for (bool key : {true, false}) {
    auto [weight, bias] = wgqa->folded_kv(key);
    auto& to = key ? out->k_proj : out->v_proj;
    to->weight.copy_(weight);
    if (bias.defined()) to->bias.copy_(bias);
  }
  return out;
}

}  // namespace ablate::core
