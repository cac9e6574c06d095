#pragma once
// Source/target text pairs a user brings for the s2s task (summaries, translations, ...).
// Torch-free header.
//
// Formats, chosen by the file's extension (lowercase or not):
//  - .tsv: one pair per line, source TAB target, exactly one tab. No quoting or escapes: a tab or
//    a newline cannot be part of a value (use .jsonl for those).
//  - .jsonl: one JSON object per line with string fields "source" and "target"; other fields are
//    ignored. Values may hold any escapes JSON allows (\n, \t, \u00e9, surrogate pairs).
// Lines: numbered from 1; a line ends at "\n", and a trailing "\r" is dropped (CRLF files). A
// blank line is skipped: in .tsv an empty one, in .jsonl one of only spaces and tabs. A UTF-8
// byte order mark at the start of the file is dropped. Every byte of the file must be UTF-8
// without NUL bytes.
// Held-out split as the lm text task (text_data.h), independent of any seed: pair i (0-based, in
// file order) of N goes to val iff floor((i + 1) * f) > floor(i * f), f = val_fraction: exactly
// floor(N * f) pairs, spread evenly.
#include <cstdint>
#include <string>
#include <vector>

namespace ablate::experiments {

struct PairsOptions {
  std::string path;           // a .tsv or .jsonl file (format by extension)
  double val_fraction = 0.1;  // share of pairs held out, in (0, 1)
};

struct TextPair {
  std::string source, target;
};

struct PairsSplit {
  std::vector<TextPair> train, val;
  int64_t lines = 0;  // pairs read
};

// .tsv: one pair per line, source TAB target, exactly one tab (else DataError "file:line: ...");
// blank lines skipped; a trailing "\r" dropped. .jsonl: one JSON object per non-blank line with
// string fields "source" and "target" (other fields ignored; DataError "file:line: ..." naming
// the missing key or a parse error). Every byte must be UTF-8 (the error names file, line and
// byte offset). Held-out split as above. DataError on a missing file, an unknown extension
// (saying which are accepted), no pairs, an empty split, an empty source or target (file:line),
// a val_fraction outside (0, 1).
PairsSplit load_pairs(const PairsOptions& options);

// Whether `path` can be a pairs file, without reading it (ablate plan checks every job's data
// with it): DataError for an unknown extension, a missing file or one that is not a file.
void check_pairs_file(const std::string& path);

}  // namespace ablate::experiments
