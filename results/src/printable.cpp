#include "ablate/results/printable.h"

#include <cstdio>

namespace ablate::results {
namespace {

// The length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one.
size_t sequence_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char low = 0x80, high = 0xbf;  // the second byte's range (tightened below)
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) low = 0xa0;   // no overlong forms
    if (c == 0xed) high = 0x9f;  // no surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) low = 0x90;
    if (c == 0xf4) high = 0x8f;  // at most U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(1) < low || b(1) > high) return 0;
  for (size_t k = 2; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80) return 0;
  }
  return n;
}

}  // namespace

size_t first_invalid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = sequence_length(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  char code[8];
  for (size_t i = 0; i < s.size();) {
    const size_t n = sequence_length(s, i);
    const auto c = static_cast<unsigned char>(s[i]);
    if (n == 0) {
      out += "\xef\xbf\xbd";  // U+FFFD
      ++i;
    } else if (n == 1 && ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)) {
      std::snprintf(code, sizeof code, "\\x%02x", c);
      out += code;
      ++i;
    } else if (n == 2 && c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0) {
      std::snprintf(code, sizeof code, "\\u%04x", static_cast<unsigned char>(s[i + 1]));
      out += code;  // a C1 control (U+0080..U+009F): CSI is U+009B
      i += 2;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

TextPosition position_of(std::string_view text, size_t at) {
  TextPosition p;
  for (size_t i = 0; i < at && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++p.line;
      p.column = 1;
    } else {
      ++p.column;
    }
  }
  return p;
}

std::string not_utf8_text(std::string_view text, size_t bad) {
  char byte[8];
  std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[bad]));
  return std::string("not UTF-8 text (byte ") + byte + ")";
}

std::string character_at(std::string_view text, size_t at) {
  const size_t n = sequence_length(text, at);
  return printable(text.substr(at, n == 0 ? 1 : n));
}

}  // namespace ablate::results
