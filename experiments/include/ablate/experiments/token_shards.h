#pragma once
// Pre-tokenised shards in the llm.c / modded-nanogpt `.bin` format (FineWeb shards work as they
// are): a header of 256 little-endian int32 (magic 20240520, version 1, token count, the rest
// unused), then `count` little-endian uint16 tokens; the file size must be exactly
// 1024 + 2 * count bytes. Torch-free header.
#include <cstdint>
#include <string>
#include <vector>

namespace ablate::experiments {

constexpr int32_t kShardMagic = 20240520;
constexpr int32_t kShardVersion = 1;
constexpr int64_t kShardHeaderBytes = 256 * 4;

// The tokens of one shard. Throws DataError on a missing file, a file shorter than the header,
// a wrong magic or version, or a size that disagrees with the header's count.
std::vector<uint16_t> read_token_shard(const std::string& file);

struct TokenSplit {
  std::vector<uint16_t> train, val;
  int64_t shards = 0;  // shard files read, train and val together
};

// The shard files `path` names, in order: `path` itself when it is a file; the `*.bin` files of
// a folder (not recursive; symlinks followed), sorted by name; or, when the last component holds
// `*`, `?` or `[`, the files of its folder matching that glob (`fineweb_train_*.bin`), sorted.
// Throws DataError when nothing matches.
std::vector<std::string> list_token_shards(const std::string& path);

// Train tokens: the shards of `path` concatenated in order. With `val_path` non-empty the
// shards it names are the held-out split (none of them may also be a training shard) and
// val_fraction is ignored; otherwise the held-out split is the last floor(total * val_fraction)
// tokens of the concatenation, one contiguous block, and train the tokens before it. An empty
// train or val split is a DataError.
TokenSplit load_token_shards(const std::string& path, const std::string& val_path,
                             double val_fraction);

}  // namespace ablate::experiments
