#include "ablate/runner/ensembles.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <utility>

#include "ablate/runner/command.h"

namespace ablate::runner {

int parse_seeds_per_process(const std::string& text) {
  if (text == "auto") return 0;
  const bool digits = !text.empty() && text.size() <= 6 &&
                      text.find_first_not_of("0123456789") == std::string::npos;
  if (!digits || std::stoi(text) < 1) {
    throw std::invalid_argument("expected a whole number >= 1 or auto, got " +
                                (text.empty() ? std::string("nothing") : text));
  }
  return std::stoi(text);
}

std::string seeds_per_process_text(int seeds_per_process) {
  return seeds_per_process > 0 ? std::to_string(seeds_per_process) : "auto";
}

int seeds_fitting_gpu(int64_t peak_bytes, int64_t memory_bytes, int cap) {
  if (peak_bytes <= 0 || memory_bytes <= 0) return 1;
  const double fit = std::floor(kGpuMemoryShare * static_cast<double>(memory_bytes) /
                                static_cast<double>(peak_bytes));
  return static_cast<int>(std::clamp(fit, 1.0, static_cast<double>(std::max(1, cap))));
}

int seeds_to_launch(const SeedsPerProcessInputs& in) {
  if (in.setting > 0) return in.setting;
  if (!in.gpu) return kCpuSeedsPerProcess;
  if (in.device_memory <= 0) return 1;
  if (in.peak_memory) return seeds_fitting_gpu(*in.peak_memory, in.device_memory);
  return in.arm_running ? 0 : 1;
}

std::vector<std::vector<const JobSpec*>> seed_groups(const std::vector<const JobSpec*>& jobs) {
  std::vector<std::vector<const JobSpec*>> groups;
  std::map<std::pair<std::string, std::string>, size_t> index;  // (stage, arm) -> group
  for (const JobSpec* job : jobs) {
    const auto [it, added] = index.emplace(std::make_pair(job->stage, job->arm_key), groups.size());
    if (added) groups.emplace_back();
    groups[it->second].push_back(job);
  }
  return groups;
}

std::vector<std::vector<const JobSpec*>> processes_of(const std::vector<JobSpec>& jobs, int n) {
  std::vector<const JobSpec*> all;
  for (const auto& job : jobs) all.push_back(&job);
  const size_t size = static_cast<size_t>(std::max(1, n));
  std::vector<std::vector<const JobSpec*>> out;
  for (const auto& group : seed_groups(all)) {
    for (size_t i = 0; i < group.size(); i += size) {
      out.emplace_back(
          group.begin() + static_cast<std::ptrdiff_t>(i),
          group.begin() + static_cast<std::ptrdiff_t>(std::min(group.size(), i + size)));
    }
  }
  return out;
}

int64_t parse_nvidia_smi_memory(const std::string& output) {
  std::string text = output;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  if (text.empty() || text.size() > 9 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return 0;
  }
  return std::stoll(text) * 1024 * 1024;
}

int64_t nvidia_smi_memory(const std::string& device) {
  std::string index;
  if (device == "cuda") {
    index = "0";
  } else if (device.rfind("cuda:", 0) == 0) {
    index = device.substr(5);
  }
  if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos) return 0;
  const CommandResult r = run_command(
      {"nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits", "-i", index});
  return r.status == 0 ? parse_nvidia_smi_memory(r.output) : 0;
}

}  // namespace ablate::runner
