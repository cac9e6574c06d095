#pragma once
// Byte-level text corpora for the language-model task (docs/design.md section 5). Torch-free
// header.
//
// Files: `path` is a file or a folder. A folder is walked recursively; its regular files are read
// in the order of their paths (byte-wise comparison); symlinks (files or folders) are skipped, so
// the fortunes package's `*.u8` links are not read twice. In fortune format `*.dat` files (the
// strfile indexes) are skipped too. Every file must be UTF-8 text without NUL bytes.
//
// Documents:
//  - plain format: each non-empty file is one document, its bytes as they are.
//  - fortune format: a line holding only "%" (or "%\r") ends a fortune; each fortune is the text
//    between two such lines (or a file's start or end), newline included; a fortune at the end
//    of a file without a final newline gets one; empty fortunes are dropped.
// Streams: a split's stream is its documents in order, each followed by the separator: "%\n"
// in fortune format (the model learns where a fortune ends), nothing in plain format (files
// are concatenated byte for byte).
// Held-out split (independent of any seed, so every arm and seed sees the same held-out text):
// document i (0-based, over all files in order) of N goes to val iff
// floor((i+1) * f) > floor(i * f), with f = val_fraction: exactly floor(N * f) documents,
// spread evenly. A single document (one plain file) is cut instead into a head (train) and a
// tail (val): the tail starts at the line start nearest to t = size - floor(size * f) (the
// earlier one on a tie) or, with no line start inside the document, at the UTF-8 character
// boundary at or before t; in fortune format the separator follows the tail only. An empty
// train or val split is a DataError.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ablate::experiments {

struct TextOptions {
  std::string path;             // a file or a folder (see above)
  bool fortune_format = false;  // documents separated by lines holding only "%" (fortunes)
  double val_fraction = 0.1;    // share of whole documents held out, in (0, 1)
};

struct TextSplit {
  std::vector<uint8_t> train, val;  // byte streams (see above)
  int64_t train_documents = 0, val_documents = 0;
  int64_t files = 0;         // files read
  bool block_split = false;  // one document cut into head (train) and tail (val); counted in both
};

// Throws DataError on a missing path (naming the `fortunes` package for the default path), a
// file that is not UTF-8 text (naming the file and the byte offset), no documents, an empty split.
TextSplit load_text(const TextOptions& options);

// The files load_text reads, in order (see above), without reading them. Throws DataError as
// load_text does for a missing path or one that holds no files.
std::vector<std::string> text_files(const TextOptions& options);

// Where the Debian package `fortunes` installs its files.
std::string default_fortunes_path();

// Byte offset of the first byte of `data` that is not part of valid UTF-8 (a NUL byte, a bad
// lead or continuation byte, an overlong form, a surrogate, a code point above U+10FFFF, a
// sequence cut by the end), or data.size() when all of it is valid.
size_t utf8_error_offset(const uint8_t* data, size_t size);

}  // namespace ablate::experiments
