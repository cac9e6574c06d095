#pragma once
// A fresh folder (mkdtemp) removed with its contents when the object goes: figures draw in one
// inside their output folder, so renames into it stay on one file system; a report printed on
// stdout draws its figures in one under the system temp dir; `ablate calibrate` runs its timing
// jobs in one.
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace ablate::results {

class ScratchDir {
 public:
  ScratchDir(const std::filesystem::path& parent, const std::string& prefix) {
    std::string pattern = (std::filesystem::absolute(parent) / (prefix + "-XXXXXX")).string();
    if (mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("cannot create a scratch folder in " + parent.string() + ": " +
                               std::strerror(errno));
    }
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::filesystem::path file(const std::string& name) const { return path_ / name; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace ablate::results
