// The figures of a report (figures.h): each made by its file in figures/, drawn here by gnuplot
// in a child process, into PNG and SVG.
#include "ablate/results/figures.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "ablate/results/files.h"
#include "ablate/results/scratch_dir.h"
#include "figures/figure_parts.h"

extern char** environ;

namespace ablate::results {
using namespace figure_detail;
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
// Drawing

void draw(const Plot& p, const fs::path& dir, const ScratchDir& scratch,
          const FigureOptions& options, FigureSet& set) {
  const int width = p.width > 0 ? p.width : options.width;
  const int height = p.height > 0 ? p.height : options.height;
  const std::string size = std::to_string(width) + "," + std::to_string(height);
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
  write_file(script_path, script);
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
  using Maker = std::optional<Plot> (*)(const Report&, const FigureOptions&, std::string*,
                                        std::vector<std::string>*);
  const std::pair<const char*, Maker> makers[] = {{"learning_curves", learning_curves},
                                                  {"metric_vs_groups", metric_vs_groups},
                                                  {"quality_vs_cost", quality_vs_cost}};
  for (const auto& [name, make] : makers) {
    std::string why;
    if (std::optional<Plot> p = make(report, options, &why, &set.notes)) {
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

SeriesStyle series_style(size_t k) {
  // Filled circle, square, triangle up, triangle down, diamond, pentagon; an open circle.
  static constexpr std::array<int, 7> kPoints = {7, 5, 9, 11, 13, 15, 6};
  const size_t colours = kFigurePalette.size();
  SeriesStyle style;
  style.rgb = kFigurePalette[k % colours];
  style.dash_type = static_cast<int>((k / colours) % 5) + 1;
  style.point_type = kPoints[k % kPoints.size()];
  return style;
}

CostAxis parse_cost_axis(const std::string& name) {
  if (name == "auto") return CostAxis::kAuto;
  if (name == "parameters") return CostAxis::kParameters;
  if (name == "throughput") return CostAxis::kThroughput;
  if (name == "kv-cache" || name == "kv_cache") return CostAxis::kKvCache;
  throw ReportError("unknown cost '" + name + "': choose auto, parameters, throughput or kv-cache");
}

std::string to_string(CostAxis cost) {
  switch (cost) {
    case CostAxis::kAuto:
      return "auto";
    case CostAxis::kParameters:
      return "parameters";
    case CostAxis::kThroughput:
      return "throughput";
    case CostAxis::kKvCache:
      return "kv-cache";
  }
  return "auto";
}

std::optional<int64_t> key_value_heads(const std::map<std::string, std::string>& config) {
  const auto variant = config.find("attention.variant");
  if (variant == config.end()) return std::nullopt;
  const std::optional<int64_t> heads = config_int(config, "model.heads");
  const std::string& v = variant->second;
  std::optional<int64_t> kv;
  if (v == "mha" || v == "mkva" || v == "gkva") {
    kv = heads;  // every head has its own key and value (gkva shares queries only)
  } else if (v == "mqa") {
    kv = 1;
  } else if (v == "gqa" || v == "kdgqa" || v == "dgqa" || v == "pgqa" || v == "wgqa") {
    kv = config_int(config, "attention.kv_heads");
    if (kv && *kv == 0) kv = heads;
  } else if (v == "gqkva") {
    kv = config_int(config, "attention.kv_groups");
  }
  if (!kv || *kv <= 0) return std::nullopt;
  return kv;
}

double kv_cache_bytes_per_token(const std::map<std::string, std::string>& config) {
  constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();
  // model.depth is ablate's key; model.layers an imported table's.
  std::optional<int64_t> layers = config_int(config, "model.layers");
  if (!layers) layers = config_int(config, "model.depth");
  const std::optional<int64_t> dim = config_int(config, "model.dim");
  const std::optional<int64_t> heads = config_int(config, "model.heads");
  if (!layers || !dim || !heads || *layers <= 0 || *dim <= 0 || *heads <= 0) return kUnknown;
  const std::optional<int64_t> kv = key_value_heads(config);
  if (!kv) return kUnknown;
  auto precision = config.find("train.precision");
  const bool half =
      precision != config.end() && (precision->second == "bf16" || precision->second == "fp16");
  const double head_dim = static_cast<double>(*dim) / static_cast<double>(*heads);
  return 2.0 * static_cast<double>(*layers) * static_cast<double>(*kv) * head_dim *
         (half ? 2.0 : 4.0);
}

bool gnuplot_available(const std::string& gnuplot) {
  const RunResult r = run_process({gnuplot, "--version"}, "", 10);
  return r.started && !r.timed_out && r.status == 0;
}

}  // namespace ablate::results
