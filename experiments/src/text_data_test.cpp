#include "ablate/experiments/text_data.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "ablate/experiments/data_error.h"
#include "ablate/testing/errors.h"
#include "ablate/testing/temp_dir.h"

namespace ablate::experiments {
namespace {
namespace fs = std::filesystem;

using ablate::testing::TempDir;

void write(const fs::path& file, const std::string& bytes) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << bytes;
}

std::string str(const std::vector<uint8_t>& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

// The DataError message of `f`, failing the test when it throws none.
template <typename F>
std::string error_of(F f) {
  return testing::thrown_message<DataError>(f);
}

TextSplit load(const fs::path& path, bool fortunes, double f) {
  TextOptions o;
  o.path = path.string();
  o.fortune_format = fortunes;
  o.val_fraction = f;
  return load_text(o);
}

TEST(TextData, FortuneFormatDocumentsAndFilesRead) {
  TempDir dir;
  // A leading "%" line, an empty fortune, a "%\r" line and a last fortune without a newline.
  write(dir.path() / "a", "%\none\n%\ntwo\nlines\n%\n%\nthree\n%\r\nfour");
  write(dir.path() / "a.dat", std::string("\0\0\xff\x02", 4));  // strfile index: skipped
  fs::create_symlink("a", dir.path() / "a.u8");                 // symlink: skipped
  write(dir.path() / "sub" / "b", "five\n%\n");
  fs::create_directory_symlink(dir.path() / "sub", dir.path() / "sublink");  // skipped

  // f = 0.5 over 5 documents: i goes to val iff floor((i+1)/2) > floor(i/2), i.e. i = 1, 3.
  const TextSplit s = load(dir.path(), true, 0.5);
  EXPECT_EQ(s.files, 2);
  EXPECT_EQ(s.train_documents, 3);
  EXPECT_EQ(s.val_documents, 2);
  EXPECT_FALSE(s.block_split);
  EXPECT_EQ(str(s.train), "one\n%\nthree\n%\nfive\n%\n");
  EXPECT_EQ(str(s.val), "two\nlines\n%\nfour\n%\n");
}

TEST(TextData, PlainFormatIsFilesByteForByte) {
  TempDir dir;
  write(dir.path() / "c.txt", "gamma");  // no final newline: kept as it is
  write(dir.path() / "a.txt", "alpha\n");
  write(dir.path() / "b" / "x.dat", "beta\n");  // not skipped outside fortune format
  write(dir.path() / "empty", "");              // read, but no document
  fs::create_symlink("a.txt", dir.path() / "d.txt");
  // Documents a.txt, b/x.dat, c.txt; f = 0.4 holds out i = 2 only (floor(1.2) > floor(0.8)).
  const TextSplit s = load(dir.path(), false, 0.4);
  EXPECT_EQ(s.files, 4);
  EXPECT_EQ(s.train_documents, 2);
  EXPECT_EQ(s.val_documents, 1);
  EXPECT_EQ(str(s.train), "alpha\nbeta\n");
  EXPECT_EQ(str(s.val), "gamma");
}

TEST(TextData, HeldOutDocumentsFollowTheRuleForManySizes) {
  for (int n : {2, 3, 7, 10, 25, 101}) {
    for (double f : {0.05, 0.1, 0.25, 1.0 / 3.0, 0.5, 0.9}) {
      if (std::floor(n * f) == 0) continue;
      TempDir dir;
      std::string text;
      for (int i = 0; i < n; ++i) text += "doc" + std::to_string(i) + "\n%\n";
      write(dir.path() / "f", text);
      const TextSplit s = load(dir.path(), true, f);
      std::string train, val;
      int64_t val_docs = 0;
      for (int i = 0; i < n; ++i) {
        const bool held = std::floor((i + 1) * f) > std::floor(i * f);
        (held ? val : train) += "doc" + std::to_string(i) + "\n%\n";
        val_docs += held;
      }
      SCOPED_TRACE("n=" + std::to_string(n) + " f=" + std::to_string(f));
      EXPECT_EQ(s.val_documents, static_cast<int64_t>(std::floor(n * f)));
      EXPECT_EQ(s.val_documents, val_docs);
      EXPECT_EQ(s.train_documents + s.val_documents, n);
      EXPECT_EQ(str(s.train), train);
      EXPECT_EQ(str(s.val), val);
    }
  }
  // Spread evenly: 25 documents at f = 0.1 hold out the 10th and the 20th.
  TempDir dir;
  for (int i = 0; i < 25; ++i)
    write(dir.path() / ("d" + std::to_string(100 + i)), std::to_string(i) + ",");
  const TextSplit s = load(dir.path(), false, 0.1);
  EXPECT_EQ(str(s.val), "9,19,");
  EXPECT_EQ(s.train_documents, 23);
}

TEST(TextData, SingleDocumentIsCutAtTheNearestLineStart) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 10; ++i) text += "l" + std::to_string(i) + "\n";  // 30 bytes, lines of 3
  write(dir.path() / "one.txt", text);
  // f = 0.2: target 24, a line start.
  TextSplit s = load(dir.path() / "one.txt", false, 0.2);
  EXPECT_TRUE(s.block_split);
  EXPECT_EQ(s.files, 1);
  EXPECT_EQ(s.train_documents, 1);
  EXPECT_EQ(s.val_documents, 1);
  EXPECT_EQ(str(s.train), text.substr(0, 24));
  EXPECT_EQ(str(s.val), "l8\nl9\n");
  // f = 0.25: target 30 - 7 = 23; line starts 21 and 24, 24 is nearer.
  s = load(dir.path(), false, 0.25);
  EXPECT_EQ(str(s.val), "l8\nl9\n");
  // f = 0.35: target 30 - 10 = 20; line starts 18 and 21, 21 is nearer.
  s = load(dir.path(), false, 0.35);
  EXPECT_EQ(str(s.val), "l7\nl8\nl9\n");
  EXPECT_EQ(s.train.size() + s.val.size(), text.size());
}

TEST(TextData, SingleDocumentWithoutNewlineIsCutAtACharacterBoundary) {
  TempDir dir;
  write(dir.path() / "t", "aaaaaaaa\xc3\xa9");  // "é" is 2 bytes at 8..9
  // f = 0.15: target 10 - 1 = 9, inside "é": back to 8.
  TextSplit s = load(dir.path() / "t", false, 0.15);
  EXPECT_EQ(str(s.train), "aaaaaaaa");
  EXPECT_EQ(str(s.val), "\xc3\xa9");
  // Fortune format: the separator follows the held-out tail only.
  write(dir.path() / "t", "%\nabcdefghij\n%\n");
  s = load(dir.path() / "t", true, 0.2);  // document "abcdefghij\n", 11 bytes, target 9
  EXPECT_TRUE(s.block_split);
  EXPECT_EQ(str(s.train), "abcdefghi");
  EXPECT_EQ(str(s.val), "j\n%\n");
}

TEST(TextData, RefusesTextThatIsNotUtf8) {
  TempDir dir;
  write(dir.path() / "a", "fine\n");
  write(dir.path() / "b", std::string("ok\n\0x", 5));
  std::string message = error_of([&] { load(dir.path(), false, 0.5); });
  EXPECT_NE(message.find((dir.path() / "b").string()), std::string::npos) << message;
  EXPECT_NE(message.find("NUL"), std::string::npos) << message;
  EXPECT_NE(message.find("offset 3"), std::string::npos) << message;

  write(dir.path() / "b", "0123456789abcdefghij\xff\n");
  message = error_of([&] { load(dir.path(), true, 0.5); });
  EXPECT_NE(message.find("0xff"), std::string::npos) << message;
  EXPECT_NE(message.find("offset 20"), std::string::npos) << message;

  // A binary index read in plain format: the error says where such files are skipped.
  fs::remove(dir.path() / "b");
  write(dir.path() / "b.dat", std::string("\0\0\0\x02", 4));
  message = error_of([&] { load(dir.path(), false, 0.5); });
  EXPECT_NE(message.find("offset 0"), std::string::npos) << message;
  EXPECT_NE(message.find("skipped in fortune format only"), std::string::npos) << message;
  const TextSplit s = load(dir.path(), true, 0.5);  // b.dat skipped: "fine\n" cut at byte 3
  EXPECT_EQ(s.files, 1);
  EXPECT_EQ(str(s.train), "fin");
  EXPECT_EQ(str(s.val), "e\n%\n");
}

TEST(TextData, Utf8Validator) {
  auto offset = [](const std::string& s) {
    return utf8_error_offset(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  const std::string ascii = "The quick brown fox jumps over the lazy dog.\n";
  EXPECT_EQ(offset(""), 0u);
  EXPECT_EQ(offset(ascii), ascii.size());
  EXPECT_EQ(offset("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf"), 13u);  // é € 😀 U+10FFFF
  EXPECT_EQ(offset("\xed\x9f\xbf\xee\x80\x80"), 6u);  // U+D7FF, U+E000: around the surrogates
  const struct {
    std::string text;
    size_t offset;
  } bad[] = {
      {ascii + std::string(1, '\0') + ascii, ascii.size()},  // NUL inside the fast path
      {ascii + "\x80", ascii.size()},                        // stray continuation byte
      {"ab\xc3", 2},                                         // cut by the end
      {"ab\xe2\x82", 2},
      {"ab\xc3(", 2},              // lead byte without its continuation
      {"\xc0\x80", 0},             // overlong NUL
      {"\xc1\xbf", 0},             // overlong
      {"x\xe0\x9f\xbf", 1},        // overlong 3-byte
      {"xy\xed\xa0\x80", 2},       // surrogate U+D800
      {"\xf0\x8f\xbf\xbf", 0},     // overlong 4-byte
      {"abc\xf4\x90\x80\x80", 3},  // above U+10FFFF
      {"\xf5\x80\x80\x80", 0},     // no such lead byte
      {"\xff", 0},
      {"0123456789abcdef\xfe", 16},  // after two fast-path words
  };
  for (const auto& b : bad) EXPECT_EQ(offset(b.text), b.offset) << b.text;
}

TEST(TextData, MissingAndEmptyInputs) {
  TempDir dir;
  std::string message = error_of([&] { load(dir.path() / "nope", true, 0.1); });
  EXPECT_NE(message.find((dir.path() / "nope").string()), std::string::npos) << message;
  EXPECT_NE(message.find("fortunes"), std::string::npos) << message;

  message = error_of([&] { load(dir.path(), false, 0.1); });  // empty folder
  EXPECT_NE(message.find("no regular files"), std::string::npos) << message;

  write(dir.path() / "x.dat", "index");
  message = error_of([&] { load(dir.path(), true, 0.1); });  // only an index
  EXPECT_NE(message.find("no regular files"), std::string::npos) << message;

  write(dir.path() / "e", "%\n%\n");
  message = error_of([&] { load(dir.path(), true, 0.1); });  // only empty fortunes
  EXPECT_NE(message.find("no documents"), std::string::npos) << message;
}

TEST(TextData, EmptySplitsAndBadFractionsAreErrors) {
  TempDir dir;
  write(dir.path() / "a", "one\n");
  write(dir.path() / "b", "two\n");
  std::string message = error_of([&] { load(dir.path(), false, 0.1); });  // floor(0.2) = 0
  EXPECT_NE(message.find("held-out split is empty"), std::string::npos) << message;
  EXPECT_NE(message.find("1/2"), std::string::npos) << message;

  write(dir.path() / "one", "ab");
  message = error_of([&] { load(dir.path() / "one", false, 0.1); });  // floor(0.2) bytes = 0
  EXPECT_NE(message.find("held-out split is empty"), std::string::npos) << message;

  write(dir.path() / "one", "\xe2\x82\xac");  // one 3-byte character: no boundary inside
  message = error_of([&] { load(dir.path() / "one", false, 0.5); });
  EXPECT_NE(message.find("training split empty"), std::string::npos) << message;

  for (double f : {0.0, 1.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    message = error_of([&] { load(dir.path(), false, f); });
    EXPECT_NE(message.find("val_fraction must be in (0, 1)"), std::string::npos) << message;
  }
}

// The real corpus of the Debian package `fortunes`, when installed.
TEST(TextData, DebianFortunesPackage) {
  if (!fs::is_directory(default_fortunes_path())) GTEST_SKIP() << "fortunes not installed";
  int64_t text_files = 0;
  for (const auto& e : fs::directory_iterator(default_fortunes_path())) {
    text_files += e.is_regular_file() && !e.is_symlink() && e.path().extension() != ".dat";
  }
  TextOptions o;
  o.path = default_fortunes_path();
  o.fortune_format = true;
  const TextSplit s = load_text(o);
  const int64_t n = s.train_documents + s.val_documents;
  EXPECT_EQ(s.files, text_files);
  EXPECT_GT(n, 10000);
  EXPECT_EQ(s.val_documents, static_cast<int64_t>(std::floor(n * 0.1)));
  EXPECT_GT(s.train.size(), 1000000u);
  // Every stream is whole fortunes: it ends with a separator and holds no empty fortune.
  for (const auto* stream : {&s.train, &s.val}) {
    const std::string text = str(*stream);
    EXPECT_EQ(text.substr(text.size() - 3), "\n%\n");
    EXPECT_EQ(text.find("\n%\n%\n"), std::string::npos);
    EXPECT_EQ(utf8_error_offset(stream->data(), stream->size()), stream->size());
  }
}

}  // namespace
}  // namespace ablate::experiments
