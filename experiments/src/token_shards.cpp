#include "ablate/experiments/token_shards.h"

#include <fnmatch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ablate/experiments/data_error.h"

namespace ablate::experiments {
namespace fs = std::filesystem;

namespace {

constexpr char kFormat[] = "an llm.c / modded-nanogpt token shard (.bin)";

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
constexpr bool kBigEndianHost = true;
#else
constexpr bool kBigEndianHost = false;
#endif

int32_t little_endian_int32(const uint8_t* p) {
  return static_cast<int32_t>(static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
                              static_cast<uint32_t>(p[2]) << 16 |
                              static_cast<uint32_t>(p[3]) << 24);
}

struct Shard {
  std::string file;
  int64_t tokens = 0;
};

// Opens `file` and checks its header against its size; leaves `in` at the first token.
Shard read_header(const std::string& file, std::ifstream& in) {
  std::error_code ec;
  const auto size = static_cast<int64_t>(fs::file_size(file, ec));
  in.open(file, std::ios::binary);
  if (ec || !in) {
    throw DataError("token shards: cannot open " + file + (ec ? ": " + ec.message() : ""));
  }
  if (size < kShardHeaderBytes) {
    throw DataError("token shards: " + file + " has " + std::to_string(size) +
                    " bytes, shorter than the " + std::to_string(kShardHeaderBytes) +
                    "-byte header of " + kFormat);
  }
  std::array<uint8_t, kShardHeaderBytes> header;
  if (!in.read(reinterpret_cast<char*>(header.data()), kShardHeaderBytes)) {
    throw DataError("token shards: cannot read the header of " + file);
  }
  const int32_t magic = little_endian_int32(header.data());
  const int32_t version = little_endian_int32(header.data() + 4);
  const int32_t count = little_endian_int32(header.data() + 8);
  if (magic != kShardMagic) {
    throw DataError("token shards: " + file + " starts with magic " + std::to_string(magic) +
                    ", expected " + std::to_string(kShardMagic) + ": not " + kFormat);
  }
  if (version != kShardVersion) {
    throw DataError("token shards: " + file + " has version " + std::to_string(version) +
                    "; only version 1 (uint16 tokens) of " + kFormat + " is supported");
  }
  if (count < 0) {
    throw DataError("token shards: " + file + " has a negative token count " +
                    std::to_string(count) + " in its header");
  }
  const int64_t expected = kShardHeaderBytes + 2 * static_cast<int64_t>(count);
  if (size != expected) {
    throw DataError("token shards: " + file + (size < expected ? " is truncated" : " is too long") +
                    ": its header says " + std::to_string(count) + " tokens, so expected " +
                    std::to_string(expected) + " bytes, found " + std::to_string(size));
  }
  return {file, count};
}

// Appends the tokens of `file` to `out`, read straight into place.
void append_shard(const std::string& file, std::vector<uint16_t>& out) {
  std::ifstream in;
  const Shard shard = read_header(file, in);
  const size_t start = out.size();
  out.resize(start + static_cast<size_t>(shard.tokens));
  const auto bytes = static_cast<std::streamsize>(2 * shard.tokens);
  if (bytes > 0 && !in.read(reinterpret_cast<char*>(out.data() + start), bytes)) {
    throw DataError("token shards: cannot read the tokens of " + file);
  }
  if (kBigEndianHost) {
    for (size_t i = start; i < out.size(); ++i) {
      out[i] = static_cast<uint16_t>((out[i] >> 8) | (out[i] << 8));
    }
  }
}

int64_t count_tokens(const std::vector<std::string>& files) {
  int64_t total = 0;
  for (const auto& file : files) {
    std::ifstream in;
    total += read_header(file, in).tokens;
  }
  return total;
}

void read_all(const std::vector<std::string>& files, std::vector<uint16_t>& out) {
  out.reserve(static_cast<size_t>(count_tokens(files)));  // headers first: one allocation
  for (const auto& file : files) append_shard(file, out);
}

}  // namespace

std::vector<uint16_t> read_token_shard(const std::string& file) {
  if (!fs::exists(file)) throw DataError("token shards: " + file + " does not exist");
  std::vector<uint16_t> tokens;
  append_shard(file, tokens);
  return tokens;
}

std::vector<std::string> list_token_shards(const std::string& path) try {
  if (path.empty())
    throw DataError(std::string("token shards: no path given (expects ") + kFormat + ")");
  const fs::path p(path);
  const std::string name = p.filename().string();
  std::vector<std::string> files;
  std::error_code ec;
  if (name.find_first_of("*?[") != std::string::npos) {
    const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    if (!fs::is_directory(dir, ec)) {
      throw DataError("token shards: " + dir.string() + " (the folder of " + path +
                      ") does not exist");
    }
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string entry_name = entry.path().filename().string();
      if (fnmatch(name.c_str(), entry_name.c_str(), 0) == 0 && entry.is_regular_file(ec)) {
        files.push_back(entry.path().string());
      }
    }
    if (files.empty()) throw DataError("token shards: no file matches " + path);
  } else if (fs::is_directory(p, ec)) {
    for (const auto& entry : fs::directory_iterator(p, ec)) {
      if (entry.path().extension() == ".bin" && entry.is_regular_file(ec)) {
        files.push_back(entry.path().string());
      }
    }
    if (files.empty()) {
      throw DataError("token shards: the folder " + path + " holds no *.bin shards (expects " +
                      kFormat + " files)");
    }
  } else if (fs::exists(p, ec)) {
    files.push_back(path);
  } else {
    throw DataError("token shards: " + path + " does not exist (expects " + kFormat +
                    ", a folder of them, or a glob such as fineweb_train_*.bin)");
  }
  if (ec) throw DataError("token shards: cannot list " + path + ": " + ec.message());
  std::sort(files.begin(), files.end());
  return files;
} catch (const fs::filesystem_error& e) {
  throw DataError("token shards: cannot list " + path + ": " + e.what());
}

TokenSplit load_token_shards(const std::string& path, const std::string& val_path,
                             double val_fraction) {
  const std::vector<std::string> train_files = list_token_shards(path);
  std::vector<std::string> val_files;
  if (!val_path.empty()) {
    val_files = list_token_shards(val_path);
    for (const auto& v : val_files) {
      for (const auto& t : train_files) {
        std::error_code ec;
        if (fs::equivalent(v, t, ec)) {
          throw DataError("token shards: " + v + " is both a training shard (of " + path +
                          ") and a held-out shard (of " + val_path + ")");
        }
      }
    }
  } else if (!(val_fraction > 0.0 && val_fraction < 1.0)) {
    std::ostringstream f;
    f << val_fraction;
    throw DataError("token shards: val_fraction must be in (0, 1) when no val_path is given, got " +
                    f.str());
  }

  TokenSplit split;
  read_all(train_files, split.train);
  split.shards = static_cast<int64_t>(train_files.size() + val_files.size());
  if (!val_path.empty()) {
    read_all(val_files, split.val);
  } else {
    const auto total = static_cast<int64_t>(split.train.size());
    const auto held_out =
        static_cast<int64_t>(std::floor(static_cast<double>(total) * val_fraction));
    if (held_out == 0) {
      std::ostringstream f;
      f << val_fraction;
      throw DataError("token shards: " + path + " holds " + std::to_string(total) +
                      " tokens; val_fraction " + f.str() +
                      " of them is less than one token, so the held-out split is empty");
    }
    // The tail is the held-out block: the training tokens are those before it.
    split.val.assign(split.train.end() - held_out, split.train.end());
    split.train.resize(static_cast<size_t>(total - std::min(held_out, total)));
  }
  if (split.train.empty()) {
    throw DataError("token shards: the training split of " + path + " is empty");
  }
  if (split.val.empty()) {
    throw DataError("token shards: the held-out split of " + (val_path.empty() ? path : val_path) +
                    " is empty");
  }
  return split;
}

}  // namespace ablate::experiments
