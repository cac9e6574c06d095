// The files of a run directory: the lock that keeps one `ablate train` per run dir, module
// checkpoints, atomic writes, and the events log's truncation on resume. Internal to experiments/.
#pragma once

#include <torch/nn/module.h>
#include <torch/serialize/output-archive.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace ablate::experiments {

// One `ablate train` per run dir: an flock held while training, so a process a killed coordinator
// left behind and its relaunch can never write the same run dir at once. Throws RunError when
// another process holds it.
class RunDirLock {
 public:
  explicit RunDirLock(const std::filesystem::path& run_dir);
  ~RunDirLock();
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;

 private:
  int fd_ = -1;
};

// Serialises in memory, then writes with results::write_file: a full disk is a DiskError naming
// the file, never an exception from LibTorch's stream writer's destructor (an abort).
void save_archive(torch::serialize::OutputArchive& archive, const std::filesystem::path& file);
void save_module(torch::nn::Module& module, const std::filesystem::path& file);
void load_module(torch::nn::Module& module, const std::filesystem::path& file);

std::string read_file(const std::filesystem::path& file);

// The checkpoint folder that holds a complete checkpoint, if any. A crash between the renames of
// a checkpoint save leaves the previous one in checkpoint.old.
std::optional<std::filesystem::path> checkpoint_dir(const std::filesystem::path& run_dir);

// Keeps the events of steps <= `step` (a resumed run writes the later ones again); a line cut by a
// kill and everything after it are dropped.
void truncate_events(const std::filesystem::path& file, int64_t step);

}  // namespace ablate::experiments
