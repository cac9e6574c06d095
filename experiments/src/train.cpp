#include "ablate/experiments/train.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fcntl.h>
#include <sys/file.h>
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
#include "ablate/experiments/image_data.h"
#include "ablate/experiments/models.h"
#include "ablate/experiments/text_data.h"
#include "ablate/experiments/token_shards.h"
#include "ablate/runner/canonical.h"
#include "ablate/runner/parse.h"

namespace ablate::experiments {
namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// splitmix64: independent, stable streams for (seed, purpose, step).
uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
constexpr double kPi = 3.14159265358979323846;
constexpr uint64_t kBatchStream = 1, kTorchStream = 2, kEvalStream = 3, kEpochStream = 4;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ----- data -----

struct Batch {
  torch::Tensor input, target;
};

// What a task gives the loop: batches, evaluation and the unit of throughput.
class TaskData {
 public:
  virtual ~TaskData() = default;
  virtual Batch train_batch(int64_t step) = 0;
  // Evaluation metrics of `forward` on the held-out split.
  virtual std::map<std::string, double> evaluate(
      const std::function<torch::Tensor(const torch::Tensor&)>& forward, torch::Device device) = 0;
  virtual int64_t items_per_batch() const = 0;  // tokens or images per training batch
  virtual std::string unit() const = 0;
};

class LmData : public TaskData {
 public:
  LmData(const runner::Config& c, torch::Tensor train, torch::Tensor val, bool bytes, int64_t vocab)
      : config_(c), train_(std::move(train)), val_(std::move(val)), bytes_(bytes) {
    const int64_t s = c.data.seq_len;
    for (const auto* split : {&train_, &val_}) {
      const int64_t top = split->numel() > 0 ? split->max().item<int64_t>() : 0;
      if (top >= vocab) {
        throw DataError("data: token id " + std::to_string(top) + " in " + c.data.path +
                        " does not fit model.vocab = " + std::to_string(vocab));
      }
    }
    if (train_.numel() < s + 2) {
      throw DataError("data: the training split has " + std::to_string(train_.numel()) +
                      " tokens, fewer than data.seq_len + 2 = " + std::to_string(s + 2));
    }
    if (val_.numel() < s + 1) {
      throw DataError("data: the held-out split has " + std::to_string(val_.numel()) +
                      " tokens, fewer than data.seq_len + 1 = " + std::to_string(s + 1));
    }
  }

  Batch train_batch(int64_t step) override {
    const int64_t s = config_.data.seq_len, b = config_.train.batch_size;
    std::mt19937_64 rng(mix(mix(config_.seed, kBatchStream), step));
    std::uniform_int_distribution<int64_t> offset(0, train_.numel() - s - 1);
    std::vector<int64_t> starts(b);
    for (auto& o : starts) o = offset(rng);
    auto index = torch::tensor(starts).unsqueeze(1) + torch::arange(s + 1).unsqueeze(0);
    auto windows = train_.index_select(0, index.flatten()).view({b, s + 1}).to(torch::kInt64);
    return {windows.narrow(1, 0, s), windows.narrow(1, 1, s)};
  }

  std::map<std::string, double> evaluate(
      const std::function<torch::Tensor(const torch::Tensor&)>& forward,
      torch::Device device) override {
    // Non-overlapping windows of seq_len + 1 tokens, in order: every arm sees the same text.
    const int64_t s = config_.data.seq_len, b = config_.train.batch_size;
    int64_t windows = (val_.numel() - 1) / s;
    if (config_.train.eval_batches > 0) windows = std::min(windows, config_.train.eval_batches * b);
    double loss_sum = 0.0;
    int64_t tokens = 0;
    for (int64_t w0 = 0; w0 < windows; w0 += b) {
      const int64_t n = std::min(b, windows - w0);
      auto index = (torch::arange(w0, w0 + n) * s).unsqueeze(1) + torch::arange(s + 1).unsqueeze(0);
      auto x = val_.index_select(0, index.flatten()).view({n, s + 1}).to(torch::kInt64).to(device);
      auto logits = forward(x.narrow(1, 0, s)).to(torch::kFloat32);
      auto loss = torch::nn::functional::cross_entropy(
          logits.reshape({-1, logits.size(-1)}), x.narrow(1, 1, s).reshape({-1}),
          torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
      loss_sum += loss.item<double>();
      tokens += n * s;
    }
    const double loss = loss_sum / static_cast<double>(tokens);
    std::map<std::string, double> m{{"val_loss", loss}, {"val_ppl", std::exp(loss)}};
    if (bytes_) m["val_bpb"] = loss / std::log(2.0);
    return m;
  }

  int64_t items_per_batch() const override {
    return config_.train.batch_size * config_.data.seq_len;
  }
  std::string unit() const override { return "tokens"; }

 private:
  runner::Config config_;
  torch::Tensor train_, val_;  // 1-D token streams
  bool bytes_;
};

class VitData : public TaskData {
 public:
  VitData(const runner::Config& c, const ImageData& data) : config_(c), classes_(data.classes) {
    train_x_ = to_tensor(data.train);
    test_x_ = to_tensor(data.test);
    train_y_ = torch::tensor(data.train.labels, torch::kInt64);
    test_y_ = torch::tensor(data.test.labels, torch::kInt64);
    // Per-channel statistics of the training images (never the test split).
    auto f = train_x_.to(torch::kFloat32) / 255.0;
    mean_ = f.mean({0, 2, 3}, /*keepdim=*/true);
    std_ = f.std({0, 2, 3}, /*unbiased=*/false, /*keepdim=*/true);
  }

  int64_t channels() const { return train_x_.size(1); }
  int64_t image() const { return train_x_.size(2); }
  int64_t classes() const { return classes_; }

  Batch train_batch(int64_t step) override {
    // Epochs of a seeded permutation; sample g of the run is item perm_{g / N}[g % N].
    const int64_t b = config_.train.batch_size, n = train_x_.size(0);
    std::vector<int64_t> picks(b);
    for (int64_t i = 0; i < b; ++i) {
      const int64_t g = step * b + i, epoch = g / n;
      if (epoch != epoch_) {
        auto gen = at::detail::createCPUGenerator(mix(mix(config_.seed, kEpochStream), epoch));
        perm_ = torch::randperm(n, gen, torch::kInt64);
        epoch_ = epoch;
      }
      picks[i] = perm_[g % n].item<int64_t>();
    }
    auto index = torch::tensor(picks);
    return {normalise(train_x_.index_select(0, index)), train_y_.index_select(0, index)};
  }

  std::map<std::string, double> evaluate(
      const std::function<torch::Tensor(const torch::Tensor&)>& forward,
      torch::Device device) override {
    const int64_t b = std::max<int64_t>(config_.train.batch_size, 256);
    int64_t n = test_x_.size(0);
    if (config_.train.eval_batches > 0) n = std::min(n, config_.train.eval_batches * b);
    double loss_sum = 0.0;
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i += b) {
      const int64_t m = std::min(b, n - i);
      auto x = normalise(test_x_.narrow(0, i, m)).to(device);
      auto y = test_y_.narrow(0, i, m).to(device);
      auto logits = forward(x).to(torch::kFloat32);
      loss_sum +=
          torch::nn::functional::cross_entropy(
              logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
              .item<double>();
      correct += logits.argmax(1).eq(y).sum().item<int64_t>();
    }
    return {{"test_loss", loss_sum / static_cast<double>(n)},
            {"test_acc", static_cast<double>(correct) / static_cast<double>(n)}};
  }

  int64_t items_per_batch() const override { return config_.train.batch_size; }
  std::string unit() const override { return "images"; }

 private:
  static torch::Tensor to_tensor(const ImageSet& set) {
    return torch::from_blob(const_cast<uint8_t*>(set.pixels.data()),
                            {set.count, set.channels, set.height, set.width}, torch::kUInt8)
        .clone();
  }
  torch::Tensor normalise(const torch::Tensor& x) const {
    return (x.to(torch::kFloat32) / 255.0 - mean_) / std_;
  }

  runner::Config config_;
  int64_t classes_;
  torch::Tensor train_x_, test_x_, train_y_, test_y_, mean_, std_;
  torch::Tensor perm_;
  int64_t epoch_ = -1;
};

torch::Tensor tokens_tensor(const std::vector<uint8_t>& bytes) {
  return torch::from_blob(const_cast<uint8_t*>(bytes.data()), {static_cast<int64_t>(bytes.size())},
                          torch::kUInt8)
      .to(torch::kInt64);
}
torch::Tensor tokens_tensor(const std::vector<uint16_t>& tokens) {
  std::vector<int32_t> wide(tokens.begin(), tokens.end());  // LibTorch 1.13 has no uint16
  return torch::tensor(wide, torch::kInt32);
}

// Vocabulary of the lm: model.vocab, or 256 for bytes and GPT-2's padded 50304 for token shards.
int64_t lm_vocab(const runner::Config& c) {
  return c.model.vocab > 0 ? c.model.vocab : (c.data.dataset == "bin" ? 50304 : 256);
}

std::unique_ptr<TaskData> load_data(const runner::Config& c) {
  const auto& d = c.data;
  if (c.task == "lm") {
    if (d.dataset == "bin") {
      auto split = load_token_shards(d.path, d.val_path, d.val_fraction);
      return std::make_unique<LmData>(c, tokens_tensor(split.train), tokens_tensor(split.val),
                                      /*bytes=*/false, lm_vocab(c));
    }
    TextOptions options;
    options.fortune_format = d.dataset == "fortunes";
    options.path = d.path.empty() ? default_fortunes_path() : d.path;
    options.val_fraction = d.val_fraction;
    auto split = load_text(options);
    return std::make_unique<LmData>(c, tokens_tensor(split.train), tokens_tensor(split.val),
                                    /*bytes=*/true, lm_vocab(c));
  }
  if (d.dataset == "cifar10" || d.dataset == "cifar100") {
    return std::make_unique<VitData>(c, load_cifar(d.path, d.dataset == "cifar10" ? 10 : 100));
  }
  const bool fashion = d.dataset == "fashion-mnist";
  const std::string path = d.path.empty() && fashion ? default_fashion_mnist_path() : d.path;
  return std::make_unique<VitData>(
      c, load_idx(path, fashion ? "install the Debian package dataset-fashion-mnist"
                                : "give data.path, the folder holding the IDX files"));
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
    const auto* vit_data = dynamic_cast<const VitData*>(data);
    VitOptions o;
    o.channels = vit_data->channels();
    o.image = vit_data->image();
    o.patch = c.model.patch;
    o.classes = vit_data->classes();
    o.dim = c.model.dim;
    o.depth = c.model.depth;
    o.hidden = mlp_hidden(c.model, /*swiglu=*/false);
    o.norm_eps = c.model.norm_eps;
    o.attention = attention_options(c.attention, c.model.dim, c.model.heads, c.model.norm_eps,
                                    /*causal=*/false);
    Vit vit(o);
    m.module = vit.ptr();
    m.forward = [vit](const torch::Tensor& x) mutable { return vit->forward(x); };
  }
  init_parameters(*m.module, c.seed);
  return m;
}

// ----- files -----

// One `ablate train` per run dir: an flock held while training, so a process a killed coordinator
// left behind and its relaunch can never write the same run dir at once.
class RunDirLock {
 public:
  explicit RunDirLock(const fs::path& run_dir) {
    const fs::path file = run_dir / ".train.lock";
    fd_ = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("cannot open " + file.string());
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      close(fd_);
      throw RunError("run dir " + run_dir.string() + " is in use by another ablate train");
    }
  }
  ~RunDirLock() { close(fd_); }
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;

 private:
  int fd_ = -1;
};

void save_module(torch::nn::Module& module, const fs::path& file) {
  torch::serialize::OutputArchive archive;
  module.save(archive);
  archive.save_to(file.string());
}
void load_module(torch::nn::Module& module, const fs::path& file) {
  torch::serialize::InputArchive archive;
  archive.load_from(file.string());
  module.load(archive);
}

void write_file_atomic(const fs::path& file, const std::string& text) {
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, file);
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The checkpoint folder that holds a complete checkpoint, if any. A crash between the renames of
// save_checkpoint leaves the previous one in checkpoint.old.
std::optional<fs::path> checkpoint_dir(const fs::path& run_dir) {
  for (const char* name : {"checkpoint", "checkpoint.old"}) {
    const fs::path dir = run_dir / name;
    if (fs::exists(dir / "state.json")) return dir;
  }
  return std::nullopt;
}

// Keeps the events of steps <= `step` (a resumed run writes the later ones again).
void truncate_events(const fs::path& file, int64_t step) {
  if (!fs::exists(file)) return;
  std::ifstream in(file);
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json e = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (e.is_discarded()) break;  // a line cut by a kill: drop it and everything after
    if (e.value("step", int64_t{0}) > step) continue;
    kept += line + "\n";
  }
  write_file_atomic(file, kept);
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

}  // namespace

double lm_causality_leak(const runner::Config& config) {
  Lm lm(lm_options(config));
  init_parameters(*lm, config.seed);
  return causality_leak(lm, config.data.seq_len, config.seed);
}

TrainResult train(const runner::Config& c, const TrainOptions& options) {
  const fs::path run_dir = options.run_dir;
  const std::string hash = runner::config_hash(c);
  const std::string config_text = runner::to_yaml(c);

  // Bad input first, before anything is written.
  runner::validate(c);
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
  std::unique_ptr<TaskData> data = load_data(c);

  std::string causality = "not checked (vit attends both ways)";
  if (c.task == "lm") {
    // Two grounds: the faithful dynamic variants leak by construction (their allocations or noise
    // statistics use later positions; a perturbation may not move a rounded allocation, so the
    // empirical check alone can miss it), and the empirical check catches everything else.
    std::ostringstream why;
    const auto& v = c.attention.variant;
    if (c.attention.faithful && (v == "kdgqa" || v == "dgqa" || v == "pgqa")) {
      why << "in its faithful mode its " << (v == "pgqa" ? "noise statistics" : "query allocation")
          << " uses later positions (docs/design.md section 4, Causal safety)";
    }
    const double leak = lm_causality_leak(c);
    if (leak > 0.0) {
      why << (why.tellp() > 0 ? "; and " : "")
          << "changing tokens after position t moved the logits at positions <= t by up to "
          << leak;
    }
    if (why.tellp() > 0 && !c.attention.allow_noncausal) {
      throw RunError(
          "attention.variant = " + v +
          (c.attention.faithful ? " with attention.faithful = true" : "") +
          " is not causal: " + why.str() +
          ". A language model trained with it sees the future. Set "
          "attention.allow_noncausal: true to train it anyway (the summary records it).");
    }
    causality = why.tellp() > 0
                    ? "leaks the future (" + why.str() + "); allowed by attention.allow_noncausal"
                    : "causal";
  }

  torch::manual_seed(c.seed);
  Model model = make_model(c, data.get());
  const int64_t parameters = parameter_count(*model.module);
  std::vector<torch::Tensor> initial_weights;
  for (const auto& a : attention_layers(*model.module)) {
    initial_weights.push_back(a->options.variant() == core::Variant::kWgqa
                                  ? torch::cat({a->k_weight.flatten(), a->v_weight.flatten()})
                                        .detach()
                                        .to(torch::kFloat64)
                                  : torch::Tensor());
  }

  fs::create_directories(run_dir);
  const RunDirLock lock(run_dir);
  std::ofstream log(run_dir / "log.txt", std::ios::app);
  auto say = [&](const std::string& line) {
    log << line << "\n";
    log.flush();
    if (!options.quiet) std::cerr << line << "\n";
  };
  if (!fs::exists(run_dir / "config.yaml")) write_file_atomic(run_dir / "config.yaml", config_text);

  // Resume.
  int64_t start_step = 0;
  double wall_before = 0.0;
  TrainResult result;
  result.parameters = parameters;
  json best = json::object(), final_metrics = json::object();
  const std::optional<fs::path> ckpt = checkpoint_dir(run_dir);
  if (ckpt) {
    json state = json::parse(read_file(*ckpt / "state.json"));
    if (state.value("status", "") == "done" || state.value("status", "") == "diverged") {
      json summary = json::parse(read_file(run_dir / "summary.json"));
      result.status = summary["status"];
      result.step = summary["step"];
      for (auto& [k, v] : summary["final"].items()) result.final[k] = v;
      for (auto& [k, v] : summary["best"].items()) result.best[k] = v;
      say("run already finished (" + result.status + " at step " + std::to_string(result.step) +
          "); nothing to do");
      return result;
    }
    load_module(*model.module, *ckpt / "model.pt");
    start_step = state["step"];
    wall_before = state["wall_time_s"];
    best = state["best"];
    final_metrics = state["final"];
    result.resumed_from = start_step;
    truncate_events(run_dir / "events.jsonl", start_step);
    say("resuming from the checkpoint of step " + std::to_string(start_step));
  } else {
    truncate_events(run_dir / "events.jsonl", 0);  // killed before its first checkpoint
    if (!c.init.from.empty()) init_from_parent(c, model, data.get());
  }
  model.module->to(device);
  // Parameter groups: weight decay on matrices only.
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : model.module->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  auto adamw = torch::optim::AdamWOptions(c.train.lr).betas({c.train.beta1, c.train.beta2});
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay,
                      std::make_unique<torch::optim::AdamWOptions>(
                          torch::optim::AdamWOptions(adamw).weight_decay(c.train.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(adamw).weight_decay(0.0)));
  torch::optim::AdamW optimizer(std::move(groups), adamw);

  if (ckpt) {
    torch::serialize::InputArchive archive;
    archive.load_from((*ckpt / "optimizer.pt").string(), device);
    optimizer.load(archive);
  }
  std::ofstream events(run_dir / "events.jsonl", std::ios::app);
  auto emit = [&](const json& e) {
    events << e.dump() << "\n";
    events.flush();
  };
  const auto layers = attention_layers(*model.module);
  const bool use_bf16 = uses_bf16_autocast(c.train.precision, device);

  auto evaluate = [&](int64_t step) {
    model.module->eval();
    torch::NoGradGuard no_grad;
    torch::manual_seed(mix(mix(c.seed, kEvalStream), step));
    auto metrics = data->evaluate(
        [&](const torch::Tensor& x) {
          AutocastScope autocast(device, use_bf16);
          return model.forward(x);
        },
        device);
    model.module->train();
    json e{{"step", step}, {"kind", "eval"}};
    for (auto& [k, v] : metrics) {
      e[k] = v;
      final_metrics[k] = v;
      const bool higher_better = k.find("acc") != std::string::npos;
      if (!best.contains(k) ||
          (higher_better ? v > best[k].get<double>() : v < best[k].get<double>())) {
        best[k] = v;
      }
    }
    emit(e);
    for (const auto& d : attention_diagnostics(layers, initial_weights, step)) emit(d);
    std::ostringstream line;
    line << "eval step " << step;
    for (auto& [k, v] : metrics) line << " " << k << " " << v;
    say(line.str());
  };

  const auto wall_start = Clock::now();
  auto write_summary = [&](const std::string& status, int64_t step, double throughput) {
    json s{{"status", status},
           {"step", step},
           {"steps", c.train.steps},
           {"final", final_metrics},
           {"best", best},
           {"wall_time_s", wall_before + seconds_since(wall_start)},
           {"parameters", parameters},
           {"throughput", throughput},
           {"throughput_unit", data->unit() + "/s"},
           {"peak_memory_bytes", peak_memory_bytes(device)},
           {"device", device.str()},
           {"precision", use_bf16 ? "bf16" : "fp32"},
           {"config_hash", hash},
           {"causality", causality},
           {"allow_noncausal", c.attention.allow_noncausal},
           {"torch_version", TORCH_VERSION}};
    const DeviceInfo info = describe_device(device);
    if (!info.gpu_name.empty()) {
      s["gpu_name"] = info.gpu_name;
      s["cuda_version"] = info.cuda_version;
    }
    if (result.diverged_step >= 0) s["diverged_step"] = result.diverged_step;
    write_file_atomic(run_dir / "summary.json", s.dump(2) + "\n");
  };
  auto save_checkpoint = [&](int64_t step, const std::string& status) {
    const fs::path tmp = run_dir / "checkpoint.tmp", cur = run_dir / "checkpoint",
                   old = run_dir / "checkpoint.old";
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    save_module(*model.module, tmp / "model.pt");
    torch::serialize::OutputArchive archive;
    optimizer.save(archive);
    archive.save_to((tmp / "optimizer.pt").string());
    json state{{"step", step},
               {"status", status},
               {"wall_time_s", wall_before + seconds_since(wall_start)},
               {"best", best},
               {"final", final_metrics}};
    write_file_atomic(tmp / "state.json", state.dump(2));
    fs::remove_all(old);
    if (fs::exists(cur)) fs::rename(cur, old);
    fs::rename(tmp, cur);
    fs::remove_all(old);
  };

  write_summary("running", start_step, 0.0);
  if (start_step == 0) {
    say("training " + c.task + " with attention " + c.attention.variant + ", " +
        std::to_string(parameters) + " parameters, on " + device.str() + ", config " + hash);
    if (!c.init.from.empty()) evaluate(0);  // the converted model before any training
  }

  const bool tty = options.progress && isatty(STDERR_FILENO);
  model.module->train();
  double items_done = 0.0, train_seconds = 0.0, window_seconds = 0.0;
  double window_loss = 0.0;
  int64_t window_steps = 0, steps_this_call = 0;
  int64_t step = start_step;
  while (step < c.train.steps) {
    const auto t0 = Clock::now();
    // Learning rate: linear warm-up to lr, then cosine to min_lr.
    double lr = c.train.lr;
    if (step < c.train.warmup) {
      lr = c.train.lr * static_cast<double>(step + 1) / static_cast<double>(c.train.warmup);
    } else {
      const double span = std::max<int64_t>(1, c.train.steps - c.train.warmup);
      const double progress = static_cast<double>(step - c.train.warmup) / span;
      lr = c.train.min_lr + 0.5 * (c.train.lr - c.train.min_lr) * (1.0 + std::cos(kPi * progress));
    }
    for (auto& group : optimizer.param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    }
    torch::manual_seed(mix(mix(c.seed, kTorchStream), step));
    Batch batch = data->train_batch(step);
    auto input = batch.input.to(device), target = batch.target.to(device);
    optimizer.zero_grad();
    torch::Tensor logits;
    {
      AutocastScope autocast(device, use_bf16);
      logits = model.forward(input);
    }
    logits = logits.to(torch::kFloat32);
    auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                                     target.reshape({-1}));
    const double loss_value = loss.item<double>();
    if (!std::isfinite(loss_value)) {
      result.status = "diverged";
      result.diverged_step = step + 1;
      emit({{"step", step + 1}, {"kind", "train"}, {"loss", loss_value}, {"diverged", true}});
      say("diverged: loss " + std::to_string(loss_value) + " at step " + std::to_string(step + 1));
      write_summary("diverged", step, train_seconds > 0 ? items_done / train_seconds : 0.0);
      save_checkpoint(step, "diverged");
      result.step = step;
      return result;
    }
    loss.backward();
    double grad_norm = 0.0;
    if (c.train.grad_clip > 0) {
      grad_norm = torch::nn::utils::clip_grad_norm_(model.module->parameters(), c.train.grad_clip);
    }
    optimizer.step();
    ++step;
    ++steps_this_call;
    const double dt = seconds_since(t0);
    train_seconds += dt;
    window_seconds += dt;
    items_done += static_cast<double>(data->items_per_batch());
    window_loss += loss_value;
    ++window_steps;

    if (step % c.train.log_every == 0 || step == c.train.steps) {
      emit({{"step", step},
            {"kind", "train"},
            {"loss", window_loss / window_steps},
            {"lr", lr},
            {"grad_norm", grad_norm},
            {"step_time_s", window_seconds / window_steps},
            {"throughput", data->items_per_batch() * window_steps / window_seconds},
            {"peak_memory_bytes", peak_memory_bytes(device)}});
      window_loss = window_seconds = 0.0;
      window_steps = 0;
    }
    if (tty) {
      const double rate = steps_this_call / train_seconds;
      std::fprintf(stderr, "\rstep %lld/%lld  loss %.4f  %.0f %s/s  ETA %s   ",
                   static_cast<long long>(step), static_cast<long long>(c.train.steps), loss_value,
                   items_done / train_seconds, data->unit().c_str(),
                   format_duration((c.train.steps - step) / rate).c_str());
      if (step == c.train.steps) std::fputc('\n', stderr);
    }
    const bool last = step == c.train.steps;
    if (step % c.train.eval_every == 0 || last) {
      if (tty && !last) std::fputc('\n', stderr);
      evaluate(step);
    }
    if ((c.train.checkpoint_every > 0 && step % c.train.checkpoint_every == 0) || last) {
      save_checkpoint(step, last ? "done" : "running");
    }
    if (options.stop_after > 0 && steps_this_call >= options.stop_after && !last) {
      result.status = "stopped";
      result.step = step;
      return result;
    }
  }
  const double throughput = train_seconds > 0 ? items_done / train_seconds : 0.0;
  result.status = "done";
  result.step = step;
  for (auto& [k, v] : final_metrics.items()) result.final[k] = v;
  for (auto& [k, v] : best.items()) result.best[k] = v;
  write_summary("done", step, throughput);
  say("done: step " + std::to_string(step) + ", wall time " +
      format_duration(wall_before + seconds_since(wall_start)));
  return result;
}

}  // namespace ablate::experiments
