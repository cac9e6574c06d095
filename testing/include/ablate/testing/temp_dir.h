#pragma once
// Test helpers shared by every folder's tests (header-only, torch-free).
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace ablate::testing {

// A fresh folder under the system temp dir (mkdtemp: unique even across parallel test
// processes), removed with everything in it when the object goes.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "ablate-test") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  // The path of `name` inside the folder.
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// A file with `text` in a fresh TempDir, removed with it (a config or sweep file for a test).
class TempFile {
 public:
  explicit TempFile(const std::string& text, const std::string& name = "file.yaml")
      : dir_("ablate-file"), path_(dir_.file(name)) {
    std::ofstream(path_) << text;
  }
  const std::string& path() const { return path_; }

 private:
  TempDir dir_;
  std::string path_;
};

}  // namespace ablate::testing
