#include "ablate/core/convert.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "test_support.h"

namespace ablate::core {
namespace {

using testing::max_abs_diff;
using testing::random_input;
using testing::randomize;

Attention random_mha(bool bias, bool qk_norm) {
  Attention mha(AttentionOptions(48, 6).bias(bias).qk_norm(qk_norm).rope(true).causal(true));
  randomize(*mha, 31);
  return mha;
}

TEST(Convert, MeanPoolAveragesEachContiguousGroup) {
  auto mha = random_mha(true, false);
  auto gqa = convert(mha, AttentionOptions(48, 6).variant(Variant::kGqa).kv_heads(2).bias(true),
                     Conversion::kMeanPool);
  // Group g averages heads 3g, 3g+1, 3g+2 (8 rows each).
  for (int64_t g = 0; g < 2; ++g) {
    auto rows = [&](const torch::Tensor& w, int64_t h) { return w.narrow(0, h * 8, 8); };
    auto expect = (rows(mha->k_proj->weight, 3 * g) + rows(mha->k_proj->weight, 3 * g + 1) +
                   rows(mha->k_proj->weight, 3 * g + 2)) /
                  3;
    EXPECT_LT(max_abs_diff(rows(gqa->k_proj->weight, g), expect), 1e-6);
    auto bias = (rows(mha->v_proj->bias, 3 * g) + rows(mha->v_proj->bias, 3 * g + 1) +
                 rows(mha->v_proj->bias, 3 * g + 2)) /
                3;
    EXPECT_LT(max_abs_diff(rows(gqa->v_proj->bias, g), bias), 1e-6);
  }
  EXPECT_TRUE(torch::equal(gqa->q_proj->weight, mha->q_proj->weight));
  EXPECT_TRUE(torch::equal(gqa->o_proj->weight, mha->o_proj->weight));
}

TEST(Convert, MeanPoolToOneGroupEqualsMeanOverAllHeads) {
  auto mha = random_mha(false, false);
  auto mqa = convert(mha, AttentionOptions(48, 6).variant(Variant::kMqa), Conversion::kMeanPool);
  EXPECT_LT(max_abs_diff(mqa->k_proj->weight, mha->k_proj->weight.view({6, 8, 48}).mean(0)), 1e-6);
}

TEST(Convert, WgqaWithMeanInitEqualsMeanPooledGqaAtStepZero) {
  for (auto form : {WeightForm::kScalar, WeightForm::kRow, WeightForm::kCol}) {
    for (bool extras : {false, true}) {
      auto mha = random_mha(extras, extras);
      auto base =
          AttentionOptions(48, 6).kv_heads(3).bias(extras).qk_norm(extras).rope(true).causal(true);
      auto gqa = convert(mha, AttentionOptions(base).variant(Variant::kGqa), Conversion::kMeanPool);
      auto wgqa = convert(mha, AttentionOptions(base).variant(Variant::kWgqa).weight_form(form),
                          Conversion::kWgqa);
      auto x = random_input(2, 7, 48, 32);
      EXPECT_LT(max_abs_diff(wgqa->forward(x), gqa->forward(x)), 1e-5)
          << "form " << int(form) << " extras " << extras;
    }
  }
}

TEST(Convert, WgqaFoldEqualsTheUnfoldedModule) {
  for (auto form : {WeightForm::kScalar, WeightForm::kRow, WeightForm::kCol}) {
    Attention wgqa(AttentionOptions(48, 6)
                       .variant(Variant::kWgqa)
                       .kv_heads(2)
                       .weight_form(form)
                       .weight_init(WeightInit::kRandom)
                       .bias(true)
                       .qk_norm(true));
    randomize(*wgqa, 33);
    auto folded = fold_wgqa(wgqa);
    EXPECT_EQ(folded->options.variant(), Variant::kGqa);
    EXPECT_EQ(folded->k_proj->weight.size(0), 2 * 8);  // G heads: no inference overhead
    auto x = random_input(2, 7, 48, 34);
    EXPECT_LT(max_abs_diff(folded->forward(x), wgqa->forward(x)), 1e-4) << "form " << int(form);

    // Unfolded by hand: project with each original head, then weight and sum per group.
    torch::NoGradGuard no_grad;
    auto k_all = torch::matmul(x, wgqa->k_proj->weight.t()) + wgqa->k_proj->bias;  // [B, S, 48]
    auto member = [&](int64_t h) { return k_all.narrow(-1, h * 8, 8); };
    if (form == WeightForm::kScalar) {
      auto w = wgqa->k_weight;  // [2, 3]
      auto group0 = w[0][0] * member(0) + w[0][1] * member(1) + w[0][2] * member(2);
      auto folded_k0 = torch::matmul(x, folded->k_proj->weight.narrow(0, 0, 8).t()) +
                       folded->k_proj->bias.narrow(0, 0, 8);
      EXPECT_LT(max_abs_diff(group0, folded_k0), 1e-4);
    }
  }
}

TEST(Convert, RefusesWhatItCannotConvert) {
  auto mha = random_mha(false, false);
  EXPECT_THROW(convert(mha, AttentionOptions(48, 6).variant(Variant::kGkva).q_heads(2),
                       Conversion::kMeanPool),
               std::invalid_argument);
  EXPECT_THROW(
      convert(mha, AttentionOptions(48, 6).variant(Variant::kGqa).kv_heads(2), Conversion::kWgqa),
      std::invalid_argument);
  EXPECT_THROW(convert(mha, AttentionOptions(48, 6).variant(Variant::kGqa).kv_heads(2).bias(true),
                       Conversion::kMeanPool),
               std::invalid_argument);
  Attention gqa(AttentionOptions(48, 6).variant(Variant::kGqa).kv_heads(2));
  EXPECT_THROW(convert(gqa, AttentionOptions(48, 6).variant(Variant::kMqa), Conversion::kMeanPool),
               std::invalid_argument);
  EXPECT_THROW(fold_wgqa(gqa), std::invalid_argument);
}

}  // namespace
}  // namespace ablate::core
