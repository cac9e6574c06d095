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
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "ablate/results/files.h"
#include "ablate/results/scratch_dir.h"
#include "report/report_parts.h"

extern char** environ;

namespace ablate::results {
namespace {
namespace fs = std::filesystem;

constexpr double kInf = std::numeric_limits<double>::infinity();

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

// An axis number as a reader writes it: a whole number below 100,000 in full (512, 1536 bytes),
// others to `digits` significant digits with k, M or G and no trailing zeros (175k, 3.2M).
std::string axis_number(double v, int digits) {
  char buf[64];
  if (std::abs(v) < 1e5 && v == std::round(v)) {
    const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(v));
    return std::string(buf, r.ptr);
  }
  const double a = std::abs(v);
  const char* suffix = "";
  double scale = 1;
  if (a >= 1e9 && a < 1e12) {
    suffix = "G", scale = 1e9;
  } else if (a >= 1e6 && a < 1e9) {
    suffix = "M", scale = 1e6;
  } else if (a >= 1e3 && a < 1e6) {
    suffix = "k", scale = 1e3;
  }
  const auto r =
      std::to_chars(buf, buf + sizeof buf, v / scale, std::chars_format::general, digits);
  return std::string(buf, r.ptr) + suffix;
}

// gnuplot's tic list `("175k" 175000, "180k" 180000)`: each value named by axis_number, with as
// many digits as keep neighbouring tics apart.
std::string tic_list(const std::vector<double>& tics) {
  std::vector<std::string> names;
  for (int digits = 3; digits <= 12; ++digits) {
    names.clear();
    for (const double t : tics) names.push_back(axis_number(t, digits));
    if (std::set<std::string>(names.begin(), names.end()).size() == names.size()) break;
  }
  std::string out;
  for (size_t i = 0; i < tics.size(); ++i) {
    out += (out.empty() ? "(" : ", ") + quote(names[i]) + " " + num(tics[i]);
  }
  return out + ")";
}

// Round tic values inside [lo, hi]: a step of 1, 2 or 5 times a power of ten, about 6 tics.
std::vector<double> round_tics(double lo, double hi) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / 6;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double n = raw / magnitude;
  const double step = (n < 1.5 ? 1 : n < 3.5 ? 2 : n < 7.5 ? 5 : 10) * magnitude;
  std::vector<double> tics;
  for (double k = std::ceil(lo / step); k * step <= hi + step * 1e-9; ++k) tics.push_back(k * step);
  return tics;
}

std::string rgb_text(uint32_t rgb) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%06X", static_cast<unsigned>(rgb));
  return buf;
}

std::string colour(size_t series) { return rgb_text(series_style(series).rgb); }

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

// The arm's label as written ("arm 3" when it has none), without the baseline mark.
std::string arm_label(const Report& report, size_t i) {
  const ReportArm& arm = report.arms[i];
  return !arm.label.empty()     ? arm.label
         : !arm.arm_key.empty() ? arm.arm_key
                                : "arm " + std::to_string(i + 1);
}

// A legend entry or point label: `label` (the arm's, maybe shortened) and the baseline mark.
std::string arm_title(const Report& report, size_t i, const std::string& label) {
  return i == report.baseline ? label + " (baseline)" : label;
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

// An integer config value; nullopt when the key is missing or its value is not an integer.
std::optional<int64_t> config_int(const std::map<std::string, std::string>& config,
                                  const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  int64_t v = 0;
  const char* end = it->second.data() + it->second.size();
  const auto r = std::from_chars(it->second.data(), end, v);
  if (r.ec != std::errc() || r.ptr != end) return std::nullopt;
  return v;
}

// ---------------------------------------------------------------------------------------------
// Text and legend sizes

// Layouts use gnuplot's own estimate of text: pngcairo at 'sans,10' counts 8 px a character and
// 15.5 px a line, svg at 'sans,11' 7.7 and 16.5; these are a little more than the larger.
constexpr double kCharWidth = 8;
constexpr double kLineHeight = 17;
// gnuplot's legend column: the sample (samplen 2), the gaps around it and the title.
double key_column_width(size_t chars) { return (static_cast<double>(chars) + 9) * kCharWidth; }

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

// The byte offset where code point `n` of s starts (s.size() past the end).
size_t utf8_offset(const std::string& s, size_t n) {
  size_t seen = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;
    if (seen++ == n) return i;
  }
  return s.size();
}

// s in at most `max_chars` characters: its start and end around an ellipsis.
std::string ellipsize(const std::string& s, size_t max_chars) {
  const size_t n = utf8_length(s);
  if (n <= max_chars || max_chars < 5) return s;
  const size_t head = max_chars / 2, tail = max_chars - 1 - head;
  return s.substr(0, utf8_offset(s, head)) + "\u2026" + s.substr(utf8_offset(s, n - tail));
}

size_t longest(const std::vector<std::string>& texts) {
  size_t n = 0;
  for (const std::string& t : texts) n = std::max(n, utf8_length(t));
  return n;
}

std::vector<std::string> words_of(const std::string& label) {
  std::vector<std::string> words;
  for (size_t start = 0; start <= label.size();) {
    const size_t end = std::min(label.find(' ', start), label.size());
    words.push_back(label.substr(start, end - start));
    start = end + 1;
  }
  return words;
}

// `label` in at most `max_chars` characters by leaving out whole words (key=value tokens), each
// run of them shown as one ellipsis: first the words most labels have (`labels_with`: how many
// labels have each word), which tell least apart, the later of equals first ("… variant=wgqa …
// weight_form=row weight_init=random …"). A cut inside a word ("weight…lar") would leave a
// reader guessing which value it was. A label whose words cannot fit: ellipsize.
std::string leave_out_words(const std::string& label, size_t max_chars,
                            const std::map<std::string, size_t>& labels_with) {
  if (utf8_length(label) <= max_chars) return label;
  const std::vector<std::string> words = words_of(label);
  std::vector<size_t> order(words.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const size_t na = labels_with.at(words[a]), nb = labels_with.at(words[b]);
    return na != nb ? na > nb : a > b;
  });
  std::vector<bool> out(words.size(), false);
  for (const size_t drop : order) {
    out[drop] = true;
    std::string text;
    bool kept_any = false;
    for (size_t i = 0; i < words.size(); ++i) {
      if (out[i] && i > 0 && out[i - 1]) continue;  // one ellipsis for a run
      text += (text.empty() ? "" : " ") + (out[i] ? std::string("\u2026") : words[i]);
      kept_any = kept_any || !out[i];
    }
    if (!kept_any) break;
    if (utf8_length(text) <= max_chars) return text;
  }
  return ellipsize(label, max_chars);
}

// The labels shortened to `max_chars` where that keeps them apart, else to as few more
// characters as do (labels that were the same stay the same).
std::vector<std::string> shorten(const std::vector<std::string>& labels, size_t max_chars) {
  const size_t most = longest(labels);
  std::map<std::string, size_t> labels_with;
  for (const std::string& l : labels) {
    const auto words = words_of(l);
    for (const std::string& w : std::set<std::string>(words.begin(), words.end())) {
      ++labels_with[w];
    }
  }
  for (size_t limit = max_chars; limit < most; limit += 2) {
    std::vector<std::string> out;
    for (const std::string& l : labels) out.push_back(leave_out_words(l, limit, labels_with));
    bool apart = true;
    for (size_t i = 0; i < out.size() && apart; ++i) {
      for (size_t j = i + 1; j < out.size() && apart; ++j) {
        apart = out[i] != out[j] || labels[i] == labels[j];
      }
    }
    if (apart) return out;
  }
  return labels;
}

// The characters a legend entry may have in a plot `width` pixels wide.
size_t label_chars(double width) {
  const double fit = std::floor((width - 120) / kCharWidth) - 9;
  return static_cast<size_t>(std::clamp(fit, 16.0, 48.0));
}

// Rows of a legend of `entries` titles of up to `chars` characters in `width` pixels.
int key_rows(size_t entries, size_t chars, double width) {
  if (entries == 0) return 0;
  const double columns =
      std::clamp(std::floor(width / key_column_width(chars)), 1.0, static_cast<double>(entries));
  return static_cast<int>(std::ceil(static_cast<double>(entries) / columns));
}

// The canvas of a one-plot figure with a legend of `titles` below it: as asked, wider (up to 1.5
// times) while the legend would be a tall single column, and taller by every legend row beyond
// the 4 that the asked size leaves room for (and one of slack), so the plot keeps its size. Wider
// still, up to kMaxCanvasWidth, when the legend would make it taller than kMaxCanvasHeight;
// taller than that only when hundreds of entries need it (a legend is never cut).
std::pair<int, int> one_plot_canvas(const FigureOptions& options,
                                    const std::vector<std::string>& titles) {
  constexpr double kAxes = 120;  // tic labels and the y label beside the plot
  const size_t chars = longest(titles);
  auto rows = [&](double width) { return key_rows(titles.size(), chars, width - kAxes); };
  auto height = [&](int r) { return options.height + (r > 4 ? r - 3 : 0) * kLineHeight; };
  double width = std::max<double>(options.width, std::ceil(key_column_width(chars) + kAxes));
  const double wider = std::max(width, std::min<double>(kMaxCanvasWidth, options.width * 1.5));
  while (rows(width) > 8 && width + 40 <= wider) width += 40;
  while (height(rows(width)) > kMaxCanvasHeight && width + 40 <= kMaxCanvasWidth) width += 40;
  return {static_cast<int>(width), static_cast<int>(std::ceil(height(rows(width))))};
}

// ---------------------------------------------------------------------------------------------
// Plots and panels

// One figure: its data blocks and settings, then the commands that draw it once per format.
struct Plot {
  std::string name;
  std::string title;
  std::string caption;
  std::string setup;  // data blocks and `set` commands
  std::string plot;   // the `plot ...` command, or a whole multiplot
  int width = 0;      // the canvas in pixels (0: FigureOptions')
  int height = 0;
};

std::string header(const std::string& title, const std::string& xlabel, const std::string& ylabel) {
  std::string s;
  s += "set encoding utf8\n";
  // Room right of the plot for half the last x tic label, which gnuplot's own margin can cut.
  s += "set rmargin 5\n";
  s += "set title " + quote(title) + "\n";
  s += "set xlabel " + quote(xlabel) + "\n";
  s += "set ylabel " + quote(ylabel) + "\n";
  s += "set grid lt 1 lw 1 lc rgb '#DDDDDD'\n";
  s += "set border lc rgb '#000000'\n";
  return s;
}

// The legend below one plot. `height 1` adds a line of room above its entries: without it gnuplot
// puts the x axis label on the legend's first row.
constexpr char kKeyBelow[] = "set key below center horizontal Left reverse samplen 2 height 1\n";

// One panel of a grid: its title and plot elements (bands first, so lines draw above them).
struct Panel {
  std::string title;
  std::vector<std::string> elements;
  std::vector<std::string> keys;  // the titles of its elements, for the legend's size
};

std::string join_plot(const std::vector<std::string>& elements) {
  std::string plot = "plot ";
  for (size_t i = 0; i < elements.size(); ++i) plot += (i == 0 ? "" : ", ") + elements[i];
  return plot;
}

// Draws `panels` as a grid (gnuplot multiplot) under `title`, each panel with its legend below
// it, every position computed here so panels line up and nothing is cut: fills p.plot, p.width
// and p.height. The settings every panel shares (axes, ranges) are already in p.setup.
void grid(Plot& p, const std::vector<Panel>& panels, const std::string& title,
          const FigureOptions& options) {
  const size_t n = panels.size();
  const size_t columns = n <= 3 ? n
                         : n == 4
                             ? 2
                             : std::min<size_t>(4, static_cast<size_t>(std::ceil(std::sqrt(n))));
  const size_t rows = (n + columns - 1) / columns;
  size_t entries = 0, chars = 0, title_chars = 0;
  for (const Panel& panel : panels) {
    entries = std::max(entries, panel.keys.size());
    chars = std::max(chars, longest(panel.keys));
    title_chars = std::max(title_chars, utf8_length(panel.title));
  }
  // Pixels. A cell: the panel's title, its plot, the tic labels and x label, its legend.
  constexpr double kTitle = 40, kPanelTitle = 34, kBelowPlot = 48, kLeft = 96, kRight = 24;
  // The cell (column + 40) holds the legend's column and the panel's title, which is centred
  // over the plot, (kLeft - kRight) / 2 = 36 px right of the cell's centre: title + 80 px.
  const double column =
      std::max(key_column_width(chars), static_cast<double>(title_chars) * kCharWidth + 40);
  double cell_width = std::max({380.0, options.width / 2.0, column + 40});
  cell_width =
      std::max(std::min(cell_width, kMaxCanvasWidth / static_cast<double>(columns)), column + 40);
  const int legend_rows = key_rows(entries, chars, cell_width - 40);
  const double legend = legend_rows * kLineHeight + 18;
  double plot_height = std::max(180.0, options.height / 2.0);
  auto canvas_height = [&] {
    return kTitle + static_cast<double>(rows) * (kPanelTitle + plot_height + kBelowPlot + legend);
  };
  // Too tall: smaller plots (never smaller legends), down to 100 pixels.
  if (canvas_height() > kMaxCanvasHeight) {
    const double room =
        (kMaxCanvasHeight - kTitle) / static_cast<double>(rows) - kPanelTitle - kBelowPlot - legend;
    plot_height = std::max(100.0, std::min(plot_height, room));
  }
  const double width = std::ceil(static_cast<double>(columns) * cell_width);
  const double height = std::ceil(canvas_height());
  const double cell_height = kPanelTitle + plot_height + kBelowPlot + legend;
  auto x = [&](double px) { return num(px / width); };
  auto y = [&](double px) { return num(1 - px / height); };
  std::string s = "set multiplot title " + quote(title) + "\n";
  for (size_t i = 0; i < n; ++i) {
    const double x0 = static_cast<double>(i % columns) * cell_width;
    const double y0 = kTitle + static_cast<double>(i / columns) * cell_height;
    const double plot_top = y0 + kPanelTitle, plot_bottom = plot_top + plot_height;
    s += "set title " + quote(panels[i].title) + "\n";
    s += "set lmargin at screen " + x(x0 + kLeft) + "\n";
    s += "set rmargin at screen " + x(x0 + cell_width - kRight) + "\n";
    s += "set tmargin at screen " + y(plot_top) + "\n";
    s += "set bmargin at screen " + y(plot_bottom) + "\n";
    s += "set key at screen " + x(x0 + 20) + ", " + y(plot_bottom + kBelowPlot) +
         " left top vertical maxrows " + std::to_string(std::max(1, legend_rows)) +
         " Left reverse samplen 2\n";
    s += join_plot(panels[i].elements) + "\n";
  }
  s += "unset multiplot";
  p.plot = s;
  p.width = static_cast<int>(width);
  p.height = static_cast<int>(height);
}

// The short name of a config key: "attention.kv_heads" -> "kv_heads".
std::string short_key(const std::string& key) {
  const size_t dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

// `label` without the token "KEY=VALUE" (KEY any dotted suffix of `key`, as labels shorten
// keys), unless nothing else is left.
std::string without_token(const std::string& label, const std::string& key,
                          const std::string& value) {
  std::vector<std::string> names = {key};
  for (size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1)) {
    names.push_back(key.substr(dot + 1));
  }
  std::istringstream in(label);
  std::string token, out;
  bool dropped = false;
  while (in >> token) {
    bool match = false;
    for (const std::string& name : names) match = match || token == name + "=" + value;
    if (match && !dropped) {
      dropped = true;
      continue;
    }
    out += (out.empty() ? "" : " ") + token;
  }
  return dropped && !out.empty() ? out : label;
}

// A panel's legend labels without the "KEY=VALUE" tokens that all of them share, and its title
// with those tokens added (said once instead of on every line): shorter entries that the
// ellipsis need not cut, with what tells the panel's lines apart left in them. Labels of fewer
// than two arms, of staged arms named by their parents (" <- "), that would be left empty, or
// whose title would grow past kMaxPanelTitle characters stay as they are.
struct PanelText {
  std::string title;
  std::vector<std::string> labels;
};

constexpr size_t kMaxPanelTitle = 64;  // 8 px a character: fits a quarter of kMaxCanvasWidth

PanelText move_shared_tokens(const std::string& title, const std::vector<std::string>& labels) {
  const PanelText unchanged{title, labels};
  if (labels.size() < 2) return unchanged;
  std::vector<std::vector<std::string>> tokens;
  for (const std::string& l : labels) {
    if (l.find(" <- ") != std::string::npos) return unchanged;
    std::istringstream in(l);
    tokens.emplace_back(std::istream_iterator<std::string>(in),
                        std::istream_iterator<std::string>());
  }
  std::vector<std::string> shared;
  for (const std::string& t : tokens.front()) {
    const bool everywhere = std::all_of(tokens.begin(), tokens.end(), [&](const auto& ts) {
      return std::find(ts.begin(), ts.end(), t) != ts.end();
    });
    if (everywhere && t.find('=') != std::string::npos) shared.push_back(t);
  }
  if (shared.empty()) return unchanged;
  PanelText out{title, {}};
  for (const std::string& t : shared) out.title += " " + t;
  if (utf8_length(out.title) > kMaxPanelTitle) return unchanged;
  for (const auto& ts : tokens) {
    std::string label;
    for (const std::string& t : ts) {
      if (std::find(shared.begin(), shared.end(), t) == shared.end()) {
        label += (label.empty() ? "" : " ") + t;
      }
    }
    if (label.empty()) return unchanged;
    out.labels.push_back(label);
  }
  return out;
}

// The arms of one panel and what its title says.
struct PanelGroup {
  std::string key;    // the config key the panels split by ("" for the one panel)
  std::string value;  // the panel's value of it ("" when its arms do not have the key)
  std::vector<size_t> arms;
};

// Splits `arms` into panels by `options.panel_key` (or by variant, see figures.h). A key no arm
// has gives one panel and a note.
std::vector<PanelGroup> panel_groups(const Report& report, const std::vector<size_t>& arms,
                                     const FigureOptions& options,
                                     std::vector<std::string>* notes) {
  std::string key = options.panel_key;
  if (key.empty()) {
    std::set<std::string> variants;
    for (const size_t i : arms) {
      auto it = report.arms[i].config.find("attention.variant");
      if (it != report.arms[i].config.end()) variants.insert(it->second);
    }
    if (arms.size() <= kMaxArmsPerPanel || variants.size() < 2) return {{"", "", arms}};
    key = "attention.variant";
  } else if (key != "stage") {
    // A config key, or the one config key that ends with ".KEY".
    bool exact = false;
    std::set<std::string> found;
    const std::string tail = "." + key;
    for (const ReportArm& arm : report.arms) {
      for (const auto& [k, v] : arm.config) {
        exact = exact || k == key;
        if (k.size() > tail.size() && k.compare(k.size() - tail.size(), tail.size(), tail) == 0) {
          found.insert(k);
        }
      }
    }
    if (!exact && found.size() != 1) {
      std::string known;
      for (const std::string& k : found) known += (known.empty() ? "" : ", ") + k;
      notes->push_back("learning curves: " +
                       (found.empty() ? "no arm has the config key " + key
                                      : "the panel key " + key + " is ambiguous (" + known + ")") +
                       "; drawn as one plot");
      return {{"", "", arms}};
    }
    if (!exact) key = *found.begin();
  }
  std::vector<PanelGroup> groups;
  for (const size_t i : arms) {
    const ReportArm& arm = report.arms[i];
    std::string value;
    if (key == "stage") {
      value = arm.stage;
    } else if (auto it = arm.config.find(key); it != arm.config.end()) {
      value = it->second;
    }
    auto g = std::find_if(groups.begin(), groups.end(),
                          [&](const PanelGroup& p) { return p.value == value; });
    if (g == groups.end()) {
      groups.push_back({key, value, {}});
      g = groups.end() - 1;
    }
    g->arms.push_back(i);
  }
  // Numbers in ascending order, arms without the key last; other values as they first appear.
  auto number = [](const std::string& v, double* out) {
    const auto r = std::from_chars(v.data(), v.data() + v.size(), *out);
    return !v.empty() && r.ec == std::errc() && r.ptr == v.data() + v.size();
  };
  bool numeric = true;
  for (const PanelGroup& g : groups) {
    double v = 0;
    numeric = numeric && (g.value.empty() || number(g.value, &v));
  }
  if (numeric) {
    std::stable_sort(groups.begin(), groups.end(), [&](const PanelGroup& a, const PanelGroup& b) {
      double va = 0, vb = 0;
      if (a.value.empty() || b.value.empty()) return !a.value.empty() && b.value.empty();
      number(a.value, &va);
      number(b.value, &vb);
      return va < vb;
    });
  }
  return groups;
}

std::string panel_title(const PanelGroup& g) {
  return g.value.empty() && g.key != "stage" ? short_key(g.key) + " not set"
                                             : short_key(g.key) + "=" + g.value;
}

// Lower and upper ends of values that all panels share, a little wider than the data.
std::pair<double, double> padded(double lo, double hi) {
  if (!(lo <= hi)) return {0, 1};
  const double pad = hi > lo ? (hi - lo) * 0.05 : std::max(std::abs(lo) * 0.05, 0.5);
  return {lo - pad, hi + pad};
}

// ---------------------------------------------------------------------------------------------
// The three figures

std::optional<Plot> learning_curves(const Report& report, const FigureOptions& options,
                                    std::string* why, std::vector<std::string>* notes) {
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
  const std::vector<PanelGroup> groups = panel_groups(report, drawn, options, notes);
  const bool panels = groups.size() > 1;
  std::vector<int64_t> ns;
  bool single_seed_steps = false;
  std::string data;
  std::map<size_t, std::string> band_of, line_of;  // arm -> its plot elements, without title
  std::map<size_t, std::string> subset_of;         // arm -> its subset points' circles
  double y_lo = kInf, y_hi = -kInf;
  int64_t x_lo = 0, x_hi = 0;
  bool any_x = false;
  for (const size_t i : drawn) {
    std::string mean_block = "$mean" + std::to_string(i);
    std::string band_block = "$band" + std::to_string(i);
    std::string subset_block = "$subset" + std::to_string(i);
    std::string m = mean_block + " << EOD\n", b = band_block + " << EOD\n";
    std::string sub = subset_block + " << EOD\n";
    int64_t n = 0, points = 0, band_points = 0, subset_points = 0;
    bool gap = false;
    for (const CurvePoint& c : report.arms[i].curve) {
      if (!std::isfinite(c.mean)) continue;
      n = std::max(n, c.n);
      ++points;
      m += std::to_string(c.step) + " " + num(c.mean) + "\n";
      if (c.subset > 0) {
        ++subset_points;
        sub += std::to_string(c.step) + " " + num(c.mean) + "\n";
      }
      y_lo = std::min(y_lo, c.mean);
      y_hi = std::max(y_hi, c.mean);
      x_lo = any_x ? std::min(x_lo, c.step) : c.step;
      x_hi = any_x ? std::max(x_hi, c.step) : c.step;
      any_x = true;
      if (std::isfinite(c.low) && std::isfinite(c.high)) {
        // A blank line splits the band, so a one-seed step leaves a gap instead of a wedge.
        if (gap && band_points > 0) b += "\n";
        gap = false;
        ++band_points;
        b += std::to_string(c.step) + " " + num(c.low) + " " + num(c.high) + "\n";
        y_lo = std::min(y_lo, c.low);
        y_hi = std::max(y_hi, c.high);
      } else {
        gap = true;
        single_seed_steps = true;
      }
    }
    ns.push_back(n);
    data += m + "EOD\n";
    const SeriesStyle style = series_style(i);
    if (band_points > 0) {
      data += b + "EOD\n";
      band_of[i] = band_block + " using 1:2:3 with filledcurves lc rgb '" + colour(i) + "' notitle";
    }
    if (subset_points > 0) {
      // A circle around each point evaluated on a subset (train.eval_subset), in the arm's colour.
      data += sub + "EOD\n";
      subset_of[i] =
          subset_block + " using 1:2 with points pt 6 ps 1.6 lc rgb '" + colour(i) + "' notitle";
    }
    // About seven markers a line: they tell apart lines of one colour and show through dashes.
    const int64_t every = std::max<int64_t>(1, points / 7);
    line_of[i] = mean_block + " using 1:2 with " +
                 (points == 1 ? "points pt " + std::to_string(style.point_type) + " ps 1"
                              : "linespoints lw 2 dt " + std::to_string(style.dash_type) + " pt " +
                                    std::to_string(style.point_type) + " ps 0.8 pi " +
                                    std::to_string(every)) +
                 " lc rgb '" + colour(i) + "'";
  }
  const std::string ylabel = report.curve_metric + direction(report);
  // The legend's entry for the circles: what a subset point is.
  const std::string subset = subset_phrase(report);
  const std::string subset_key = "circled: " + subset + " only (train.eval_subset)";
  const std::string subset_entry =
      "keyentry with points pt 6 ps 1.6 lc rgb '#000000' title " + quote(subset_key);
  if (!panels) {
    const double width = options.width;
    std::vector<std::string> labels;
    for (const size_t i : drawn) labels.push_back(arm_label(report, i));
    labels = shorten(labels, label_chars(width));
    std::vector<std::string> bands, lines, titles;
    for (size_t k = 0; k < drawn.size(); ++k) {
      const size_t i = drawn[k];
      if (band_of.count(i) > 0) bands.push_back(band_of[i]);
      titles.push_back(arm_title(report, i, labels[k]));
      lines.push_back(line_of[i] + " title " + quote(titles.back()));
      if (subset_of.count(i) > 0) lines.push_back(subset_of[i]);
    }
    if (!subset.empty()) {
      titles.push_back(subset_key);
      lines.push_back(subset_entry);
    }
    std::tie(p.width, p.height) = one_plot_canvas(options, titles);
    p.setup = data + header(p.title, "step", ylabel);
    p.setup += kKeyBelow;
    p.setup += "set style fill transparent solid 0.2 noborder\n";
    // Bands first, so every mean line is drawn opaque above all bands.
    bands.insert(bands.end(), lines.begin(), lines.end());
    p.plot = join_plot(bands);
  } else {
    std::vector<Panel> cells;
    for (const PanelGroup& g : groups) {
      Panel cell;
      std::vector<std::string> labels;
      for (const size_t i : g.arms)
        labels.push_back(without_token(arm_label(report, i), g.key, g.value));
      PanelText text = move_shared_tokens(panel_title(g), labels);
      cell.title = text.title;
      labels = shorten(text.labels, 40);
      std::vector<std::string> lines;
      for (size_t k = 0; k < g.arms.size(); ++k) {
        const size_t i = g.arms[k];
        if (band_of.count(i) > 0) cell.elements.push_back(band_of[i]);
        cell.keys.push_back(arm_title(report, i, labels[k]));
        lines.push_back(line_of[i] + " title " + quote(cell.keys.back()));
        if (subset_of.count(i) > 0) lines.push_back(subset_of[i]);
      }
      if (!subset.empty()) {
        cell.keys.push_back(subset_key);
        lines.push_back(subset_entry);
      }
      cell.elements.insert(cell.elements.end(), lines.begin(), lines.end());
      cells.push_back(std::move(cell));
    }
    // The same axes in every panel, so panels compare.
    const auto [lo, hi] = padded(y_lo, y_hi);
    const auto [xl, xh] =
        x_lo < x_hi
            ? std::pair<double, double>(static_cast<double>(x_lo), static_cast<double>(x_hi))
            : padded(static_cast<double>(x_lo), static_cast<double>(x_hi));
    p.setup = data + header(p.title, "step", report.curve_metric);
    p.setup += "set style fill transparent solid 0.2 noborder\n";
    p.setup += "set xrange [" + num(xl) + ":" + num(xh) + "]\n";
    p.setup += "set yrange [" + num(lo) + ":" + num(hi) + "]\n";
    grid(p, cells, p.title + direction(report), options);
  }
  p.caption = "Mean of " + report.curve_metric +
              " across seeds per arm over training steps, with a " +
              percent(1 - report.options.alpha) + " t-interval band";
  if (single_seed_steps) p.caption += " (none where only one seed logged the step)";
  if (panels) {
    p.caption += "; one panel per value of " + groups.front().key + ", all on the same axes";
  }
  p.caption += "; " + seeds_phrase(ns) + ".";
  if (!subset.empty()) {
    p.caption += " Circled points are intermediate evaluations of only " + subset +
                 " (train.eval_subset); the others, and each run's last point, are of the whole "
                 "held-out set.";
  }
  return p;
}

// The number of key/value head groups of an arm (key_value_heads); an imported mha arm may give
// its kv_heads without model.heads.
std::optional<int64_t> group_count(const ReportArm& arm) {
  const auto variant = arm.config.find("attention.variant");
  if (variant != arm.config.end() && variant->second == "mha" &&
      !config_int(arm.config, "model.heads")) {
    return config_int(arm.config, "attention.kv_heads");
  }
  return key_value_heads(arm.config);
}

std::optional<Plot> metric_vs_groups(const Report& report, const FigureOptions& options,
                                     std::string* why, std::vector<std::string>* /*notes*/) {
  struct Point {
    int64_t groups;
    size_t arm;
  };
  // Series: the variant plus any other param that tells arms apart (stage, learning rate, ...),
  // so one line never zigzags between unrelated arms. In order of first appearance.
  std::vector<std::string> series_names, series_variant;
  std::vector<std::vector<Point>> series;
  std::set<int64_t> counts;
  bool any_variant = false;
  for (size_t i = 0; i < report.arms.size(); ++i) {
    const ReportArm& arm = report.arms[i];
    if (arm.config.count("attention.variant") > 0) any_variant = true;
    const std::optional<int64_t> g = group_count(arm);
    if (!g || !std::isfinite(arm.stats.mean)) continue;
    // Keys as the arm labels name them ("qk_norm=true"), so the legend fits the same text.
    std::vector<std::string> keys;
    for (const auto& [key, value] : arm.params) keys.push_back(key);
    std::string name = arm.config.at("attention.variant");
    for (const auto& [key, value] : arm.params) {
      if (key == "attention.variant" || key == "attention.kv_heads") continue;
      name += " " + detail::short_key(key, keys) + "=" + value;
    }
    auto it = std::find(series_names.begin(), series_names.end(), name);
    if (it == series_names.end()) {
      series_names.push_back(name);
      series_variant.push_back(arm.config.at("attention.variant"));
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
  // More series than colours: one panel per variant (when that splits them).
  std::vector<std::string> variants;
  for (const std::string& v : series_variant) {
    if (std::find(variants.begin(), variants.end(), v) == variants.end()) variants.push_back(v);
  }
  const bool panels = series.size() > kFigurePalette.size() && variants.size() > 1;
  Plot p;
  p.name = "metric_vs_groups";
  p.title = report.options.metric + " vs key/value head groups";
  const double lo = static_cast<double>(*counts.begin());
  const double hi = static_cast<double>(*counts.rbegin());
  const bool log2 = lo >= 1 && hi / lo >= 4;
  std::string data;
  std::vector<std::string> elements(series.size()), names = series_names;
  std::vector<int64_t> ns;
  double y_lo = kInf, y_hi = -kInf;
  const double k_mid = (static_cast<double>(series.size()) - 1) / 2;
  for (size_t k = 0; k < series.size(); ++k) {
    std::vector<Point>& points = series[k];
    std::sort(points.begin(), points.end(),
              [](const Point& a, const Point& b) { return a.groups < b.groups; });
    // Series sit slightly apart sideways so bars at the same group count do not hide each other.
    const double shift = (static_cast<double>(k) - k_mid) *
                         std::min(0.03, 0.36 / static_cast<double>(series.size()));
    std::string block = "$groups" + std::to_string(k);
    data += block + " << EOD\n";
    for (const Point& pt : points) {
      const ReportArm& arm = report.arms[pt.arm];
      const double g = static_cast<double>(pt.groups);
      const double x = log2 ? g * std::exp2(shift) : g + shift * (hi - lo) * 0.5;
      const auto [low, high] = bar(arm);
      data += num(x) + " " + num(arm.stats.mean) + " " + num(low) + " " + num(high) + "\n";
      y_lo = std::min({y_lo, low, arm.stats.mean});
      y_hi = std::max({y_hi, high, arm.stats.mean});
      ns.push_back(arm.stats.n);
    }
    data += "EOD\n";
    const SeriesStyle style = series_style(k);
    elements[k] = block + " using 1:2:3:4 with yerrorlines lw 2 dt " +
                  std::to_string(style.dash_type) + " pt " + std::to_string(style.point_type) +
                  " ps 1.2 lc rgb '" + colour(k) + "' title ";
    if (panels) names[k] = without_token("variant=" + names[k], "variant", series_variant[k]);
  }
  p.setup =
      data + header(p.title, "key/value head groups", report.options.metric + direction(report));
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
  if (!panels) {
    const double width = options.width;
    names = shorten(names, label_chars(width));
    for (size_t k = 0; k < series.size(); ++k) elements[k] += quote(names[k]);
    std::tie(p.width, p.height) = one_plot_canvas(options, names);
    p.setup += kKeyBelow;
    p.setup += "set offsets 0, 0, graph 0.05, graph 0.05\n";
    p.plot = join_plot(elements);
  } else {
    std::vector<Panel> cells;
    for (const std::string& v : variants) {
      Panel cell;
      std::vector<size_t> members;
      std::vector<std::string> labels;
      for (size_t k = 0; k < series.size(); ++k) {
        if (series_variant[k] != v) continue;
        members.push_back(k);
        labels.push_back(names[k]);
      }
      PanelText text = move_shared_tokens("variant=" + v, labels);
      cell.title = text.title;
      labels = shorten(text.labels, 40);
      for (size_t m = 0; m < members.size(); ++m) {
        cell.keys.push_back(labels[m]);
        cell.elements.push_back(elements[members[m]] + quote(labels[m]));
      }
      cells.push_back(std::move(cell));
    }
    const auto [ylo, yhi] = padded(y_lo, y_hi);
    p.setup += "set yrange [" + num(ylo) + ":" + num(yhi) + "]\n";
    grid(p, cells, p.title, options);
  }
  p.caption = "Mean " + report.options.metric +
              " per arm against the number of key/value head groups (attention.kv_heads; mha, mkva "
              "and gkva = model.heads, mqa = 1, gqkva = attention.kv_groups), one line per "
              "variant" +
              (panels ? std::string(" and one panel per variant, all on the same axes") : "") +
              "; bars are " + percent(1 - report.options.alpha) +
              " t-intervals (none for an arm with one seed); points are shifted slightly sideways "
              "so bars do not overlap; " +
              seeds_phrase(ns) + ".";
  return p;
}

// What quality_vs_cost puts on its x axis.
struct Cost {
  CostAxis axis;
  std::string xlabel;  // the axis label, also in the title
  std::string what;    // in the caption: "... against its <what>"
  std::function<double(const ReportArm&)> value;
};

Cost cost_of(CostAxis axis) {
  switch (axis) {
    case CostAxis::kParameters:
      return {axis, "parameters", "parameter count",
              [](const ReportArm& a) { return a.parameters; }};
    case CostAxis::kThroughput:
      return {axis, "training throughput (tokens or images per second)",
              "training throughput (tokens or images per second)",
              [](const ReportArm& a) { return a.throughput; }};
    case CostAxis::kKvCache:
      return {axis, "KV-cache bytes per token",
              "KV-cache bytes per token at inference (as training recorded it from the model's "
              "layers, else 2 x layers x key/value heads x head dim x 2 bytes for bf16 or fp16, "
              "else 4)",
              [](const ReportArm& a) {
                return std::isfinite(a.kv_cache) ? a.kv_cache : kv_cache_bytes_per_token(a.config);
              }};
    case CostAxis::kAuto:
      break;
  }
  throw std::logic_error("figures: no cost for auto");
}

std::optional<Plot> quality_vs_cost(const Report& report, const FigureOptions& options,
                                    std::string* why, std::vector<std::string>* notes) {
  // The arms with a value of the metric and of the cost, those with a metric only, and how many
  // distinct costs they have.
  struct Usable {
    std::vector<size_t> arms, unknown;
    size_t distinct = 0;
  };
  auto usable = [&](const Cost& cost) {
    Usable u;
    std::set<double> values;
    for (size_t i = 0; i < report.arms.size(); ++i) {
      const ReportArm& arm = report.arms[i];
      if (!std::isfinite(arm.stats.mean)) continue;
      const double c = cost.value(arm);
      if (!std::isfinite(c)) {
        u.unknown.push_back(i);
        continue;
      }
      u.arms.push_back(i);
      values.insert(c);
    }
    u.distinct = values.size();
    return u;
  };
  Cost cost = cost_of(options.cost == CostAxis::kAuto ? CostAxis::kParameters : options.cost);
  Usable u = usable(cost);
  if (options.cost == CostAxis::kAuto && u.distinct < 2) {
    cost = cost_of(CostAxis::kThroughput);
    u = usable(cost);
    if (u.arms.size() < 2) {
      *why =
          "quality vs cost: the arms do not differ in parameters and throughput was not "
          "recorded for two or more of them";
      return std::nullopt;
    }
  } else if (u.arms.size() < 2) {
    *why = "quality vs cost: " + cost.xlabel + " is known for " +
           (u.arms.empty() ? std::string("no arm") : "only one arm") +
           (cost.axis == CostAxis::kKvCache
                ? " (it needs attention.variant, model.layers, model.dim, model.heads and the "
                  "variant's key/value head count in the config)"
                : "");
    return std::nullopt;
  }
  std::string left_out;
  if (!u.unknown.empty()) {
    std::string names;
    for (size_t k = 0; k < u.unknown.size() && k < 3; ++k) {
      names += (k == 0 ? "" : ", ") + arm_label(report, u.unknown[k]);
    }
    if (u.unknown.size() > 3) names += ", ...";
    left_out = std::to_string(u.unknown.size()) + (u.unknown.size() == 1 ? " arm" : " arms") +
               " without a known " + cost.xlabel + " left out (" + names + ")";
    notes->push_back("quality vs cost: " + left_out);
  }
  const std::vector<size_t>& arms = u.arms;
  Plot p;
  p.name = "quality_vs_cost";
  p.title = report.options.metric + " vs " + cost.xlabel;
  std::vector<double> x;
  for (const size_t i : arms) x.push_back(cost.value(report.arms[i]));
  const auto [lo_it, hi_it] = std::minmax_element(x.begin(), x.end());
  const double lo = *lo_it, hi = *hi_it;
  const bool log2 = cost.axis == CostAxis::kKvCache && lo > 0 && hi / lo >= 4;
  const double middle = log2 ? std::sqrt(lo * hi) : (lo + hi) / 2;
  // Arms of the same cost (a KV-cache size, equal parameter counts) sit slightly apart sideways,
  // in arm order, so their points and bars do not hide each other; the tics stay exact.
  std::vector<double> at = x;
  size_t shifted = 0;
  for (const double c : std::set<double>(x.begin(), x.end())) {
    std::vector<size_t> same;
    for (size_t k = 0; k < x.size(); ++k) {
      if (x[k] == c) same.push_back(k);
    }
    if (same.size() < 2) continue;
    shifted += same.size();
    const double m = static_cast<double>(same.size()) - 1;
    for (size_t r = 0; r < same.size(); ++r) {
      const double offset = static_cast<double>(r) - m / 2;
      if (log2) {
        at[same[r]] = c * std::exp2(offset * std::min(0.06, 0.3 / m));  // in octaves
      } else {
        const double span = hi > lo ? hi - lo : std::max(std::abs(lo), 1.0);
        at[same[r]] = c + offset * std::min(0.012, 0.08 / m) * span;
      }
    }
  }
  // A few arms: labels beside their points; more would overlap, so a legend names them.
  const bool point_labels = arms.size() <= kMaxPointLabels;
  std::vector<std::string> labels;
  for (const size_t i : arms) labels.push_back(arm_label(report, i));
  const double width = options.width;
  labels = shorten(labels, point_labels ? 48 : label_chars(width));
  std::string data, set_labels;
  std::vector<std::string> elements, titles;
  std::vector<int64_t> ns;
  for (size_t k = 0; k < arms.size(); ++k) {
    const size_t i = arms[k];
    const ReportArm& arm = report.arms[i];
    const auto [low, high] = bar(arm);
    const SeriesStyle style = series_style(i);
    std::string block = "$cost" + std::to_string(i);
    data += block + " << EOD\n" + num(at[k]) + " " + num(arm.stats.mean) + " " + num(low) + " " +
            num(high) + "\nEOD\n";
    std::string element = block + " using 1:2:3:4 with yerrorbars lw 2 pt " +
                          std::to_string(style.point_type) + " ps 1.4 lc rgb '" + colour(i) + "'";
    const std::string title = arm_title(report, i, labels[k]);
    if (point_labels) {
      set_labels += "set label " + std::to_string(k + 1) + " " + quote(title) + " at first " +
                    num(at[k]) + ", first " + num(arm.stats.mean) +
                    // Labels of the right half point left, so the longest label stays in the
                    // figure.
                    (x[k] > middle ? " right offset -1,0.6" : " left offset 1,0.6") +
                    " front noenhanced textcolor rgb '#000000'\n";
      element += " notitle";
    } else {
      titles.push_back(title);
      element += " title " + quote(title);
    }
    elements.push_back(element);
    ns.push_back(arm.stats.n);
  }
  p.setup =
      data + header(p.title, cost.xlabel, report.options.metric + direction(report)) + set_labels;
  if (point_labels) {
    p.setup += "set key off\n";
    // Room around the points for their labels.
    p.setup += "set offsets graph 0.1, graph 0.1, graph 0.12, graph 0.08\n";
  } else {
    p.setup += kKeyBelow;
    p.setup += "set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05\n";
    std::tie(p.width, p.height) = one_plot_canvas(options, titles);
  }
  // The x range and tics are set here, not by gnuplot, so tic labels read 175k and 1024, not
  // 175.00k or 512.00 beside 1.02k: a tic at each of a few distinct KV-cache sizes (they come in
  // powers of two), else at powers of two on a log axis, else at round values.
  double x_lo = lo / 1.4, x_hi = hi * 1.4;
  if (!log2) {
    const double pad = (point_labels ? 0.1 : 0.05) * (hi - lo);
    std::tie(x_lo, x_hi) = hi > lo ? std::make_pair(lo - pad, hi + pad) : padded(lo, hi);
  }
  const std::set<double> distinct(x.begin(), x.end());
  std::vector<double> tics;
  if (cost.axis == CostAxis::kKvCache && distinct.size() <= 8) {
    tics.assign(distinct.begin(), distinct.end());
  } else if (log2) {
    const int first = static_cast<int>(std::ceil(std::log2(x_lo)));
    const int last = static_cast<int>(std::floor(std::log2(x_hi)));
    const int every = (last - first) / 8 + 1;
    for (int e = first; e <= last; e += every) tics.push_back(std::exp2(e));
  } else {
    tics = round_tics(x_lo, x_hi);
  }
  if (log2) p.setup += "set logscale x 2\n";
  p.setup += "set xrange [" + num(x_lo) + ":" + num(x_hi) + "]\n";
  p.setup += "set xtics " + tic_list(tics) + "\n";
  p.plot = join_plot(elements);
  p.caption = "Mean " + report.options.metric + " per arm against its " + cost.what +
              ", bars are " + percent(1 - report.options.alpha) +
              " t-intervals (none for an arm with one seed)" +
              (shifted > 0 ? "; arms of the same cost are shifted slightly sideways" : "") +
              (point_labels ? "" : "; each arm has its colour and marker in the legend") +
              (left_out.empty() ? "" : "; " + left_out) + "; " + seeds_phrase(ns) + ".";
  return p;
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
