// step_forward: two training steps of a run dir's model on a given batch, for checking that
// another implementation (scripts/step-reference, PyTorch eager) computes the same model.
//
//   step_forward RUN_DIR DIR
//
// Reads RUN_DIR/config.yaml (the lm or vit task, one model), builds the model as ablate-train does
// and loads RUN_DIR/checkpoint/model.pt. From DIR it reads shape.txt ("vit B C H W CLASSES" or
// "lm B S VOCAB", then the learning rate), input.bin (vit: float32 images [B, C, H, W]; lm: int64
// tokens [B, S]) and target.bin (int64: vit [B], lm [B, S]), all raw little-endian. Then, as
// train.cpp's train_step does for one model, twice on that batch: logits, cross-entropy, backward,
// global gradient-norm clipping at train.grad_clip, an AdamW step (make_optimizer: decay on
// matrices only, the config's betas and weight decay) at the given learning rate; then the logits
// again. Writes into DIR: logits0.bin and logits1.bin (float32, the logits before the first step
// and after the second) and scalars.txt (loss before the first step, the two gradient norms before
// clipping, the loss after the second step), all %.17g.
// Eval mode is not used: the configs checked have no dropout, and training mode is what a step
// runs. Not part of ablate's command line; built with the tests.
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ablate/experiments/models.h"
#include "ablate/runner/parse.h"
#include "member_optimizer.h"
#include "run_dir.h"

namespace fs = std::filesystem;
using namespace ablate;

namespace {

torch::Tensor read_raw(const fs::path& file, std::vector<int64_t> shape, torch::ScalarType dtype) {
  auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  std::ifstream in(file, std::ios::binary);
  in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  if (!in || in.gcount() != static_cast<std::streamsize>(t.nbytes())) {
    throw std::runtime_error(file.string() + ": expected " + std::to_string(t.nbytes()) + " bytes");
  }
  return t;
}

void write_raw(const fs::path& file, const torch::Tensor& t) {
  auto c = t.detach().to(torch::kFloat32).contiguous();
  std::ofstream out(file, std::ios::binary);
  out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.nbytes()));
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: step_forward RUN_DIR DIR\n";
    return 2;
  }
  try {
    const fs::path run_dir = argv[1], dir = argv[2];
    const runner::Config c = runner::load_config((run_dir / "config.yaml").string());
    std::ifstream shape_file(dir / "shape.txt");
    std::string task;
    shape_file >> task;
    if (task != c.task) throw std::runtime_error("shape.txt says " + task + ", config " + c.task);
    torch::set_num_threads(1);

    std::shared_ptr<torch::nn::Module> module;
    std::function<torch::Tensor(const torch::Tensor&)> forward;
    torch::Tensor input, target;
    double lr = 0;
    if (task == "vit") {
      int64_t B, C, H, W, classes;
      shape_file >> B >> C >> H >> W >> classes >> lr;
      experiments::VitOptions o;  // as train.cpp's make_model
      o.channels = C;
      o.image = H;
      o.patch = c.model.patch;
      o.classes = classes;
      o.dim = c.model.dim;
      o.depth = c.model.depth;
      o.hidden = experiments::mlp_hidden(c.model, /*swiglu=*/false);
      o.norm_eps = c.model.norm_eps;
      o.mlp_dropout = c.model.mlp_dropout;
      o.attention = experiments::attention_options(c.attention, c.model.dim, c.model.heads,
                                                   c.model.norm_eps, /*causal=*/false);
      experiments::Vit vit(o);
      module = vit.ptr();
      forward = [vit](const torch::Tensor& x) mutable { return vit->forward(x); };
      input = read_raw(dir / "input.bin", {B, C, H, W}, torch::kFloat32);
      target = read_raw(dir / "target.bin", {B}, torch::kInt64);
    } else if (task == "lm") {
      int64_t B, S, vocab;
      shape_file >> B >> S >> vocab >> lr;
      experiments::LmOptions o;  // as train.cpp's lm_options
      o.vocab = vocab;
      o.dim = c.model.dim;
      o.depth = c.model.depth;
      o.hidden = experiments::mlp_hidden(c.model, /*swiglu=*/true);
      o.norm_eps = c.model.norm_eps;
      o.mlp_dropout = c.model.mlp_dropout;
      o.attention = experiments::attention_options(c.attention, c.model.dim, c.model.heads,
                                                   c.model.norm_eps, /*causal=*/true);
      experiments::Lm lm(o);
      module = lm.ptr();
      forward = [lm](const torch::Tensor& x) mutable { return lm->forward(x); };
      input = read_raw(dir / "input.bin", {B, S}, torch::kInt64);
      target = read_raw(dir / "target.bin", {B, S}, torch::kInt64);
    } else {
      throw std::runtime_error("task " + task + ": only lm and vit");
    }
    experiments::load_module(*module, run_dir / "checkpoint" / "model.pt");
    module->train();
    auto optimizer = experiments::make_optimizer(*module, c.train);
    for (auto& group : optimizer->param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    }
    auto loss_of = [&](const torch::Tensor& logits) {
      return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                                  target.reshape({-1}));
    };
    // Two steps on the same batch: the second is the first whose update depends on the betas.
    torch::Tensor logits0, loss0;
    double grad_norm[2] = {0.0, 0.0};
    for (int i = 0; i < 2; ++i) {
      optimizer->zero_grad();
      auto logits = forward(input);
      auto loss = loss_of(logits);
      if (i == 0) {
        logits0 = logits.detach();
        loss0 = loss.detach();
      }
      loss.backward();
      if (c.train.grad_clip > 0) {
        grad_norm[i] = torch::nn::utils::clip_grad_norm_(module->parameters(), c.train.grad_clip);
      }
      optimizer->step();
    }
    torch::Tensor logits1, loss1;
    {
      torch::NoGradGuard no_grad;
      logits1 = forward(input);
      loss1 = loss_of(logits1);
    }
    write_raw(dir / "logits0.bin", logits0);
    write_raw(dir / "logits1.bin", logits1);
    std::ofstream scalars(dir / "scalars.txt");
    char line[128];
    std::snprintf(line, sizeof line, "%.17g %.17g %.17g %.17g\n", loss0.item<double>(),
                  grad_norm[0], grad_norm[1], loss1.item<double>());
    scalars << line;
    if (!scalars) throw std::runtime_error("cannot write scalars.txt");
  } catch (const std::exception& e) {
    std::cerr << "step_forward: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
