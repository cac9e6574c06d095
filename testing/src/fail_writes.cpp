// A disk that fills up, for the fault-injection tests: loaded with LD_PRELOAD, it lets writes to
// regular files whose path contains $ABLATE_FAIL_WRITES_MATCH go through until
// $ABLATE_FAIL_WRITES_AFTER bytes (default 0) have been written to such files by this process,
// then fails every further one with ENOSPC, as a full file system does (a write that crosses the
// limit is cut short first). With $ABLATE_FAIL_WRITES_WHILE set, only while that file exists:
// a test fills the disk at the moment it chooses and frees it again. Pipes, terminals and other
// files are never touched, so a process can still say what went wrong. Without
// ABLATE_FAIL_WRITES_MATCH it changes nothing.
//
// It interposes write, pwrite, pwrite64 and writev: what libstdc++'s streams, LibTorch's stream
// writer and SQLite's unix VFS call. It is a test tool, not part of ablate.
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

std::atomic<long long> written{0};  // bytes written to selected files by this process

// Bytes that may still be written to `fd`: -1 when the file is not selected (no limit).
long long budget(int fd) {
  const char* match = std::getenv("ABLATE_FAIL_WRITES_MATCH");
  if (match == nullptr || *match == '\0') return -1;
  const char* flag = std::getenv("ABLATE_FAIL_WRITES_WHILE");
  struct stat flag_stat;
  if (flag != nullptr && *flag != '\0' && stat(flag, &flag_stat) != 0) return -1;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  char link[64], path[PATH_MAX];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t len = readlink(link, path, sizeof path - 1);
  if (len < 0) return -1;
  path[len] = '\0';
  if (std::strstr(path, match) == nullptr) return -1;
  const char* after = std::getenv("ABLATE_FAIL_WRITES_AFTER");
  const long long left = (after ? std::atoll(after) : 0) - written.load();
  return left > 0 ? left : 0;
}

template <class F>
F real(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

// Runs call(k) with k the bytes of the `n` asked for that still fit; ENOSPC when none do.
template <class Call>
ssize_t limited(int fd, size_t n, Call call) {
  const long long left = budget(fd);
  if (left < 0 || n == 0) return call(n);
  if (left == 0) {
    errno = ENOSPC;
    return -1;
  }
  const size_t k = static_cast<unsigned long long>(left) < n ? static_cast<size_t>(left) : n;
  const ssize_t done = call(k);
  if (done > 0) written += done;
  return done;
}

}  // namespace

extern "C" {

ssize_t write(int fd, const void* buf, size_t n) {
  static const auto next = real<ssize_t (*)(int, const void*, size_t)>("write");
  return limited(fd, n, [&](size_t k) { return next(fd, buf, k); });
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t at) {
  static const auto next = real<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite");
  return limited(fd, n, [&](size_t k) { return next(fd, buf, k, at); });
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t at) {
  static const auto next = real<ssize_t (*)(int, const void*, size_t, off64_t)>("pwrite64");
  return limited(fd, n, [&](size_t k) { return next(fd, buf, k, at); });
}

ssize_t writev(int fd, const struct iovec* iov, int count) {
  static const auto next = real<ssize_t (*)(int, const struct iovec*, int)>("writev");
  size_t n = 0;
  for (int i = 0; i < count; ++i) n += iov[i].iov_len;
  return limited(fd, n, [&](size_t k) -> ssize_t {
    if (k == n) return next(fd, iov, count);
    // Cut short: the first k bytes only, as a file system that fills up mid-write does.
    struct iovec cut[IOV_MAX];
    int m = 0;
    for (int i = 0; i < count && i < IOV_MAX && k > 0; ++i, ++m) {
      cut[m] = iov[i];
      if (cut[m].iov_len > k) cut[m].iov_len = k;
      k -= cut[m].iov_len;
    }
    return next(fd, cut, m);
  });
}

}  // extern "C"
