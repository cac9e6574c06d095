#include "ablate/results/printable.h"

#include <gtest/gtest.h>

#include "ablate/results/report.h"

namespace ablate::results {
namespace {

TEST(Printable, FindsTheFirstInvalidUtf8Byte) {
  EXPECT_EQ(first_invalid_utf8("plain ascii"), std::string_view::npos);
  EXPECT_EQ(first_invalid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            std::string_view::npos);
  EXPECT_EQ(first_invalid_utf8("caf\xe9"), 3u);           // Latin-1 e acute
  EXPECT_EQ(first_invalid_utf8("ab\xc0\xaf"), 2u);        // overlong '/'
  EXPECT_EQ(first_invalid_utf8("x\xed\xa0\x80"), 1u);     // a surrogate
  EXPECT_EQ(first_invalid_utf8("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(first_invalid_utf8("ok\xe2\x82"), 2u);        // cut short
  EXPECT_EQ(first_invalid_utf8("\x80"), 0u);              // a lone continuation byte
}

TEST(Printable, NamesTheBadByteAndWholeCharacters) {
  EXPECT_EQ(not_utf8_text("caf\xe9", 3), "not UTF-8 text (byte 0xE9)");
  EXPECT_EQ(character_at("a\xc3\xa9z", 1), "\xc3\xa9");                 // the whole e acute
  EXPECT_EQ(character_at("a\xf0\x9f\x98\x80", 1), "\xf0\x9f\x98\x80");  // four bytes
  EXPECT_EQ(character_at("a\xe9z", 1), "\xef\xbf\xbd");                 // Latin-1: U+FFFD
  EXPECT_EQ(character_at("a\x1b", 1), "\\x1b");
}

TEST(Printable, ReplacesInvalidBytesAndShowsControls) {
  EXPECT_EQ(printable("caf\xc3\xa9\tok\n"), "caf\xc3\xa9\tok\n");  // unchanged
  EXPECT_EQ(printable("caf\xe9"), "caf\xef\xbf\xbd");
  EXPECT_EQ(printable("\x1b[2J\x07x\x7f"), "\\x1b[2J\\x07x\\x7f");
  EXPECT_EQ(printable("a\xc2\x9b"
                      "31mb"),
            "a\\u009b31mb");  // C1 CSI
  EXPECT_EQ(printable(std::string("nul\0!", 5)), "nul\\x00!");
  const auto p = position_of("ab\ncd\xe9", 5);
  EXPECT_EQ(p.line, 2);
  EXPECT_EQ(p.column, 3);
}

// Every report format shows a value with escape sequences as text, never raw (item 6 of the
// hostile-input probe): no ESC byte reaches Markdown, HTML or LaTeX.
TEST(Printable, ReportEscapersNeverPassControlCharacters) {
  const std::string hostile = "gqa\x1b]0;owned\x07\x1b[2J\xe9";
  for (const std::string& out :
       {escape_markdown(hostile), escape_html(hostile), escape_latex(hostile)}) {
    EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
    EXPECT_EQ(out.find('\x07'), std::string::npos) << out;
    EXPECT_EQ(first_invalid_utf8(out), std::string_view::npos) << out;
    EXPECT_NE(out.find("x1b"), std::string::npos) << out;
  }
  EXPECT_EQ(escape_html("<b>caf\xc3\xa9</b>"), "&lt;b&gt;caf\xc3\xa9&lt;/b&gt;");
}

}  // namespace
}  // namespace ablate::results
