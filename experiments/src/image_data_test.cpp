#include "ablate/experiments/image_data.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <zlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <string>

#include "ablate/experiments/data_error.h"
#include "ablate/testing/errors.h"
#include "ablate/testing/temp_dir.h"

namespace ablate::experiments {
namespace {
namespace fs = std::filesystem;

using ablate::testing::TempDir;

// The DataError message of `f`, failing the test when it throws none.
template <typename F>
std::string error_of(F f) {
  return testing::thrown_message<DataError>(f);
}

#define EXPECT_HAS(message, part)                    \
  EXPECT_NE((message).find(part), std::string::npos) \
      << "missing \"" << (part) << "\" in: " << (message)

using Bytes = std::vector<uint8_t>;

void put_be32(std::string& out, uint32_t v) {
  for (int b = 3; b >= 0; --b) out.push_back(static_cast<char>((v >> (8 * b)) & 0xff));
}

std::string idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims, const Bytes& payload) {
  std::string out;
  put_be32(out, magic);
  for (uint32_t d : dims) put_be32(out, d);
  out.append(payload.begin(), payload.end());
  return out;
}

void write_raw(const fs::path& file, const std::string& bytes) {
  std::ofstream(file, std::ios::binary) << bytes;
}

// gzip through zlib's own writer; with members > 1 the bytes are split over that many members.
void write_gzip(const fs::path& file, const std::string& bytes, int members = 1) {
  const size_t part = bytes.size() / static_cast<size_t>(members);
  for (int m = 0; m < members; ++m) {
    gzFile gz = gzopen(file.c_str(), m == 0 ? "wb" : "ab");
    ASSERT_NE(gz, nullptr);
    const size_t begin = part * static_cast<size_t>(m);
    const size_t end = m + 1 == members ? bytes.size() : begin + part;
    ASSERT_EQ(gzwrite(gz, bytes.data() + begin, static_cast<unsigned>(end - begin)),
              static_cast<int>(end - begin));
    ASSERT_EQ(gzclose(gz), Z_OK);
  }
}

std::string read_raw(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Bytes pixels(size_t n, uint8_t salt) {
  Bytes p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(i * 37 + salt);
  return p;
}

constexpr uint32_t kImages = 0x803, kLabels = 0x801;
const std::string kHint = "install the Debian package dataset-fashion-mnist";

// Train: 3 images of 2 x 3; test: 2. Train images gzip with a .gz name, train labels raw, test
// images raw, test labels gzip under the raw name (found by its magic bytes).
struct IdxFixture {
  TempDir dir;
  Bytes train_pixels = pixels(3 * 6, 1), test_pixels = pixels(2 * 6, 100);
  Bytes train_labels = {9, 0, 5}, test_labels = {3, 7};
  fs::path train_images = dir.path() / "train-images-idx3-ubyte.gz";
  fs::path train_labels_file = dir.path() / "train-labels-idx1-ubyte";
  fs::path test_images = dir.path() / "t10k-images-idx3-ubyte";
  fs::path test_labels_file = dir.path() / "t10k-labels-idx1-ubyte";

  IdxFixture() {
    write_gzip(train_images, idx_bytes(kImages, {3, 2, 3}, train_pixels));
    write_raw(train_labels_file, idx_bytes(kLabels, {3}, train_labels));
    write_raw(test_images, idx_bytes(kImages, {2, 2, 3}, test_pixels));
    write_gzip(test_labels_file, idx_bytes(kLabels, {2}, test_labels));
  }
  std::string load_error() {
    return error_of([&] { load_idx(dir.str(), kHint); });
  }
};

TEST(ImageData, IdxRawAndGzip) {
  IdxFixture f;
  const ImageData d = load_idx(f.dir.str(), kHint);
  EXPECT_EQ(d.classes, 10);
  EXPECT_EQ(d.train.count, 3);
  EXPECT_EQ(d.train.channels, 1);
  EXPECT_EQ(d.train.height, 2);
  EXPECT_EQ(d.train.width, 3);
  EXPECT_EQ(d.train.pixels, f.train_pixels);
  EXPECT_EQ(d.train.labels, (std::vector<int64_t>{9, 0, 5}));
  EXPECT_EQ(d.test.count, 2);
  EXPECT_EQ(d.test.pixels, f.test_pixels);
  EXPECT_EQ(d.test.labels, (std::vector<int64_t>{3, 7}));

  // Concatenated gzip members read as one stream; a raw file beside a .gz one is preferred.
  write_gzip(f.train_images, idx_bytes(kImages, {3, 2, 3}, f.train_pixels), 3);
  write_raw(f.dir.path() / "train-labels-idx1-ubyte.gz", "ignored");
  const ImageData again = load_idx(f.dir.str(), kHint);
  EXPECT_EQ(again.train.pixels, f.train_pixels);
  EXPECT_EQ(again.train.labels, d.train.labels);
}

TEST(ImageData, IdxMissing) {
  IdxFixture f;
  std::string m = error_of([&] { load_idx((f.dir.path() / "none").string(), kHint); });
  EXPECT_HAS(m, (f.dir.path() / "none").string());
  EXPECT_HAS(m, "; " + kHint);
  fs::remove(f.test_images);
  m = f.load_error();
  EXPECT_HAS(m, f.test_images.string());
  EXPECT_HAS(m, kHint);
}

TEST(ImageData, IdxHeaderAndLabelErrors) {
  IdxFixture f;
  write_raw(f.test_images, idx_bytes(kLabels, {2}, f.test_labels));  // labels where images go
  std::string m = f.load_error();
  EXPECT_HAS(m, f.test_images.string());
  EXPECT_HAS(m, "magic 0x00000801, expected magic 0x00000803");

  write_raw(f.test_images, idx_bytes(kImages, {3, 2, 3}, pixels(18, 0)));  // 3 images, 2 labels
  m = f.load_error();
  EXPECT_HAS(m, "holds 3 images but");
  EXPECT_HAS(m, "2 labels");

  write_raw(f.test_images, idx_bytes(kImages, {2, 3, 2}, f.test_pixels));  // 3 x 2, train 2 x 3
  m = f.load_error();
  EXPECT_HAS(m, "training images are 2 x 3 but the test images 3 x 2");

  write_raw(f.test_images, idx_bytes(kImages, {2, 0, 3}, {}));
  m = f.load_error();
  EXPECT_HAS(m, "implausible dimension 0");

  write_raw(f.test_images, idx_bytes(kImages, {2, 2, 3}, f.test_pixels));
  write_raw(f.train_labels_file, idx_bytes(kLabels, {3}, {9, 10, 0}));
  m = f.load_error();
  EXPECT_HAS(m, "label 10 at index 1");
}

TEST(ImageData, IdxTruncatedAndTooLongRaw) {
  IdxFixture f;
  const std::string full = idx_bytes(kImages, {2, 2, 3}, f.test_pixels);  // 16 + 12 bytes
  write_raw(f.test_images, full.substr(0, full.size() - 5));
  std::string m = f.load_error();
  EXPECT_HAS(m, f.test_images.string());
  EXPECT_HAS(m, "truncated");
  EXPECT_HAS(m, "expected 28 bytes, found 23");

  write_raw(f.test_images, full.substr(0, 10));
  m = f.load_error();
  EXPECT_HAS(m, "expected a 16-byte header, found 10 bytes");

  write_raw(f.test_images, full + "xy");
  m = f.load_error();
  EXPECT_HAS(m, "too long");
  EXPECT_HAS(m, "expected 28 bytes, found 30");

  write_raw(f.test_images, "");
  m = f.load_error();
  EXPECT_HAS(m, "fewer than 4 bytes");
}

TEST(ImageData, IdxTruncatedAndCorruptGzip) {
  IdxFixture f;
  // A whole gzip stream whose content is short.
  const std::string full = idx_bytes(kImages, {3, 2, 3}, f.train_pixels);  // 34 bytes
  write_gzip(f.train_images, full.substr(0, 29));
  std::string m = f.load_error();
  EXPECT_HAS(m, f.train_images.string());
  EXPECT_HAS(m, "expected 34 bytes (decompressed), found 29");

  // A gzip file cut in the middle of its compressed data (random pixels: ~the same size).
  std::mt19937 rng(7);
  Bytes noise(100 * 28 * 28);
  for (auto& b : noise) b = static_cast<uint8_t>(rng());
  write_gzip(f.train_images, idx_bytes(kImages, {100, 28, 28}, noise));
  const std::string gz = read_raw(f.train_images);
  write_raw(f.train_images, gz.substr(0, gz.size() / 2));
  m = f.load_error();
  EXPECT_HAS(m, f.train_images.string());
  EXPECT_HAS(m, "truncated");
  EXPECT_HAS(m, "expected 78416 bytes (decompressed), found ");
  EXPECT_HAS(m, "the gzip stream ends early");

  // Every data byte there, the trailer (CRC and size) cut.
  write_gzip(f.train_images, full);
  const std::string whole = read_raw(f.train_images);
  write_raw(f.train_images, whole.substr(0, whole.size() - 4));
  m = f.load_error();
  EXPECT_HAS(m, "truncated: its gzip stream ends before its end marker");

  // A wrong CRC.
  std::string bad = whole;
  bad[bad.size() - 8] = static_cast<char>(bad[bad.size() - 8] ^ 0x55);
  write_raw(f.train_images, bad);
  m = f.load_error();
  EXPECT_HAS(m, "corrupt gzip file");
  EXPECT_HAS(m, "incorrect data check");

  // Corrupt compressed data.
  write_gzip(f.train_images, idx_bytes(kImages, {100, 28, 28}, Bytes(78400, 3)));
  bad = read_raw(f.train_images);
  for (size_t i = 12; i < bad.size() - 8; i += 3) bad[i] = static_cast<char>(bad[i] ^ 0xa5);
  write_raw(f.train_images, bad);
  m = f.load_error();
  EXPECT_HAS(m, f.train_images.string());

  // Bytes after the stream that are not another member.
  write_raw(f.train_images, whole + "junk");
  m = f.load_error();
  EXPECT_HAS(m, "not another gzip member");
}

void write_cifar(const fs::path& file, const std::vector<std::vector<uint8_t>>& label_bytes,
                 uint8_t salt) {
  std::string out;
  for (size_t r = 0; r < label_bytes.size(); ++r) {
    out.append(label_bytes[r].begin(), label_bytes[r].end());
    const Bytes p = pixels(3072, static_cast<uint8_t>(salt + r));
    out.append(p.begin(), p.end());
  }
  fs::create_directories(file.parent_path());
  write_raw(file, out);
}

TEST(ImageData, Cifar10FromTheArchiveFolder) {
  TempDir dir;
  const fs::path base = dir.path() / "cifar-10-batches-bin";
  const std::vector<std::vector<std::vector<uint8_t>>> batches = {
      {{3}}, {{9}, {0}}, {{1}}, {{2}}, {{8}}};
  for (size_t b = 0; b < batches.size(); ++b) {
    write_cifar(base / ("data_batch_" + std::to_string(b + 1) + ".bin"), batches[b],
                static_cast<uint8_t>(10 * b));
  }
  write_cifar(base / "test_batch.bin", {{4}, {5}}, 200);
  const ImageData d = load_cifar(dir.str(), 10);
  EXPECT_EQ(d.classes, 10);
  EXPECT_EQ(d.train.count, 6);
  EXPECT_EQ(d.train.channels, 3);
  EXPECT_EQ(d.train.height, 32);
  EXPECT_EQ(d.train.width, 32);
  EXPECT_EQ(d.train.labels, (std::vector<int64_t>{3, 9, 0, 1, 2, 8}));
  Bytes expected;
  for (size_t b = 0; b < batches.size(); ++b) {
    for (size_t r = 0; r < batches[b].size(); ++r) {
      const Bytes p = pixels(3072, static_cast<uint8_t>(10 * b + r));
      expected.insert(expected.end(), p.begin(), p.end());
    }
  }
  EXPECT_EQ(d.train.pixels, expected);
  EXPECT_EQ(d.test.count, 2);
  EXPECT_EQ(d.test.labels, (std::vector<int64_t>{4, 5}));
  Bytes test_expected = pixels(3072, 200), second = pixels(3072, 201);
  test_expected.insert(test_expected.end(), second.begin(), second.end());
  EXPECT_EQ(d.test.pixels, test_expected);
  // The same folder given directly.
  EXPECT_EQ(load_cifar(base.string(), 10).train.labels, d.train.labels);
}

TEST(ImageData, Cifar100UsesFineLabels) {
  TempDir dir;
  write_cifar(dir.path() / "train.bin", {{19, 99}, {0, 0}, {7, 42}}, 5);
  write_cifar(dir.path() / "test.bin", {{3, 17}}, 50);
  const ImageData d = load_cifar(dir.str(), 100);
  EXPECT_EQ(d.classes, 100);
  EXPECT_EQ(d.train.count, 3);
  EXPECT_EQ(d.train.labels, (std::vector<int64_t>{99, 0, 42}));
  EXPECT_EQ(d.test.labels, (std::vector<int64_t>{17}));
  EXPECT_EQ(Bytes(d.train.pixels.begin() + 2 * 3072, d.train.pixels.end()), pixels(3072, 7));
  EXPECT_EQ(d.test.pixels, pixels(3072, 50));
}

TEST(ImageData, CifarErrors) {
  TempDir dir;
  std::string m = error_of([&] { load_cifar(dir.str(), 10); });
  EXPECT_HAS(m, "data_batch_1.bin not found");
  EXPECT_HAS(m, "CIFAR-10 binary version");
  m = error_of([&] { load_cifar(dir.str(), 100); });
  EXPECT_HAS(m, "cifar-100-binary");
  m = error_of([&] { load_cifar(dir.str(), 7); });
  EXPECT_HAS(m, "10 or 100 classes");

  for (int b = 1; b <= 5; ++b) {
    write_cifar(dir.path() / ("data_batch_" + std::to_string(b) + ".bin"), {{1}}, 0);
  }
  m = error_of([&] { load_cifar(dir.str(), 10); });  // no test batch
  EXPECT_HAS(m, (dir.path() / "test_batch.bin").string());
  write_cifar(dir.path() / "test_batch.bin", {{1}, {2}}, 0);
  ASSERT_EQ(load_cifar(dir.str(), 10).test.count, 2);

  fs::resize_file(dir.path() / "test_batch.bin", 2 * 3073 - 1);
  m = error_of([&] { load_cifar(dir.str(), 10); });
  EXPECT_HAS(m, (dir.path() / "test_batch.bin").string());
  EXPECT_HAS(m, "truncated");
  EXPECT_HAS(m, "expected a multiple of 3073 (6146 for whole records), found 6145 bytes");
  fs::resize_file(dir.path() / "test_batch.bin", 0);
  m = error_of([&] { load_cifar(dir.str(), 10); });
  EXPECT_HAS(m, "found 0 bytes");

  write_cifar(dir.path() / "test_batch.bin", {{1}, {10}}, 0);
  m = error_of([&] { load_cifar(dir.str(), 10); });
  EXPECT_HAS(m, "label 10 in record 1, expected below 10");

  write_cifar(dir.path() / "train.bin", {{1, 1}, {2, 100}}, 0);
  write_cifar(dir.path() / "test.bin", {{1, 1}}, 0);
  m = error_of([&] { load_cifar(dir.str(), 100); });
  EXPECT_HAS(m, "label 100 in record 1, expected below 100");
  write_cifar(dir.path() / "train.bin", {{20, 1}}, 0);
  m = error_of([&] { load_cifar(dir.str(), 100); });
  EXPECT_HAS(m, "coarse label 20");
  write_cifar(dir.path() / "train.bin", {{1, 1}}, 0);
  fs::resize_file(dir.path() / "test.bin", 3073);  // a CIFAR-10-sized record
  m = error_of([&] { load_cifar(dir.str(), 100); });
  EXPECT_HAS(m, "expected a multiple of 3074");
}

// The real data set of the Debian package dataset-fashion-mnist, when installed. The sums
// were computed independently (Python's gzip module).
TEST(ImageData, DebianFashionMnistPackage) {
  if (!fs::is_directory(default_fashion_mnist_path())) {
    GTEST_SKIP() << "dataset-fashion-mnist not installed";
  }
  const auto start = std::chrono::steady_clock::now();
  const ImageData d = load_idx(default_fashion_mnist_path(), kHint);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "Fashion-MNIST loaded in " << seconds << " s\n";
  EXPECT_EQ(d.classes, 10);
  EXPECT_EQ(d.train.count, 60000);
  EXPECT_EQ(d.test.count, 10000);
  EXPECT_EQ(d.train.height, 28);
  EXPECT_EQ(d.train.width, 28);
  EXPECT_EQ(d.test.height, 28);
  EXPECT_EQ(d.train.pixels.size(), 60000u * 784u);
  EXPECT_EQ(d.test.pixels.size(), 10000u * 784u);
  EXPECT_EQ(std::accumulate(d.train.pixels.begin(), d.train.pixels.begin() + 784, int64_t{0}),
            76247);
  EXPECT_EQ(std::accumulate(d.train.pixels.begin(), d.train.pixels.end(), int64_t{0}), 3431114169);
  EXPECT_EQ(std::accumulate(d.test.pixels.begin(), d.test.pixels.end(), int64_t{0}), 573469082);
  EXPECT_EQ(d.train.labels[0], 9);
  EXPECT_EQ(d.test.labels[1], 2);
  std::vector<int64_t> per_class(10, 0);
  for (int64_t l : d.train.labels) ++per_class.at(static_cast<size_t>(l));
  EXPECT_EQ(per_class, std::vector<int64_t>(10, 6000));
}

}  // namespace
}  // namespace ablate::experiments
