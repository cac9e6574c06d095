#include "ablate/experiments/token_shards.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>

#include "ablate/experiments/data_error.h"
#include "ablate/testing/errors.h"
#include "ablate/testing/temp_dir.h"

namespace ablate::experiments {
namespace {
namespace fs = std::filesystem;

using ablate::testing::TempDir;

// The DataError message of `f`, failing the test when it throws none.
template <typename F>
std::string error_of(F f) {
  return testing::thrown_message<DataError>(f);
}

void put_le32(std::string& out, int64_t v) {
  const auto u = static_cast<uint32_t>(v);
  for (int b = 0; b < 4; ++b) out.push_back(static_cast<char>((u >> (8 * b)) & 0xff));
}

struct ShardSpec {
  int64_t magic = 20240520, version = 1, count = -1;  // count -1: the number of tokens
  int64_t cut = 0;                                    // bytes removed from the end
};

// Writes a shard byte by byte (little-endian by construction, not by the host's order).
fs::path write_shard(const fs::path& file, const std::vector<uint16_t>& tokens,
                     ShardSpec spec = {}) {
  std::string bytes;
  put_le32(bytes, spec.magic);
  put_le32(bytes, spec.version);
  put_le32(bytes, spec.count == -1 ? static_cast<int64_t>(tokens.size()) : spec.count);
  bytes.resize(1024, '\0');
  for (uint16_t t : tokens) {
    bytes.push_back(static_cast<char>(t & 0xff));
    bytes.push_back(static_cast<char>(t >> 8));
  }
  bytes.resize(bytes.size() - static_cast<size_t>(spec.cut));
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << bytes;
  return file;
}

std::vector<uint16_t> iota(uint16_t from, uint16_t to) {
  std::vector<uint16_t> v(to - from);
  std::iota(v.begin(), v.end(), from);
  return v;
}

TEST(TokenShards, ReadsTokensLittleEndian) {
  TempDir dir;
  const std::vector<uint16_t> tokens = {0, 1, 255, 256, 258, 50256, 65535};
  const auto file = write_shard(dir.path() / "s.bin", tokens);
  EXPECT_EQ(fs::file_size(file), 1024u + 14u);
  EXPECT_EQ(read_token_shard(file.string()), tokens);
  write_shard(file, {});  // an empty shard is valid on its own
  EXPECT_TRUE(read_token_shard(file.string()).empty());
}

TEST(TokenShards, FolderIsSortedAndTailIsHeldOut) {
  TempDir dir;
  write_shard(dir.path() / "b.bin", iota(60, 100));
  write_shard(dir.path() / "a.bin", iota(0, 60));
  std::ofstream(dir.path() / "notes.txt") << "not a shard";
  fs::create_directory(dir.path() / "sub.bin");  // a folder: ignored
  EXPECT_EQ(
      list_token_shards(dir.str()),
      (std::vector<std::string>{(dir.path() / "a.bin").string(), (dir.path() / "b.bin").string()}));
  TokenSplit s = load_token_shards(dir.str(), "", 0.25);  // 100 tokens: the last 25 held out
  EXPECT_EQ(s.shards, 2);
  EXPECT_EQ(s.train, iota(0, 75));
  EXPECT_EQ(s.val, iota(75, 100));
  s = load_token_shards(dir.str(), "", 0.019);  // floor(1.9) = 1 token
  EXPECT_EQ(s.train, iota(0, 99));
  EXPECT_EQ(s.val, iota(99, 100));
  // One file.
  s = load_token_shards((dir.path() / "a.bin").string(), "", 0.5);
  EXPECT_EQ(s.shards, 1);
  EXPECT_EQ(s.train, iota(0, 30));
  EXPECT_EQ(s.val, iota(30, 60));
}

TEST(TokenShards, ValPathAndGlobs) {
  TempDir dir;
  write_shard(dir.path() / "fineweb_train_000002.bin", iota(10, 20));
  write_shard(dir.path() / "fineweb_train_000001.bin", iota(0, 10));
  write_shard(dir.path() / "fineweb_val_000000.bin", iota(500, 507));
  const std::string train = (dir.path() / "fineweb_train_*.bin").string();
  const std::string val = (dir.path() / "fineweb_val_*.bin").string();
  const TokenSplit s = load_token_shards(train, val, 0.9);  // val_fraction ignored
  EXPECT_EQ(s.shards, 3);
  EXPECT_EQ(s.train, iota(0, 20));
  EXPECT_EQ(s.val, iota(500, 507));

  // A held-out shard that is also a training shard.
  std::string message = error_of([&] { load_token_shards(dir.str(), val, 0.1); });
  EXPECT_NE(message.find("both a training shard"), std::string::npos) << message;
  message =
      error_of([&] { load_token_shards(train, (dir.path() / "nothing_*.bin").string(), 0.1); });
  EXPECT_NE(message.find("no file matches"), std::string::npos) << message;
}

TEST(TokenShards, HeaderErrors) {
  TempDir dir;
  const auto file = dir.path() / "x.bin";
  auto message_for = [&](const std::vector<uint16_t>& tokens, ShardSpec spec) {
    write_shard(file, tokens, spec);
    return error_of([&] { read_token_shard(file.string()); });
  };
  std::string m = message_for({1, 2}, {12345, 1, -1, 0});
  EXPECT_NE(m.find("magic 12345"), std::string::npos) << m;
  EXPECT_NE(m.find("20240520"), std::string::npos) << m;
  EXPECT_NE(m.find("llm.c / modded-nanogpt"), std::string::npos) << m;
  EXPECT_NE(m.find(file.string()), std::string::npos) << m;

  m = message_for({1, 2}, {20240520, 7, -1, 0});
  EXPECT_NE(m.find("version 7"), std::string::npos) << m;

  // Truncated: the header says 100 tokens, 50 are there.
  m = message_for(iota(0, 100), {20240520, 1, -1, 100});
  EXPECT_NE(m.find("truncated"), std::string::npos) << m;
  EXPECT_NE(m.find("expected 1224 bytes, found 1124"), std::string::npos) << m;
  // Cut mid-token.
  m = message_for(iota(0, 100), {20240520, 1, -1, 1});
  EXPECT_NE(m.find("expected 1224 bytes, found 1223"), std::string::npos) << m;
  // Longer than the header says.
  m = message_for(iota(0, 100), {20240520, 1, 99, 0});
  EXPECT_NE(m.find("too long"), std::string::npos) << m;
  EXPECT_NE(m.find("expected 1222 bytes, found 1224"), std::string::npos) << m;

  m = message_for({}, {20240520, 1, -1, 1000});  // 24 bytes: shorter than the header
  EXPECT_NE(m.find("24 bytes, shorter than the 1024-byte header"), std::string::npos) << m;

  m = message_for({}, {20240520, 1, -5, 0});
  EXPECT_NE(m.find("negative token count"), std::string::npos) << m;

  // A bad shard inside a folder fails the whole load.
  write_shard(dir.path() / "a.bin", iota(0, 10));
  write_shard(file, iota(0, 10), {20240520, 1, -1, 2});
  m = error_of([&] { load_token_shards(dir.str(), "", 0.1); });
  EXPECT_NE(m.find(file.string()), std::string::npos) << m;
}

TEST(TokenShards, PathAndSplitErrors) {
  TempDir dir;
  std::string m = error_of([&] { load_token_shards(dir.str(), "", 0.1); });
  EXPECT_NE(m.find("holds no *.bin shards"), std::string::npos) << m;
  m = error_of([&] { load_token_shards((dir.path() / "missing.bin").string(), "", 0.1); });
  EXPECT_NE(m.find("does not exist"), std::string::npos) << m;
  m = error_of([&] { read_token_shard((dir.path() / "missing.bin").string()); });
  EXPECT_NE(m.find("does not exist"), std::string::npos) << m;
  m = error_of([&] { load_token_shards("", "", 0.1); });
  EXPECT_NE(m.find("no path"), std::string::npos) << m;

  write_shard(dir.path() / "a.bin", iota(0, 9));
  m = error_of([&] { load_token_shards(dir.str(), "", 0.1); });  // floor(0.9) = 0 tokens
  EXPECT_NE(m.find("held-out split is empty"), std::string::npos) << m;
  for (double f : {0.0, 1.0, -1.0}) {
    m = error_of([&] { load_token_shards(dir.str(), "", f); });
    EXPECT_NE(m.find("val_fraction must be in (0, 1)"), std::string::npos) << m;
  }
  write_shard(dir.path() / "v" / "v.bin", {});
  m = error_of([&] { load_token_shards(dir.str(), (dir.path() / "v").string(), 0.1); });
  EXPECT_NE(m.find("held-out split"), std::string::npos) << m;
  m = error_of([&] { load_token_shards((dir.path() / "v").string(), dir.str(), 0.1); });
  EXPECT_NE(m.find("training split"), std::string::npos) << m;
}

}  // namespace
}  // namespace ablate::experiments
