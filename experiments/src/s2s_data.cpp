// The s2s task's data (docs/design.md section 5): T5 span corruption over the lm task's corpora,
// or source/target pairs a user brings; teacher-forced loss and greedy decoding for evaluation.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "ablate/experiments/data_error.h"
#include "ablate/experiments/pairs_data.h"
#include "ablate/experiments/rouge.h"
#include "ablate/experiments/span_corruption.h"
#include "epoch_order.h"
#include "task_data.h"

namespace ablate::experiments {
namespace {

constexpr int64_t kIgnore = -100;           // target id the loss skips (padding)
constexpr uint64_t kSpanStream = 6;         // the corruption of training example (step, i)
constexpr uint64_t kHeldOutCorruption = 7;  // the held-out corruption: no run seed in it
constexpr int64_t kUnigramExamples = 256;   // training examples the unigram baseline counts
constexpr int64_t kGpt2Tokens = 50257;      // ids of GPT-2 token shards

// One example as tensors: the source padded to Ls, the target padded with kIgnore to Lt, and
// the decoder input (the target shifted right behind the start token, padded with pad).
struct Encoded {
  std::vector<int64_t> source, target, input;
};

Encoded encode(const std::vector<int32_t>& source, const std::vector<int32_t>& target, int64_t Ls,
               int64_t Lt, int64_t pad) {
  Encoded e;
  e.source.assign(source.begin(), source.end());
  e.source.resize(Ls, pad);
  e.target.assign(target.begin(), target.end());
  e.target.resize(Lt, kIgnore);
  e.input.assign(Lt, pad);
  for (int64_t i = 1; i < Lt && i - 1 < static_cast<int64_t>(target.size()); ++i) {
    e.input[i] = target[i - 1];
  }
  return e;
}

// Stacks examples into a batch: input [n, Ls + Lt] (source, decoder input), target [n, Lt].
Batch stack(const std::vector<Encoded>& examples) {
  std::vector<int64_t> input, target;
  int64_t items = 0;
  for (const auto& e : examples) {
    input.insert(input.end(), e.source.begin(), e.source.end());
    input.insert(input.end(), e.input.begin(), e.input.end());
    target.insert(target.end(), e.target.begin(), e.target.end());
    for (int64_t t : e.target) items += t != kIgnore;
  }
  const int64_t n = static_cast<int64_t>(examples.size());
  auto in = torch::tensor(input, torch::kInt64).view({n, -1});
  auto out = torch::tensor(target, torch::kInt64).view({n, -1});
  return {in, out, items};
}

// A pair's text as tokens: its UTF-8 bytes, cut to `keep` - 1, then eos.
std::vector<int32_t> text_tokens(const std::string& text, int64_t keep, int64_t eos) {
  const int64_t n = std::min<int64_t>(static_cast<int64_t>(text.size()), keep - 1);
  std::vector<int32_t> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(static_cast<unsigned char>(text[i]));
  out.push_back(static_cast<int32_t>(eos));
  return out;
}

class S2sData : public TaskData {
 public:
  S2sData(const runner::Config& c, S2sShape shape, S2sVocab vocab, bool bytes)
      : config_(c), shape_(shape), vocab_(vocab), bytes_(bytes), order_(c.seed, 1) {}

  // Span corruption over token streams: examples are windows of seq_len raw tokens.
  static std::unique_ptr<S2sData> spans(const runner::Config& c, TokenStreams streams) {
    const int64_t L = c.data.seq_len, vocab_size = s2s_vocab(c);
    const int64_t base = streams.bytes ? 256 : kGpt2Tokens;
    if (L < 2) throw DataError("data.seq_len " + std::to_string(L) + " is too short to corrupt");
    SpanCorruption corruption{c.data.noise_density, c.data.mean_span};
    const CorruptedLengths lengths = corrupted_lengths(L, corruption);
    const S2sVocab vocab = s2s_vocab(base, vocab_size);
    if (lengths.spans > vocab.sentinels) {
      throw DataError(
          "data.seq_len " + std::to_string(L) + " gives " + std::to_string(lengths.spans) +
          " masked spans, but model.vocab " + std::to_string(vocab_size) + " leaves " +
          std::to_string(vocab.sentinels) + " sentinel ids; use model.vocab >= " +
          std::to_string(vocab.first_sentinel + lengths.spans) + " or a shorter data.seq_len");
    }
    S2sShape shape{lengths.inputs, lengths.targets, vocab_size, vocab.pad};
    auto data = std::make_unique<S2sData>(c, shape, vocab, streams.bytes);
    data->corruption_ = corruption;
    data->train_stream_ = streams.train.to(torch::kInt32).contiguous();
    data->val_stream_ = streams.val.to(torch::kInt32).contiguous();
    for (const auto* split : {&data->train_stream_, &data->val_stream_}) {
      if (split->numel() > 0 && split->max().item<int64_t>() >= base) {
        throw DataError("data: token id " + std::to_string(split->max().item<int64_t>()) + " in " +
                        c.data.path + " is not below " + std::to_string(base) +
                        ", where the s2s vocabulary's pad, eos and sentinels start");
      }
    }
    if (data->train_stream_.numel() < L) {
      throw DataError("data: the training split has " +
                      std::to_string(data->train_stream_.numel()) +
                      " tokens, fewer than data.seq_len = " + std::to_string(L));
    }
    if (data->val_stream_.numel() < L) {
      throw DataError("data: the held-out split has " + std::to_string(data->val_stream_.numel()) +
                      " tokens, fewer than data.seq_len = " + std::to_string(L));
    }
    // Held-out examples: the non-overlapping windows in order, corrupted with draws that do not
    // depend on the run's seed, so every arm and seed is scored on the same examples.
    const int64_t windows = data->val_stream_.numel() / L;
    for (int64_t w = 0; w < windows; ++w) {
      data->val_.push_back(data->corrupt(data->val_stream_, w * L, mix(kHeldOutCorruption, w)));
    }
    data->order_ = EpochOrder(c.seed, data->train_stream_.numel() / L);
    data->set_unigram_baseline(
        [&](int64_t i) {
          const int64_t offsets = data->train_stream_.numel() - L + 1;
          std::mt19937_64 rng(mix(kHeldOutCorruption + 1, static_cast<uint64_t>(i)));
          const int64_t at =
              static_cast<int64_t>(uniform_below(rng, static_cast<uint64_t>(offsets)));
          return data->corrupt(data->train_stream_, at, rng());
        },
        kUnigramExamples);
    return data;
  }

  // Pairs: the source cut to seq_len tokens, the target to target_len, eos included.
  static std::unique_ptr<S2sData> pairs(const runner::Config& c) {
    PairsOptions options;
    options.path = c.data.path;
    options.val_fraction = c.data.val_fraction;
    PairsSplit split = load_pairs(options);
    const int64_t vocab_size = s2s_vocab(c);
    const S2sVocab vocab = s2s_vocab(256, vocab_size);
    S2sShape shape{c.data.seq_len, c.data.target_len, vocab_size, vocab.pad};
    if (shape.source_len < 2) throw DataError("data.seq_len must be >= 2 for pairs (text and eos)");
    auto data = std::make_unique<S2sData>(c, shape, vocab, /*bytes=*/true);
    auto encode_pair = [&](const TextPair& p) {
      return encode(text_tokens(p.source, shape.source_len, vocab.eos),
                    text_tokens(p.target, shape.target_len, vocab.eos), shape.source_len,
                    shape.target_len, vocab.pad);
    };
    for (const auto& p : split.train) data->train_pairs_.push_back(encode_pair(p));
    for (const auto& p : split.val) data->val_.push_back(encode_pair(p));
    data->order_ = EpochOrder(c.seed, static_cast<int64_t>(data->train_pairs_.size()));
    const int64_t n = static_cast<int64_t>(data->train_pairs_.size());
    data->set_unigram_baseline([&](int64_t i) { return data->train_pairs_[i]; }, n);
    return data;
  }

  const S2sShape& shape() const { return shape_; }

  Batch train_batch(int64_t step) override {
    const int64_t b = config_.train.batch_size;
    std::vector<Encoded> examples;
    if (!train_pairs_.empty()) {
      // Epochs of a seeded permutation; sample g of the run is pair order(g / N)[g % N].
      const int64_t n = static_cast<int64_t>(train_pairs_.size());
      for (int64_t i = 0; i < b; ++i) {
        const int64_t g = step * b + i;
        examples.push_back(train_pairs_[order_.of(g / n)[g % n].item<int64_t>()]);
      }
      return stack(examples);
    }
    const int64_t L = config_.data.seq_len;
    std::mt19937_64 rng(mix(mix(config_.seed, kBatchStream), step));
    const uint64_t offsets = static_cast<uint64_t>(train_stream_.numel() - L + 1);
    for (int64_t i = 0; i < b; ++i) {
      const int64_t at = static_cast<int64_t>(uniform_below(rng, offsets));
      examples.push_back(
          corrupt(train_stream_, at, mix(mix(mix(config_.seed, kSpanStream), step), i)));
    }
    return stack(examples);
  }

  int64_t batches_per_epoch() const override { return order_.batches(config_.train.batch_size); }
  Batch epoch_batch(int64_t epoch, int64_t index) override {
    auto picked = order_.batch(epoch, index, config_.train.batch_size);
    std::vector<Encoded> examples;
    const int64_t L = config_.data.seq_len;
    for (int64_t j = 0; j < picked.size(0); ++j) {
      const int64_t item = picked[j].item<int64_t>();
      if (!train_pairs_.empty()) {
        examples.push_back(train_pairs_[item]);
      } else {  // window `item`, corrupted anew each epoch
        examples.push_back(
            corrupt(train_stream_, item * L,
                    mix(mix(mix(config_.seed, kSpanStream), 1000003 + epoch), item)));
      }
    }
    return stack(examples);
  }

  std::vector<std::map<std::string, double>> evaluate(
      const std::function<torch::Tensor(const torch::Tensor&)>& forward, torch::Device device,
      int64_t members, int64_t subset) override {
    // Decoding first, so the last forward (whose key norms and noise the attention diagnostics
    // report) is a loss batch, as in the other tasks.
    std::vector<std::map<std::string, double>> out(members);
    decode_metrics(forward, device, members, subset > 0 ? std::min(subset, decoded()) : decoded(),
                   out);
    const int64_t b = config_.train.batch_size;
    int64_t n = loss_examples();
    if (subset > 0) n = std::min(n, subset);
    // The loss summed on the device in fp64, in the order the host summed each batch's before
    // (the same to the bit), and read once at the end.
    std::vector<torch::Tensor> loss_sum(members);
    for (auto& sum : loss_sum) sum = torch::zeros({}, torch::dtype(torch::kFloat64).device(device));
    int64_t tokens = 0, target_bytes = 0;
    for (int64_t i = 0; i < n; i += b) {
      const int64_t m = std::min(b, n - i);
      Batch x = stack({val_.begin() + i, val_.begin() + i + m});
      auto all = forward(repeat_members(x.input.to(device), members)).to(torch::kFloat32);
      auto target = x.target.to(device).reshape({-1});
      for (int64_t e = 0; e < members; ++e) {
        auto logits = all.narrow(0, e * m, m);
        loss_sum[e] +=
            torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), target,
                                                 torch::nn::functional::CrossEntropyFuncOptions()
                                                     .reduction(torch::kSum)
                                                     .ignore_index(kIgnore))
                .to(torch::kFloat64);
      }
      tokens += x.items;
      // The host's copy of the targets: no read of the device.
      target_bytes += x.target.ge(0).logical_and(x.target.lt(vocab_.base)).sum().item<int64_t>();
    }
    const auto sums = torch::stack(loss_sum).to(torch::kCPU);
    for (int64_t e = 0; e < members; ++e) {
      const double sum = sums[e].item<double>();
      const double loss = sum / static_cast<double>(tokens);
      out[e]["val_loss"] = loss;
      out[e]["val_loss_unigram"] = unigram_loss_;
      // Bits per byte of target text: every target token's loss (sentinels and eos included)
      // over the bytes the targets hold, so it compares with the lm task's val_bpb.
      if (bytes_ && target_bytes > 0) {
        out[e]["val_bpb"] = sum / std::log(2.0) / static_cast<double>(target_bytes);
      }
    }
    return out;
  }

  // The examples of the loss (up to train.eval_batches batches) or of decoding, the larger.
  int64_t held_out_examples() const override { return std::max(loss_examples(), decoded()); }

  std::string unit() const override { return "tokens"; }

  std::unique_ptr<TaskData> with_seed(int64_t seed) const override {
    auto copy = std::make_unique<S2sData>(*this);
    copy->config_.seed = seed;
    const int64_t items = train_pairs_.empty() ? train_stream_.numel() / config_.data.seq_len
                                               : static_cast<int64_t>(train_pairs_.size());
    copy->order_ = EpochOrder(seed, items);
    return copy;
  }

 private:
  // The example of the window of seq_len tokens of `stream` at `at`, corrupted with `seed`.
  Encoded corrupt(const torch::Tensor& stream, int64_t at, uint64_t seed) const {
    const Example ex = corrupt_spans(stream.data_ptr<int32_t>() + at, config_.data.seq_len,
                                     corruption_, vocab_, seed);
    return encode(ex.source, ex.target, shape_.source_len, shape_.target_len, vocab_.pad);
  }

  // The loss of predicting every held-out target token by the training targets' token
  // frequencies (add-one smoothed over the vocabulary): the floor a model must beat.
  template <typename ExampleAt>
  void set_unigram_baseline(ExampleAt example, int64_t count) {
    std::vector<double> freq(shape_.vocab, 1.0);
    double total = static_cast<double>(shape_.vocab);
    for (int64_t i = 0; i < count; ++i) {
      for (int64_t t : example(i).target) {
        if (t == kIgnore) continue;
        freq[t] += 1.0;
        total += 1.0;
      }
    }
    double sum = 0.0;
    int64_t n = 0;
    for (const auto& e : val_) {
      for (int64_t t : e.target) {
        if (t == kIgnore) continue;
        sum -= std::log(freq[t] / total);
        ++n;
      }
    }
    unigram_loss_ = n > 0 ? sum / static_cast<double>(n) : 0.0;
  }

  // A token sequence as text for ROUGE: bytes as they are (sentinels as spaces) for byte data,
  // token ids as words for token shards; up to eos.
  std::string text_of(const std::vector<int64_t>& tokens) const {
    std::string out;
    for (int64_t t : tokens) {
      if (t == vocab_.eos || t == kIgnore) break;
      if (t == vocab_.pad) continue;
      if (t >= vocab_.base) {
        out += ' ';
      } else if (bytes_) {
        out += static_cast<char>(t);
      } else {
        out += " " + std::to_string(t);
      }
    }
    return out;
  }

  // Held-out examples of a full evaluation's loss: all, or train.eval_batches batches of them.
  int64_t loss_examples() const {
    const int64_t n = static_cast<int64_t>(val_.size());
    return config_.train.eval_batches > 0
               ? std::min(n, config_.train.eval_batches * config_.train.batch_size)
               : n;
  }
  // Held-out examples a full evaluation decodes: the first train.decode_examples.
  int64_t decoded() const {
    return std::min<int64_t>(config_.train.decode_examples, static_cast<int64_t>(val_.size()));
  }

  // Greedy decoding of the first n held-out examples: exact match (the tokens up to eos) and
  // ROUGE-1/2/L F1 of the text, averaged.
  void decode_metrics(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                      torch::Device device, int64_t members, int64_t n,
                      std::vector<std::map<std::string, double>>& out) const {
    if (n == 0) return;
    const int64_t b = std::max<int64_t>(1, config_.train.batch_size), Lt = shape_.target_len;
    std::vector<double> exact(members, 0.0), r1(members, 0.0), r2(members, 0.0), rl(members, 0.0);
    for (int64_t i = 0; i < n; i += b) {
      const int64_t m = std::min(b, n - i);
      Batch x = stack({val_.begin() + i, val_.begin() + i + m});
      auto source = repeat_members(x.input.narrow(1, 0, shape_.source_len).to(device), members);
      auto generated = greedy(forward, source, Lt).to(torch::kCPU);
      for (int64_t e = 0; e < members; ++e) {
        for (int64_t j = 0; j < m; ++j) {
          auto row = generated[e * m + j];
          std::vector<int64_t> got(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + Lt);
          const std::vector<int64_t>& want = val_[i + j].target;
          // Exact: equal up to and including eos.
          bool same = true;
          for (int64_t k = 0; k < Lt; ++k) {
            if (want[k] == kIgnore) break;
            if (got[k] != want[k]) {
              same = false;
              break;
            }
          }
          exact[e] += same;
          const RougeF1 r = rouge_f1(text_of(want), text_of(got));
          r1[e] += r.rouge1;
          r2[e] += r.rouge2;
          rl[e] += r.rougeL;
        }
      }
    }
    for (int64_t e = 0; e < members; ++e) {
      out[e]["val_exact_match"] = exact[e] / static_cast<double>(n);
      out[e]["val_rouge1"] = r1[e] / static_cast<double>(n);
      out[e]["val_rouge2"] = r2[e] / static_cast<double>(n);
      out[e]["val_rougeL"] = rl[e] / static_cast<double>(n);
    }
  }

  // Greedy decoding by full recomputation: from the start token, append the most likely next
  // token, `steps` times; a row's tokens after its eos are pad. Always `steps` forwards, never
  // fewer when every row has ended: how many forwards run must not depend on the other rows (the
  // other members of an ensemble), or the random draws of later evaluation forwards (pgqa noise
  // at eval) would.
  // source [R, Ls] -> tokens [R, steps].
  torch::Tensor greedy(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                       const torch::Tensor& source, int64_t steps) const {
    const int64_t R = source.size(0);
    auto prefix = torch::full({R, 1}, shape_.pad, source.options());
    auto done = torch::zeros({R}, source.options().dtype(torch::kBool));
    for (int64_t s = 0; s < steps; ++s) {
      auto logits = forward(torch::cat({source, prefix}, 1));
      auto next = logits.select(1, logits.size(1) - 1).argmax(-1);
      next = torch::where(done, torch::full_like(next, shape_.pad), next);
      prefix = torch::cat({prefix, next.unsqueeze(1)}, 1);
      done = done.logical_or(next.eq(vocab_.eos));
    }
    auto tokens = torch::full({R, steps}, shape_.pad, source.options());
    tokens.narrow(1, 0, prefix.size(1) - 1).copy_(prefix.narrow(1, 1, prefix.size(1) - 1));
    return tokens;
  }

  runner::Config config_;
  S2sShape shape_;
  S2sVocab vocab_;
  bool bytes_;
  SpanCorruption corruption_;
  torch::Tensor train_stream_, val_stream_;  // span corruption: int32 token streams
  std::vector<Encoded> train_pairs_;         // pairs: the training examples
  std::vector<Encoded> val_;                 // held-out examples, in order
  EpochOrder order_;                         // epochs over windows or pairs
  double unigram_loss_ = 0.0;
};

}  // namespace

int64_t s2s_vocab(const runner::Config& c) {
  return c.model.vocab > 0 ? c.model.vocab : (c.data.dataset == "bin" ? 50304 : 384);
}

std::unique_ptr<TaskData> load_s2s_data(const runner::Config& c) {
  if (c.data.dataset == "pairs") return S2sData::pairs(c);
  return S2sData::spans(c, load_token_streams(c));
}

S2sShape s2s_shape(const TaskData& data) {
  const auto* s2s = dynamic_cast<const S2sData*>(&data);
  if (s2s == nullptr) throw std::logic_error("s2s_shape: not an s2s task's data");
  return s2s->shape();
}

}  // namespace ablate::experiments
