#include "ablate/results/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "ablate/results/printable.h"

namespace ablate::results {
namespace fs = std::filesystem;
namespace {

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char text[32];
  std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return text;
}

// Writes all of `bytes` to `fd`, retrying short writes and EINTR. 0, or the errno of the failure.
int write_all(int fd, std::string_view bytes) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;  // no progress and no error: do not spin
    p += n;
    left -= static_cast<size_t>(n);
  }
  return 0;
}

// Creates or truncates `file`, writes `bytes`, closes; 0 or the errno of the first failure. The
// file is removed when anything failed.
int write_whole(const fs::path& file, std::string_view bytes) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  int err = write_all(fd, bytes);
  // close() reports what a network file system defers (NFS returns ENOSPC there).
  if (::close(fd) != 0 && err == 0) err = errno;
  // What was written goes, but never a device or a pipe the path names (/dev/full, say).
  struct stat st;
  if (err != 0 && ::lstat(file.c_str(), &st) == 0 && (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))) {
    ::unlink(file.c_str());
  }
  return err;
}

}  // namespace

std::string free_space_text(const fs::path& where) {
  std::error_code ec;
  fs::path dir = fs::absolute(where.empty() ? fs::path(".") : where, ec);
  if (ec) dir = where;
  // The nearest folder that exists: the file itself may not.
  while (!fs::is_directory(dir, ec) && dir.has_parent_path() && dir.parent_path() != dir) {
    dir = dir.parent_path();
  }
  struct statvfs s;
  if (::statvfs(dir.c_str(), &s) != 0) return "free space unknown";
  const double free = static_cast<double>(s.f_bavail) * static_cast<double>(s.f_frsize);
  return human_bytes(free) + " free on the file system of " + printable(dir.string());
}

std::string disk_error_message(const std::string& action, const fs::path& path, int error_number) {
  return "cannot " + action + " " + printable(path.string()) + ": " + std::strerror(error_number) +
         " (" + free_space_text(path.parent_path()) + ")";
}

void write_file(const fs::path& file, std::string_view bytes) {
  if (const int err = write_whole(file, bytes)) {
    throw DiskError(disk_error_message("write", file, err));
  }
}

void write_file_atomic(const fs::path& file, std::string_view bytes) {
  const fs::path tmp = file.parent_path() / ("." + file.filename().string() + ".tmp");
  if (const int err = write_whole(tmp, bytes)) {
    throw DiskError(disk_error_message("write", tmp, err) + "; " + printable(file.string()) +
                    " keeps its previous content");
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw DiskError(disk_error_message("rename a new version over", file, err));
  }
}

AppendFile::AppendFile(const fs::path& file) : path_(file) {
  fd_ = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw DiskError(disk_error_message("open for appending", file, errno));
}

AppendFile::~AppendFile() {
  if (fd_ >= 0) ::close(fd_);
}

AppendFile::AppendFile(AppendFile&& other) noexcept
    : fd_(other.fd_), path_(std::move(other.path_)) {
  other.fd_ = -1;
}

AppendFile& AppendFile::operator=(AppendFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    path_ = std::move(other.path_);
    other.fd_ = -1;
  }
  return *this;
}

void AppendFile::append(std::string_view bytes) {
  if (fd_ < 0) throw DiskError("cannot append to " + printable(path_.string()) + ": not open");
  struct stat before;
  const bool sized = ::fstat(fd_, &before) == 0;
  if (const int err = write_all(fd_, bytes)) {
    // A part of these bytes may have landed: cut it off, so the file ends at a whole line.
    // A failed cut is not fatal: a reader drops a cut last line anyway (truncate_events does).
    if (sized) {
      [[maybe_unused]] const int cut = ::ftruncate(fd_, before.st_size);
    }
    throw DiskError(disk_error_message("append to", path_, err));
  }
}

}  // namespace ablate::results
