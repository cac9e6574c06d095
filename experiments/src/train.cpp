#include "ablate/experiments/train.h"

#include <ATen/CPUGeneratorImpl.h>
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
#include "ablate/core/members.h"
#include "ablate/experiments/data_error.h"
#include "ablate/experiments/decode.h"
#include "ablate/experiments/device.h"
#include "ablate/experiments/models.h"
#include "ablate/experiments/s2s_model.h"
#include "ablate/runner/canonical.h"
#include "ablate/runner/parse.h"
#include "member_optimizer.h"
#include "run_dir.h"
#include "run_record.h"
#include "task_data.h"

namespace ablate::experiments {
namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// The s2s decoder's causality check on the config's model (defined below, with the lm's).
double s2s_causality_leak(const runner::Config& config, const TaskData& data);

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kT5EmbeddingStd = 1.0;  // T5's embedding scale (models.h, init_parameters)
constexpr int64_t kDecodeBatch = 8;      // the summary's decoding speed: sequences at once
constexpr int64_t kDecodeSteps = 32;     // and tokens generated per sequence

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

// The attention options of s2s site `site` (encoder, decoder, cross): the configured variant
// where attention.sites names it, mha (with the same norms, biases, scaling and dropout) elsewhere.
core::AttentionOptions s2s_site(const runner::Config& c, const std::string& site) {
  runner::AttentionConfig a = c.attention;
  if (!runner::has_site(c, site)) a.variant = "mha";  // mha's layout reads no grouping key
  if (site == "cross") a.rope = false;  // positions of two sequences: RoPE does not apply
  auto o = attention_options(a, c.model.dim, c.model.heads, c.model.norm_eps,
                             /*causal=*/site == "decoder");
  return o.scale(c.attention.scale == "none" ? core::ScoreScale::kNone
                                             : core::ScoreScale::kInvSqrtDh);
}

S2sOptions s2s_options(const runner::Config& c, const S2sShape& shape) {
  S2sOptions o;
  o.vocab = shape.vocab;
  o.pad = shape.pad;
  o.dim = c.model.dim;
  o.depth = c.model.depth;
  o.gated_gelu = c.model.mlp == "gated-gelu";
  o.hidden = mlp_hidden(c.model, /*swiglu=*/o.gated_gelu);
  o.norm_eps = c.model.norm_eps;
  o.mlp_dropout = c.model.mlp_dropout;
  o.tie_embeddings = c.model.tie_embeddings;
  o.rel_buckets = c.model.rel_buckets;
  o.rel_max_distance = c.model.rel_max_distance;
  o.encoder = s2s_site(c, "encoder");
  o.decoder = s2s_site(c, "decoder");
  o.cross = s2s_site(c, "cross");
  return o;
}

// The model of `c`, initialised from its seed; with members > 0 the ensemble form (members.h),
// whose values come from its members' single models.
Model make_model(const runner::Config& c, const TaskData* data, int64_t members = 0) {
  Model m;
  if (c.task == "s2s") {
    const S2sShape shape = s2s_shape(*data);
    S2sOptions o = s2s_options(c, shape);
    o.members = members;
    S2s s2s(o);
    m.module = s2s.ptr();
    // A batch holds the source and the decoder input side by side (task_data.h).
    const int64_t Ls = shape.source_len;
    m.forward = [s2s, Ls](const torch::Tensor& x) mutable {
      return s2s->forward(x.narrow(1, 0, Ls), x.narrow(1, Ls, x.size(1) - Ls));
    };
  } else if (c.task == "lm") {
    LmOptions o = lm_options(c);
    o.members = members;
    Lm lm(o);
    m.module = lm.ptr();
    m.forward = [lm](const torch::Tensor& x) mutable { return lm->forward(x); };
  } else {
    const ImageShape shape = image_shape(*data);
    // Bad input (an idx file's side, known only once read): exit status 2 like every other.
    if (shape.image % c.model.patch != 0) {
      throw RunError("model.patch " + std::to_string(c.model.patch) +
                     " does not divide the image side " + std::to_string(shape.image) +
                     " of the data (patches tile the image)");
    }
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
    o.members = members;
    Vit vit(o);
    m.module = vit.ptr();
    m.forward = [vit](const torch::Tensor& x) mutable { return vit->forward(x); };
  }
  if (members == 0) init_parameters(*m.module, c.seed, c.task == "s2s" ? kT5EmbeddingStd : 0.02);
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

// Attention diagnostics (docs/design.md section 5), one event per layer, of one model (member < 0)
// or of one member of an ensemble.
std::vector<json> attention_diagnostics(const std::vector<core::Attention>& layers,
                                        const std::vector<torch::Tensor>& initial_weights,
                                        int64_t step, int64_t member) {
  auto pick = [member](const torch::Tensor& t) { return member < 0 ? t : t.select(0, member); };
  std::vector<json> events;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& a = layers[i];
    const core::Variant v = a->options.variant();
    json e{{"step", step}, {"kind", "attention"}, {"layer", i}};
    if (v == core::Variant::kKdgqa || v == core::Variant::kDgqa) {
      auto alloc = pick(a->allocation()).to(torch::kCPU).to(torch::kFloat64);
      std::vector<int64_t> counts(alloc.size(0));
      for (int64_t j = 0; j < alloc.size(0); ++j) counts[j] = alloc[j].item<int64_t>();
      auto p = alloc / alloc.sum();
      auto nz = p.masked_select(p > 0);
      e["alloc"] = counts;
      e["alloc_entropy"] = -(nz * nz.log()).sum().item<double>();
      e["degenerate_steps"] = a->degenerate_steps(std::max<int64_t>(0, member));
      // Key-head norms of the last forward (the last evaluation batch); dgqa also its cache.
      if (a->last_key_norms().defined()) {
        auto norms = pick(a->last_key_norms()).to(torch::kCPU).to(torch::kFloat64);
        e["key_norm_mean"] = norms.mean().item<double>();
        e["key_norm_std"] = norms.std(/*unbiased=*/false).item<double>();
        e["key_norm_max_over_min"] = (norms.max() / norms.min()).item<double>();
      }
      if (v == core::Variant::kDgqa) {
        auto cache = pick(a->cache).to(torch::kCPU).to(torch::kFloat64);
        e["norm_cache_mean"] = cache.mean().item<double>();
        e["norm_cache_std"] = cache.std(/*unbiased=*/false).item<double>();
      }
    } else if (v == core::Variant::kWgqa && i < initial_weights.size()) {
      torch::NoGradGuard no_grad;
      auto now =
          torch::cat({pick(a->k_weight).flatten(), pick(a->v_weight).flatten()}).to(torch::kCPU);
      e["weight_distance"] = (now.to(torch::kFloat64) - initial_weights[i]).norm().item<double>();
    } else if (v == core::Variant::kPgqa) {
      e["noise_norm"] = pick(a->noise_norm).to(torch::kCPU).item<double>();
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
  // s2s: only the layers at attention.sites take the variant; the others stay mha and are copied.
  auto converted_layer = [&](const core::Attention& target) {
    return c.init.convert != "none" && target->options.variant() != core::Variant::kMha;
  };

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
    core::Attention converted =
        converted_layer(target_layers[i])
            ? core::convert(source_layers[i], target_layers[i]->options, kind)
            : source_layers[i];
    auto params = converted->named_parameters();
    for (auto& item : target_layers[i]->named_parameters()) {
      const torch::Tensor* p = params.find(item.key());
      if (p == nullptr || p->sizes() != item.value().sizes()) {
        throw RunError("init.from: attention layer " + std::to_string(i) + "'s " + item.key() +
                       " does not match the parent's (an unconverted site must be mha in both)");
      }
      item.value().copy_(*p);
    }
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
std::string check_causality(const runner::Config& c, const TaskData& data) {
  if (c.task == "vit") return "not checked (vit attends both ways)";
  std::ostringstream why;
  const auto& v = c.attention.variant;
  why << runner::noncausal_reason(c);  // the rule validate() applies; here for the summary
  const double leak = c.task == "s2s" ? s2s_causality_leak(c, data) : lm_causality_leak(c);
  if (leak > 0.0) {
    why << (why.tellp() > 0 ? "; and " : "")
        << "changing tokens after position t moved the logits at positions <= t by up to " << leak;
  }
  if (why.tellp() > 0 && !c.attention.allow_noncausal) {
    throw RunError("attention.variant = " + v +
                   (c.attention.faithful ? " with attention.faithful = true" : "") +
                   " is not causal: " + why.str() +
                   (c.task == "s2s" ? ". A decoder trained with it sees later target tokens. Set "
                                    : ". A language model trained with it sees the future. Set ") +
                   "attention.allow_noncausal: true to train it anyway (the summary records it).");
  }
  return why.tellp() > 0
             ? "leaks the future (" + why.str() + "); allowed by attention.allow_noncausal"
             : "causal";
}

// What training checks before anything is written, shared by every member of a call: the
// configs, the run dirs' own configs (a run dir belongs to one job), the device, the data and
// (lm) each member's causality.
struct Checked {
  torch::Device device;            // where to train
  std::unique_ptr<TaskData> data;  // the first member's; the others' by with_seed
  std::vector<RunFacts> facts;     // per member
  int64_t per_epoch = 0;           // batches per epoch with train.epochs; 0 without
};

// Members of one call must be one cell: the same config but for the seed and the parent.
void check_one_cell(const std::vector<Member>& members) {
  auto cell = [](runner::Config c) {
    c.seed = 0;
    c.init.from.clear();
    return runner::config_hash(c);
  };
  for (size_t i = 1; i < members.size(); ++i) {
    if (cell(members[i].config) != cell(members[0].config)) {
      throw RunError("ensemble: " + members[i].options.run_dir + " and " +
                     members[0].options.run_dir +
                     " differ in more than the seed; only seeds of one cell train together");
    }
    for (size_t j = 0; j < i; ++j) {
      if (members[i].config.seed == members[j].config.seed) {
        throw RunError("ensemble: " + members[i].options.run_dir + " and " +
                       members[j].options.run_dir + " have the same seed " +
                       std::to_string(members[i].config.seed));
      }
      if (fs::absolute(members[i].options.run_dir).lexically_normal() ==
          fs::absolute(members[j].options.run_dir).lexically_normal()) {
        throw RunError("ensemble: run dir " + members[i].options.run_dir + " given twice");
      }
    }
  }
}

Checked check_inputs(const std::vector<Member>& members) {
  if (members.empty()) throw RunError("ensemble: no members");
  for (const auto& m : members) runner::validate(m.config);
  check_one_cell(members);
  const runner::Config& c = members[0].config;
  std::vector<std::string> hashes;
  for (const auto& m : members) {
    const std::string hash = runner::config_hash(m.config);
    const fs::path run_dir = m.options.run_dir;
    if (fs::exists(run_dir / "config.yaml")) {
      const runner::Config stored = runner::load_config((run_dir / "config.yaml").string());
      if (runner::config_hash(stored) != hash) {
        throw RunError("run dir " + run_dir.string() + " holds a different config (job " +
                       runner::config_hash(stored) + ", this one " + hash +
                       "); use another --run-dir");
      }
    }
    hashes.push_back(hash);
  }
  if (c.train.threads > 0) set_cpu_threads(static_cast<int>(c.train.threads));
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
  Checked checked{device, std::move(data), {}, per_epoch};
  for (size_t i = 0; i < members.size(); ++i) {
    RunFacts f;
    f.hash = hashes[i];
    f.causality = check_causality(members[i].config, *checked.data);
    f.unit = checked.data->unit();
    f.device = device.str();
    f.bf16 = uses_bf16_autocast(c.train.precision, device);
    f.steps = steps;
    f.warmup = runner::warmup_steps(c.train, steps);
    checked.facts.push_back(std::move(f));
  }
  return checked;
}

// Each attention layer's wgqa weights (keys then values, fp64), undefined for other variants.
std::vector<torch::Tensor> wgqa_weights(torch::nn::Module& model) {
  std::vector<torch::Tensor> out;
  for (const auto& a : attention_layers(model)) {
    out.push_back(a->options.variant() == core::Variant::kWgqa
                      ? torch::cat({a->k_weight.flatten(), a->v_weight.flatten()})
                            .detach()
                            .to(torch::kFloat64)
                      : torch::Tensor());
  }
  return out;
}

// Trains runs that start from the same step together: one run with its own model (exactly the
// single-run path), or several as one ensemble model (members.h). Shares the loop, evaluation,
// logging and checkpoints; only building the model, a step's loss and the checkpoint's tensors
// differ between the two.
class Trainer {
 public:
  Trainer(std::vector<RunRecord*> runs, const Checked& checked, const TrainOptions& call)
      : runs_(std::move(runs)),
        call_(call),
        t_(runs_[0]->config().train),
        device_(checked.device),
        steps_(checked.facts[0].steps),
        per_epoch_(checked.per_epoch),
        warmup_(checked.facts[0].warmup),
        use_bf16_(checked.facts[0].bf16),
        members_(runs_.size() > 1 ? static_cast<int64_t>(runs_.size()) : 0),
        frozen_(runs_.size(), false) {
    for (auto* r : runs_) data_.push_back(checked.data->with_seed(r->config().seed));
    build();
  }

  // Trains to the end, a divergence of every run, or the call's stop_after.
  void run() {
    const int64_t start = runs_[0]->start_step();
    for (auto* r : runs_) r->begin(device_);
    if (start == 0) {
      for (auto* r : runs_) {
        r->say("training " + r->config().task + " with attention " + r->config().attention.variant +
               ", " + std::to_string(parameters_) + " parameters, on " + device_.str() +
               ", config " + runner::config_hash(r->config()) +
               (members_ > 0 ? ", one of " + std::to_string(members_) + " seeds trained together"
                             : ""));
      }
      // The converted model, before training (an intermediate evaluation).
      if (!runs_[0]->config().init.from.empty()) evaluate(0, /*last=*/false);
    }
    loop(start);
  }

 private:
  int64_t E() const { return static_cast<int64_t>(runs_.size()); }
  uint64_t seed(size_t e) const { return runs_[e]->config().seed; }

  // Each run's own model (its seed's initialisation, its checkpoint or its parent's), then the
  // ensemble built from them; the optimiser, with each run's saved state when resuming.
  void build() {
    std::vector<std::vector<torch::Tensor>> initial;  // [run][layer]
    for (auto* r : runs_) {
      const runner::Config& c = r->config();
      torch::manual_seed(c.seed);
      Model m = make_model(c, data_[0].get());
      initial.push_back(wgqa_weights(*m.module));  // the seed's initialisation, for diagnostics
      if (r->start_step() > 0) {
        load_module(*m.module, *r->checkpoint() / "model.pt");
      } else if (!c.init.from.empty()) {
        init_from_parent(c, m, data_[0].get());
      }
      singles_.push_back(std::move(m));
    }
    parameters_ = parameter_count(*singles_[0].module);
    for (auto* r : runs_) r->set_parameters(parameters_);
    if (members_ == 0) {
      model_ = singles_[0];
    } else {
      model_ = make_model(runs_[0]->config(), data_[0].get(), members_);
      for (int64_t e = 0; e < E(); ++e)
        core::copy_member_in(*model_.module, e, *singles_[e].module);
    }
    model_.module->to(device_);
    layers_ = attention_layers(*model_.module);
    for (size_t layer = 0; layer < layers_.size(); ++layer) {
      std::vector<torch::Tensor> per_run;
      for (int64_t e = 0; e < E(); ++e) per_run.push_back(initial[e][layer]);
      initial_weights_.push_back(std::move(per_run));
    }
    if (members_ > 0) {
      for (int64_t e = 0; e < E(); ++e) {
        auto cpu = at::detail::createCPUGenerator(0);
        // On the CPU a single run's noise and repair draws share the one global generator.
        random_.push_back({cpu, device_.is_cpu() ? cpu : core::seeded_generator(device_, 0)});
      }
      for (auto& a : layers_) a->set_member_random(random_);
    }
    optimizer_ = make_optimizer(*model_.module, t_, members_ > 0 ? 1 : 0);
    if (runs_[0]->start_step() == 0) return;
    for (int64_t e = 0; e < E(); ++e) {
      const fs::path file = *runs_[e]->checkpoint() / "optimizer.pt";
      torch::serialize::InputArchive archive;
      if (members_ == 0) {
        archive.load_from(file.string(), device_);
        optimizer_->load(archive);
      } else {
        archive.load_from(file.string());
        auto single = make_optimizer(*singles_[e].module, t_);
        single->load(archive);
        copy_optimizer_member_in(*optimizer_, e, *single);
      }
    }
  }

  // Every draw a single run makes from the global generators at `step` of `stream`, each member
  // makes from its own, seeded the same way.
  void seed_streams(uint64_t stream, int64_t step) {
    if (members_ == 0) {
      torch::manual_seed(mix(mix(seed(0), stream), step));
      return;
    }
    for (int64_t e = 0; e < E(); ++e) {
      const uint64_t s = mix(mix(seed(e), stream), step);
      random_[e].cpu.set_current_seed(s);
      if (!device_.is_cpu()) random_[e].device.set_current_seed(s);
    }
  }

  // Member e's view of a tensor stacked over the members (the whole tensor for one model).
  torch::Tensor slice(const torch::Tensor& t, int64_t e) const {
    return members_ > 0 ? t.select(0, e) : t;
  }

  // Writes run e's checkpoint: its own model and optimiser state, as a single run's.
  // Calls write(model, optimiser) with run e's own model and optimiser state: the trained ones
  // for one run, or for an ensemble member its slice copied into its single model and a single
  // optimiser (so what is written is a single run's).
  template <typename Write>
  void with_run_state(int64_t e, Write write) {
    if (members_ == 0) {
      write(*model_.module, *optimizer_);
      return;
    }
    core::copy_member_out(*model_.module, e, *singles_[e].module);
    auto single = make_optimizer(*singles_[e].module, t_);
    copy_optimizer_member_out(*optimizer_, e, *single);
    write(*singles_[e].module, *single);
  }

  // Writes run e's checkpoint, as a single run's.
  void save(int64_t e, int64_t step, const std::string& status) {
    with_run_state(e, [&](torch::nn::Module& m, torch::optim::Optimizer& o) {
      runs_[e]->save_checkpoint(step, status, m, o);
    });
  }

  void diverge(int64_t e, int64_t step, double loss) {
    with_run_state(e, [&](torch::nn::Module& m, torch::optim::Optimizer& o) {
      runs_[e]->diverge(step, loss, m, o);
    });
    frozen_[e] = true;
  }

  // An evaluation at `step`: of the whole held-out split (as train.eval_batches limits it) when
  // `last` (the final metrics), else of its first train.eval_subset examples when that is fewer.
  void evaluate(int64_t step, bool last) {
    const int64_t subset =
        !last && t_.eval_subset > 0 && t_.eval_subset < data_[0]->held_out_examples()
            ? t_.eval_subset
            : 0;
    const int64_t n = E();
    std::vector<std::map<std::string, double>> metrics;
    model_.module->eval();
    {
      // Inference mode rather than NoGradGuard: no autograd, no version counters, the same
      // kernels and values. Tensors made here are inference tensors, which training may read but
      // not save for backward or change in place: the state evaluation leaves behind is safe
      // (dgqa's and kdgqa's buffers and pgqa's noise norm are updated in place, and stay normal
      // tensors; the last forward's counts and key norms are only read, by the diagnostics, and
      // replaced by the next forward) and RoPE's cached tables are rebuilt when training meets
      // inference ones (AttentionImpl::rope_for).
      c10::InferenceMode inference;
      seed_streams(kEvalStream, step);
      metrics = data_[0]->evaluate(
          [&](const torch::Tensor& x) {
            AutocastScope autocast(device_, use_bf16_);
            return model_.forward(x);
          },
          device_, n, subset);
    }
    model_.module->train();
    for (int64_t e = 0; e < n; ++e) {
      if (frozen_[e]) continue;
      runs_[e]->record_eval(step, metrics[e], subset);
      for (const auto& d :
           attention_diagnostics(layers_, initial_weights(e), step, members_ > 0 ? e : -1)) {
        runs_[e]->emit(d);
      }
    }
  }

  std::vector<torch::Tensor> initial_weights(int64_t e) const {
    std::vector<torch::Tensor> out;
    for (const auto& per_run : initial_weights_) out.push_back(per_run[e]);
    return out;
  }

  struct StepOutcome {
    std::vector<double> loss;       // each run's training loss
    std::vector<double> grad_norm;  // before clipping; 0 when clipping is off
    std::vector<int64_t> items;     // tokens or images each run trained on
  };

  // The batch of `step` for run e: by step, or with train.epochs batch step % per_epoch of epoch
  // step / per_epoch.
  Batch batch_of(int64_t e, int64_t step) {
    if (per_epoch_ == 0) return data_[e]->train_batch(step);
    return data_[e]->epoch_batch(step / per_epoch_, step % per_epoch_);
  }

  // Tests (TrainOptions::poison_at_step): run e's weights become NaN before this step.
  void poison(int64_t step) {
    for (int64_t e = 0; e < E(); ++e) {
      if (runs_[e]->options().poison_at_step != step + 1) continue;
      torch::NoGradGuard no_grad;
      for (auto& p : model_.module->parameters()) slice(p, e).fill_(NAN);
    }
  }

  // One optimiser step at `step` (0-based) with learning rate `lr`. Each loss is checked before
  // the backward pass: a run whose loss is NaN or inf diverges without touching its weights, and
  // in an ensemble it is frozen (its gradients zeroed, its weights kept) while the others step.
  StepOutcome train_step(int64_t step, double lr) {
    for (auto& group : optimizer_->param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    }
    seed_streams(kTorchStream, step);
    if (members_ == 0) {
      set_dropout_seeds(*model_.module, mix(mix(seed(0), kDropoutStream), step));
    } else {
      std::vector<uint64_t> seeds;
      for (int64_t e = 0; e < E(); ++e) seeds.push_back(mix(mix(seed(e), kDropoutStream), step));
      set_member_dropout_seeds(*model_.module, seeds);
    }
    if (per_epoch_ > 0 && step % per_epoch_ == 0) {
      for (auto& layer : layers_) layer->start_epoch();
    }
    StepOutcome out;
    std::vector<torch::Tensor> inputs, targets;
    for (int64_t e = 0; e < E(); ++e) {
      Batch b = batch_of(e, step);
      inputs.push_back(b.input);
      targets.push_back(b.target);
      out.items.push_back(b.items);
    }
    poison(step);
    auto input = (members_ > 0 ? torch::cat(inputs) : inputs[0]).to(device_);
    auto target = (members_ > 0 ? torch::cat(targets) : targets[0]).to(device_);
    optimizer_->zero_grad();
    torch::Tensor logits;
    {
      AutocastScope autocast(device_, use_bf16_);
      logits = model_.forward(input);
    }
    logits = logits.to(torch::kFloat32);
    std::vector<torch::Tensor> losses;
    const int64_t b = input.size(0) / E();
    for (int64_t e = 0; e < E(); ++e) {
      auto l = members_ > 0 ? logits.narrow(0, e * b, b) : logits;
      auto t = members_ > 0 ? target.narrow(0, e * b, b) : target;
      losses.push_back(
          torch::nn::functional::cross_entropy(l.reshape({-1, l.size(-1)}), t.reshape({-1})));
      out.loss.push_back(frozen_[e] ? 0.0 : losses.back().item<double>());
    }
    out.grad_norm.assign(E(), 0.0);
    torch::Tensor total;
    for (int64_t e = 0; e < E(); ++e) {
      if (frozen_[e]) continue;
      if (!std::isfinite(out.loss[e])) {
        if (members_ == 0) return out;  // the loop records it
        diverge(e, step, out.loss[e]);
        continue;
      }
      total = total.defined() ? total + losses[e] : losses[e];
    }
    if (!total.defined()) return out;  // every member has diverged
    total.backward();
    if (members_ == 0) {
      if (t_.grad_clip > 0) {
        out.grad_norm[0] =
            torch::nn::utils::clip_grad_norm_(model_.module->parameters(), t_.grad_clip);
      }
      optimizer_->step();
      return out;
    }
    step_members(out);
    return out;
  }

  // The ensemble's update: frozen members' gradients zeroed (a NaN there stays there) and their
  // weights put back after the step, each member clipped by its own norm.
  void step_members(StepOutcome& out) {
    torch::NoGradGuard no_grad;
    const auto params = model_.module->parameters();
    std::vector<std::pair<torch::Tensor, torch::Tensor>> kept;  // (member view, its values)
    for (int64_t e = 0; e < E(); ++e) {
      if (!frozen_[e]) continue;
      for (const auto& p : params) {
        if (p.grad().defined()) p.grad().select(0, e).zero_();
        kept.emplace_back(p.select(0, e), p.select(0, e).clone());
      }
    }
    if (t_.grad_clip > 0) {
      const auto norms = clip_member_grad_norms(params, E(), t_.grad_clip);
      for (int64_t e = 0; e < E(); ++e) out.grad_norm[e] = frozen_[e] ? 0.0 : norms[e];
    }
    optimizer_->step();
    for (auto& [view, values] : kept) view.copy_(values);
  }

  // What decoding costs with this architecture (lm and s2s): the KV-cache bytes per token, from
  // the layers' shapes, and the greedy cached decoding speed of a batch of 8, measured once on
  // the first unfrozen run's own model after training (the members share the architecture). A
  // variant that cannot decode with a cache (pgqa perturbing at eval), or a measurement that
  // fails, records the bytes only.
  nlohmann::json decode_cost() {
    const runner::Config& c = runs_[0]->config();
    if (c.task == "vit") return nlohmann::json::object();
    int64_t e = 0;
    while (e < E() && frozen_[e]) ++e;
    if (e == E()) return nlohmann::json::object();
    torch::nn::Module* single = model_.module.get();
    if (members_ > 0) {
      core::copy_member_out(*model_.module, e, *singles_[e].module);
      singles_[e].module->to(device_);
      single = singles_[e].module.get();
    }
    const auto dtype = use_bf16_ ? torch::kBFloat16 : torch::kFloat;
    nlohmann::json out{{"kv_cache_bytes_per_token", kv_cache_bytes_per_token(*single, dtype)}};
    if (c.task == "s2s") {
      out["kv_cache_bytes_per_source_token"] = kv_cache_bytes_per_source_token(*single, dtype);
    }
    const int64_t prompt =
        c.task == "s2s" ? s2s_shape(*data_[0]).source_len : std::min<int64_t>(c.data.seq_len, 32);
    try {
      AutocastScope autocast(device_, use_bf16_);
      const DecodeSpeed speed =
          measure_decode(*single, kDecodeBatch, prompt, kDecodeSteps, device_);
      out["decode_throughput"] = speed.tokens_per_s;
      out["decode_batch"] = speed.batch;
      out["decode_prompt_tokens"] = speed.prompt;
      out["decode_steps"] = speed.steps;
    } catch (const std::exception& err) {
      // A measurement, not the run: a trained run still ends done (out of memory, a variant
      // that cannot decode with a cache).
      runs_[e]->say(std::string("decoding speed not measured: ") + err.what());
    }
    if (members_ > 0) singles_[e].module->to(torch::kCPU);
    model_.module->train();
    return out;
  }

  bool all_frozen() const {
    return std::all_of(frozen_.begin(), frozen_.end(), [](bool f) { return f; });
  }

  void loop(int64_t step) {
    const bool tty = call_.progress && isatty(STDERR_FILENO);
    model_.module->train();
    struct Window {
      double seconds = 0, loss = 0, items = 0;
      int64_t steps = 0;
    };
    std::vector<Window> window(E());
    int64_t steps_this_call = 0;
    double seconds_this_call = 0.0, items_this_call = 0.0;
    while (step < steps_) {
      const auto t0 = Clock::now();
      const double lr = learning_rate(t_, warmup_, step, steps_);
      const StepOutcome o = train_step(step, lr);
      if (members_ == 0 && !std::isfinite(o.loss[0])) {
        diverge(0, step, o.loss[0]);
        return;
      }
      if (all_frozen()) return;
      ++step;
      ++steps_this_call;
      const double dt = seconds_since(t0);
      seconds_this_call += dt;
      const bool last = step == steps_;
      double mean_loss = 0.0;
      int64_t active = 0;
      for (int64_t e = 0; e < E(); ++e) {
        if (frozen_[e]) continue;
        runs_[e]->add_step(dt, o.items[e]);
        items_this_call += static_cast<double>(o.items[e]);
        Window& w = window[e];
        w.seconds += dt;
        w.items += static_cast<double>(o.items[e]);
        w.loss += o.loss[e];
        ++w.steps;
        mean_loss += o.loss[e];
        ++active;
        if (step % t_.log_every == 0 || last) {
          runs_[e]->emit({{"step", step},
                          {"kind", "train"},
                          {"loss", w.loss / w.steps},
                          {"lr", lr},
                          {"grad_norm", o.grad_norm[e]},
                          {"step_time_s", w.seconds / w.steps},
                          {"throughput", w.items / w.seconds},
                          {"peak_memory_bytes", peak_memory_bytes(device_)}});
          w = Window();
        }
      }
      if (tty) {
        const double rate = steps_this_call / seconds_this_call;
        std::fprintf(stderr, "\rstep %lld/%lld  loss %.4f  %.0f %s/s  ETA %s   ",
                     static_cast<long long>(step), static_cast<long long>(steps_),
                     mean_loss / std::max<int64_t>(1, active), items_this_call / seconds_this_call,
                     data_[0]->unit().c_str(), format_duration((steps_ - step) / rate).c_str());
        if (last) std::fputc('\n', stderr);
      }
      const bool epoch_end = per_epoch_ > 0 && t_.eval_each_epoch && step % per_epoch_ == 0;
      if (step % t_.eval_every == 0 || last || epoch_end) {
        if (tty && !last) std::fputc('\n', stderr);
        evaluate(step, last);
      }
      if ((t_.checkpoint_every > 0 && step % t_.checkpoint_every == 0) || last) {
        for (int64_t e = 0; e < E(); ++e) {
          if (!frozen_[e]) save(e, step, last ? "done" : "running");
        }
      }
      if (call_.stop_after > 0 && steps_this_call >= call_.stop_after && !last) {
        for (int64_t e = 0; e < E(); ++e) {
          if (frozen_[e]) continue;
          runs_[e]->result().status = "stopped";
          runs_[e]->result().step = step;
        }
        return;
      }
    }
    const nlohmann::json cost = decode_cost();
    for (int64_t e = 0; e < E(); ++e) {
      if (frozen_[e]) continue;
      runs_[e]->set_decode_cost(cost);
      runs_[e]->done(step);
      runs_[e]->say("done: step " + std::to_string(step) + ", wall time " +
                    format_duration(runs_[e]->wall_time()));
    }
  }

  std::vector<RunRecord*> runs_;
  const TrainOptions& call_;  // progress and stop_after of the whole call
  const runner::TrainConfig t_;
  const torch::Device device_;
  const int64_t steps_, per_epoch_, warmup_;
  const bool use_bf16_;
  const int64_t members_;  // 0: one run, its own model; else the ensemble's member count

  std::vector<std::unique_ptr<TaskData>> data_;  // each run's data order
  std::vector<Model> singles_;                   // each run's own model (on the host if E > 1)
  Model model_;                                  // the model trained: singles_[0] or the ensemble
  int64_t parameters_ = 0;                       // of one run's model
  std::vector<core::Attention> layers_;
  std::vector<std::vector<torch::Tensor>> initial_weights_;  // [layer][run]: wgqa at the start
  std::vector<core::MemberRandom> random_;                   // ensemble: each member's streams
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::vector<bool> frozen_;  // runs that diverged in this call
};
}  // namespace

double s2s_causality_leak(const runner::Config& config, const TaskData& data) {
  const S2sShape shape = s2s_shape(data);
  S2s s2s(s2s_options(config, shape));
  init_parameters(*s2s, config.seed, kT5EmbeddingStd);
  return s2s_causality_leak(s2s, shape.source_len, shape.target_len, config.seed);
}

double lm_causality_leak(const runner::Config& config) {
  Lm lm(lm_options(config));
  init_parameters(*lm, config.seed);
  return causality_leak(lm, config.data.seq_len, config.seed);
}

std::vector<TrainResult> train_ensemble(const std::vector<Member>& members) {
  // Bad input first, before anything is written.
  Checked checked = check_inputs(members);
  std::vector<std::unique_ptr<RunRecord>> runs;
  const bool label = members.size() > 1;
  for (size_t i = 0; i < members.size(); ++i) {
    runs.push_back(std::make_unique<RunRecord>(
        members[i].config, members[i].options, checked.facts[i],
        label ? "seed " + std::to_string(members[i].config.seed) + ": " : ""));
  }
  // Finished runs stand as they are; the others resume from their checkpoints. Runs at different
  // steps (a kill between two members' checkpoints) train in groups of equal start step.
  std::map<int64_t, std::vector<RunRecord*>> by_start;
  for (auto& r : runs) {
    r->open();
    const auto ckpt = r->checkpoint();
    if (ckpt && r->finished(*ckpt)) continue;
    if (ckpt) {
      r->resume(*ckpt);
    } else {
      r->start_fresh();
    }
    by_start[r->start_step()].push_back(r.get());
  }
  for (auto& [start, group] : by_start) {
    for (RunRecord* r : group) r->set_seeds_in_process(static_cast<int64_t>(group.size()));
    Trainer trainer(group, checked, members[0].options);
    trainer.run();
  }
  std::vector<TrainResult> results;
  for (auto& r : runs) results.push_back(r->result());
  return results;
}

TrainResult train(const runner::Config& c, const TrainOptions& options) {
  return train_ensemble({Member{c, options}})[0];
}

}  // namespace ablate::experiments
