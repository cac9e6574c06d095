// data_problems: the check `ablate plan` and `ablate run` make of every job's data before
// anything is written, by the readers' own listing rules (no file is read).
#include "ablate/experiments/data_check.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "ablate/experiments/device_name.h"
#include "ablate/experiments/image_data.h"
#include "ablate/experiments/text_data.h"
#include "ablate/testing/temp_dir.h"

namespace ablate::experiments {
namespace {
namespace fs = std::filesystem;
using ablate::testing::TempDir;

runner::DataConfig data(const std::string& dataset, const std::string& path) {
  runner::DataConfig d;
  d.dataset = dataset;
  d.path = path;
  return d;
}

void touch(const fs::path& file) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << "x";
}

// The one problem of `d`, for `key`; a failed test when there is not exactly one.
std::string problem_of(const runner::DataConfig& d, const std::string& key = "data.path") {
  const auto problems = data_problems(d);
  if (problems.size() != 1) {
    ADD_FAILURE() << problems.size() << " problems for " << d.dataset << " " << d.path;
    return "";
  }
  EXPECT_EQ(problems[0].key, key);
  return problems[0].message;
}

// A path the user gave is named as it is, with no advice to install a Debian package.
void expect_no_package_advice(const std::string& message) {
  EXPECT_EQ(message.find("apt"), std::string::npos) << message;
  EXPECT_EQ(message.find("install"), std::string::npos) << message;
}

TEST(DataCheck, TextNeedsAFileOrAFolderWithFiles) {
  TempDir tmp;
  const std::string missing = tmp.file("nowhere");
  std::string m = problem_of(data("text", missing));
  EXPECT_NE(m.find(missing + " does not exist"), std::string::npos) << m;
  expect_no_package_advice(m);

  fs::create_directories(tmp.path() / "empty");
  m = problem_of(data("text", tmp.file("empty")));
  EXPECT_NE(m.find("no regular files under " + tmp.file("empty")), std::string::npos) << m;

  // fortunes skips the strfile indexes: a folder of *.dat alone holds nothing to read.
  touch(tmp.path() / "fortunes" / "art.dat");
  EXPECT_EQ(data_problems(data("text", tmp.file("fortunes"))).size(), 0u);
  m = problem_of(data("fortunes", tmp.file("fortunes")));
  EXPECT_NE(m.find("other than *.dat"), std::string::npos) << m;
  touch(tmp.path() / "fortunes" / "art");
  EXPECT_EQ(data_problems(data("fortunes", tmp.file("fortunes"))).size(), 0u);
  touch(tmp.path() / "one.txt");
  EXPECT_EQ(data_problems(data("text", tmp.file("one.txt"))).size(), 0u);
}

// s2s pairs: one .tsv or .jsonl file, listed (its lines are checked when the job loads it).
TEST(DataCheck, PairsNeedATsvOrJsonlFile) {
  TempDir tmp;
  const std::string missing = tmp.file("nowhere.jsonl");
  std::string m = problem_of(data("pairs", missing));
  EXPECT_NE(m.find(missing + " does not exist"), std::string::npos) << m;
  expect_no_package_advice(m);
  touch(tmp.path() / "pairs.csv");
  m = problem_of(data("pairs", tmp.file("pairs.csv")));
  EXPECT_NE(m.find("accepted are .tsv"), std::string::npos) << m;
  fs::create_directories(tmp.path() / "dir.tsv");
  m = problem_of(data("pairs", tmp.file("dir.tsv")));
  EXPECT_NE(m.find("not a regular file"), std::string::npos) << m;
  touch(tmp.path() / "pairs.jsonl");
  EXPECT_EQ(data_problems(data("pairs", tmp.file("pairs.jsonl"))).size(), 0u);
}

TEST(DataCheck, TokenShardsAndTheirValidationPath) {
  TempDir tmp;
  fs::create_directories(tmp.path() / "shards");
  touch(tmp.path() / "shards" / "notes.txt");
  std::string m = problem_of(data("bin", tmp.file("shards")));
  EXPECT_NE(m.find("holds no *.bin shards"), std::string::npos) << m;
  m = problem_of(data("bin", tmp.file("shards/train_*.bin")));
  EXPECT_NE(m.find("no file matches"), std::string::npos) << m;

  touch(tmp.path() / "shards" / "train_000.bin");
  runner::DataConfig d = data("bin", tmp.file("shards"));
  EXPECT_EQ(data_problems(d).size(), 0u);  // listed, not read: its header is checked at load
  d.val_path = tmp.file("val.bin");
  m = problem_of(d, "data.val_path");
  EXPECT_NE(m.find(tmp.file("val.bin") + " does not exist"), std::string::npos) << m;
  // Both at once.
  d.path = tmp.file("none");
  EXPECT_EQ(data_problems(d).size(), 2u);
}

TEST(DataCheck, IdxFolderNeedsItsFourFiles) {
  TempDir tmp;
  const std::string missing = tmp.file("fmnist");
  for (const char* dataset : {"fashion-mnist", "mnist", "idx"}) {
    const std::string m = problem_of(data(dataset, missing));
    EXPECT_NE(m.find("the IDX folder " + missing + " does not exist"), std::string::npos) << m;
    expect_no_package_advice(m);
  }
  touch(tmp.path() / "fmnist" / "train-images-idx3-ubyte.gz");
  touch(tmp.path() / "fmnist" / "train-labels-idx1-ubyte");
  touch(tmp.path() / "fmnist" / "t10k-images-idx3-ubyte");
  const std::string m = problem_of(data("fashion-mnist", missing));
  EXPECT_NE(m.find("t10k-labels-idx1-ubyte.gz exists"), std::string::npos) << m;
  expect_no_package_advice(m);
  touch(tmp.path() / "fmnist" / "t10k-labels-idx1-ubyte.gz");
  EXPECT_EQ(data_problems(data("mnist", missing)).size(), 0u);
}

TEST(DataCheck, CifarBatches) {
  TempDir tmp;
  fs::create_directories(tmp.path() / "c10");
  std::string m = problem_of(data("cifar10", tmp.file("c10")));
  EXPECT_NE(m.find("data_batch_1.bin not found"), std::string::npos) << m;
  for (int i = 1; i <= 5; ++i) {
    touch(tmp.path() / "c10" / "cifar-10-batches-bin" /
          ("data_batch_" + std::to_string(i) + ".bin"));
  }
  m = problem_of(data("cifar10", tmp.file("c10")));
  EXPECT_NE(m.find("test_batch.bin does not exist"), std::string::npos) << m;
  touch(tmp.path() / "c10" / "cifar-10-batches-bin" / "test_batch.bin");
  EXPECT_EQ(data_problems(data("cifar10", tmp.file("c10"))).size(), 0u);
  EXPECT_EQ(cifar_files(tmp.file("c10"), 10).train.size(), 5u);
}

TEST(DataCheck, DefaultLocationsAndTheirPackages) {
  EXPECT_EQ(data_path(data("fortunes", "")), default_fortunes_path());
  EXPECT_EQ(data_path(data("fashion-mnist", "")), default_fashion_mnist_path());
  EXPECT_EQ(data_path(data("fashion-mnist", "/d")), "/d");
  EXPECT_NE(missing_data_hint(data("fashion-mnist", "")).find("dataset-fashion-mnist"),
            std::string::npos);
  EXPECT_EQ(missing_data_hint(data("fashion-mnist", "/d")), "");
  EXPECT_EQ(missing_data_hint(data("mnist", "/d")), "");
  // A dataset that needs a path and has none is validate()'s to report, not this check's.
  EXPECT_EQ(data_problems(data("text", "")).size(), 0u);
  EXPECT_EQ(data_problems(data("cifar100", "")).size(), 0u);
}

}  // namespace
}  // namespace ablate::experiments

// The spelling `ablate` checks without LibTorch; only well-spelt CUDA names go to ablate-train.
TEST(DeviceName, AutoCpuCudaAndCudaNAreWellSpelt) {
  using ablate::experiments::device_name_problem;
  using ablate::experiments::is_cuda_device_name;
  for (const char* ok : {"auto", "cpu", "cuda", "cuda:0", "cuda:12"}) {
    EXPECT_EQ(device_name_problem(ok), "") << ok;
  }
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1 ", "CPU", "", "cuda0"}) {
    EXPECT_EQ(device_name_problem(bad),
              std::string(bad) + ", which is neither auto, cpu, cuda nor cuda:N")
        << bad;
    EXPECT_FALSE(is_cuda_device_name(bad)) << bad;
  }
  EXPECT_TRUE(is_cuda_device_name("cuda"));
  EXPECT_TRUE(is_cuda_device_name("cuda:3"));
  EXPECT_FALSE(is_cuda_device_name("cpu"));
  EXPECT_FALSE(is_cuda_device_name("auto"));
}
