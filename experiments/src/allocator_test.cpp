// The allocator settings of training processes: freed memory stays in the process, so a step that
// allocates what the previous step freed does not fault its pages in again.
#include "ablate/experiments/allocator.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

// Minor page faults of `rounds` rounds after the first of what a training step does to memory:
// 16 buffers of 3 MiB allocated, written and freed. Run in a child process (`tune`: with
// tune_allocator first), so each count starts from glibc's defaults.
long faults_of_steps(bool tune, int rounds) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    if (tune && !ablate::experiments::tune_allocator()) _exit(3);
    volatile char sink = 0;
    long before = 0;
    for (int r = 0; r <= rounds; ++r) {
      if (r == 1) {
        rusage u{};
        getrusage(RUSAGE_SELF, &u);
        before = u.ru_minflt;
      }
      std::vector<char*> buffers;
      for (int i = 0; i < 16; ++i) {
        char* p = static_cast<char*>(std::malloc(size_t{3} << 20));
        std::memset(p, r + i, size_t{3} << 20);
        buffers.push_back(p);
      }
      for (char* p : buffers) {
        sink = sink + p[12345];
        std::free(p);
      }
    }
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    const long faults = u.ru_minflt - before;
    if (write(fds[1], &faults, sizeof faults) != sizeof faults) _exit(4);
    _exit(0);
  }
  close(fds[1]);
  long faults = -1;
  if (read(fds[0], &faults, sizeof faults) != sizeof faults) faults = -1;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? faults : -1;
}

// AddressSanitizer replaces malloc: glibc's settings do not apply (mallopt refuses them).
#if defined(__SANITIZE_ADDRESS__)
#define ABLATE_MALLOC_IS_ASANS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ABLATE_MALLOC_IS_ASANS 1
#endif
#endif

TEST(Allocator, FreedBuffersStayInTheProcessForTheNextStep) {
#if defined(ABLATE_MALLOC_IS_ASANS)
  GTEST_SKIP() << "built with AddressSanitizer, whose allocator replaces glibc's";
#endif
  if (const char* t = std::getenv("GLIBC_TUNABLES"); t != nullptr && std::strstr(t, "malloc.")) {
    GTEST_SKIP() << "GLIBC_TUNABLES sets malloc's thresholds: " << t;
  }
  const long defaults = faults_of_steps(false, 10);
  const long tuned = faults_of_steps(true, 10);
  ASSERT_GE(defaults, 0);
  ASSERT_GE(tuned, 0);
  RecordProperty("faults_with_defaults", std::to_string(defaults));
  RecordProperty("faults_tuned", std::to_string(tuned));
  // With glibc's defaults each round faults its 48 MiB in again (12,288 pages of 4 KiB); tuned,
  // the rounds reuse the first round's pages.
  EXPECT_GT(defaults, 10 * 12288 / 2) << "glibc's defaults no longer trim: the test shows nothing";
  EXPECT_LT(tuned, defaults / 20) << "tuned " << tuned << " faults against " << defaults;
}

TEST(Allocator, TheUsersGlibcTunablesWin) {
  // setenv in this process only affects tune_allocator's check, not glibc (which read the
  // variable at start-up): the settings are then left alone.
  ASSERT_EQ(setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1000", 1), 0);
  EXPECT_FALSE(ablate::experiments::tune_allocator());
  ASSERT_EQ(unsetenv("GLIBC_TUNABLES"), 0);
}

}  // namespace
