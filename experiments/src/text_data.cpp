#include "ablate/experiments/text_data.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ablate/experiments/data_error.h"

namespace ablate::experiments {
namespace fs = std::filesystem;

namespace {

constexpr char kSeparator[] = "%\n";
constexpr size_t kSeparatorSize = 2;

std::string format_fraction(double f) {
  std::ostringstream out;
  out << f;
  return out.str();
}

// The files `path` names, in the order documents are numbered (see the header).
std::vector<fs::path> list_files(const TextOptions& options) {
  const fs::path root(options.path);
  std::error_code ec;
  const fs::file_status status = fs::status(root, ec);
  if (!fs::exists(status)) {
    std::string message = "text data: " + options.path + " does not exist";
    if (options.path == default_fortunes_path()) {
      message += "; install the Debian package fortunes (apt-get install fortunes)";
    } else if (options.fortune_format) {
      message +=
          "; the Debian package fortunes installs fortune files in " + default_fortunes_path();
    }
    throw DataError(message);
  }
  if (fs::is_regular_file(status)) return {root};  // named explicitly: a symlink is followed
  if (!fs::is_directory(status)) {
    throw DataError("text data: " + options.path + " is neither a regular file nor a folder");
  }
  std::vector<fs::path> files;
  fs::recursive_directory_iterator it(root, ec), end;
  if (ec)
    throw DataError("text data: cannot read the folder " + options.path + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) throw DataError("text data: cannot walk " + options.path + ": " + ec.message());
    // symlink_status: the fortunes package's *.u8 links name files already read.
    const fs::file_status s = it->symlink_status(ec);
    if (ec || !fs::is_regular_file(s)) continue;
    if (options.fortune_format && it->path().extension() == ".dat") continue;  // strfile index
    files.push_back(it->path());
  }
  std::sort(files.begin(), files.end(),
            [](const fs::path& a, const fs::path& b) { return a.native() < b.native(); });
  if (files.empty()) {
    throw DataError("text data: no regular files under " + options.path +
                    (options.fortune_format ? " (other than *.dat indexes)" : ""));
  }
  return files;
}

void read_whole_file(const fs::path& file, std::vector<uint8_t>& out) {
  std::ifstream in(file, std::ios::binary);
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (!in || ec) throw DataError("text data: cannot open " + file.string());
  out.resize(size);
  if (size > 0 &&
      !in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(size))) {
    throw DataError("text data: cannot read " + file.string());
  }
}

void check_utf8(const fs::path& file, const std::vector<uint8_t>& bytes, bool fortune_format) {
  const size_t bad = utf8_error_offset(bytes.data(), bytes.size());
  if (bad == bytes.size()) return;
  std::ostringstream message;
  message << "text data: " << file.string() << " is not UTF-8 text: ";
  if (bytes[bad] == 0) {
    message << "a NUL byte";
  } else {
    message << "an invalid UTF-8 sequence (byte 0x" << std::hex << static_cast<int>(bytes[bad])
            << std::dec << ")";
  }
  message << " at byte offset " << bad
          << " (a byte-level corpus must be UTF-8 text; binary files cannot be read)";
  if (!fortune_format && file.extension() == ".dat") {
    message << "; *.dat files (the fortunes package's indexes) are skipped in fortune format only";
  }
  throw DataError(message.str());
}

// Numbers documents as they come and appends each to its split (the rule in the header).
class Splitter {
 public:
  Splitter(double fraction, bool fortune_format, TextSplit& out)
      : fraction_(fraction), fortune_format_(fortune_format), out_(out) {}

  void add(const uint8_t* data, size_t size, bool add_newline) {
    if (size == 0) return;
    const double i = static_cast<double>(documents_);
    const bool val = std::floor((i + 1.0) * fraction_) > std::floor(i * fraction_);
    std::vector<uint8_t>& dest = val ? out_.val : out_.train;
    ++(val ? out_.val_documents : out_.train_documents);
    ++documents_;
    dest.insert(dest.end(), data, data + size);
    if (add_newline) dest.push_back('\n');
    if (fortune_format_) dest.insert(dest.end(), kSeparator, kSeparator + kSeparatorSize);
  }

  int64_t documents() const { return documents_; }

 private:
  double fraction_;
  bool fortune_format_;
  TextSplit& out_;
  int64_t documents_ = 0;
};

// Fortunes of one file: the text between lines holding only "%" (or "%\r").
void add_fortunes(const std::vector<uint8_t>& bytes, Splitter& splitter) {
  const uint8_t* data = bytes.data();
  const size_t size = bytes.size();
  size_t doc_start = 0, line = 0;
  while (line < size) {
    const void* nl = std::memchr(data + line, '\n', size - line);
    const size_t line_end = nl ? static_cast<size_t>(static_cast<const uint8_t*>(nl) - data) : size;
    const size_t length = line_end - line;
    const bool separator =
        data[line] == '%' && (length == 1 || (length == 2 && data[line + 1] == '\r'));
    if (separator) {
      splitter.add(data + doc_start, line - doc_start, false);  // ends with '\n' when non-empty
      doc_start = line_end + 1;
    }
    line = line_end + 1;
  }
  if (doc_start < size) {
    splitter.add(data + doc_start, size - doc_start, data[size - 1] != '\n');
  }
}

// The single-document case: the tail of the document becomes the held-out split.
void split_single_document(const TextOptions& options, TextSplit& split) {
  const size_t separator = options.fortune_format ? kSeparatorSize : 0;
  std::vector<uint8_t> doc(split.train.begin(), split.train.end() - separator);
  const size_t size = doc.size();
  const auto held_out =
      static_cast<size_t>(std::floor(static_cast<double>(size) * options.val_fraction));
  if (held_out == 0) {
    throw DataError("text data: " + options.path + " holds one document of " +
                    std::to_string(size) + " bytes, too short to hold out val_fraction " +
                    format_fraction(options.val_fraction) + " of it: the held-out split is empty");
  }
  const size_t target = size - held_out;
  // Nearest line start at or before the target, and after it (a line start is never 0 or size).
  size_t before = 0, after = 0;
  for (size_t p = target; p > 0; --p) {
    if (doc[p - 1] == '\n') {
      before = p;
      break;
    }
  }
  for (size_t p = target + 1; p < size; ++p) {
    if (doc[p - 1] == '\n') {
      after = p;
      break;
    }
  }
  size_t cut = 0;
  if (before != 0 && (after == 0 || target - before <= after - target)) {
    cut = before;
  } else if (after != 0) {
    cut = after;
  } else {
    cut = target;  // no line start: back to a character boundary
    while (cut > 0 && (doc[cut] & 0xC0) == 0x80) --cut;
  }
  if (cut == 0) {
    throw DataError("text data: " + options.path +
                    " holds one document and cutting its held-out tail leaves the training "
                    "split empty");
  }
  split.train.assign(doc.begin(), doc.begin() + static_cast<std::ptrdiff_t>(cut));
  split.val.assign(doc.begin() + static_cast<std::ptrdiff_t>(cut), doc.end());
  if (options.fortune_format) split.val.insert(split.val.end(), kSeparator, kSeparator + 2);
  split.train_documents = split.val_documents = 1;
  split.block_split = true;
}

}  // namespace

std::string default_fortunes_path() { return "/usr/share/games/fortunes"; }

std::vector<std::string> text_files(const TextOptions& options) {
  std::vector<std::string> out;
  for (const auto& file : list_files(options)) out.push_back(file.string());
  return out;
}

size_t utf8_error_offset(const uint8_t* s, size_t n) {
  constexpr uint64_t kHigh = 0x8080808080808080ull, kOnes = 0x0101010101010101ull;
  size_t i = 0;
  while (i < n) {
    if (i + 8 <= n) {  // fast path: 8 ASCII bytes, none of them NUL
      uint64_t v;
      std::memcpy(&v, s + i, 8);
      if (((v | ((v - kOnes) & ~v)) & kHigh) == 0) {
        i += 8;
        continue;
      }
    }
    const uint8_t c = s[i];
    auto cont = [&](size_t k) { return i + k < n && (s[i + k] & 0xC0) == 0x80; };
    if (c == 0) return i;
    if (c < 0x80) {
      i += 1;
    } else if (c < 0xC2) {  // a stray continuation byte, or C0/C1 (overlong)
      return i;
    } else if (c < 0xE0) {
      if (!cont(1)) return i;
      i += 2;
    } else if (c < 0xF0) {
      if (!cont(1) || !cont(2)) return i;
      if (c == 0xE0 && s[i + 1] < 0xA0) return i;   // overlong
      if (c == 0xED && s[i + 1] >= 0xA0) return i;  // UTF-16 surrogate
      i += 3;
    } else if (c < 0xF5) {
      if (!cont(1) || !cont(2) || !cont(3)) return i;
      if (c == 0xF0 && s[i + 1] < 0x90) return i;   // overlong
      if (c == 0xF4 && s[i + 1] >= 0x90) return i;  // above U+10FFFF
      i += 4;
    } else {
      return i;
    }
  }
  return n;
}

TextSplit load_text(const TextOptions& options) {
  const double f = options.val_fraction;
  if (!(f > 0.0 && f < 1.0)) {
    throw DataError("text data: val_fraction must be in (0, 1), got " + format_fraction(f));
  }
  const std::vector<fs::path> files = list_files(options);
  TextSplit split;
  Splitter splitter(f, options.fortune_format, split);
  std::vector<uint8_t> bytes;  // reused: one allocation for the largest file
  for (const fs::path& file : files) {
    read_whole_file(file, bytes);
    check_utf8(file, bytes, options.fortune_format);
    ++split.files;
    if (options.fortune_format) {
      add_fortunes(bytes, splitter);
    } else {
      splitter.add(bytes.data(), bytes.size(), false);
    }
  }
  const int64_t n = splitter.documents();
  if (n == 0) {
    throw DataError("text data: " + options.path + " holds no documents (" +
                    std::to_string(split.files) + " files, all empty)");
  }
  if (n == 1) {
    split_single_document(options, split);
  } else if (split.val_documents == 0) {
    throw DataError("text data: " + options.path + " holds " + std::to_string(n) +
                    " documents; val_fraction " + format_fraction(f) +
                    " holds out none of them, so the held-out split is empty (raise val_fraction "
                    "to at least 1/" +
                    std::to_string(n) + " or add documents)");
  } else if (split.train_documents == 0) {
    throw DataError("text data: " + options.path + ": val_fraction " + format_fraction(f) +
                    " holds out all " + std::to_string(n) +
                    " documents, so the training split is empty");
  }
  return split;
}

}  // namespace ablate::experiments
