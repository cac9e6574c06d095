#pragma once
// Files that ablate writes (run dirs, reports, scripts): every write is checked, so a full disk
// or any other write failure ends in one clear error that names the path, the reason and the
// free space left, never in an abort, a silently short file or a 0-byte temporary left behind
// (docs/reliability.md, "Faults"). Torch-free.
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ablate::results {

// A file could not be written (ENOSPC, EDQUOT, EIO, a read-only file system, no permission).
// The command ends with exit status 1: it is a failure while running, not bad input.
class DiskError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "12.5 MiB free on the file system of DIR" for the nearest existing folder of `where`; "free
// space unknown" when statvfs fails.
std::string free_space_text(const std::filesystem::path& where);

// The message of a DiskError: "cannot ACTION PATH: REASON (FREE)", the path shown printable.
std::string disk_error_message(const std::string& action, const std::filesystem::path& path,
                               int error_number);

// Writes `bytes` to `file` (created or truncated) with write(2), every call's result checked
// and the close too. On failure the partial file is removed and DiskError thrown. For files
// inside a folder that is itself renamed into place (a checkpoint).
void write_file(const std::filesystem::path& file, std::string_view bytes);

// Writes `bytes` to ".NAME.tmp" beside `file`, then renames it over `file`: a reader (or a kill,
// or a full disk) sees the old content or the new, never a part. On failure the temporary is
// removed, `file` keeps its old content and DiskError is thrown.
void write_file_atomic(const std::filesystem::path& file, std::string_view bytes);

// A file only ever appended to (events.jsonl, log.txt). Each append is one checked write(2):
// a failure throws DiskError; the lines written before it stay whole. Movable, not copyable.
class AppendFile {
 public:
  AppendFile() = default;
  explicit AppendFile(const std::filesystem::path& file);  // created when absent
  ~AppendFile();
  AppendFile(AppendFile&& other) noexcept;
  AppendFile& operator=(AppendFile&& other) noexcept;
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;

  bool is_open() const { return fd_ >= 0; }
  void append(std::string_view bytes);

 private:
  int fd_ = -1;
  std::filesystem::path path_;
};

}  // namespace ablate::results
