#include "ablate/runner/calibration.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ablate/results/files.h"
#include "ablate/runner/command.h"

namespace ablate::runner {
namespace fs = std::filesystem;
using nlohmann::json;

std::vector<CpuLayout> candidate_layouts(int cores) {
  cores = std::max(1, cores);
  std::vector<CpuLayout> out;
  for (int t = 1; t <= cores; t *= 2) out.push_back({cores / t, t, 0});
  if (out.back().threads != cores) out.push_back({1, cores, 0});
  return out;
}

CpuLayout best_layout(const std::vector<CpuLayout>& measured, double tie_fraction) {
  CpuLayout best;
  for (const auto& l : measured) {
    if (l.items_per_s <= 0) continue;
    const bool first = best.items_per_s <= 0;
    const bool clearly_faster = l.items_per_s > best.items_per_s * (1 + tie_fraction);
    const bool tie_fewer_threads =
        l.items_per_s >= best.items_per_s * (1 - tie_fraction) && l.threads < best.threads;
    if (first || clearly_faster || tie_fewer_threads) best = l;
  }
  return best;
}

std::string machine_key(int cores, const std::string& openblas_core) {
  std::ifstream in("/proc/cpuinfo");
  std::string model = "unknown CPU";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      model = line.substr(line.find(':') + 1);
      model.erase(0, model.find_first_not_of(' '));
      break;
    }
  }
  return model + " | " + std::to_string(cores) + (cores == 1 ? " core" : " cores") +
         (openblas_core.empty() ? "" : " | OpenBLAS " + openblas_core);
}

std::string calibration_path() {
  if (const char* set = std::getenv("ABLATE_CALIBRATION"); set != nullptr && *set != '\0') {
    return std::string(set) == "off" ? "" : set;
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg == '/') {
    return (fs::path(xdg) / "ablate" / "cpu-calibration.json").string();
  }
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') return "";
  return (fs::path(home) / ".cache" / "ablate" / "cpu-calibration.json").string();
}

namespace {
json layout_json(const CpuLayout& l) {
  return {{"jobs", l.jobs}, {"threads", l.threads}, {"items_per_s", l.items_per_s}};
}
CpuLayout layout_of(const json& j) {
  return {j.at("jobs").get<int>(), j.at("threads").get<int>(), j.at("items_per_s").get<double>()};
}
}  // namespace

std::optional<CpuTicks> parse_cpu_ticks(const std::string& proc_stat) {
  std::istringstream in(proc_stat);
  std::string name;
  in >> name;
  if (name != "cpu") return std::nullopt;
  // user nice system idle iowait irq softirq steal (guest time is inside user already)
  double v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int read = 0;
  for (; read < 8 && (in >> v[read]); ++read) {
  }
  if (read < 4) return std::nullopt;
  CpuTicks t;
  t.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  t.total = t.busy + v[3] + v[4];
  return t;
}

double others_cpu_share(const CpuTicks& before, const CpuTicks& after, double own_ticks) {
  const double total = after.total - before.total;
  if (total <= 0) return -1;
  const double others = (after.busy - before.busy) - own_ticks;
  return std::clamp(others / total, 0.0, 1.0);
}

std::string busy_note(const Calibration& c) {
  if (c.others_cpu_share <= kBusyShare) return "";
  return "measured while other programs used " +
         std::to_string(static_cast<int>(std::lround(c.others_cpu_share * 100))) +
         "% of the CPU, so another layout may be faster on the idle machine";
}

std::string slurm_calibration_key(const std::string& partition) {
  return partition.empty() ? "Slurm default partition" : "Slurm partition " + partition;
}

namespace {
json calibration_object(const Calibration& c) {
  json layouts = json::array();
  for (const auto& l : c.layouts) layouts.push_back(layout_json(l));
  json j{{"machine", c.machine}, {"measured_at", c.measured_at}, {"config", c.config},
         {"unit", c.unit},       {"layouts", layouts},           {"best", layout_json(c.best)}};
  if (!c.node.empty()) j["node"] = c.node;
  if (c.others_cpu_share >= 0) j["others_cpu_share"] = c.others_cpu_share;
  return j;
}

std::optional<Calibration> calibration_of(const json& j) {
  try {
    Calibration c;
    c.machine = j.at("machine").get<std::string>();
    c.node = j.value("node", "");
    c.measured_at = j.at("measured_at").get<std::string>();
    c.config = j.at("config").get<std::string>();
    c.unit = j.at("unit").get<std::string>();
    for (const auto& l : j.at("layouts")) c.layouts.push_back(layout_of(l));
    c.best = layout_of(j.at("best"));
    c.others_cpu_share = j.value("others_cpu_share", -1.0);
    if (c.best.jobs < 1 || c.best.threads < 1) return std::nullopt;
    return c;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}
}  // namespace

std::string calibration_json(const Calibration& c) { return calibration_object(c).dump(2) + "\n"; }

std::optional<Calibration> parse_calibration(const std::string& json_text) {
  const json j = json::parse(json_text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return calibration_of(j);
}

std::string calibrations_json(const std::vector<Calibration>& all) {
  json list = json::array();
  for (const auto& c : all) list.push_back(calibration_object(c));
  return json{{"calibrations", list}}.dump(2) + "\n";
}

std::vector<Calibration> parse_calibrations(const std::string& json_text) {
  std::vector<Calibration> out;
  const json j = json::parse(json_text, nullptr, false);
  if (!j.is_object()) return out;
  if (!j.contains("calibrations")) {  // the older cache: one calibration
    if (auto c = calibration_of(j)) out.push_back(*c);
    return out;
  }
  if (!j["calibrations"].is_array()) return out;
  for (const auto& entry : j["calibrations"]) {
    if (auto c = calibration_of(entry)) out.push_back(*c);
  }
  return out;
}

std::optional<Calibration> load_calibration(const std::string& path, const std::string& machine) {
  if (path.empty()) return std::nullopt;
  for (auto& c : parse_calibrations(read_text(path))) {
    if (c.machine == machine) return c;
  }
  return std::nullopt;
}

void save_calibration(const std::string& path, const Calibration& c) {
  std::vector<Calibration> all = parse_calibrations(read_text(path));
  all.erase(std::remove_if(all.begin(), all.end(),
                           [&](const Calibration& old) { return old.machine == c.machine; }),
            all.end());
  all.push_back(c);
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  results::write_file_atomic(path, calibrations_json(all));
}

}  // namespace ablate::runner
