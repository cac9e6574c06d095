// Text and legend sizes, and panels laid out on one canvas (gnuplot multiplot).
#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "figure_parts.h"

namespace ablate::results::figure_detail {

namespace {

// Layouts use gnuplot's own estimate of text: pngcairo at 'sans,10' counts 8 px a character and
// 15.5 px a line, svg at 'sans,11' 7.7 and 16.5; these are a little more than the larger.
constexpr double kCharWidth = 8;

constexpr double kLineHeight = 17;

// gnuplot's legend column: the sample (samplen 2), the gaps around it and the title.
double key_column_width(size_t chars) { return (static_cast<double>(chars) + 9) * kCharWidth; }

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

// Rows of a legend of `entries` titles of up to `chars` characters in `width` pixels.
int key_rows(size_t entries, size_t chars, double width) {
  if (entries == 0) return 0;
  const double columns =
      std::clamp(std::floor(width / key_column_width(chars)), 1.0, static_cast<double>(entries));
  return static_cast<int>(std::ceil(static_cast<double>(entries) / columns));
}

}  // namespace

std::vector<std::string> words_of(const std::string& label) {
  std::istringstream in(label);
  return {std::istream_iterator<std::string>(in), std::istream_iterator<std::string>()};
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

size_t longest(const std::vector<std::string>& texts) {
  size_t n = 0;
  for (const std::string& t : texts) n = std::max(n, utf8_length(t));
  return n;
}

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

size_t label_chars(double width) {
  const double fit = std::floor((width - 120) / kCharWidth) - 9;
  return static_cast<size_t>(std::clamp(fit, 16.0, 48.0));
}

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

std::string join_plot(const std::vector<std::string>& elements) {
  std::string plot = "plot ";
  for (size_t i = 0; i < elements.size(); ++i) plot += (i == 0 ? "" : ", ") + elements[i];
  return plot;
}

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

}  // namespace ablate::results::figure_detail
