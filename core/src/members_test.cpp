// Ensembles (members.h): an attention module with E members computes, for each member, what a
// single module holding that member's weights and state computes: outputs, gradients and the
// dynamic state after several training and eval forwards, for every variant and mode.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "ablate/core/attention.h"
#include "ablate/core/members.h"
#include "test_support.h"

namespace ablate::core {
namespace {

constexpr int64_t kMembers = 3, kBatch = 2, kSeq = 6, kDim = 16, kHeads = 4;

struct Case {
  std::string name;
  AttentionOptions options;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<Case> cases() {
  auto base = [] { return AttentionOptions(kDim, kHeads).causal(true); };
  std::vector<Case> c;
  c.push_back({"mha", base()});
  c.push_back({"gqa_bias_qknorm_rope",
               base().variant(Variant::kGqa).kv_heads(2).bias(true).qk_norm(true).rope(true)});
  c.push_back({"mqa", base().variant(Variant::kMqa)});
  c.push_back({"gkva", base().variant(Variant::kGkva).q_heads(2).kv_heads(2)});
  c.push_back({"gqkva", base().variant(Variant::kGqkva).q_groups(2).kv_groups(2)});
  c.push_back(
      {"kdgqa_faithful", base().causal(false).variant(Variant::kKdgqa).kv_heads(2).faithful(true)});
  c.push_back({"kdgqa_robust", base().variant(Variant::kKdgqa).kv_heads(2)});
  c.push_back(
      {"dgqa_faithful_ema",
       base().causal(false).variant(Variant::kDgqa).kv_heads(2).faithful(true).ema_window(2)});
  c.push_back(
      {"dgqa_robust_diff",
       base().variant(Variant::kDgqa).kv_heads(2).ema_window(2).dgqa_mode(DgqaMode::kDiff)});
  c.push_back(
      {"pgqa_faithful", base().causal(false).variant(Variant::kPgqa).kv_heads(2).faithful(true)});
  c.push_back({"pgqa_robust_scores",
               base().variant(Variant::kPgqa).kv_heads(2).noise_target(NoiseTarget::kScores)});
  c.push_back(
      {"wgqa_row_bias",
       base().variant(Variant::kWgqa).kv_heads(2).weight_form(WeightForm::kRow).bias(true)});
  c.push_back(
      {"wgqa_col", base().variant(Variant::kWgqa).kv_heads(2).weight_form(WeightForm::kCol)});
  c.push_back(
      {"dropout", base().variant(Variant::kGqa).kv_heads(2).attn_dropout(0.2).out_dropout(0.1)});
  return c;
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  // Batched and single matrix products may sum in another order: a few ulps of fp32 of the
  // terms summed, so the bound scales with the tensor's largest value, not each element's (a
  // gradient element near 0 is a sum with cancellation: PyPI LibTorch's MKL, which may take
  // fewer threads on a busy machine, once left 4e-6 on such an element). A member mixed up with
  // another differs by the tensor's own scale.
  const double scale = b.abs().max().item<double>();
  const double diff = (a - b).abs().max().item<double>();
  EXPECT_LE(diff, 1e-5 * scale + 1e-6)
      << what << ": max difference " << diff << ", scale " << scale;
}

class MembersTest : public ::testing::TestWithParam<Case> {};

TEST_P(MembersTest, EachMemberComputesWhatItsSingleModuleComputes) {
  const AttentionOptions options = GetParam().options;
  std::vector<Attention> singles;
  Attention ensemble(AttentionOptions(options).members(kMembers));
  std::vector<MemberRandom> random;
  std::vector<uint64_t> stream_seeds, drop_p, drop_o;
  for (int64_t e = 0; e < kMembers; ++e) {
    singles.emplace_back(options);
    testing::randomize(*singles.back(), 100 + e);
    copy_member_in(*ensemble, e, *singles.back());
    stream_seeds.push_back(7 + e);
    random.push_back(
        {at::detail::createCPUGenerator(7 + e), at::detail::createCPUGenerator(7 + e)});
    drop_p.push_back(1000 + e);
    drop_o.push_back(2000 + e);
  }
  ensemble->set_member_random(random);
  ensemble->set_member_dropout_seeds(drop_p, drop_o);
  // Each single module draws from the global generator, reseeded per member as the ensemble's
  // member streams are: keep each single's generator state between its forwards.
  std::vector<at::Generator> single_streams;
  for (int64_t e = 0; e < kMembers; ++e) {
    single_streams.push_back(at::detail::createCPUGenerator(stream_seeds[e]));
    singles[e]->set_dropout_seeds(drop_p[e], drop_o[e]);
  }
  auto global = at::detail::getDefaultCPUGenerator();

  for (int step = 0; step < 5; ++step) {
    const bool training = step != 3;  // an eval forward between training ones
    ensemble->train(training);
    std::vector<torch::Tensor> xs, outs;
    for (int64_t e = 0; e < kMembers; ++e) {
      singles[e]->train(training);
      xs.push_back(testing::random_input(kBatch, kSeq, kDim, 50 * step + e).requires_grad_(true));
      global.set_state(single_streams[e].get_state());
      outs.push_back(singles[e]->forward(xs[e]));
      single_streams[e].set_state(global.get_state());
    }
    auto x = torch::cat(xs).detach().requires_grad_(true);
    auto out = ensemble->forward(x);
    const int64_t b = kBatch;
    for (int64_t e = 0; e < kMembers; ++e) {
      expect_close(out.narrow(0, e * b, b), outs[e],
                   "step " + std::to_string(step) + " member " + std::to_string(e) + " output");
    }
    if (!training) continue;
    // Gradients: a different upstream gradient per member.
    auto upstream = torch::randn_like(out);
    out.backward(upstream);
    for (int64_t e = 0; e < kMembers; ++e) {
      singles[e]->zero_grad();
      outs[e].backward(upstream.narrow(0, e * b, b));
      expect_close(x.grad().narrow(0, e * b, b), xs[e].grad(), "input gradient");
      for (const auto& p : singles[e]->named_parameters()) {
        auto stacked = ensemble->named_parameters()[p.key()];
        ASSERT_TRUE(stacked.grad().defined()) << p.key();
        expect_close(stacked.grad().select(0, e), p.value().grad(), p.key() + " gradient");
      }
    }
    ensemble->zero_grad();
  }
  // The dynamic state after the forwards: each member's equals its single module's.
  for (int64_t e = 0; e < kMembers; ++e) {
    Attention out(options);
    copy_member_out(*ensemble, e, *out);
    for (const auto& buffer : singles[e]->named_buffers()) {
      auto mine = out->named_buffers()[buffer.key()];
      if (buffer.value().is_floating_point()) {
        expect_close(mine, buffer.value(), buffer.key());
      } else {
        EXPECT_TRUE(torch::equal(mine, buffer.value())) << buffer.key() << " of member " << e;
      }
    }
    if (is_dynamic(options.variant())) {
      EXPECT_TRUE(torch::equal(ensemble->allocation()[e], singles[e]->allocation()));
      EXPECT_EQ(ensemble->degenerate_steps(e), singles[e]->degenerate_steps());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, MembersTest, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

TEST(Members, CopyRefusesAModuleOfAnotherShape) {
  Attention ensemble(AttentionOptions(kDim, kHeads).variant(Variant::kGqa).kv_heads(2).members(2));
  Attention other(AttentionOptions(kDim, kHeads));  // MHA: wider k_proj
  EXPECT_THROW(copy_member_in(*ensemble, 0, *other), std::invalid_argument);
  Attention same(AttentionOptions(kDim, kHeads).variant(Variant::kGqa).kv_heads(2));
  EXPECT_THROW(copy_member_in(*ensemble, 2, *same), std::invalid_argument);  // no member 2
}

TEST(Members, ABatchThatDoesNotFoldTheMembersIsRefused) {
  Attention ensemble(AttentionOptions(kDim, kHeads).members(3));
  EXPECT_THROW(ensemble->forward(torch::randn({4, kSeq, kDim})), std::invalid_argument);
}

TEST(Members, LinearOfEachMemberIsItsOwnMatrixProduct) {
  torch::manual_seed(3);
  auto w = torch::randn({3, 5, 4}), b = torch::randn({3, 5}), x = torch::randn({6, 7, 4});
  auto y = member_linear(x, w, b);
  ASSERT_EQ(y.sizes(), torch::IntArrayRef({6, 7, 5}));
  for (int64_t e = 0; e < 3; ++e) {
    auto expected = torch::matmul(x.narrow(0, 2 * e, 2), w[e].t()) + b[e];
    EXPECT_TRUE(torch::allclose(y.narrow(0, 2 * e, 2), expected, 1e-5, 1e-6)) << e;
  }
}

}  // namespace
}  // namespace ablate::core
