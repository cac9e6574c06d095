#include "member_optimizer.h"

#include <torch/torch.h>

#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "ablate/core/members.h"

namespace ablate::experiments {
namespace {

// The optimiser state map's key of a parameter: LibTorch 1.13 keys it by the printed address of
// the parameter's TensorImpl, 2.x by the address itself.
template <typename Map>
typename Map::key_type state_key(const Map&, const torch::Tensor& p) {
  using Key = typename Map::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream s;
    s << p.unsafeGetTensorImpl();
    return s.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

// The parameters of an optimiser in group order.
std::vector<torch::Tensor> parameters_of(torch::optim::Optimizer& o) {
  std::vector<torch::Tensor> out;
  for (auto& group : o.param_groups()) {
    for (auto& p : group.params()) out.push_back(p);
  }
  return out;
}

torch::optim::AdamWParamState* state_of(torch::optim::Optimizer& o, const torch::Tensor& p) {
  auto& map = o.state();
  auto it = map.find(state_key(map, p));
  return it == map.end() ? nullptr : static_cast<torch::optim::AdamWParamState*>(it->second.get());
}

void set_state(torch::optim::Optimizer& o, const torch::Tensor& p,
               std::unique_ptr<torch::optim::AdamWParamState> state) {
  auto& map = o.state();
  map[state_key(map, p)] = std::move(state);
}

// Pairs the ensemble's parameters with the single model's, in order.
template <typename Each>
void for_pairs(torch::optim::AdamW& ensemble, torch::optim::AdamW& single, Each each) {
  const auto mine = parameters_of(ensemble), theirs = parameters_of(single);
  if (mine.size() != theirs.size()) {
    throw std::logic_error("ensemble optimiser: " + std::to_string(mine.size()) +
                           " parameters, the member's " + std::to_string(theirs.size()));
  }
  for (size_t i = 0; i < mine.size(); ++i) each(mine[i], theirs[i]);
}

}  // namespace

std::unique_ptr<torch::optim::AdamW> make_optimizer(torch::nn::Module& module,
                                                    const runner::TrainConfig& t,
                                                    int64_t member_dims) {
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : module.parameters()) (p.dim() - member_dims >= 2 ? decay : no_decay).push_back(p);
  auto adamw = torch::optim::AdamWOptions(t.lr).betas({t.beta1, t.beta2});
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(adamw).weight_decay(t.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(adamw).weight_decay(0.0)));
  return std::make_unique<torch::optim::AdamW>(std::move(groups), adamw);
}

void copy_optimizer_member_in(torch::optim::AdamW& ensemble, int64_t member,
                              torch::optim::AdamW& single) {
  torch::NoGradGuard no_grad;
  for_pairs(ensemble, single, [&](const torch::Tensor& ep, const torch::Tensor& sp) {
    const auto* theirs = state_of(single, sp);
    if (theirs == nullptr) return;
    auto* mine = state_of(ensemble, ep);
    if (mine == nullptr) {
      auto fresh = std::make_unique<torch::optim::AdamWParamState>();
      fresh->exp_avg(torch::zeros_like(ep, torch::MemoryFormat::Contiguous));
      fresh->exp_avg_sq(torch::zeros_like(ep, torch::MemoryFormat::Contiguous));
      mine = fresh.get();
      set_state(ensemble, ep, std::move(fresh));
    }
    mine->step(theirs->step());  // members step together: one count
    mine->exp_avg().select(0, member).copy_(theirs->exp_avg());
    mine->exp_avg_sq().select(0, member).copy_(theirs->exp_avg_sq());
  });
}

void copy_optimizer_member_out(torch::optim::AdamW& ensemble, int64_t member,
                               torch::optim::AdamW& single) {
  torch::NoGradGuard no_grad;
  for_pairs(ensemble, single, [&](const torch::Tensor& ep, const torch::Tensor& sp) {
    const auto* mine = state_of(ensemble, ep);
    if (mine == nullptr) return;
    auto state = std::make_unique<torch::optim::AdamWParamState>();
    state->step(mine->step());
    state->exp_avg(mine->exp_avg().select(0, member).clone());
    state->exp_avg_sq(mine->exp_avg_sq().select(0, member).clone());
    set_state(single, sp, std::move(state));
  });
}

std::vector<double> clip_member_grad_norms(const std::vector<torch::Tensor>& parameters,
                                           int64_t members, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& p : parameters) {
    if (p.grad().defined()) norms.push_back(p.grad().reshape({members, -1}).norm(2, 1));
  }
  if (norms.empty()) return std::vector<double>(members, 0.0);
  auto total = torch::stack(norms).norm(2, 0);  // [E]
  auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
  for (const auto& p : parameters) {
    if (p.grad().defined()) p.grad().mul_(core::member_broadcast(coef, p.grad().dim()));
  }
  auto host = total.to(torch::kCPU).to(torch::kDouble).contiguous();
  return std::vector<double>(host.data_ptr<double>(), host.data_ptr<double>() + members);
}

}  // namespace ablate::experiments
