#include "preflight.h"

#include <map>
#include <optional>
#include <tuple>

#include "ablate/experiments/data_check.h"
#include "ablate/runner/question.h"
#include "train_process.h"

namespace ablate::cli {

namespace {

// Answers for the jobs of one sweep: many jobs read the same data on the same device, and
// listing a dataset's folder can take a while.
class MachineCache {
 public:
  const std::vector<experiments::DataProblem>& data(const runner::DataConfig& d) {
    const auto key = std::make_tuple(d.dataset, d.path, d.val_path);
    auto it = data_.find(key);
    if (it == data_.end()) it = data_.emplace(key, experiments::data_problems(d)).first;
    return it->second;
  }
  const std::string& device(const std::string& name) {
    auto it = devices_.find(name);
    if (it == devices_.end()) it = devices_.emplace(name, device_problems({name}).at(name)).first;
    return it->second;
  }

 private:
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<experiments::DataProblem>>
      data_;
  std::map<std::string, std::string> devices_;
};

// The key a problem points at: `key` where the file sets it, else the key that chose its default
// (data.path unset: the dataset's package location, chosen by data.dataset or, for vit, task).
std::string blamed_key(const std::string& key, const runner::Locations& locations) {
  if (locations.has(key) || key.rfind("data.", 0) != 0) return key;
  if (locations.has("data.dataset")) return "data.dataset";
  return locations.has("task") ? "task" : key;
}

}  // namespace

CheckedSweep checked_sweep(const std::string& file, const std::vector<std::string>& overrides,
                           const MachineChecks& machine,
                           const std::function<void(runner::SweepSpec&)>& before_expand) {
  runner::ConfigProblems problems;
  const auto flagged = device_problems(machine.devices_flag);
  for (const auto& d : machine.devices_flag) {
    const std::string& why = flagged.at(d);
    if (!why.empty()) problems.add(runner::ConfigProblem{"command line", 0, 0, "--devices", why});
  }
  MachineCache cache;
  const runner::JobCheck check = [&](const runner::Config& c, const runner::Locations& at) {
    runner::ConfigProblems found;
    auto add = [&](const std::string& key, const std::string& message) {
      const std::string blamed = blamed_key(key, at);
      const runner::Location where = at.at(blamed);
      found.add(runner::ConfigProblem{where.file, where.line, where.column, blamed, message});
    };
    if (machine.data) {
      for (const auto& p : cache.data(c.data)) add(p.key, p.message);
    }
    if (machine.devices) {
      const std::string& why = cache.device(c.train.device);
      if (!why.empty()) add("train.device", why);
    }
    found.throw_if_any();
  };
  std::optional<CheckedSweep> out;
  problems.check([&] {
    runner::SweepSpec sweep = runner::load_sweep(file, overrides);
    if (before_expand) before_expand(sweep);
    std::vector<runner::JobSpec> jobs = runner::expand(sweep, check);
    runner::check_question(sweep, jobs);  // the report: block names arms the plan has
    out = CheckedSweep{std::move(sweep), std::move(jobs)};
  });
  problems.throw_if_any();
  return std::move(*out);
}

}  // namespace ablate::cli
