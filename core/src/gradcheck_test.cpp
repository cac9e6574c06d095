// Autograd against central finite differences in double precision, for every variant: the
// analytic gradient of sum(output * w) with respect to the input and to every parameter.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>

#include "ablate/core/attention.h"
#include "test_support.h"

namespace ablate::core {
namespace {

struct Mismatch {
  std::string what;
  double analytic = 0, numeric = 0;
};

// Compares d f / d t for each tensor in `wrt`; f is evaluated with the global generator reseeded,
// so random perturbations are the same draws in every evaluation.
std::vector<Mismatch> gradient_mismatches(
    const std::function<torch::Tensor()>& f,
    const std::vector<std::pair<std::string, torch::Tensor>>& wrt) {
  const double eps = 1e-6;
  auto eval = [&] {
    torch::manual_seed(5);
    return f();
  };
  for (auto& [name, t] : wrt) {
    if (t.grad().defined()) t.mutable_grad().zero_();
  }
  eval().backward();
  std::vector<Mismatch> bad;
  for (auto& [name, t] : wrt) {
    auto analytic = t.grad().defined() ? t.grad().clone() : torch::zeros_like(t);
    auto flat = t.data().view(-1);
    auto a = analytic.view(-1);
    torch::NoGradGuard no_grad;
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double original = flat[i].item<double>();
      flat[i] = original + eps;
      const double up = eval().item<double>();
      flat[i] = original - eps;
      const double down = eval().item<double>();
      flat[i] = original;
      const double numeric = (up - down) / (2 * eps);
      const double got = a[i].item<double>();
      if (!(std::abs(got - numeric) <= 1e-6 + 1e-5 * std::abs(numeric))) {  // NaN fails
        bad.push_back({name + "[" + std::to_string(i) + "]", got, numeric});
      }
    }
  }
  return bad;
}

std::vector<AttentionOptions> all_variants() {
  auto base = [](Variant v) {
    return AttentionOptions(16, 4).variant(v).bias(true).qk_norm(true).rope(true).causal(true);
  };
  return {
      base(Variant::kMha),
      base(Variant::kGqa).kv_heads(2),
      base(Variant::kMqa),
      base(Variant::kMkva),
      base(Variant::kGkva).q_heads(2),
      base(Variant::kGqkva).q_groups(2).kv_groups(2),
      base(Variant::kKdgqa).kv_heads(2),
      base(Variant::kKdgqa).kv_heads(2).faithful(true).causal(false),
      base(Variant::kDgqa).kv_heads(2),
      base(Variant::kPgqa).kv_heads(2),
      base(Variant::kPgqa).kv_heads(2).noise_target(NoiseTarget::kScores),
      base(Variant::kPgqa).kv_heads(2).faithful(true).causal(false),
      base(Variant::kWgqa).kv_heads(2).weight_form(WeightForm::kScalar),
      base(Variant::kWgqa).kv_heads(2).weight_form(WeightForm::kRow),
      base(Variant::kWgqa).kv_heads(2).weight_form(WeightForm::kCol),
  };
}

TEST(Gradients, MatchFiniteDifferencesForEveryVariant) {
  for (const auto& o : all_variants()) {
    Attention m(o);
    testing::randomize(*m, 71);
    m->to(torch::kDouble);
    // Dynamic variants run in eval mode so a finite-difference step cannot move their state;
    // pgqa runs in training mode so its noise is on.
    m->train(o.variant() == Variant::kPgqa || !is_dynamic(o.variant()));
    auto x = testing::random_input(2, 5, 16, 72, torch::kDouble).requires_grad_(true);
    torch::manual_seed(73);
    auto w = torch::randn({2, 5, 16}, torch::kDouble);
    std::vector<std::pair<std::string, torch::Tensor>> wrt = {{"x", x}};
    for (const auto& p : m->named_parameters()) wrt.push_back({p.key(), p.value()});
    auto bad = gradient_mismatches([&] { return (m->forward(x) * w).sum(); }, wrt);
    for (size_t i = 0; i < std::min<size_t>(bad.size(), 5); ++i) {
      ADD_FAILURE() << *m << " d/d " << bad[i].what << ": autograd " << bad[i].analytic
                    << ", finite differences " << bad[i].numeric;
    }
    // Every parameter takes part: a detached weight would show as a zero gradient.
    for (const auto& p : m->named_parameters()) {
      EXPECT_GT(p.value().grad().abs().max().item<double>(), 0.0) << *m << " " << p.key();
    }
  }
}

}  // namespace
}  // namespace ablate::core
