#include "run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <torch/serialize.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "ablate/experiments/train.h"
#include "ablate/results/files.h"

namespace ablate::experiments {
namespace fs = std::filesystem;
using json = nlohmann::json;

RunDirLock::RunDirLock(const fs::path& run_dir) {
  const fs::path file = run_dir / ".train.lock";
  fd_ = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw results::DiskError(results::disk_error_message("open", file, errno));
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    close(fd_);
    throw RunError("run dir " + run_dir.string() + " is in use by another ablate train");
  }
}

RunDirLock::~RunDirLock() { close(fd_); }

void save_archive(torch::serialize::OutputArchive& archive, const fs::path& file) {
  std::ostringstream bytes;
  archive.save_to(bytes);
  results::write_file(file, bytes.str());
}

void save_module(torch::nn::Module& module, const fs::path& file) {
  torch::serialize::OutputArchive archive;
  module.save(archive);
  save_archive(archive, file);
}
void load_module(torch::nn::Module& module, const fs::path& file) {
  torch::serialize::InputArchive archive;
  archive.load_from(file.string());
  module.load(archive);
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::optional<fs::path> checkpoint_dir(const fs::path& run_dir) {
  for (const char* name : {"checkpoint", "checkpoint.old"}) {
    const fs::path dir = run_dir / name;
    if (fs::exists(dir / "state.json")) return dir;
  }
  return std::nullopt;
}

void truncate_events(const fs::path& file, int64_t step) {
  if (!fs::exists(file)) return;
  std::ifstream in(file);
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json e = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (e.is_discarded()) break;  // a line cut by a kill: drop it and everything after
    if (e.value("step", int64_t{0}) > step) continue;
    kept += line + "\n";
  }
  results::write_file_atomic(file, kept);
}

}  // namespace ablate::experiments
