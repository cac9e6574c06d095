#include "ablate/experiments/pairs_data.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ablate/experiments/data_error.h"
#include "ablate/experiments/text_data.h"

namespace ablate::experiments {
namespace fs = std::filesystem;

namespace {

enum class Format { kTsv, kJsonl };

std::string format_fraction(double f) {
  std::ostringstream out;
  out << f;
  return out.str();
}

void check_exists(const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw DataError("pairs data: " + path + " does not exist");
  if (!fs::is_regular_file(status)) {
    throw DataError("pairs data: " + path + " is not a regular file (a .tsv or .jsonl file)");
  }
}

std::string read_file(const std::string& path) {
  check_exists(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError("pairs data: cannot open " + path);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw DataError("pairs data: cannot read " + path);
  return bytes;
}

void check_utf8(const std::string& path, const std::string& bytes) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t bad = utf8_error_offset(data, bytes.size());
  if (bad == bytes.size()) return;
  const auto line =
      1 + std::count(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(bad), '\n');
  std::ostringstream message;
  message << "pairs data: " << path << ":" << line << ": not UTF-8 text: ";
  if (data[bad] == 0) {
    message << "a NUL byte";
  } else {
    message << "an invalid UTF-8 sequence (byte 0x" << std::hex << static_cast<int>(data[bad])
            << std::dec << ")";
  }
  message << " at byte offset " << bad << " of the file";
  throw DataError(message.str());
}

// "path:line: what", the prefix every error about one line has.
std::string at(const std::string& path, int64_t line) {
  return "pairs data: " + path + ":" + std::to_string(line) + ": ";
}

TextPair parse_tsv(const std::string& path, int64_t number, const std::string& line) {
  const auto tabs = std::count(line.begin(), line.end(), '\t');
  if (tabs != 1) {
    throw DataError(at(path, number) + "expected source TAB target, exactly one tab, found " +
                    std::to_string(tabs) + " (values holding tabs or newlines need .jsonl)");
  }
  const size_t tab = line.find('\t');
  return {line.substr(0, tab), line.substr(tab + 1)};
}

TextPair parse_jsonl(const std::string& path, int64_t number, const std::string& line) {
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    // e.what() counts lines and columns within this one line.
    throw DataError(at(path, number) + "invalid JSON: " + e.what());
  }
  if (!object.is_object()) {
    throw DataError(at(path, number) + "expected a JSON object {\"source\": ..., \"target\": ...}" +
                    ", got a " + object.type_name());
  }
  TextPair pair;
  for (const auto& [key, out] : {std::pair<const char*, std::string*>{"source", &pair.source},
                                 std::pair<const char*, std::string*>{"target", &pair.target}}) {
    const auto it = object.find(key);
    if (it == object.end()) {
      throw DataError(at(path, number) + "the object has no key \"" + key + "\"");
    }
    if (!it->is_string()) {
      throw DataError(at(path, number) + "\"" + key + "\" is a " + it->type_name() +
                      ", not a string");
    }
    *out = it->get<std::string>();
  }
  return pair;
}

Format pairs_format(const std::string& path) {
  std::string extension = fs::path(path).extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (extension == ".tsv") return Format::kTsv;
  if (extension == ".jsonl") return Format::kJsonl;
  throw DataError("pairs data: " + path + ": unknown extension \"" + extension +
                  "\"; accepted are .tsv (source TAB target a line) and .jsonl (a JSON object "
                  "with \"source\" and \"target\" a line)");
}

}  // namespace

void check_pairs_file(const std::string& path) {
  pairs_format(path);
  check_exists(path);
}

PairsSplit load_pairs(const PairsOptions& options) {
  const std::string& path = options.path;
  const double f = options.val_fraction;
  if (!(f > 0.0 && f < 1.0)) {
    throw DataError("pairs data: val_fraction must be in (0, 1), got " + format_fraction(f));
  }
  const Format format = pairs_format(path);
  std::string bytes = read_file(path);
  check_utf8(path, bytes);
  size_t start = bytes.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;  // byte order mark

  PairsSplit split;
  int64_t number = 0;
  while (start < bytes.size()) {
    ++number;
    size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    std::string line = bytes.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const bool blank =
        format == Format::kTsv ? line.empty() : line.find_first_not_of(" \t") == std::string::npos;
    if (blank) continue;
    TextPair pair =
        format == Format::kTsv ? parse_tsv(path, number, line) : parse_jsonl(path, number, line);
    if (pair.source.empty() || pair.target.empty()) {
      throw DataError(at(path, number) + "the " + (pair.source.empty() ? "source" : "target") +
                      " is empty");
    }
    const auto i = static_cast<double>(split.lines);
    const bool val = std::floor((i + 1.0) * f) > std::floor(i * f);
    (val ? split.val : split.train).push_back(std::move(pair));
    ++split.lines;
  }
  if (split.lines == 0) {
    throw DataError("pairs data: " + path + " holds no pairs (" + std::to_string(number) +
                    " lines, all blank)");
  }
  if (split.lines == 1) {
    throw DataError("pairs data: " + path +
                    " holds 1 pair; holding some out for validation needs at least 2");
  }
  if (split.val.empty()) {
    throw DataError("pairs data: " + path + " holds " + std::to_string(split.lines) +
                    " pairs; val_fraction " + format_fraction(f) +
                    " holds out none of them, so the held-out split is empty (raise val_fraction "
                    "to at least 1/" +
                    std::to_string(split.lines) + " or add pairs)");
  }
  // The training split is never empty: pair 0 goes to it for every f < 1.
  return split;
}

}  // namespace ablate::experiments
