#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "ablate/results/printable.h"
#include "ablate/runner/command.h"
#include "ablate/runner/ensembles.h"
#include "cli.h"

namespace ablate::cli {
namespace fs = std::filesystem;

std::string help_text(const CommandInfo& info, const po::options_description& options) {
  std::ostringstream out;
  out << "usage: ablate " << info.name << " " << info.synopsis << "\n" << info.summary << "\n";
  if (info.details[0] != '\0') out << "\n" << info.details << "\n";
  out << "\n" << options;
  return out.str();
}

bool parse_args(const CommandInfo& info, const po::options_description& options,
                const po::options_description& hidden,
                const po::positional_options_description& pos, const std::vector<std::string>& args,
                po::variables_map& vm) {
  // --help wins over everything else on the line, so `ablate run --help` never starts a run and
  // never fails on a missing or invalid argument.
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << help_text(info, options);
      return false;
    }
  }
  po::options_description all;
  all.add(options).add(hidden);
  po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
  po::notify(vm);
  return true;
}

std::string count_of(long long n, const std::string& singular, const std::string& plural) {
  return std::to_string(n) + " " + (n == 1 ? singular : plural.empty() ? singular + "s" : plural);
}

FileAndOverrides split_positional(const std::vector<std::string>& positional) {
  FileAndOverrides r;
  for (const auto& a : positional) {
    if (a.find('=') != std::string::npos) {
      r.overrides.push_back(a);
    } else if (r.file.empty()) {
      r.file = a;
    } else {
      r.error = "more than one file (" + r.file + ", " + a + ")";
    }
  }
  return r;
}

std::unique_ptr<results::Store> open_read_only(const std::string& db, const std::string& command) {
  if (!fs::exists(db)) {
    std::cerr << "ablate " << command << ": no database " << db
              << " (ablate run or ablate import creates it)\n";
    return nullptr;
  }
  results::StoreOptions read_only;
  read_only.read_only = true;
  return std::make_unique<results::Store>(db, read_only);
}

std::string shown_path(const std::string& path) {
  const fs::path p(path);
  if (!p.is_absolute()) return path;
  std::error_code ec;
  const fs::path here = fs::current_path(ec);
  if (ec) return path;
  const fs::path rel = p.lexically_relative(here);
  return rel.empty() || *rel.begin() == ".." ? path : rel.string();
}

std::string shell_word(const std::string& s) {
  const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '/' || c == ':' || c == '=' || c == ',';
  });
  if (plain) return s;
  // A control character or a byte that is not UTF-8 (a workdir named so) is written as bash's
  // $'...' with \xNN: still one word that runs as it is, and nothing raw reaches the terminal.
  const bool printable = results::first_invalid_utf8(s) == std::string::npos &&
                         std::none_of(s.begin(), s.end(), [](char c) {
                           const auto u = static_cast<unsigned char>(c);
                           return u < 0x20 || u == 0x7f;
                         });
  if (printable) return runner::shell_quote(s);
  std::string out = "$'";
  char code[8];
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\'' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      std::snprintf(code, sizeof code, "\\x%02x", u);
      out += code;
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string db_flag(const std::string& db) {
  return db == "ablate.db" ? "" : " --db " + shell_word(db);
}

const char* seeds_per_process_help() {
  static const std::string help =
      "seeds of one arm trained together in one process: N, or auto (default: the sweep file's "
      "seeds_per_process:, else auto: " +
      std::to_string(runner::kCpuSeedsPerProcess) +
      " on the CPU, on a GPU as many as fit its memory)";
  return help.c_str();
}

std::optional<int> seeds_per_process_flag(const po::variables_map& vm, const std::string& value,
                                          const std::string& command) {
  if (vm.count("seeds-per-process") == 0) return -1;
  try {
    return runner::parse_seeds_per_process(value);
  } catch (const std::invalid_argument& e) {
    std::cerr << "ablate " << command << ": --seeds-per-process: " << e.what() << "\n";
    return std::nullopt;
  }
}

}  // namespace ablate::cli

namespace ablate::cli {

std::string number_text(double x) {
  if (std::isnan(x)) return "n/a";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", x);
  return buf;
}

std::string interval_text(double low, double high) {
  return "[" + number_text(low) + ", " + number_text(high) + "]";
}

}  // namespace ablate::cli
