#include "ablate/experiments/train.h"

#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <vector>

#include "ablate/core/convert.h"
#include "ablate/experiments/data_error.h"
#include "ablate/experiments/device.h"
#include "ablate/experiments/models.h"
#include "ablate/runner/canonical.h"
#include "ablate/runner/parse.h"
#include "run_dir.h"
#include "task_data.h"

namespace ablate::experiments {
namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr double kPi = 3.14159265358979323846;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ----- model -----

struct Model {
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor(const torch::Tensor&)> forward;
};

LmOptions lm_options(const runner::Config& c) {
  LmOptions o;
  o.vocab = lm_vocab(c);
  o.dim = c.model.dim;
  o.depth = c.model.depth;
  o.hidden = mlp_hidden(c.model, /*swiglu=*/true);
  o.norm_eps = c.model.norm_eps;
  o.mlp_dropout = c.model.mlp_dropout;
  o.attention = attention_options(c.attention, c.model.dim, c.model.heads, c.model.norm_eps,
                                  /*causal=*/true);
  return o;
}

Model make_model(const runner::Config& c, const TaskData* data) {
  Model m;
  if (c.task == "lm") {
    Lm lm(lm_options(c));
    m.module = lm.ptr();
    m.forward = [lm](const torch::Tensor& x) mutable { return lm->forward(x); };
  } else {
    const ImageShape shape = image_shape(*data);
    VitOptions o;
    o.channels = shape.channels;
    o.image = shape.image;
    o.patch = c.model.patch;
    o.classes = shape.classes;
    o.dim = c.model.dim;
    o.depth = c.model.depth;
    o.hidden = mlp_hidden(c.model, /*swiglu=*/false);
    o.norm_eps = c.model.norm_eps;
    o.mlp_dropout = c.model.mlp_dropout;
    o.attention = attention_options(c.attention, c.model.dim, c.model.heads, c.model.norm_eps,
                                    /*causal=*/false);
    Vit vit(o);
    m.module = vit.ptr();
    m.forward = [vit](const torch::Tensor& x) mutable { return vit->forward(x); };
  }
  init_parameters(*m.module, c.seed);
  return m;
}

std::string format_duration(double s) {
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s / 3600),
                  static_cast<int>(s / 60) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  }
  return buf;
}

// Attention diagnostics (docs/design.md section 5), one event per layer.
std::vector<json> attention_diagnostics(const std::vector<core::Attention>& layers,
                                        const std::vector<torch::Tensor>& initial_weights,
                                        int64_t step) {
  std::vector<json> events;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& a = layers[i];
    const core::Variant v = a->options.variant();
    json e{{"step", step}, {"kind", "attention"}, {"layer", i}};
    if (v == core::Variant::kKdgqa || v == core::Variant::kDgqa) {
      auto alloc = a->allocation().to(torch::kCPU).to(torch::kFloat64);
      std::vector<int64_t> counts(alloc.size(0));
      for (int64_t j = 0; j < alloc.size(0); ++j) counts[j] = alloc[j].item<int64_t>();
      auto p = alloc / alloc.sum();
      auto nz = p.masked_select(p > 0);
      e["alloc"] = counts;
      e["alloc_entropy"] = -(nz * nz.log()).sum().item<double>();
      e["degenerate_steps"] = a->degenerate_steps();
      // Key-head norms of the last forward (the last evaluation batch); dgqa also its cache.
      if (a->last_key_norms().defined()) {
        auto norms = a->last_key_norms().to(torch::kCPU).to(torch::kFloat64);
        e["key_norm_mean"] = norms.mean().item<double>();
        e["key_norm_std"] = norms.std(/*unbiased=*/false).item<double>();
        e["key_norm_max_over_min"] = (norms.max() / norms.min()).item<double>();
      }
      if (v == core::Variant::kDgqa) {
        auto cache = a->cache.to(torch::kCPU).to(torch::kFloat64);
        e["norm_cache_mean"] = cache.mean().item<double>();
        e["norm_cache_std"] = cache.std(/*unbiased=*/false).item<double>();
      }
    } else if (v == core::Variant::kWgqa && i < initial_weights.size()) {
      torch::NoGradGuard no_grad;
      auto now = torch::cat({a->k_weight.flatten(), a->v_weight.flatten()}).to(torch::kCPU);
      e["weight_distance"] = (now.to(torch::kFloat64) - initial_weights[i]).norm().item<double>();
    } else if (v == core::Variant::kPgqa) {
      e["noise_norm"] = a->noise_norm.to(torch::kCPU).item<double>();
    } else {
      continue;
    }
    events.push_back(std::move(e));
  }
  return events;
}

// Starts from a parent run's checkpoint, converting its attention when asked.
void init_from_parent(const runner::Config& c, Model& model, const TaskData* data) {
  const fs::path parent_dir = c.init.from;
  auto parent_ckpt = checkpoint_dir(parent_dir);
  if (!fs::exists(parent_dir / "config.yaml") || !parent_ckpt) {
    throw RunError("init.from = " + c.init.from +
                   ": not a run directory with a checkpoint (config.yaml and checkpoint/)");
  }
  const runner::Config pc = runner::load_config((parent_dir / "config.yaml").string());
  if (pc.task != c.task) {
    throw RunError("init.from = " + c.init.from + " is a " + pc.task + " run, this is " + c.task);
  }
  Model parent = make_model(pc, data);
  load_module(*parent.module, *parent_ckpt / "model.pt");

  torch::NoGradGuard no_grad;
  auto source_layers = attention_layers(*parent.module);
  auto target_layers = attention_layers(*model.module);
  if (source_layers.size() != target_layers.size()) {
    throw RunError("init.from: the parent has " + std::to_string(source_layers.size()) +
                   " attention layers, this model " + std::to_string(target_layers.size()));
  }
  auto parent_params = parent.module->named_parameters();
  for (auto& item : model.module->named_parameters()) {
    if (item.key().find("attention.") != std::string::npos && c.init.convert != "none") continue;
    const torch::Tensor* p = parent_params.find(item.key());
    if (p == nullptr || p->sizes() != item.value().sizes()) {
      throw RunError("init.from: parameter " + item.key() +
                     " does not match the parent's (change the model or use init.convert)");
    }
    item.value().copy_(*p);
  }
  if (c.init.convert == "none") {
    auto parent_buffers = parent.module->named_buffers();
    for (auto& item : model.module->named_buffers()) {
      if (const torch::Tensor* b = parent_buffers.find(item.key())) item.value().copy_(*b);
    }
    return;
  }
  const auto kind =
      c.init.convert == "wgqa" ? core::Conversion::kWgqa : core::Conversion::kMeanPool;
  for (size_t i = 0; i < target_layers.size(); ++i) {
    core::Attention converted = core::convert(source_layers[i], target_layers[i]->options, kind);
    auto params = converted->named_parameters();
    for (auto& item : target_layers[i]->named_parameters()) item.value().copy_(params[item.key()]);
    auto buffers = converted->named_buffers();
    for (auto& item : target_layers[i]->named_buffers()) item.value().copy_(buffers[item.key()]);
  }
}

// The learning rate of `step` of `steps`: linear warm-up over `warmup` steps to lr, then cosine
// decay to min_lr.
double learning_rate(const runner::TrainConfig& t, int64_t warmup, int64_t step, int64_t steps) {
  if (step < warmup) return t.lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const double span = std::max<int64_t>(1, steps - warmup);
  const double progress = static_cast<double>(step - warmup) / span;
  return t.min_lr + 0.5 * (t.lr - t.min_lr) * (1.0 + std::cos(kPi * progress));
}

// The lm causality verdict recorded in the summary, or RunError when the variant leaks the future
// and attention.allow_noncausal is not set. Two grounds: the faithful dynamic variants leak by
// construction (their allocations or noise statistics use later positions; a perturbation may not
// move a rounded allocation, so the empirical check alone can miss it), and the empirical check
// catches everything else.
std::string check_causality(const runner::Config& c) {
  if (c.task != "lm") return "not checked (vit attends both ways)";
  std::ostringstream why;
  const auto& v = c.attention.variant;
  why << runner::noncausal_reason(c);  // the rule validate() applies; here for the summary
  const double leak = lm_causality_leak(c);
  if (leak > 0.0) {
    why << (why.tellp() > 0 ? "; and " : "")
        << "changing tokens after position t moved the logits at positions <= t by up to " << leak;
  }
  if (why.tellp() > 0 && !c.attention.allow_noncausal) {
    throw RunError("attention.variant = " + v +
                   (c.attention.faithful ? " with attention.faithful = true" : "") +
                   " is not causal: " + why.str() +
                   ". A language model trained with it sees the future. Set "
                   "attention.allow_noncausal: true to train it anyway (the summary records it).");
  }
  return why.tellp() > 0
             ? "leaks the future (" + why.str() + "); allowed by attention.allow_noncausal"
             : "causal";
}

// What train() checks before anything is written: the config, the run dir's own config (a run
// dir belongs to one job), the device, the data and (lm) causality.
struct Checked {
  std::string hash;      // the job id
  torch::Device device;  // where to train
  std::unique_ptr<TaskData> data;
  std::string causality;  // the verdict for summary.json
  int64_t steps = 0;      // optimiser steps: train.steps, or train.epochs x per_epoch
  int64_t per_epoch = 0;  // batches per epoch with train.epochs; 0 without
  int64_t warmup = 0;     // warm-up steps: train.warmup, or the automatic one for `steps`
};

Checked check_inputs(const runner::Config& c, const fs::path& run_dir) {
  runner::validate(c);
  const std::string hash = runner::config_hash(c);
  if (fs::exists(run_dir / "config.yaml")) {
    const runner::Config stored = runner::load_config((run_dir / "config.yaml").string());
    if (runner::config_hash(stored) != hash) {
      throw RunError("run dir " + run_dir.string() + " holds a different config (job " +
                     runner::config_hash(stored) + ", this one " + hash +
                     "); use another --run-dir");
    }
  }
  if (c.train.threads > 0) torch::set_num_threads(static_cast<int>(c.train.threads));
  const torch::Device device = choose_device(c.train.device);
  auto data = load_data(c);
  int64_t steps = c.train.steps, per_epoch = 0;
  if (c.train.epochs > 0) {
    per_epoch = data->batches_per_epoch();
    steps = c.train.epochs * per_epoch;
    if (c.train.warmup > steps) {
      throw RunError("train.warmup " + std::to_string(c.train.warmup) + " exceeds the " +
                     std::to_string(steps) + " steps of train.epochs " +
                     std::to_string(c.train.epochs) + " (" + std::to_string(per_epoch) +
                     " batches per epoch); without train.warmup the warm-up is automatic (" +
                     std::to_string(runner::warmup_steps(runner::TrainConfig(), steps)) +
                     " steps here)");
    }
  }
  return {hash,
          device,
          std::move(data),
          check_causality(c),
          steps,
          per_epoch,
          runner::warmup_steps(c.train, steps)};
}

// AdamW with weight decay on matrices only.
std::unique_ptr<torch::optim::AdamW> make_optimizer(torch::nn::Module& module,
                                                    const runner::TrainConfig& t) {
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : module.parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  auto adamw = torch::optim::AdamWOptions(t.lr).betas({t.beta1, t.beta2});
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(adamw).weight_decay(t.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(adamw).weight_decay(0.0)));
  return std::make_unique<torch::optim::AdamW>(std::move(groups), adamw);
}

// One call of the training loop on a checked config: the run dir's files, the model, the
// optimiser and the metrics, shared by the loop's parts (resume, evaluation, summary,
// checkpoint, step).
class Trainer {
 public:
  Trainer(const runner::Config& c, const TrainOptions& options, Checked checked)
      : c_(c),
        options_(options),
        run_dir_(options.run_dir),
        hash_(std::move(checked.hash)),
        device_(checked.device),
        data_(std::move(checked.data)),
        causality_(std::move(checked.causality)),
        steps_(checked.steps),
        per_epoch_(checked.per_epoch),
        warmup_(checked.warmup),
        use_bf16_(uses_bf16_autocast(c.train.precision, device_)) {
    torch::manual_seed(c_.seed);
    model_ = make_model(c_, data_.get());
    parameters_ = parameter_count(*model_.module);
    layers_ = attention_layers(*model_.module);
    for (const auto& a : layers_) {
      initial_weights_.push_back(a->options.variant() == core::Variant::kWgqa
                                     ? torch::cat({a->k_weight.flatten(), a->v_weight.flatten()})
                                           .detach()
                                           .to(torch::kFloat64)
                                     : torch::Tensor());
    }
    result_.parameters = parameters_;
  }

  TrainResult run() {
    fs::create_directories(run_dir_);
    const RunDirLock lock(run_dir_);
    log_.open(run_dir_ / "log.txt", std::ios::app);
    if (!fs::exists(run_dir_ / "config.yaml")) {
      write_file_atomic(run_dir_ / "config.yaml", runner::to_yaml(c_));
    }
    const std::optional<fs::path> ckpt = checkpoint_dir(run_dir_);
    if (ckpt && finished(*ckpt)) return result_;
    if (ckpt) {
      resume(*ckpt);
    } else {
      truncate_events(run_dir_ / "events.jsonl", 0);  // killed before its first checkpoint
      if (!c_.init.from.empty()) init_from_parent(c_, model_, data_.get());
    }
    model_.module->to(device_);
    optimizer_ = make_optimizer(*model_.module, c_.train);
    if (ckpt) {
      torch::serialize::InputArchive archive;
      archive.load_from((*ckpt / "optimizer.pt").string(), device_);
      optimizer_->load(archive);
    }
    events_.open(run_dir_ / "events.jsonl", std::ios::app);
    wall_start_ = Clock::now();
    write_summary("running", start_step_);
    if (start_step_ == 0) {
      say("training " + c_.task + " with attention " + c_.attention.variant + ", " +
          std::to_string(parameters_) + " parameters, on " + device_.str() + ", config " + hash_);
      if (!c_.init.from.empty()) evaluate(0);  // the converted model before any training
    }
    return loop();
  }

 private:
  void say(const std::string& line) {
    log_ << line << "\n";
    log_.flush();
    if (!options_.quiet) std::cerr << line << "\n";
  }

  void emit(const json& e) {
    events_ << e.dump() << "\n";
    events_.flush();
  }

  double wall_time() const { return wall_before_ + seconds_since(wall_start_); }
  double throughput() const { return train_seconds_ > 0 ? items_done_ / train_seconds_ : 0.0; }

  // A run whose checkpoint says done or diverged: the stored result, nothing trained.
  bool finished(const fs::path& ckpt) {
    const json state = json::parse(read_file(ckpt / "state.json"));
    const std::string status = state.value("status", "");
    if (status != "done" && status != "diverged") return false;
    const json summary = json::parse(read_file(run_dir_ / "summary.json"));
    result_.status = summary["status"];
    result_.step = summary["step"];
    for (auto& [k, v] : summary["final"].items()) result_.final[k] = v;
    for (auto& [k, v] : summary["best"].items()) result_.best[k] = v;
    say("run already finished (" + result_.status + " at step " + std::to_string(result_.step) +
        "); nothing to do");
    return true;
  }

  void resume(const fs::path& ckpt) {
    const json state = json::parse(read_file(ckpt / "state.json"));
    load_module(*model_.module, ckpt / "model.pt");
    start_step_ = state["step"];
    wall_before_ = state["wall_time_s"];
    best_ = state["best"];
    final_ = state["final"];
    result_.resumed_from = start_step_;
    truncate_events(run_dir_ / "events.jsonl", start_step_);
    say("resuming from the checkpoint of step " + std::to_string(start_step_));
  }

  void evaluate(int64_t step) {
    model_.module->eval();
    torch::NoGradGuard no_grad;
    torch::manual_seed(mix(mix(c_.seed, kEvalStream), step));
    auto metrics = data_->evaluate(
        [&](const torch::Tensor& x) {
          AutocastScope autocast(device_, use_bf16_);
          return model_.forward(x);
        },
        device_);
    model_.module->train();
    json e{{"step", step}, {"kind", "eval"}};
    for (auto& [k, v] : metrics) {
      e[k] = v;
      final_[k] = v;
      const bool higher_better = k.find("acc") != std::string::npos;
      if (!best_.contains(k) ||
          (higher_better ? v > best_[k].get<double>() : v < best_[k].get<double>())) {
        best_[k] = v;
      }
    }
    emit(e);
    for (const auto& d : attention_diagnostics(layers_, initial_weights_, step)) emit(d);
    std::ostringstream line;
    line << "eval step " << step;
    for (auto& [k, v] : metrics) line << " " << k << " " << v;
    say(line.str());
  }

  void write_summary(const std::string& status, int64_t step) {
    json s{{"status", status},
           {"step", step},
           {"steps", steps_},
           {"warmup", warmup_},
           {"final", final_},
           {"best", best_},
           {"wall_time_s", wall_time()},
           {"parameters", parameters_},
           {"throughput", throughput()},
           {"throughput_unit", data_->unit() + "/s"},
           {"peak_memory_bytes", peak_memory_bytes(device_)},
           {"device", device_.str()},
           {"precision", use_bf16_ ? "bf16" : "fp32"},
           {"config_hash", hash_},
           {"causality", causality_},
           {"allow_noncausal", c_.attention.allow_noncausal},
           {"torch_version", TORCH_VERSION}};
    const DeviceInfo info = describe_device(device_);
    if (!info.gpu_name.empty()) {
      s["gpu_name"] = info.gpu_name;
      s["cuda_version"] = info.cuda_version;
    }
    if (result_.diverged_step >= 0) s["diverged_step"] = result_.diverged_step;
    write_file_atomic(run_dir_ / "summary.json", s.dump(2) + "\n");
  }

  // Written to checkpoint.tmp/ and renamed: a kill never leaves half a checkpoint.
  void save_checkpoint(int64_t step, const std::string& status) {
    const fs::path tmp = run_dir_ / "checkpoint.tmp", cur = run_dir_ / "checkpoint",
                   old = run_dir_ / "checkpoint.old";
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    save_module(*model_.module, tmp / "model.pt");
    torch::serialize::OutputArchive archive;
    optimizer_->save(archive);
    archive.save_to((tmp / "optimizer.pt").string());
    json state{{"step", step},
               {"status", status},
               {"wall_time_s", wall_time()},
               {"best", best_},
               {"final", final_}};
    write_file_atomic(tmp / "state.json", state.dump(2));
    fs::remove_all(old);
    if (fs::exists(cur)) fs::rename(cur, old);
    fs::rename(tmp, cur);
    fs::remove_all(old);
  }

  struct StepOutcome {
    double loss = 0.0;       // the batch's training loss
    double grad_norm = 0.0;  // before clipping; 0 when clipping is off
    int64_t items = 0;       // tokens or images trained on
  };

  // The batch of `step`: by step, or with train.epochs batch step % per_epoch of epoch
  // step / per_epoch; an epoch's first batch restarts what counts batches within the epoch.
  Batch batch_of(int64_t step) {
    if (per_epoch_ == 0) return data_->train_batch(step);
    const int64_t epoch = step / per_epoch_, index = step % per_epoch_;
    if (index == 0) {
      for (auto& layer : layers_) layer->start_epoch();
    }
    return data_->epoch_batch(epoch, index);
  }

  // One optimiser step at `step` (0-based) with learning rate `lr`. The loss is checked before
  // the backward pass: a NaN or inf loss returns without touching the weights.
  StepOutcome train_step(int64_t step, double lr) {
    for (auto& group : optimizer_->param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    }
    torch::manual_seed(mix(mix(c_.seed, kTorchStream), step));
    set_dropout_seeds(*model_.module, mix(mix(c_.seed, kDropoutStream), step));
    Batch batch = batch_of(step);
    auto input = batch.input.to(device_), target = batch.target.to(device_);
    optimizer_->zero_grad();
    torch::Tensor logits;
    {
      AutocastScope autocast(device_, use_bf16_);
      logits = model_.forward(input);
    }
    logits = logits.to(torch::kFloat32);
    auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                                     target.reshape({-1}));
    StepOutcome out;
    out.items = batch.items;
    out.loss = loss.item<double>();
    if (!std::isfinite(out.loss)) return out;
    loss.backward();
    if (c_.train.grad_clip > 0) {
      out.grad_norm =
          torch::nn::utils::clip_grad_norm_(model_.module->parameters(), c_.train.grad_clip);
    }
    optimizer_->step();
    return out;
  }

  void diverge(int64_t step, double loss) {
    result_.status = "diverged";
    result_.diverged_step = step + 1;
    emit({{"step", step + 1}, {"kind", "train"}, {"loss", loss}, {"diverged", true}});
    say("diverged: loss " + std::to_string(loss) + " at step " + std::to_string(step + 1));
    write_summary("diverged", step);
    save_checkpoint(step, "diverged");
    result_.step = step;
  }

  TrainResult loop() {
    const bool tty = options_.progress && isatty(STDERR_FILENO);
    model_.module->train();
    double window_seconds = 0.0, window_loss = 0.0, window_items = 0.0;
    int64_t window_steps = 0, steps_this_call = 0;
    int64_t step = start_step_;
    while (step < steps_) {
      const auto t0 = Clock::now();
      const double lr = learning_rate(c_.train, warmup_, step, steps_);
      const StepOutcome o = train_step(step, lr);
      if (!std::isfinite(o.loss)) {
        diverge(step, o.loss);
        return result_;
      }
      ++step;
      ++steps_this_call;
      const double dt = seconds_since(t0);
      train_seconds_ += dt;
      window_seconds += dt;
      items_done_ += static_cast<double>(o.items);
      window_items += static_cast<double>(o.items);
      window_loss += o.loss;
      ++window_steps;
      const bool last = step == steps_;

      if (step % c_.train.log_every == 0 || last) {
        emit({{"step", step},
              {"kind", "train"},
              {"loss", window_loss / window_steps},
              {"lr", lr},
              {"grad_norm", o.grad_norm},
              {"step_time_s", window_seconds / window_steps},
              {"throughput", window_items / window_seconds},
              {"peak_memory_bytes", peak_memory_bytes(device_)}});
        window_loss = window_seconds = window_items = 0.0;
        window_steps = 0;
      }
      if (tty) {
        const double rate = steps_this_call / train_seconds_;
        std::fprintf(stderr, "\rstep %lld/%lld  loss %.4f  %.0f %s/s  ETA %s   ",
                     static_cast<long long>(step), static_cast<long long>(steps_), o.loss,
                     throughput(), data_->unit().c_str(),
                     format_duration((steps_ - step) / rate).c_str());
        if (last) std::fputc('\n', stderr);
      }
      const bool epoch_end = per_epoch_ > 0 && c_.train.eval_each_epoch && step % per_epoch_ == 0;
      if (step % c_.train.eval_every == 0 || last || epoch_end) {
        if (tty && !last) std::fputc('\n', stderr);
        evaluate(step);
      }
      if ((c_.train.checkpoint_every > 0 && step % c_.train.checkpoint_every == 0) || last) {
        save_checkpoint(step, last ? "done" : "running");
      }
      if (options_.stop_after > 0 && steps_this_call >= options_.stop_after && !last) {
        result_.status = "stopped";
        result_.step = step;
        return result_;
      }
    }
    result_.status = "done";
    result_.step = step;
    for (auto& [k, v] : final_.items()) result_.final[k] = v;
    for (auto& [k, v] : best_.items()) result_.best[k] = v;
    write_summary("done", step);
    say("done: step " + std::to_string(step) + ", wall time " + format_duration(wall_time()));
    return result_;
  }

  const runner::Config& c_;
  const TrainOptions& options_;
  const fs::path run_dir_;
  const std::string hash_;
  const torch::Device device_;
  std::unique_ptr<TaskData> data_;
  const std::string causality_;
  const int64_t steps_;      // optimiser steps of the whole run
  const int64_t per_epoch_;  // batches per epoch with train.epochs; 0 without
  const int64_t warmup_;     // warm-up steps (the automatic one resolved for steps_)
  const bool use_bf16_;

  Model model_;
  int64_t parameters_ = 0;
  std::vector<core::Attention> layers_;
  std::vector<torch::Tensor> initial_weights_;  // wgqa: the weights at the start, for diagnostics
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::ofstream log_, events_;

  int64_t start_step_ = 0;    // the checkpoint's step when resuming
  double wall_before_ = 0.0;  // wall time of earlier calls (from the checkpoint)
  Clock::time_point wall_start_ = Clock::now();
  double train_seconds_ = 0.0, items_done_ = 0.0;  // this call's training time and items
  json best_ = json::object(), final_ = json::object();
  TrainResult result_;
};

}  // namespace

double lm_causality_leak(const runner::Config& config) {
  Lm lm(lm_options(config));
  init_parameters(*lm, config.seed);
  return causality_leak(lm, config.data.seq_len, config.seed);
}

TrainResult train(const runner::Config& c, const TrainOptions& options) {
  // Bad input first, before anything is written.
  Checked checked = check_inputs(c, options.run_dir);
  Trainer trainer(c, options, std::move(checked));
  return trainer.run();
}

std::vector<TrainResult> train_ensemble(const std::vector<Member>& members) {
  // Placeholder until the batched trainer lands: members one after another, each exactly as a
  // single run (so results are right, only slower).
  std::vector<TrainResult> results;
  for (const auto& m : members) results.push_back(train(m.config, m.options));
  return results;
}

}  // namespace ablate::experiments
