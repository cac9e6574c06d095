#include "run_record.h"

#include <torch/torch.h>

#include <iostream>
#include <sstream>

#include "ablate/experiments/device.h"
#include "ablate/results/metric_direction.h"
#include "ablate/results/printable.h"
#include "ablate/runner/canonical.h"

namespace ablate::experiments {
namespace fs = std::filesystem;
using json = nlohmann::json;

RunRecord::RunRecord(const runner::Config& config, const TrainOptions& options, RunFacts facts,
                     std::string label)
    : config_(config),
      options_(options),
      dir_(options.run_dir),
      facts_(std::move(facts)),
      label_(std::move(label)) {}

void RunRecord::open() {
  fs::create_directories(dir_);
  lock_ = std::make_unique<RunDirLock>(dir_);
  log_ = results::AppendFile(dir_ / "log.txt");
  if (!fs::exists(dir_ / "config.yaml")) {
    results::write_file_atomic(dir_ / "config.yaml", runner::to_yaml(config_));
  }
}

std::optional<fs::path> RunRecord::checkpoint() const { return checkpoint_dir(dir_); }

bool RunRecord::finished(const fs::path& ckpt) {
  const json state = json::parse(read_file(ckpt / "state.json"));
  const std::string status = state.value("status", "");
  if (status != "done" && status != "diverged") return false;
  const json summary = json::parse(read_file(dir_ / "summary.json"));
  result_.status = summary["status"];
  result_.step = summary["step"];
  result_.parameters = summary.value("parameters", int64_t{0});
  for (auto& [k, v] : summary["final"].items()) result_.final[k] = v;
  for (auto& [k, v] : summary["best"].items()) result_.best[k] = v;
  say("run already finished (" + result_.status + " at step " + std::to_string(result_.step) +
      "); nothing to do");
  return true;
}

void RunRecord::resume(const fs::path& ckpt) {
  const json state = json::parse(read_file(ckpt / "state.json"));
  start_step_ = state["step"];
  wall_before_ = state["wall_time_s"];
  best_ = state["best"];
  final_ = state["final"];
  result_.resumed_from = start_step_;
  // Checkpoints from before the history was kept do not say how their steps were trained.
  groupings_ = state.contains("seeds_in_process_history")
                   ? state["seeds_in_process_history"]
                   : json::array({json{{"from_step", 0}, {"seeds", nullptr}}});
  truncate_events(dir_ / "events.jsonl", start_step_);
  say("resuming from the checkpoint of step " + std::to_string(start_step_));
}

void RunRecord::start_fresh() {
  groupings_ = json::array();
  truncate_events(dir_ / "events.jsonl", 0);
}

void RunRecord::set_seeds_in_process(int64_t n) {
  groupings_.push_back(json{{"from_step", start_step_}, {"seeds", n}});
}

namespace {

// "2 from step 0; 1 from step 500": how the processes that trained a run grouped its seed.
std::string history_text(const json& groupings) {
  std::string out;
  for (const auto& g : groupings) {
    out += (out.empty() ? "" : "; ") +
           (g["seeds"].is_null() ? std::string("unknown")
                                 : std::to_string(g["seeds"].get<int64_t>())) +
           " from step " + std::to_string(g["from_step"].get<int64_t>());
  }
  return out;
}

}  // namespace

void RunRecord::begin(const torch::Device& device) {
  device_ = device;
  events_ = results::AppendFile(dir_ / "events.jsonl");
  wall_start_ = std::chrono::steady_clock::now();
  write_summary("running", start_step_);
}

void RunRecord::say(const std::string& line) {
  log_.append(line + "\n");
  if (!options_.quiet) std::cerr << label_ << line << "\n";
}

void RunRecord::emit(const json& e) {
  // A message with a path that is not UTF-8 must not end the run: invalid bytes are replaced.
  events_.append(e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

void RunRecord::record_eval(int64_t step, const std::map<std::string, double>& metrics,
                            int64_t subset) {
  json e{{"step", step}, {"kind", "eval"}};
  for (auto& [k, v] : metrics) {
    e[k] = v;
    if (subset > 0) continue;
    final_[k] = v;
    // The report's reading of the name (val_exact_match and val_rouge1 are higher-is-better,
    // though they do not say "acc"); a name that says neither direction has no best.
    const auto lower = results::infer_direction(k).lower_is_better;
    if (!lower) continue;
    if (!best_.contains(k) || (*lower ? v < best_[k].get<double>() : v > best_[k].get<double>())) {
      best_[k] = v;
    }
  }
  if (subset > 0) e["subset"] = subset;
  emit(e);
  std::ostringstream line;
  line << "eval step " << step;
  if (subset > 0) line << " (first " << subset << " held-out examples)";
  for (auto& [k, v] : metrics) line << " " << k << " " << v;
  say(line.str());
}

void RunRecord::add_step(double seconds, int64_t items) {
  train_seconds_ += seconds;
  items_ += static_cast<double>(items);
}

double RunRecord::wall_time() const {
  return wall_before_ +
         std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start_).count();
}

void RunRecord::write_summary(const std::string& status, int64_t step) {
  json s{{"status", status},
         {"step", step},
         {"steps", facts_.steps},
         {"warmup", facts_.warmup},
         {"final", final_},
         {"best", best_},
         {"wall_time_s", wall_time()},
         {"parameters", facts_.parameters},
         {"throughput", throughput()},
         {"throughput_unit", facts_.unit + "/s"},
         {"peak_memory_bytes", peak_memory_bytes(device_)},
         {"device", facts_.device},
         {"precision", facts_.bf16 ? "bf16" : "fp32"},
         {"config_hash", facts_.hash},
         {"causality", facts_.causality},
         {"allow_noncausal", config_.attention.allow_noncausal},
         {"seeds_in_process", groupings_.empty() ? json(1) : groupings_.back()["seeds"]},
         {"seeds_in_process_history", history_text(groupings_)},
         {"torch_version", TORCH_VERSION}};
  const DeviceInfo info = describe_device(device_);
  if (!info.gpu_name.empty()) {
    s["gpu_name"] = info.gpu_name;
    s["cuda_version"] = info.cuda_version;
  }
  if (!info.openblas_core.empty()) s["openblas_core"] = info.openblas_core;
  if (result_.diverged_step >= 0) s["diverged_step"] = result_.diverged_step;
  for (const auto& [k, v] : decode_cost_.items()) s[k] = v;
  results::write_file_atomic(
      dir_ / "summary.json",
      s.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

void RunRecord::save_checkpoint(int64_t step, const std::string& status, torch::nn::Module& model,
                                torch::optim::Optimizer& optimizer) {
  const fs::path tmp = dir_ / "checkpoint.tmp", cur = dir_ / "checkpoint",
                 old = dir_ / "checkpoint.old";
  fs::remove_all(tmp);
  try {
    fs::create_directories(tmp);
    save_module(model, tmp / "model.pt");
    torch::serialize::OutputArchive archive;
    optimizer.save(archive);
    save_archive(archive, tmp / "optimizer.pt");
    json state{{"step", step},  {"status", status}, {"wall_time_s", wall_time()},
               {"best", best_}, {"final", final_},  {"seeds_in_process_history", groupings_}};
    results::write_file(tmp / "state.json",
                        state.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } catch (...) {
    // Nothing half-written stays: the run resumes from the previous checkpoint once there is
    // space again.
    std::error_code ec;
    fs::remove_all(tmp, ec);
    const auto kept = checkpoint_dir(dir_);
    const std::string head = "checkpoint of step " + std::to_string(step) + " not saved: ";
    const std::string tail =
        "; " + (kept ? "the previous checkpoint is kept in " + results::printable(kept->string())
                     : std::string("there is no earlier checkpoint"));
    try {
      throw;
    } catch (const results::DiskError& e) {
      throw results::DiskError(head + e.what() + tail);
    } catch (const fs::filesystem_error& e) {
      throw results::DiskError(
          head + results::disk_error_message("create", e.path1(), e.code().value()) + tail);
    }
  }
  fs::remove_all(old);
  if (fs::exists(cur)) fs::rename(cur, old);
  fs::rename(tmp, cur);
  fs::remove_all(old);
}

void RunRecord::diverge(int64_t step, double loss, torch::nn::Module& model,
                        torch::optim::Optimizer& optimizer) {
  result_.status = "diverged";
  result_.diverged_step = step + 1;
  emit({{"step", step + 1}, {"kind", "train"}, {"loss", loss}, {"diverged", true}});
  say("diverged: loss " + std::to_string(loss) + " at step " + std::to_string(step + 1));
  write_summary("diverged", step);
  save_checkpoint(step, "diverged", model, optimizer);
  result_.step = step;
}

void RunRecord::done(int64_t step) {
  result_.status = "done";
  result_.step = step;
  for (auto& [k, v] : final_.items()) result_.final[k] = v;
  for (auto& [k, v] : best_.items()) result_.best[k] = v;
  write_summary("done", step);
}

}  // namespace ablate::experiments
