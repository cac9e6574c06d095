#include "ablate/results/figures.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "scratch_dir.h"

extern char** environ;

namespace ablate::results {
namespace {
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Child process and scratch files

// A started child; killed and reaped if it is still running when the object goes (an exception
// between spawn and wait must not leave a zombie or a stray gnuplot).
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  ~Child() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // The exit status (128 + signal when killed by one), or nullopt when it ran past `timeout_s`
  // (it is then killed).
  std::optional<int> wait(double timeout_s) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    auto pause = std::chrono::milliseconds(1);
    for (;;) {
      int status = 0;
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        if (WIFEXITED(status)) return WEXITSTATUS(status);
        if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
        return -1;
      }
      if (r < 0 && errno != EINTR) {
        pid_ = -1;
        throw std::runtime_error(std::string("figures: waitpid failed: ") + std::strerror(errno));
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;  // ~Child kills it
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
  }

 private:
  pid_t pid_;
};

struct SpawnFileActions {
  posix_spawn_file_actions_t actions;
  SpawnFileActions() { posix_spawn_file_actions_init(&actions); }
  ~SpawnFileActions() { posix_spawn_file_actions_destroy(&actions); }
  SpawnFileActions(const SpawnFileActions&) = delete;
  SpawnFileActions& operator=(const SpawnFileActions&) = delete;
};

struct RunResult {
  bool started = false;  // false: the executable was not found or could not run
  int spawn_error = 0;   // errno of posix_spawnp when not started
  bool timed_out = false;
  int status = -1;
};

// Runs argv (argv[0] looked up on PATH) in `cwd` (when not empty) with stdin from /dev/null and
// stdout and stderr into `log` (or /dev/null when empty; an absolute path). No shell: names never
// reach an interpreter.
RunResult run_process(std::vector<std::string> argv, const std::string& log, double timeout_s,
                      const std::string& cwd = "") {
  SpawnFileActions fa;
  posix_spawn_file_actions_addopen(&fa.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa.actions, 1, log.empty() ? "/dev/null" : log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa.actions, 1, 2);
  if (!cwd.empty()) {
    // A relative program path ("./gnuplot") means relative to our folder, not the child's.
    if (argv[0].find('/') != std::string::npos) argv[0] = fs::absolute(argv[0]).string();
    posix_spawn_file_actions_addchdir_np(&fa.actions, cwd.c_str());
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  RunResult result;
  const int rc = posix_spawnp(&pid, args[0], &fa.actions, nullptr, args.data(), environ);
  if (rc != 0) {
    result.spawn_error = rc;
    return result;
  }
  Child child(pid);
  result.started = true;
  const std::optional<int> status = child.wait(timeout_s);
  if (!status) {
    result.timed_out = true;
    return result;
  }
  result.status = *status;
  // glibc's posix_spawnp reports a failed exec as exit status 127 of the child.
  if (result.status == 127) {
    result.started = false;
    result.spawn_error = ENOENT;
  }
  return result;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---------------------------------------------------------------------------------------------
// gnuplot text

// A gnuplot single-quoted string: nothing inside is interpreted except '' for one quote, so
// backslashes, double quotes, % and braces stay literal. Control characters (a newline would end
// the command) become spaces.
std::string quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') {
      out += "''";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += ' ';
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

// Shortest round-trip text of v; to_chars ignores the C locale, whose decimal comma would make
// gnuplot misread the data.
std::string num(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string colour(size_t series) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%06X", static_cast<unsigned>(kFigurePalette[series % 8]));
  return buf;
}

// "95%" for alpha 0.05, "99.9%" for 0.001.
std::string percent(double confidence) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g%%", confidence * 100);
  return buf;
}

// "n = 3 seeds per arm", "n = 2 to 5 seeds per arm".
std::string seeds_phrase(const std::vector<int64_t>& ns) {
  if (ns.empty()) return "";
  const auto [lo, hi] = std::minmax_element(ns.begin(), ns.end());
  std::string n =
      *lo == *hi ? std::to_string(*lo) : std::to_string(*lo) + " to " + std::to_string(*hi);
  return "n = " + n + (*hi == 1 ? " seed" : " seeds") + " per arm";
}

std::string arm_title(const Report& report, size_t i) {
  const ReportArm& arm = report.arms[i];
  std::string label = !arm.label.empty()     ? arm.label
                      : !arm.arm_key.empty() ? arm.arm_key
                                             : "arm " + std::to_string(i + 1);
  if (i == report.baseline) label += " (baseline)";
  return label;
}

std::string direction(const Report& report) {
  return report.lower_is_better ? " (lower is better)" : " (higher is better)";
}

// The interval bars of an arm: its t interval, or none (low = high = mean) with one seed.
std::pair<double, double> bar(const ReportArm& arm) {
  const stats::Interval& ci = arm.stats.t_ci;
  if (ci.available && std::isfinite(ci.low) && std::isfinite(ci.high)) return {ci.low, ci.high};
  return {arm.stats.mean, arm.stats.mean};
}

// One figure: its data blocks and settings, then a plot command drawn once per format.
struct Plot {
  std::string name;
  std::string title;
  std::string caption;
  std::string setup;  // data blocks and `set` commands
  std::string plot;   // the `plot ...` command, one line
};

std::string header(const Plot& p, const std::string& xlabel, const std::string& ylabel) {
  std::string s;
  s += "set encoding utf8\n";
  s += "set title " + quote(p.title) + "\n";
  s += "set xlabel " + quote(xlabel) + "\n";
  s += "set ylabel " + quote(ylabel) + "\n";
  s += "set grid lt 1 lw 1 lc rgb '#DDDDDD'\n";
  s += "set border lc rgb '#000000'\n";
  return s;
}

// ---------------------------------------------------------------------------------------------
// The three figures

std::optional<Plot> learning_curves(const Report& report, std::string* why) {
  std::vector<size_t> drawn;
  for (size_t i = 0; i < report.arms.size(); ++i) {
    for (const CurvePoint& p : report.arms[i].curve) {
      if (std::isfinite(p.mean)) {
        drawn.push_back(i);
        break;
      }
    }
  }
  if (report.curve_metric.empty() || drawn.empty()) {
    if (report.imported) {
      *why = "learning curves: the metric was not logged as a curve (imported sweep)";
    } else if (!report.options.curves) {
      *why = "learning curves: curves were not loaded for this report";
    } else {
      *why = "learning curves: no arm logged a curve of the metric";
    }
    return std::nullopt;
  }
  Plot p;
  p.name = "learning_curves";
  p.title = "Learning curves: " + report.curve_metric;
  std::vector<int64_t> ns;
  bool single_seed_steps = false;
  std::string data;
  std::vector<std::string> bands, lines;
  for (const size_t i : drawn) {
    std::string mean_block = "$mean" + std::to_string(i);
    std::string band_block = "$band" + std::to_string(i);
    std::string m = mean_block + " << EOD\n", b = band_block + " << EOD\n";
    int64_t n = 0, points = 0, band_points = 0;
    bool gap = false;
    for (const CurvePoint& c : report.arms[i].curve) {
      if (!std::isfinite(c.mean)) continue;
      n = std::max(n, c.n);
      ++points;
      m += std::to_string(c.step) + " " + num(c.mean) + "\n";
      if (std::isfinite(c.low) && std::isfinite(c.high)) {
        // A blank line splits the band, so a one-seed step leaves a gap instead of a wedge.
        if (gap && band_points > 0) b += "\n";
        gap = false;
        ++band_points;
        b += std::to_string(c.step) + " " + num(c.low) + " " + num(c.high) + "\n";
      } else {
        gap = true;
        single_seed_steps = true;
      }
    }
    ns.push_back(n);
    data += m + "EOD\n";
    if (band_points > 0) {
      data += b + "EOD\n";
      bands.push_back(band_block + " using 1:2:3 with filledcurves lc rgb '" + colour(i) +
                      "' notitle");
    }
    lines.push_back(mean_block + " using 1:2 with " +
                    (points == 1 ? std::string("points pt 7 ps 1") : std::string("lines lw 2")) +
                    " lc rgb '" + colour(i) + "' title " + quote(arm_title(report, i)));
  }
  p.setup = data + header(p, "step", report.curve_metric + direction(report));
  p.setup += "set key below center horizontal Left reverse samplen 2\n";
  p.setup += "set style fill transparent solid 0.2 noborder\n";
  // Bands first, so every mean line is drawn opaque above all bands.
  std::string plot = "plot ";
  bool first = true;
  for (const auto* group : {&bands, &lines}) {
    for (const std::string& element : *group) {
      plot += (first ? "" : ", ") + element;
      first = false;
    }
  }
  p.plot = plot;
  p.caption = "Mean of " + report.curve_metric +
              " across seeds per arm over training steps, with a " +
              percent(1 - report.options.alpha) + " t-interval band";
  if (single_seed_steps) p.caption += " (none where only one seed logged the step)";
  p.caption += "; " + seeds_phrase(ns) + ".";
  return p;
}

// The number of key/value head groups of an arm: kv_heads (0 = model.heads), mha = model.heads
// (or its kv_heads when model.heads is unknown), mqa = 1; nullopt when its config does not say.
std::optional<int64_t> group_count(const ReportArm& arm) {
  auto get = [&](const char* key) -> std::optional<int64_t> {
    auto it = arm.config.find(key);
    if (it == arm.config.end()) return std::nullopt;
    try {
      size_t used = 0;
      const long long v = std::stoll(it->second, &used);
      if (used != it->second.size()) return std::nullopt;
      return v;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  };
  auto variant = arm.config.find("attention.variant");
  if (variant == arm.config.end()) return std::nullopt;
  const std::optional<int64_t> heads = get("model.heads");
  // An imported sweep may give an mha arm's kv_heads without model.heads.
  if (variant->second == "mha") return heads ? heads : get("attention.kv_heads");
  if (variant->second == "mqa") return 1;
  std::optional<int64_t> kv = get("attention.kv_heads");
  if (kv && *kv == 0) return heads;
  if (kv && *kv < 0) return std::nullopt;
  return kv;
}

std::optional<Plot> metric_vs_groups(const Report& report, std::string* why) {
  struct Point {
    int64_t groups;
    size_t arm;
  };
  // Series: the variant plus any other param that tells arms apart (stage, learning rate, ...),
  // so one line never zigzags between unrelated arms. In order of first appearance.
  std::vector<std::string> series_names;
  std::vector<std::vector<Point>> series;
  std::set<int64_t> counts;
  bool any_variant = false;
  for (size_t i = 0; i < report.arms.size(); ++i) {
    const ReportArm& arm = report.arms[i];
    if (arm.config.count("attention.variant") > 0) any_variant = true;
    const std::optional<int64_t> g = group_count(arm);
    if (!g || !std::isfinite(arm.stats.mean)) continue;
    std::string name = arm.config.at("attention.variant");
    for (const auto& [key, value] : arm.params) {
      if (key == "attention.variant" || key == "attention.kv_heads") continue;
      name += " " + key + "=" + value;
    }
    auto it = std::find(series_names.begin(), series_names.end(), name);
    if (it == series_names.end()) {
      series_names.push_back(name);
      series.emplace_back();
      it = series_names.end() - 1;
    }
    series[it - series_names.begin()].push_back({*g, i});
    counts.insert(*g);
  }
  if (!any_variant) {
    *why = "metric vs groups: the arms have no attention.variant in their config";
    return std::nullopt;
  }
  if (counts.size() < 2) {
    *why = counts.empty()
               ? "metric vs groups: no arm has a group count (attention.kv_heads and "
                 "model.heads) and a value of the metric"
               : "metric vs groups: every arm has the same group count (" +
                     std::to_string(*counts.begin()) + "), so there is nothing to compare";
    return std::nullopt;
  }
  Plot p;
  p.name = "metric_vs_groups";
  p.title = report.options.metric + " vs key/value head groups";
  const double lo = static_cast<double>(*counts.begin());
  const double hi = static_cast<double>(*counts.rbegin());
  const bool log2 = lo >= 1 && hi / lo >= 4;
  std::string data, plot = "plot ";
  std::vector<int64_t> ns;
  const double k_mid = (static_cast<double>(series.size()) - 1) / 2;
  for (size_t k = 0; k < series.size(); ++k) {
    std::vector<Point>& points = series[k];
    std::sort(points.begin(), points.end(),
              [](const Point& a, const Point& b) { return a.groups < b.groups; });
    // Series sit slightly apart sideways so bars at the same group count do not hide each other.
    const double shift = (static_cast<double>(k) - k_mid) * 0.03;
    std::string block = "$groups" + std::to_string(k);
    data += block + " << EOD\n";
    for (const Point& pt : points) {
      const ReportArm& arm = report.arms[pt.arm];
      const double g = static_cast<double>(pt.groups);
      const double x = log2 ? g * std::exp2(shift) : g + shift * (hi - lo) * 0.5;
      const auto [low, high] = bar(arm);
      data += num(x) + " " + num(arm.stats.mean) + " " + num(low) + " " + num(high) + "\n";
      ns.push_back(arm.stats.n);
    }
    data += "EOD\n";
    plot += (k == 0 ? "" : ", ") + block +
            " using 1:2:3:4 with yerrorlines lw 2 pt 7 ps 1.2 lc rgb '" + colour(k) + "' title " +
            quote(series_names[k]);
  }
  p.setup = data + header(p, "key/value head groups", report.options.metric + direction(report));
  p.setup += "set key below center horizontal Left reverse samplen 2\n";
  std::string tics;
  for (const int64_t c : counts) tics += (tics.empty() ? "" : ", ") + std::to_string(c);
  p.setup += "set xtics (" + tics + ")\n";
  if (log2) {
    p.setup += "set logscale x 2\n";
    p.setup += "set xrange [" + num(lo / 1.5) + ":" + num(hi * 1.5) + "]\n";
  } else {
    const double pad = std::max(0.5, (hi - lo) * 0.1);
    p.setup += "set xrange [" + num(lo - pad) + ":" + num(hi + pad) + "]\n";
  }
  p.setup += "set offsets 0, 0, graph 0.05, graph 0.05\n";
  p.plot = plot;
  p.caption = "Mean " + report.options.metric +
              " per arm against the number of key/value head groups (attention.kv_heads; mha = "
              "model.heads, mqa = 1), one line per variant; bars are " +
              percent(1 - report.options.alpha) +
              " t-intervals (none for an arm with one seed); points are shifted slightly sideways "
              "so bars do not overlap; " +
              seeds_phrase(ns) + ".";
  return p;
}

std::optional<Plot> quality_vs_cost(const Report& report, std::string* why) {
  auto usable = [&](double ReportArm::*cost) {
    std::vector<size_t> arms;
    std::set<double> values;
    for (size_t i = 0; i < report.arms.size(); ++i) {
      const ReportArm& arm = report.arms[i];
      if (!std::isfinite(arm.*cost) || !std::isfinite(arm.stats.mean)) continue;
      arms.push_back(i);
      values.insert(arm.*cost);
    }
    return std::make_pair(arms, values.size());
  };
  auto [arms, distinct] = usable(&ReportArm::parameters);
  double ReportArm::*cost = &ReportArm::parameters;
  std::string xlabel = "parameters", what = "parameter count";
  if (distinct < 2) {
    std::tie(arms, distinct) = usable(&ReportArm::throughput);
    cost = &ReportArm::throughput;
    xlabel = "throughput";
    what = "throughput";
    if (arms.size() < 2) {
      *why =
          "quality vs cost: the arms do not differ in parameters and throughput was not "
          "recorded for two or more of them";
      return std::nullopt;
    }
  }
  Plot p;
  p.name = "quality_vs_cost";
  p.title = report.options.metric + " vs " + xlabel;
  std::string data, labels, plot = "plot ";
  std::vector<int64_t> ns;
  double lo = report.arms[arms[0]].*cost, hi = lo;
  for (const size_t i : arms) {
    lo = std::min(lo, report.arms[i].*cost);
    hi = std::max(hi, report.arms[i].*cost);
  }
  for (size_t k = 0; k < arms.size(); ++k) {
    const size_t i = arms[k];
    const ReportArm& arm = report.arms[i];
    const auto [low, high] = bar(arm);
    std::string block = "$cost" + std::to_string(i);
    data += block + " << EOD\n" + num(arm.*cost) + " " + num(arm.stats.mean) + " " + num(low) +
            " " + num(high) + "\nEOD\n";
    labels += "set label " + std::to_string(k + 1) + " " + quote(arm_title(report, i)) +
              " at first " + num(arm.*cost) + ", first " + num(arm.stats.mean) +
              // Labels of the right half point left, so the longest label stays in the figure.
              (arm.*cost > (lo + hi) / 2 ? " right offset -1,0.6" : " left offset 1,0.6") +
              " front noenhanced textcolor rgb '#000000'\n";
    plot += (k == 0 ? "" : ", ") + block +
            " using 1:2:3:4 with yerrorbars lw 2 pt 7 ps 1.4 lc rgb '" + colour(i) + "' notitle";
    ns.push_back(arm.stats.n);
  }
  p.setup = data + header(p, xlabel, report.options.metric + direction(report)) + labels;
  p.setup += "set key off\n";
  p.setup += "set format x '%.2s%c'\n";  // 3.20M, 1.50k
  // Room around the points for their labels.
  p.setup += "set offsets graph 0.1, graph 0.1, graph 0.12, graph 0.08\n";
  p.plot = plot;
  p.caption = "Mean " + report.options.metric + " per arm against its " + what + ", bars are " +
              percent(1 - report.options.alpha) + " t-intervals (none for an arm with one seed); " +
              seeds_phrase(ns) + ".";
  return p;
}

// ---------------------------------------------------------------------------------------------
// Drawing

void draw(const Plot& p, const fs::path& dir, const ScratchDir& scratch,
          const FigureOptions& options, FigureSet& set) {
  const std::string size = std::to_string(options.width) + "," + std::to_string(options.height);
  struct Output {
    std::string ext;
    std::string terminal;
  };
  std::vector<Output> outputs;
  // noenhanced: "50%_{x}" draws as written, not as a subscript.
  if (options.png) {
    outputs.push_back({"png", "set terminal pngcairo size " + size +
                                  " noenhanced font 'sans,10' background rgb '#FFFFFF'"});
  }
  if (options.svg) {
    outputs.push_back({"svg", "set terminal svg size " + size +
                                  " noenhanced font 'sans,11' background rgb '#FFFFFF'"});
  }
  std::string script = p.setup;
  for (const Output& o : outputs) {
    script += o.terminal + "\nset termoption noenhanced\n";
    // Relative to the scratch folder gnuplot runs in, so no path needs quoting.
    script += "set output " + quote(p.name + "." + o.ext) + "\n";
    script += p.plot + "\n";
  }
  script += "unset output\n";  // closes the last file (the SVG's closing tag)
  const fs::path script_path = scratch.file(p.name + ".gp");
  const fs::path log_path = scratch.file(p.name + ".log");
  {
    std::ofstream out(script_path, std::ios::binary);
    out << script;
    if (!out.flush()) throw std::runtime_error("figures: cannot write " + script_path.string());
  }
  // -d: no ~/.gnuplot or system init file, so a user's settings cannot change the figures.
  const RunResult r = run_process({options.gnuplot, "-d", p.name + ".gp"}, log_path.string(),
                                  options.timeout_s, scratch.path().string());
  if (!r.started) {
    throw std::runtime_error("figures: cannot run " + options.gnuplot + " (" +
                             std::strerror(r.spawn_error) +
                             "); install the Debian package gnuplot-nox (scripts/setup does)");
  }
  if (r.timed_out) {
    throw std::runtime_error("figures: gnuplot took longer than " + num(options.timeout_s) +
                             " s drawing " + p.name + " and was stopped");
  }
  if (r.status != 0) {
    throw std::runtime_error("figures: gnuplot failed drawing " + p.name + " (exit status " +
                             std::to_string(r.status) + "): " + read_file(log_path));
  }
  Figure figure;
  figure.name = p.name;
  figure.title = p.title;
  figure.caption = p.caption;
  // Every file first, then the renames: a figure is replaced whole or not at all.
  for (const Output& o : outputs) {
    std::error_code ec;
    const fs::path from = scratch.file(p.name + "." + o.ext);
    if (!fs::exists(from, ec) || fs::file_size(from, ec) == 0) {
      throw std::runtime_error("figures: gnuplot wrote no " + o.ext + " for " + p.name + ": " +
                               read_file(log_path));
    }
  }
  for (const Output& o : outputs) {
    const fs::path to = dir / (p.name + "." + o.ext);
    std::error_code ec;
    fs::rename(scratch.file(p.name + "." + o.ext), to, ec);
    if (ec) {
      throw std::runtime_error("figures: cannot rename to " + to.string() + ": " + ec.message());
    }
    (o.ext == "png" ? figure.png_path : figure.svg_path) = to.string();
  }
  set.figures.push_back(std::move(figure));
}

}  // namespace

FigureSet render_figures(const Report& report, const std::string& dir,
                         const FigureOptions& options) {
  if (options.width < 16 || options.height < 16) {
    throw std::runtime_error("figures: width and height must be at least 16 pixels");
  }
  FigureSet set;
  std::vector<Plot> plots;
  const fs::path out(dir);
  using Maker = std::optional<Plot> (*)(const Report&, std::string*);
  const std::pair<const char*, Maker> makers[] = {{"learning_curves", learning_curves},
                                                  {"metric_vs_groups", metric_vs_groups},
                                                  {"quality_vs_cost", quality_vs_cost}};
  for (const auto& [name, make] : makers) {
    std::string why;
    if (std::optional<Plot> p = make(report, &why)) {
      plots.push_back(std::move(*p));
    } else {
      set.notes.push_back(why);
      // An image of an earlier report would now contradict this one.
      for (const char* ext : {".png", ".svg"}) {
        std::error_code ec;
        fs::remove(out / (name + std::string(ext)), ec);
      }
    }
  }
  if (plots.empty()) return set;
  if (!options.png && !options.svg) {
    set.notes.push_back("figures: neither PNG nor SVG was asked for");
    return set;
  }
  fs::create_directories(out);
  // Inside `out`, so the renames into it are atomic.
  const ScratchDir scratch(out, ".figures");
  for (const Plot& p : plots) draw(p, out, scratch, options, set);
  return set;
}

bool gnuplot_available(const std::string& gnuplot) {
  const RunResult r = run_process({gnuplot, "--version"}, "", 10);
  return r.started && !r.timed_out && r.status == 0;
}

}  // namespace ablate::results
