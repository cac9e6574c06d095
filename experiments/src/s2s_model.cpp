#include "ablate/experiments/s2s_model.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "ablate/core/causality.h"
#include "ablate/core/members.h"

namespace ablate::experiments {
namespace {

torch::nn::Linear linear(int64_t in, int64_t out) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
}

S2sMlp make_mlp(torch::nn::Module& block, const S2sOptions& o) {
  S2sMlp mlp;
  mlp.wi = block.register_module("wi", linear(o.dim, o.hidden));
  if (o.gated_gelu) mlp.wi_1 = block.register_module("wi_1", linear(o.dim, o.hidden));
  mlp.wo = block.register_module("wo", linear(o.hidden, o.dim));
  if (o.members > 0) {
    for (auto* l : {&mlp.wi, &mlp.wi_1, &mlp.wo}) {
      if (!l->is_empty()) core::stack_parameters(**l, o.members);
    }
  }
  return mlp;
}

// The MLP of `block` on the normalised input n, with the block's two dropout sites (none when not
// training).
torch::Tensor apply_mlp(const S2sMlp& mlp, const S2sOptions& o, const torch::Tensor& n,
                        const SeededDropout& block, bool training) {
  const int64_t E = o.members;
  torch::Tensor a;
  if (o.gated_gelu) {
    a = torch::gelu(core::apply_linear(mlp.wi, n, E), "tanh") * core::apply_linear(mlp.wi_1, n, E);
  } else {
    a = torch::relu(core::apply_linear(mlp.wi, n, E));
  }
  a = block.mlp_dropout(a, o.mlp_dropout, training, 0);
  return block.mlp_dropout(core::apply_linear(mlp.wo, a, E), o.mlp_dropout, training, 1);
}

// A per-stack bias [1 or E, H, S, Sk] plus the padding bias [B, 1, 1, Sk] (when defined): one
// row per batch element, member e's stack bias on its rows.
torch::Tensor with_padding(const torch::Tensor& stack_bias, const torch::Tensor& padding,
                           int64_t members) {
  if (!padding.defined()) return stack_bias;
  if (!stack_bias.defined()) return padding;
  if (members > 1) {
    const int64_t rows = padding.size(0) / members;
    return stack_bias.repeat_interleave(rows, 0) + padding;
  }
  return stack_bias + padding;
}

}  // namespace

torch::Tensor relative_position_buckets(int64_t queries, int64_t keys, bool bidirectional,
                                        int64_t buckets, int64_t max_distance,
                                        int64_t query_offset) {
  auto q = torch::arange(query_offset, query_offset + queries, torch::kLong).unsqueeze(1);
  auto relative = torch::arange(keys, torch::kLong).unsqueeze(0) - q;  // key - query
  auto out = torch::zeros_like(relative);
  int64_t n = buckets;
  if (bidirectional) {
    n /= 2;
    out = out + relative.gt(0).to(torch::kLong) * n;
    relative = relative.abs();
  } else {
    relative = -torch::min(relative, torch::zeros_like(relative));
  }
  const int64_t max_exact = n / 2;
  auto small = relative.lt(max_exact);
  // T5 computes the log in fp32 and truncates; the same operations give the same edges.
  auto large =
      max_exact +
      (torch::log(relative.to(torch::kFloat) / static_cast<double>(max_exact)) /
       std::log(static_cast<double>(max_distance) / max_exact) * static_cast<double>(n - max_exact))
          .to(torch::kLong);
  large = torch::min(large, torch::full_like(large, n - 1));
  return out + torch::where(small, relative, large);
}

// ----- relative position bias -----

RelativeBiasImpl::RelativeBiasImpl(int64_t heads_, int64_t buckets_, int64_t max_distance_,
                                   bool bidirectional_, int64_t members_)
    : heads(heads_),
      buckets(buckets_),
      max_distance(max_distance_),
      bidirectional(bidirectional_),
      members(members_) {
  reset();
}

void RelativeBiasImpl::reset() {
  relative_bias = register_parameter("relative_bias", torch::zeros({buckets, heads}));
  if (members > 0) core::stack_parameters(*this, members);
}

torch::Tensor RelativeBiasImpl::forward(int64_t queries, int64_t keys, int64_t query_offset) {
  auto index =
      relative_position_buckets(queries, keys, bidirectional, buckets, max_distance, query_offset)
          .to(relative_bias.device())
          .flatten();
  if (members == 0) {
    return relative_bias.index_select(0, index)
        .view({queries, keys, heads})
        .permute({2, 0, 1})
        .unsqueeze(0);
  }
  return relative_bias.index_select(1, index)
      .view({members, queries, keys, heads})
      .permute({0, 3, 1, 2});
}

// ----- blocks -----

S2sEncoderBlockImpl::S2sEncoderBlockImpl(const S2sOptions& options) : options(options) { reset(); }

void S2sEncoderBlockImpl::reset() {
  norm1 = register_parameter("norm1", torch::ones({options.dim}));
  norm2 = register_parameter("norm2", torch::ones({options.dim}));
  attention = register_module(
      "attention",
      core::Attention(core::AttentionOptions(options.encoder).members(options.members)));
  mlp = make_mlp(*this, options);
  if (options.members > 0) core::stack_parameters(*this, options.members);
}

torch::Tensor S2sEncoderBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& bias) {
  const int64_t E = options.members;
  auto h = x + attention->forward(core::apply_rms_norm(x, norm1, options.norm_eps, E), {}, bias);
  auto n = core::apply_rms_norm(h, norm2, options.norm_eps, E);
  return h + apply_mlp(mlp, options, n, *this, is_training());
}

S2sDecoderBlockImpl::S2sDecoderBlockImpl(const S2sOptions& options) : options(options) { reset(); }

void S2sDecoderBlockImpl::reset() {
  norm1 = register_parameter("norm1", torch::ones({options.dim}));
  norm2 = register_parameter("norm2", torch::ones({options.dim}));
  norm3 = register_parameter("norm3", torch::ones({options.dim}));
  self_attention = register_module(
      "self_attention",
      core::Attention(core::AttentionOptions(options.decoder).members(options.members)));
  cross_attention = register_module(
      "cross_attention",
      core::Attention(core::AttentionOptions(options.cross).members(options.members)));
  mlp = make_mlp(*this, options);
  if (options.members > 0) core::stack_parameters(*this, options.members);
}

torch::Tensor S2sDecoderBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& memory,
                                           const torch::Tensor& self_bias,
                                           const torch::Tensor& cross_bias) {
  const int64_t E = options.members;
  auto h = x + self_attention->forward(core::apply_rms_norm(x, norm1, options.norm_eps, E), {},
                                       self_bias);
  h = h + cross_attention->forward(core::apply_rms_norm(h, norm2, options.norm_eps, E), memory,
                                   cross_bias);
  auto n = core::apply_rms_norm(h, norm3, options.norm_eps, E);
  return h + apply_mlp(mlp, options, n, *this, is_training());
}

torch::Tensor S2sDecoderBlockImpl::decode_step(const torch::Tensor& x, const torch::Tensor& memory,
                                               const torch::Tensor& self_bias,
                                               const torch::Tensor& cross_bias,
                                               core::KvCache& self_cache,
                                               core::KvCache& cross_cache) {
  auto h = x + self_attention->decode_step(core::apply_rms_norm(x, norm1, options.norm_eps, 0),
                                           self_cache, {}, self_bias);
  h = h + cross_attention->decode_step(core::apply_rms_norm(h, norm2, options.norm_eps, 0),
                                       cross_cache, memory, cross_bias);
  auto n = core::apply_rms_norm(h, norm3, options.norm_eps, 0);
  return h + apply_mlp(mlp, options, n, *this, /*training=*/false);
}

// ----- the encoder-decoder -----

S2sImpl::S2sImpl(const S2sOptions& options) : options(options) { reset(); }

void S2sImpl::reset() {
  const S2sOptions& o = options;
  if (o.decoder.heads() != o.encoder.heads() || o.cross.heads() != o.encoder.heads()) {
    throw std::invalid_argument("s2s: every attention site needs the same number of heads");
  }
  if (!o.decoder.causal() || o.encoder.causal() || o.cross.causal()) {
    throw std::invalid_argument("s2s: the decoder's self-attention alone is causal");
  }
  embed = register_module("embed", torch::nn::Embedding(o.vocab, o.dim));
  encoder = register_module("encoder", torch::nn::ModuleList());
  decoder = register_module("decoder", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.depth; ++i) {
    encoder->push_back(S2sEncoderBlock(o));
    decoder->push_back(S2sDecoderBlock(o));
  }
  const int64_t H = o.encoder.heads();
  encoder_bias = register_module(
      "encoder_bias", RelativeBias(H, o.rel_buckets, o.rel_max_distance, true, o.members));
  decoder_bias = register_module(
      "decoder_bias", RelativeBias(H, o.rel_buckets, o.rel_max_distance, false, o.members));
  encoder_norm = register_parameter("encoder_norm", torch::ones({o.dim}));
  decoder_norm = register_parameter("decoder_norm", torch::ones({o.dim}));
  if (!o.tie_embeddings) lm_head = register_module("lm_head", linear(o.dim, o.vocab));
  if (o.members > 0) {
    core::stack_parameters(*embed, o.members);
    if (!o.tie_embeddings) core::stack_parameters(*lm_head, o.members);
    core::stack_parameters(*this, o.members);
  }
}

S2sImpl::Encoded S2sImpl::encode(const torch::Tensor& source) {
  const int64_t E = options.members, Ls = source.size(1);
  Encoded out;
  auto pad = source.eq(options.pad);
  if (pad.any().item<bool>()) {
    auto dtype = embed->weight.scalar_type();
    out.key_padding =
        torch::zeros(pad.sizes(), torch::TensorOptions().dtype(dtype).device(pad.device()))
            .masked_fill(pad, -std::numeric_limits<double>::infinity())
            .view({source.size(0), 1, 1, Ls});
  }
  auto bias = with_padding(encoder_bias->forward(Ls, Ls), out.key_padding, E);
  auto x = embed_tokens(embed, source, E);
  for (const auto& block : *encoder) x = block->as<S2sEncoderBlock>()->forward(x, bias);
  out.memory = core::apply_rms_norm(x, encoder_norm, options.norm_eps, E);
  return out;
}

torch::Tensor S2sImpl::decode(const Encoded& encoded, const torch::Tensor& decoder_input) {
  const int64_t E = options.members, Lt = decoder_input.size(1);
  auto self_bias = decoder_bias->forward(Lt, Lt);
  auto x = embed_tokens(embed, decoder_input, E);
  for (const auto& block : *decoder) {
    x = block->as<S2sDecoderBlock>()->forward(x, encoded.memory, self_bias, encoded.key_padding);
  }
  x = core::apply_rms_norm(x, decoder_norm, options.norm_eps, E);
  if (!options.tie_embeddings) return core::apply_linear(lm_head, x, E);
  // T5 rescales before the tied output projection, so logits do not grow with the width.
  x = x * std::pow(static_cast<double>(options.dim), -0.5);
  return tied_logits(x, embed->weight, E);
}

int64_t S2sImpl::Caches::bytes() const {
  int64_t n = 0;
  for (const auto* list : {&self, &cross}) {
    for (const auto& c : *list) n += c.bytes();
  }
  return n;
}

torch::Tensor S2sImpl::decode_step(const Encoded& encoded, const torch::Tensor& tokens,
                                   Caches& caches) {
  if (options.members > 0) throw std::invalid_argument("S2s.decode_step: one model only");
  caches.self.resize(decoder->size());
  caches.cross.resize(decoder->size());
  const int64_t start = caches.self[0].length(), s = tokens.size(1);
  auto self_bias = decoder_bias->forward(s, start + s, start);
  auto x = embed->forward(tokens);
  for (size_t i = 0; i < decoder->size(); ++i) {
    x = decoder[i]->as<S2sDecoderBlock>()->decode_step(
        x, encoded.memory, self_bias, encoded.key_padding, caches.self[i], caches.cross[i]);
  }
  x = core::apply_rms_norm(x, decoder_norm, options.norm_eps, 0);
  if (!options.tie_embeddings) return lm_head(x);
  return tied_logits(x * std::pow(static_cast<double>(options.dim), -0.5), embed->weight, 0);
}

torch::Tensor S2sImpl::forward(const torch::Tensor& source, const torch::Tensor& decoder_input) {
  return decode(encode(source), decoder_input);
}

double s2s_causality_leak(const S2s& model, int64_t source_len, int64_t target_len, int64_t seed) {
  const int64_t Lt = std::min<int64_t>(target_len, 32), V = model->options.vocab;
  auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(seed) ^ 0x5a5a5a5aull);
  // Tokens below pad: real tokens, so no source padding hides keys.
  const int64_t real = std::min(V, model->options.pad);
  auto source = torch::randint(real, {2, std::min<int64_t>(source_len, 32)}, gen, torch::kInt64);
  auto input = torch::randint(real, {2, Lt}, gen, torch::kInt64);
  return token_causality_leak(*model, input, real, gen, seed,
                              [&source](torch::nn::Module& m, const torch::Tensor& x) {
                                return dynamic_cast<S2sImpl&>(m).forward(source, x);
                              });
}

}  // namespace ablate::experiments
