#include "ablate/core/layout.h"

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>

namespace ablate::core {
namespace {

using V = std::vector<int64_t>;

std::string error_of(const LayoutInputs& in) {
  try {
    make_head_layout(in);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(Layout, VariantNamesRoundTrip) {
  for (const auto& name : variant_names()) EXPECT_EQ(to_string(parse_variant(name)), name);
  EXPECT_EQ(parse_variant("kdgqa"), Variant::kKdgqa);
}

TEST(Layout, UnknownVariantNamesTheChoices) {
  try {
    parse_variant("gqa2");
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("attention.variant"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'gqa2'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("mha, gqa, mqa, mkva, gkva, gqkva, kdgqa, dgqa, pgqa, wgqa"),
              std::string::npos)
        << msg;
  }
}

TEST(Layout, GqaGroupsAreContiguous) {
  auto l = make_head_layout({Variant::kGqa, 8, 2});
  EXPECT_EQ(l.n_q, 8);
  EXPECT_EQ(l.n_kv, 2);
  EXPECT_EQ(l.q_of_head, (V{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(l.kv_of_head, (V{0, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_TRUE(l.kv_contiguous);
}

TEST(Layout, MhaMqaMkva) {
  auto mha = make_head_layout({Variant::kMha, 4});
  EXPECT_EQ(mha.kv_of_head, (V{0, 1, 2, 3}));
  auto mqa = make_head_layout({Variant::kMqa, 4});
  EXPECT_EQ(mqa.n_kv, 1);
  EXPECT_EQ(mqa.kv_of_head, (V{0, 0, 0, 0}));
  auto mkva = make_head_layout({Variant::kMkva, 4});
  EXPECT_EQ(mkva.n_q, 1);
  EXPECT_EQ(mkva.n_kv, 4);
  EXPECT_EQ(mkva.q_of_head, (V{0, 0, 0, 0}));
  EXPECT_EQ(mkva.kv_of_head, (V{0, 1, 2, 3}));
}

TEST(Layout, GkvaSharesEachQueryAcrossConsecutiveHeads) {
  auto l = make_head_layout({Variant::kGkva, 6, 0, /*q_heads=*/3});
  EXPECT_EQ(l.n_q, 3);
  EXPECT_EQ(l.n_kv, 6);
  EXPECT_EQ(l.q_of_head, (V{0, 0, 1, 1, 2, 2}));
  EXPECT_EQ(l.kv_of_head, (V{0, 1, 2, 3, 4, 5}));
}

TEST(Layout, GqkvaPairsEveryQueryGroupWithEveryKvGroup) {
  auto l = make_head_layout({Variant::kGqkva, 6, 0, 0, /*q_groups=*/2, /*kv_groups=*/3});
  EXPECT_EQ(l.n_q, 2);
  EXPECT_EQ(l.n_kv, 3);
  EXPECT_EQ(l.q_of_head, (V{0, 1, 0, 1, 0, 1}));
  EXPECT_EQ(l.kv_of_head, (V{0, 0, 1, 1, 2, 2}));
  EXPECT_TRUE(l.kv_contiguous);
  // Every (query, key/value) pair appears exactly once.
  std::set<std::pair<int64_t, int64_t>> pairs;
  for (int h = 0; h < 6; ++h) pairs.insert({l.q_of_head[h], l.kv_of_head[h]});
  EXPECT_EQ(pairs.size(), 6u);
}

TEST(Layout, WgqaKeepsAllKvProjections) {
  auto l = make_head_layout({Variant::kWgqa, 8, 2});
  EXPECT_EQ(l.n_kv, 2);
  EXPECT_EQ(l.kv_projection_heads, 8);
}

TEST(Layout, KvHeadsMustDivideHeads) {
  auto msg = error_of({Variant::kGqa, 8, 3});
  EXPECT_NE(msg.find("attention.kv_heads = 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("valid: 1, 2, 4, 8"), std::string::npos) << msg;
  EXPECT_NE(error_of({Variant::kDgqa, 6, 4}).find("attention.kv_heads"), std::string::npos);
}

TEST(Layout, ZeroHeadsIsRefused) {
  EXPECT_NE(error_of({Variant::kMha, 0}).find("attention.heads = 0"), std::string::npos);
}

TEST(Layout, MissingKnobsAreNamed) {
  EXPECT_NE(error_of({Variant::kGkva, 6}).find("attention.q_heads"), std::string::npos);
  auto msg = error_of({Variant::kGqkva, 6, 0, 0, 2, 2});
  EXPECT_NE(msg.find("attention.q_groups = 2 and attention.kv_groups = 2"), std::string::npos)
      << msg;
}

}  // namespace
}  // namespace ablate::core
