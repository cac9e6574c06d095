#pragma once
// Text that reaches a person or a parser: one policy for bytes that are not UTF-8 and for control
// characters (docs/design.md section 8, "Text"). Input files (sweep and config files, CSV
// imports) must be UTF-8 and are refused at their boundary with the line and column of the first
// bad byte (first_invalid_utf8); what is printed anyway (file-system paths in messages, values
// of older databases) has invalid bytes replaced by U+FFFD, and control characters shown as the
// visible text \xNN, so no value can move a terminal's cursor or break a report's markup.
// Torch-free.
#include <cstddef>
#include <string>
#include <string_view>

namespace ablate::results {

// The offset of the first byte of `s` that is not part of valid UTF-8 (overlong forms,
// surrogates and code points above U+10FFFF are invalid); std::string_view::npos when all of it is.
size_t first_invalid_utf8(std::string_view s);

// `s` with each invalid UTF-8 byte replaced by U+FFFD and each control character (C0 but tab and
// newline, DEL, C1) written as \xNN (C1 as \u0080..\u009f). Valid text without control
// characters is returned unchanged.
std::string printable(std::string_view s);

// "not UTF-8 text (byte 0xE9)": the refusal of `text` at offset `bad` (first_invalid_utf8).
std::string not_utf8_text(std::string_view text, size_t bad);

// The character starting at offset `at`, printable: a whole UTF-8 character ("é", not its first
// byte), or one invalid byte as U+FFFD.
std::string character_at(std::string_view text, size_t at);

// 1-based line and column (in bytes) of offset `at` in `text`, for messages.
struct TextPosition {
  int line = 1;
  int column = 1;
};
TextPosition position_of(std::string_view text, size_t at);

}  // namespace ablate::results
