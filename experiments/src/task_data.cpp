#include "task_data.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

#include "ablate/experiments/data_check.h"
#include "ablate/experiments/data_error.h"
#include "ablate/experiments/image_data.h"
#include "ablate/experiments/text_data.h"
#include "ablate/experiments/token_shards.h"
#include "epoch_order.h"

namespace ablate::experiments {

namespace {

// The windows of seq_len + 1 tokens of `stream` starting at `starts` [n]: inputs and targets
// [n, seq_len] (targets shifted by one).
Batch windows_at(const torch::Tensor& stream, const torch::Tensor& starts, int64_t seq_len) {
  const int64_t n = starts.size(0);
  auto index = starts.unsqueeze(1) + torch::arange(seq_len + 1).unsqueeze(0);
  auto w = stream.index_select(0, index.flatten()).view({n, seq_len + 1}).to(torch::kInt64);
  return {w.narrow(1, 0, seq_len), w.narrow(1, 1, seq_len), n * seq_len};
}

class LmData : public TaskData {
 public:
  LmData(const runner::Config& c, torch::Tensor train, torch::Tensor val, bool bytes, int64_t vocab)
      : config_(c),
        train_(std::move(train)),
        val_(std::move(val)),
        bytes_(bytes),
        windows_(c.seed, (train_.numel() - 1) / c.data.seq_len) {
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
    return windows_at(train_, torch::tensor(starts), s);
  }

  // Epochs go over the non-overlapping windows: window w is tokens [w * s, w * s + s].
  int64_t batches_per_epoch() const override { return windows_.batches(config_.train.batch_size); }
  Batch epoch_batch(int64_t epoch, int64_t index) override {
    const int64_t s = config_.data.seq_len;
    return windows_at(train_, windows_.batch(epoch, index, config_.train.batch_size) * s, s);
  }

  std::vector<std::map<std::string, double>> evaluate(
      const std::function<torch::Tensor(const torch::Tensor&)>& forward, torch::Device device,
      int64_t members, int64_t subset) override {
    // Non-overlapping windows of seq_len + 1 tokens, in order: every arm sees the same text.
    const int64_t s = config_.data.seq_len, b = config_.train.batch_size;
    int64_t windows = held_out_examples();
    if (subset > 0) windows = std::min(windows, subset);
    // Summed on the device in fp64 in the order the host summed each batch's loss before, so
    // the sums are the same to the bit, and read once at the end.
    std::vector<torch::Tensor> loss_sum(members);
    for (auto& sum : loss_sum) sum = torch::zeros({}, torch::dtype(torch::kFloat64).device(device));
    int64_t tokens = 0;
    for (int64_t w0 = 0; w0 < windows; w0 += b) {
      const int64_t n = std::min(b, windows - w0);
      Batch x = windows_at(val_, torch::arange(w0, w0 + n) * s, s);
      auto all = forward(repeat_members(x.input.to(device), members)).to(torch::kFloat32);
      auto target = x.target.to(device).reshape({-1});
      for (int64_t e = 0; e < members; ++e) {
        auto logits = all.narrow(0, e * n, n);
        auto loss = torch::nn::functional::cross_entropy(
            logits.reshape({-1, logits.size(-1)}), target,
            torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
        loss_sum[e] += loss.to(torch::kFloat64);
      }
      tokens += n * s;
    }
    const auto sums = torch::stack(loss_sum).to(torch::kCPU);
    std::vector<std::map<std::string, double>> out;
    for (int64_t e = 0; e < members; ++e) {
      const double loss = sums[e].item<double>() / static_cast<double>(tokens);
      std::map<std::string, double> m{{"val_loss", loss}, {"val_ppl", std::exp(loss)}};
      if (bytes_) m["val_bpb"] = loss / std::log(2.0);
      out.push_back(std::move(m));
    }
    return out;
  }

  // The non-overlapping windows, up to train.eval_batches batches of them.
  int64_t held_out_examples() const override {
    const int64_t windows = (val_.numel() - 1) / config_.data.seq_len;
    if (config_.train.eval_batches == 0) return windows;
    return std::min(windows, config_.train.eval_batches * config_.train.batch_size);
  }

  std::string unit() const override { return "tokens"; }

  std::unique_ptr<TaskData> with_seed(int64_t seed) const override {
    auto copy = std::make_unique<LmData>(*this);
    copy->config_.seed = seed;
    copy->windows_ = EpochOrder(seed, (train_.numel() - 1) / config_.data.seq_len);
    return copy;
  }

 private:
  runner::Config config_;
  torch::Tensor train_, val_;  // 1-D token streams
  bool bytes_;
  EpochOrder windows_;  // the order of the non-overlapping windows per epoch (train.epochs)
};

class VitData : public TaskData {
 public:
  VitData(const runner::Config& c, const ImageData& data)
      : config_(c), classes_(data.classes), order_(c.seed, data.train.count) {
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
    // Epochs of a seeded permutation; sample g of the run is item order(g / N)[g % N].
    const int64_t b = config_.train.batch_size, n = train_x_.size(0);
    std::vector<int64_t> picks(b);
    for (int64_t i = 0; i < b; ++i) {
      const int64_t g = step * b + i;
      picks[i] = order_.of(g / n)[g % n].item<int64_t>();
    }
    auto index = torch::tensor(picks);
    return {normalise(train_x_.index_select(0, index)), train_y_.index_select(0, index), b};
  }

  int64_t batches_per_epoch() const override { return order_.batches(config_.train.batch_size); }
  Batch epoch_batch(int64_t epoch, int64_t index) override {
    auto picked = order_.batch(epoch, index, config_.train.batch_size);
    return {normalise(train_x_.index_select(0, picked)), train_y_.index_select(0, picked),
            picked.size(0)};
  }

  std::vector<std::map<std::string, double>> evaluate(
      const std::function<torch::Tensor(const torch::Tensor&)>& forward, torch::Device device,
      int64_t members, int64_t subset) override {
    const int64_t b = eval_batch();
    int64_t n = held_out_examples();
    if (subset > 0) n = std::min(n, subset);
    // Summed on the device (the loss in fp64, in the order the host summed it before: the same
    // to the bit) and read once at the end.
    std::vector<torch::Tensor> loss_sum(members), correct(members);
    for (int64_t e = 0; e < members; ++e) {
      loss_sum[e] = torch::zeros({}, torch::dtype(torch::kFloat64).device(device));
      correct[e] = torch::zeros({}, torch::dtype(torch::kInt64).device(device));
    }
    for (int64_t i = 0; i < n; i += b) {
      const int64_t m = std::min(b, n - i);
      auto x = normalise(test_x_.narrow(0, i, m)).to(device);
      auto y = test_y_.narrow(0, i, m).to(device);
      auto all = forward(repeat_members(x, members)).to(torch::kFloat32);
      for (int64_t e = 0; e < members; ++e) {
        auto logits = all.narrow(0, e * m, m);
        loss_sum[e] +=
            torch::nn::functional::cross_entropy(
                logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                .to(torch::kFloat64);
        correct[e] += logits.argmax(1).eq(y).sum();
      }
    }
    const auto sums = torch::stack(loss_sum).to(torch::kCPU);
    const auto right = torch::stack(correct).to(torch::kCPU);
    std::vector<std::map<std::string, double>> out;
    for (int64_t e = 0; e < members; ++e) {
      out.push_back(
          {{"test_loss", sums[e].item<double>() / static_cast<double>(n)},
           {"test_acc", static_cast<double>(right[e].item<int64_t>()) / static_cast<double>(n)}});
    }
    return out;
  }

  // The test images, up to train.eval_batches evaluation batches of them.
  int64_t held_out_examples() const override {
    const int64_t n = test_x_.size(0);
    return config_.train.eval_batches > 0 ? std::min(n, config_.train.eval_batches * eval_batch())
                                          : n;
  }

  std::string unit() const override { return "images"; }

  std::unique_ptr<TaskData> with_seed(int64_t seed) const override {
    auto copy = std::make_unique<VitData>(*this);
    copy->config_.seed = seed;
    copy->order_ = EpochOrder(seed, train_x_.size(0));
    return copy;
  }

 private:
  // Images per evaluation batch: at least 256, however small the training batch.
  int64_t eval_batch() const { return std::max<int64_t>(config_.train.batch_size, 256); }

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
  EpochOrder order_;  // the order of the training images per epoch
  torch::Tensor train_x_, test_x_, train_y_, test_y_, mean_, std_;
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

}  // namespace

int64_t lm_vocab(const runner::Config& c) {
  return c.model.vocab > 0 ? c.model.vocab : (c.data.dataset == "bin" ? 50304 : 256);
}

torch::Tensor repeat_members(const torch::Tensor& x, int64_t members) {
  if (members <= 1) return x;
  std::vector<int64_t> times(x.dim(), 1);
  times[0] = members;
  return x.repeat(times);
}

TokenStreams load_token_streams(const runner::Config& c) {
  const auto& d = c.data;
  if (d.dataset == "bin") {
    auto split = load_token_shards(d.path, d.val_path, d.val_fraction);
    return {tokens_tensor(split.train), tokens_tensor(split.val), /*bytes=*/false};
  }
  TextOptions options;
  options.fortune_format = d.dataset == "fortunes";
  options.path = data_path(d);
  options.val_fraction = d.val_fraction;
  auto split = load_text(options);
  return {tokens_tensor(split.train), tokens_tensor(split.val), /*bytes=*/true};
}

std::unique_ptr<TaskData> load_data(const runner::Config& c) {
  const auto& d = c.data;
  if (c.task == "s2s") return load_s2s_data(c);
  if (c.task == "lm") {
    TokenStreams streams = load_token_streams(c);
    return std::make_unique<LmData>(c, streams.train, streams.val, streams.bytes, lm_vocab(c));
  }
  if (d.dataset == "cifar10" || d.dataset == "cifar100") {
    return std::make_unique<VitData>(c, load_cifar(d.path, d.dataset == "cifar10" ? 10 : 100));
  }
  // A path the user gave is named in the error as it is, with no advice to install a package.
  return std::make_unique<VitData>(c, load_idx(data_path(d), missing_data_hint(d)));
}

ImageShape image_shape(const TaskData& data) {
  const auto* vit = dynamic_cast<const VitData*>(&data);
  if (vit == nullptr) throw std::logic_error("image_shape: not a vit task's data");
  return {vit->channels(), vit->image(), vit->classes()};
}

}  // namespace ablate::experiments
