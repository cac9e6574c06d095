#include "ablate/results/files.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ablate/testing/temp_dir.h"

// /dev/full fails every write with ENOSPC: a full disk without filling one. A symlink named as
// the temporary sends write_file_atomic's writes there.
namespace ablate::results {
namespace {
namespace fs = std::filesystem;

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool has_full_device() { return fs::exists("/dev/full"); }

TEST(Files, WriteFileAtomicReplacesTheContentAndLeavesNoTemporary) {
  testing::TempDir dir;
  const fs::path file = dir.path() / "summary.json";
  write_file_atomic(file, "first");
  write_file_atomic(file, std::string("second\0with a nul", 17));
  EXPECT_EQ(slurp(file), std::string("second\0with a nul", 17));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(Files, AFullDiskKeepsThePreviousContentAndSaysWhereAndHowMuchIsFree) {
  if (!has_full_device()) GTEST_SKIP() << "no /dev/full";
  testing::TempDir dir;
  const fs::path file = dir.path() / "report.md";
  write_file_atomic(file, "the old report");
  fs::create_symlink("/dev/full", dir.path() / ".report.md.tmp");
  try {
    write_file_atomic(file, "a new report");
    FAIL() << "no DiskError";
  } catch (const DiskError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cannot write " + (dir.path() / ".report.md.tmp").string()),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("No space left on device"), std::string::npos) << what;
    EXPECT_NE(what.find("free on the file system of " + dir.str()), std::string::npos) << what;
    EXPECT_NE(what.find("keeps its previous content"), std::string::npos) << what;
  }
  EXPECT_EQ(slurp(file), "the old report");
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir.path() / ".report.md.tmp")))
      << "the temporary stays";
  EXPECT_TRUE(fs::exists("/dev/full")) << "a device the path named was removed";
}

TEST(Files, WriteFileNeverRemovesADeviceItFailedOn) {
  if (!has_full_device()) GTEST_SKIP() << "no /dev/full";
  EXPECT_THROW(write_file("/dev/full", "x"), DiskError);
  EXPECT_TRUE(fs::exists("/dev/full"));
}

TEST(Files, AppendFileAppendsWholeLinesAndThrowsWhenTheDiskIsFull) {
  testing::TempDir dir;
  const fs::path file = dir.path() / "events.jsonl";
  {
    AppendFile events(file);
    events.append("{\"step\":1}\n");
  }
  AppendFile events(file);  // reopened, as a resumed run does
  events.append("{\"step\":2}\n");
  EXPECT_EQ(slurp(file), "{\"step\":1}\n{\"step\":2}\n");

  if (!has_full_device()) GTEST_SKIP() << "no /dev/full";
  AppendFile full("/dev/full");
  try {
    full.append("{\"step\":3}\n");
    FAIL() << "no DiskError";
  } catch (const DiskError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot append to /dev/full: No space left on device"),
              std::string::npos)
        << e.what();
  }
}

TEST(Files, OpenAndWriteFailuresNameThePathAndTheReason) {
  testing::TempDir dir;
  const fs::path missing = dir.path() / "no-such-folder" / "checkpoint.tmp" / "model.pt";
  try {
    write_file(missing, "weights");
    FAIL() << "no DiskError";
  } catch (const DiskError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cannot write " + missing.string() + ": No such file or directory"),
              std::string::npos)
        << what;
    // The free space of the nearest folder that exists.
    EXPECT_NE(what.find("free on the file system of " + dir.str() + ")"), std::string::npos)
        << what;
  }
  EXPECT_THROW(AppendFile(dir.path() / "no-such-folder" / "log.txt"), DiskError);
  // A path that is not UTF-8 is shown printable in the message.
  EXPECT_NE(disk_error_message("write", "/x/caf\xe9", ENOSPC).find("/x/caf\xef\xbf\xbd"),
            std::string::npos);
}

TEST(Files, FreeSpaceIsShownInUnitsAPersonReads) {
  const std::string text = free_space_text("/");
  // "<number> <unit> free on the file system of /"
  EXPECT_NE(text.find(" free on the file system of /"), std::string::npos) << text;
  const std::string unit = text.substr(text.find(' ') + 1, text.find(" free") - text.find(' ') - 1);
  EXPECT_TRUE(unit == "B" || unit == "KiB" || unit == "MiB" || unit == "GiB" || unit == "TiB")
      << text;
}

}  // namespace
}  // namespace ablate::results
