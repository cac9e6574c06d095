#include "ablate/core/members.h"

#include <torch/torch.h>

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ablate/core/ops.h"

namespace ablate::core {
namespace {

std::vector<int64_t> with_members(int64_t members, torch::IntArrayRef shape) {
  std::vector<int64_t> out{members};
  out.insert(out.end(), shape.begin(), shape.end());
  return out;
}

// Every parameter and buffer of `module` by its full name.
std::vector<std::pair<std::string, torch::Tensor>> tensors_of(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : module.named_parameters()) out.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers()) out.emplace_back(b.key(), b.value());
  return out;
}

// Calls copy(ensemble tensor's member view or the whole shared tensor, single tensor) for every
// pair of tensors of the same name.
template <typename Copy>
void for_member(const torch::nn::Module& ensemble, int64_t member, const torch::nn::Module& single,
                Copy copy) {
  std::map<std::string, torch::Tensor> mine;
  for (auto& [name, t] : tensors_of(ensemble)) mine.emplace(name, t);
  for (const auto& [name, s] : tensors_of(single)) {
    auto it = mine.find(name);
    if (it == mine.end()) throw std::invalid_argument("ensemble: no tensor " + name);
    const torch::Tensor& e = it->second;
    torch::Tensor view;
    if (e.dim() == s.dim() + 1 && e.sizes().slice(1) == s.sizes()) {
      if (member < 0 || member >= e.size(0)) {
        throw std::invalid_argument("ensemble: member " + std::to_string(member) + " of " +
                                    std::to_string(e.size(0)));
      }
      view = e.select(0, member);
    } else if (e.sizes() == s.sizes()) {
      view = e;
    } else {
      std::ostringstream why;
      why << "ensemble: " << name << " is " << e.sizes() << ", the single model's " << s.sizes();
      throw std::invalid_argument(why.str());
    }
    copy(view, s);
  }
}

}  // namespace

void stack_parameters(torch::nn::Module& module, int64_t members) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.named_parameters(/*recurse=*/false)) {
    p.value().set_data(torch::zeros(with_members(members, p.value().sizes()), p.value().options()));
  }
}

torch::Tensor by_member(const torch::Tensor& x, int64_t members) {
  auto shape = x.sizes().vec();
  if (members <= 0 || shape.empty() || shape[0] % members != 0) {
    std::ostringstream why;
    why << "ensemble: a batch of " << (shape.empty() ? 0 : shape[0]) << " rows does not fold "
        << members << " members";
    throw std::invalid_argument(why.str());
  }
  shape[0] /= members;
  shape.insert(shape.begin(), members);
  return x.view(shape);
}

torch::Tensor member_broadcast(const torch::Tensor& p, int64_t rank) {
  auto shape = p.sizes().vec();
  const int64_t ones = rank - p.dim();
  shape.insert(shape.begin() + 1, std::max<int64_t>(0, ones), 1);
  return p.view(shape);
}

torch::Tensor member_linear(const torch::Tensor& x, const torch::Tensor& weight,
                            const torch::Tensor& bias) {
  const int64_t E = weight.size(0), in = weight.size(2), out = weight.size(1);
  auto rows = x.reshape({E, -1, in});  // [E, N * ..., in]
  auto y = bias.defined() ? torch::baddbmm(bias.unsqueeze(1), rows, weight.transpose(1, 2))
                          : torch::bmm(rows, weight.transpose(1, 2));
  auto shape = x.sizes().vec();
  shape.back() = out;
  return y.view(shape);
}

torch::Tensor apply_linear(const torch::nn::Linear& linear, const torch::Tensor& x,
                           int64_t members) {
  if (members == 0) return torch::nn::Linear(linear)->forward(x);  // a handle: forward is non-const
  return member_linear(x, linear->weight, linear->bias);
}

torch::Tensor apply_rms_norm(const torch::Tensor& x, const torch::Tensor& gain, double eps,
                             int64_t members) {
  if (members == 0) return rms_norm(x, gain, eps);
  auto xm = by_member(x, members);
  return rms_norm(xm, member_broadcast(gain, xm.dim()), eps).view(x.sizes());
}

void copy_member_in(torch::nn::Module& ensemble, int64_t member, const torch::nn::Module& single) {
  torch::NoGradGuard no_grad;
  for_member(ensemble, member, single,
             [](torch::Tensor view, const torch::Tensor& s) { view.copy_(s); });
}

void copy_member_out(const torch::nn::Module& ensemble, int64_t member, torch::nn::Module& single) {
  torch::NoGradGuard no_grad;
  for_member(ensemble, member, single,
             [](const torch::Tensor& view, torch::Tensor s) { s.copy_(view); });
}

}  // namespace ablate::core
