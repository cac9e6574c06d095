#include "ablate/experiments/pairs_data.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "ablate/experiments/data_error.h"
#include "ablate/testing/errors.h"
#include "ablate/testing/temp_dir.h"

namespace ablate::experiments {
namespace {
namespace fs = std::filesystem;

using ablate::testing::TempDir;

std::string write(const TempDir& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

PairsSplit load(const std::string& path, double f = 0.5) {
  PairsOptions o;
  o.path = path;
  o.val_fraction = f;
  return load_pairs(o);
}

// The DataError message of loading `path`, failing the test when it throws none.
std::string error_of(const std::string& path, double f = 0.5) {
  return testing::thrown_message<DataError>([&] { load(path, f); });
}

#define EXPECT_HAS(message, part) \
  EXPECT_NE((message).find(part), std::string::npos) << "no '" << (part) << "' in: " << (message)

std::vector<std::string> sources(const std::vector<TextPair>& pairs) {
  std::vector<std::string> out;
  for (const auto& p : pairs) out.push_back(p.source);
  return out;
}

TEST(PairsData, TsvPairsAndSplit) {
  TempDir dir;
  // Blank lines skipped (numbering goes on), CRLF, a file without a final newline.
  const std::string path =
      write(dir, "p.tsv",
            "s0\tt0\n\ns1\tt1\r\ns2\tt with spaces \n\r\ns3\t\xc3\xa9t\xc3\xa9\n"
            "s4\tt4");
  // f = 0.4 over 5 pairs: i goes to val iff floor(0.4 (i + 1)) > floor(0.4 i), i.e. i = 2, 4.
  const PairsSplit s = load(path, 0.4);
  EXPECT_EQ(s.lines, 5);
  EXPECT_EQ(sources(s.train), (std::vector<std::string>{"s0", "s1", "s3"}));
  EXPECT_EQ(sources(s.val), (std::vector<std::string>{"s2", "s4"}));
  EXPECT_EQ(s.train[1].target, "t1");  // "\r" dropped
  EXPECT_EQ(s.train[2].target, "\xc3\xa9t\xc3\xa9");
  EXPECT_EQ(s.val[0].target, "t with spaces ");  // other whitespace kept
  EXPECT_EQ(s.val[1].target, "t4");
}

TEST(PairsData, JsonlPairsWithEscapes) {
  TempDir dir;
  const std::string path =
      write(dir, "p.JSONL",  // the extension in any case
            "\xef\xbb\xbf{\"source\": \"a\\nb\\tc\", \"target\": \"caf\\u00e9\", \"id\": 7}\r\n"
            "   \n"
            "{\"target\": \"\\ud83d\\ude00 \\\"q\\\"\", \"source\": \"na\xc3\xafve\"}\n"
            "{\"source\":\"x\",\"target\":\"y\",\"extra\":{\"nested\":[1,2]}}");
  const PairsSplit s = load(path, 0.5);  // i = 1 held out
  ASSERT_EQ(s.lines, 3);
  ASSERT_EQ(s.train.size(), 2u);
  ASSERT_EQ(s.val.size(), 1u);
  EXPECT_EQ(s.train[0].source, "a\nb\tc");
  EXPECT_EQ(s.train[0].target, "caf\xc3\xa9");
  EXPECT_EQ(s.val[0].source, "na\xc3\xafve");
  EXPECT_EQ(s.val[0].target, "\xf0\x9f\x98\x80 \"q\"");  // a surrogate pair: U+1F600
  EXPECT_EQ(s.train[1].source, "x");
  EXPECT_EQ(s.train[1].target, "y");
}

TEST(PairsData, HeldOutPairsFollowTheRule) {
  for (int n : {2, 3, 7, 10, 25, 101}) {
    for (double f : {0.05, 0.1, 0.25, 1.0 / 3.0, 0.5, 0.9}) {
      if (std::floor(n * f) == 0) continue;
      TempDir dir;
      std::string text;
      for (int i = 0; i < n; ++i) text += std::to_string(i) + "\tt\n";
      const PairsSplit s = load(write(dir, "p.tsv", text), f);
      std::vector<std::string> train, val;
      for (int i = 0; i < n; ++i) {
        (std::floor((i + 1) * f) > std::floor(i * f) ? val : train).push_back(std::to_string(i));
      }
      SCOPED_TRACE("n=" + std::to_string(n) + " f=" + std::to_string(f));
      EXPECT_EQ(s.lines, n);
      EXPECT_EQ(static_cast<double>(s.val.size()), std::floor(n * f));
      EXPECT_EQ(sources(s.train), train);
      EXPECT_EQ(sources(s.val), val);
    }
  }
  // Spread evenly: 25 pairs at f = 0.1 hold out pairs 9 and 19.
  TempDir dir;
  std::string text;
  for (int i = 0; i < 25; ++i) text += std::to_string(i) + "\tt\n";
  EXPECT_EQ(sources(load(write(dir, "p.tsv", text), 0.1).val),
            (std::vector<std::string>{"9", "19"}));
}

TEST(PairsData, TsvLineErrors) {
  TempDir dir;
  std::string path = write(dir, "a.tsv", "s\tt\n\nno tab here\n");
  std::string message = error_of(path);
  EXPECT_HAS(message, path + ":3:");
  EXPECT_HAS(message, "exactly one tab, found 0");

  path = write(dir, "b.tsv", "s\tt\ns\tt\tu\n");
  message = error_of(path);
  EXPECT_HAS(message, path + ":2:");
  EXPECT_HAS(message, "found 2");

  path = write(dir, "c.tsv", "s\tt\r\n\tt\r\n");
  message = error_of(path);
  EXPECT_HAS(message, path + ":2:");
  EXPECT_HAS(message, "source is empty");

  path = write(dir, "d.tsv", "s\tt\nx\t\r\n");
  message = error_of(path);
  EXPECT_HAS(message, path + ":2:");
  EXPECT_HAS(message, "target is empty");
}

TEST(PairsData, JsonlLineErrors) {
  TempDir dir;
  const std::string ok = "{\"source\": \"s\", \"target\": \"t\"}\n";
  const struct {
    std::string line, expected;
  } cases[] = {
      {"{\"source\": \"s\"}", "no key \"target\""},
      {"{\"target\": \"t\", \"src\": \"s\"}", "no key \"source\""},
      {"{\"source\": \"s\", \"target\": 3}", "\"target\" is a number, not a string"},
      {"{\"source\": null, \"target\": \"t\"}", "\"source\" is a null, not a string"},
      {"[\"s\", \"t\"]", "expected a JSON object"},
      {"{\"source\": \"s\", \"target\": \"t\"", "parse error"},         // cut short
      {"{\"source\": \"s\", \"target\": \"t\"} {}", "parse error"},     // two values on a line
      {"source\ttarget", "parse error"},                                // a TSV line
      {"{\"source\": \"\\ud800\", \"target\": \"t\"}", "parse error"},  // a lone surrogate
      {"{\"source\": \"\", \"target\": \"t\"}", "the source is empty"},
      {"{\"source\": \"s\", \"target\": \"\"}", "the target is empty"},
  };
  for (const auto& c : cases) {
    const std::string path = write(dir, "p.jsonl", ok + "\n" + c.line + "\n" + ok);
    const std::string message = error_of(path);
    EXPECT_HAS(message, path + ":3:");
    EXPECT_HAS(message, c.expected);
  }
}

TEST(PairsData, RefusesBytesThatAreNotUtf8) {
  TempDir dir;
  std::string path = write(dir, "p.tsv", "s\tt\ns\tt\xff\n");  // 0xff at offset 7
  std::string message = error_of(path);
  EXPECT_HAS(message, path + ":2:");
  EXPECT_HAS(message, "0xff");
  EXPECT_HAS(message, "byte offset 7");

  path =
      write(dir, "p.jsonl", "{\"source\": \"s\", \"target\": \"t\"}\n\n{\"source\": \"\xc3(\"}\n");
  message = error_of(path);
  EXPECT_HAS(message, path + ":3:");
  EXPECT_HAS(message, "byte offset 44");  // 31 + 1 + 12 bytes before it

  path = write(dir, "n.tsv", std::string("s\tt\0\n", 5));
  message = error_of(path);
  EXPECT_HAS(message, path + ":1:");
  EXPECT_HAS(message, "NUL");
}

TEST(PairsData, FileErrors) {
  TempDir dir;
  std::string message = error_of(dir.file("missing.tsv"));
  EXPECT_HAS(message, dir.file("missing.tsv"));
  EXPECT_HAS(message, "does not exist");

  fs::create_directory(dir.path() / "folder.tsv");
  EXPECT_HAS(error_of(dir.file("folder.tsv")), "not a regular file");

  for (const std::string name : {"p.csv", "p.json", "p"}) {
    message = error_of(write(dir, name, "s\tt\n"));
    EXPECT_HAS(message, "unknown extension");
    EXPECT_HAS(message, ".tsv");
    EXPECT_HAS(message, ".jsonl");
  }

  message = error_of(write(dir, "e.tsv", ""));
  EXPECT_HAS(message, "no pairs");
  message = error_of(write(dir, "b.jsonl", "\n  \n\t\r\n"));
  EXPECT_HAS(message, "no pairs (3 lines, all blank)");
}

TEST(PairsData, EmptySplitsAndBadFractions) {
  TempDir dir;
  const std::string path = write(dir, "p.tsv", "a\tb\nc\td\n");
  std::string message = error_of(path, 0.1);  // floor(0.2) = 0
  EXPECT_HAS(message, "held-out split is empty");
  EXPECT_HAS(message, "1/2");
  message = error_of(write(dir, "one.tsv", "a\tb\n"), 0.9);  // one pair: always training
  EXPECT_HAS(message, "holds 1 pair; holding some out for validation needs at least 2");
  for (double f : {0.0, 1.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_HAS(error_of(path, f), "val_fraction must be in (0, 1)");
  }
}

}  // namespace
}  // namespace ablate::experiments
