#include "ablate/experiments/image_data.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "ablate/experiments/data_error.h"

namespace ablate::experiments {
namespace fs = std::filesystem;

namespace {

constexpr uint32_t kIdxImagesMagic = 0x00000803, kIdxLabelsMagic = 0x00000801;
constexpr int64_t kIdxClasses = 10;
constexpr size_t kInputBuffer = size_t{1} << 20;
constexpr size_t kReadChunk = size_t{64} << 20;
constexpr uint32_t kMaxSide = 1 << 14;  // rows and cols of an IDX image

std::string hex32(uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", v);
  return text;
}

std::string with_hint(std::string message, const std::string& hint) {
  return hint.empty() ? message : message + "; " + hint;
}

// Reads a file either raw or, when it starts with the gzip magic 1f 8b, through zlib (gzip
// members in turn, each checked against its CRC). Counts are exact, so a truncated file reports
// how many bytes it really gave.
class ByteReader {
 public:
  explicit ByteReader(const std::string& file) : file_(file), in_(file, std::ios::binary) {
    std::error_code ec;
    file_size_ = fs::file_size(file, ec);
    if (!in_ || ec) throw DataError("image data: cannot open " + file);
    char magic[2] = {0, 0};
    in_.read(magic, 2);
    gzip_ = in_.gcount() == 2 && static_cast<uint8_t>(magic[0]) == 0x1f &&
            static_cast<uint8_t>(magic[1]) == 0x8b;
    in_.clear();
    in_.seekg(0);
    if (gzip_) {
      buffer_.reset(new uint8_t[kInputBuffer]);
      if (inflateInit2(&z_, 15 + 16) != Z_OK) throw DataError("image data: zlib init failed");
      z_ready_ = true;
    }
  }
  ~ByteReader() {
    if (z_ready_) inflateEnd(&z_);
  }
  ByteReader(const ByteReader&) = delete;
  ByteReader& operator=(const ByteReader&) = delete;

  bool gzip() const { return gzip_; }
  uint64_t file_size() const { return file_size_; }
  // Whether a gzip stream ended before its end marker and trailer (set once the input runs out).
  bool truncated() const { return truncated_; }

  // Fills up to n bytes of dst; fewer only at the end of the data. Throws on a corrupt stream.
  size_t read(uint8_t* dst, size_t n) {
    if (!gzip_) {
      in_.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(n));
      return static_cast<size_t>(in_.gcount());
    }
    size_t done = 0;
    while (done < n && !finished_) {
      if (z_.avail_in == 0 && !refill()) {
        truncated_ = true;  // input gone before the stream's end marker
        break;
      }
      if (member_done_) {  // more input after a member: it must be another gzip member
        inflateReset(&z_);
        member_done_ = false;
      }
      const auto room = static_cast<uInt>(std::min<size_t>(n - done, UINT_MAX));
      z_.next_out = dst + done;
      z_.avail_out = room;
      const int r = inflate(&z_, Z_NO_FLUSH);
      done += room - z_.avail_out;
      if (r == Z_STREAM_END) {
        member_done_ = true;
        ++members_;
        if (z_.avail_in == 0 && !refill()) finished_ = true;
      } else if (r != Z_OK && r != Z_BUF_ERROR) {  // Z_BUF_ERROR: needs input, refilled above
        const std::string zlib = z_.msg ? z_.msg : "error " + std::to_string(r);
        if (members_ > 0 && z_.total_out == 0) {
          throw DataError("image data: " + file_ +
                          " has bytes after its gzip stream that are not another gzip member "
                          "(zlib: " +
                          zlib + ")");
        }
        throw DataError("image data: " + file_ + " is a corrupt gzip file (zlib: " + zlib + ")");
      }
    }
    return done;
  }

  // Reads what is left and returns its size (0 at a clean end).
  int64_t rest() {
    std::vector<uint8_t> scratch(1 << 16);
    int64_t total = 0;
    for (size_t got; (got = read(scratch.data(), scratch.size())) > 0;) {
      total += static_cast<int64_t>(got);
    }
    return total;
  }

 private:
  bool refill() {
    in_.read(reinterpret_cast<char*>(buffer_.get()), kInputBuffer);
    z_.next_in = buffer_.get();
    z_.avail_in = static_cast<uInt>(in_.gcount());
    return z_.avail_in > 0;
  }

  std::string file_;
  std::ifstream in_;
  uint64_t file_size_ = 0;
  bool gzip_ = false, z_ready_ = false, member_done_ = false, finished_ = false;
  bool truncated_ = false;
  int members_ = 0;  // gzip members read to their end
  std::unique_ptr<uint8_t[]> buffer_;
  z_stream z_{};
};

uint32_t big_endian_uint32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | static_cast<uint32_t>(p[3]);
}

struct IdxFile {
  std::vector<int64_t> dims;
  std::vector<uint8_t> payload;
};

// One IDX file of unsigned bytes: checks the magic, then reads exactly the payload the dims
// give, no more and no less.
IdxFile read_idx_file(const std::string& file, uint32_t magic) {
  const size_t rank = magic & 0xff;
  const size_t header_size = 4 + 4 * rank;
  const char* kind = magic == kIdxImagesMagic ? "IDX image file" : "IDX label file";
  ByteReader reader(file);
  const std::string decompressed = reader.gzip() ? " (decompressed)" : "";
  uint8_t header[16];
  const size_t got = reader.read(header, header_size);
  if (got < 4 || big_endian_uint32(header) != magic) {
    throw DataError("image data: " + file + " is not an " + kind + ": it starts with " +
                    (got < 4 ? "fewer than 4 bytes" : "magic " + hex32(big_endian_uint32(header))) +
                    ", expected magic " + hex32(magic));
  }
  if (got < header_size) {
    throw DataError("image data: " + file + " is truncated: expected a " +
                    std::to_string(header_size) + "-byte header, found " + std::to_string(got) +
                    " bytes" + decompressed);
  }
  IdxFile idx;
  uint64_t payload = 1;
  std::string shape;
  for (size_t d = 0; d < rank; ++d) {
    const uint32_t n = big_endian_uint32(header + 4 + 4 * d);
    if (n == 0 || (d > 0 && n > kMaxSide)) {
      throw DataError("image data: " + file + " has an implausible dimension " + std::to_string(n) +
                      " in its header");
    }
    payload *= n;  // at most 2^32 * 2^14 * 2^14: no overflow
    idx.dims.push_back(n);
    shape += (d ? " x " : "") + std::to_string(n);
  }
  const auto expected = static_cast<int64_t>(header_size + payload);
  // Grow as bytes arrive, so a corrupt header's huge count fails as truncation, not as an
  // allocation; reserve what the file can hold (deflate expands at most about 1032:1).
  const uint64_t bound = reader.gzip() ? reader.file_size() * 1032 + 1024 : reader.file_size();
  idx.payload.reserve(std::min(payload, bound));
  size_t read = 0;
  while (read < payload) {
    const size_t chunk = std::min<uint64_t>(payload - read, kReadChunk);
    idx.payload.resize(read + chunk);
    const size_t got = reader.read(idx.payload.data() + read, chunk);
    read += got;
    if (got < chunk) break;
  }
  const std::string ends_early = reader.truncated() ? ", the gzip stream ends early" : "";
  if (read < payload) {
    throw DataError("image data: " + file + " is truncated: its header says " + shape +
                    ", so expected " + std::to_string(expected) + " bytes" + decompressed +
                    ", found " + std::to_string(header_size + read) + ends_early);
  }
  const int64_t extra = reader.rest();
  if (extra > 0) {
    throw DataError("image data: " + file + " is too long: its header says " + shape +
                    ", so expected " + std::to_string(expected) + " bytes" + decompressed +
                    ", found " + std::to_string(expected + extra));
  }
  if (reader.truncated()) {
    throw DataError("image data: " + file +
                    " is truncated: its gzip stream ends before its "
                    "end marker and checksum (all " +
                    std::to_string(expected) + " expected bytes were there, but the file is cut)");
  }
  return idx;
}

// dir/name, or dir/name.gz; the hint when neither exists.
std::string find_idx_file(const std::string& dir, const std::string& name,
                          const std::string& hint) {
  const fs::path raw = fs::path(dir) / name;
  fs::path gz = raw;
  gz += ".gz";
  std::error_code ec;
  if (fs::is_regular_file(raw, ec)) return raw.string();
  if (fs::is_regular_file(gz, ec)) return gz.string();
  throw DataError(with_hint("image data: neither " + raw.string() + " nor " + gz.string() +
                                " exists (an IDX file of MNIST / Fashion-MNIST)",
                            hint));
}

ImageSet read_idx_pair(const std::string& images_file, const std::string& labels_file) {
  IdxFile images = read_idx_file(images_file, kIdxImagesMagic);
  IdxFile labels = read_idx_file(labels_file, kIdxLabelsMagic);
  if (images.dims[0] != labels.dims[0]) {
    throw DataError("image data: " + images_file + " holds " + std::to_string(images.dims[0]) +
                    " images but " + labels_file + " holds " + std::to_string(labels.dims[0]) +
                    " labels");
  }
  ImageSet set;
  set.count = images.dims[0];
  set.channels = 1;
  set.height = images.dims[1];
  set.width = images.dims[2];
  set.pixels = std::move(images.payload);
  set.labels.assign(labels.payload.begin(), labels.payload.end());
  for (size_t i = 0; i < set.labels.size(); ++i) {
    if (set.labels[i] >= kIdxClasses) {
      throw DataError("image data: " + labels_file + " has label " + std::to_string(set.labels[i]) +
                      " at index " + std::to_string(i) + ", expected labels below " +
                      std::to_string(kIdxClasses));
    }
  }
  return set;
}

struct CifarLayout {
  const char* name;       // "CIFAR-10"
  const char* subfolder;  // what the official archive unpacks to
  const char* archive;    // the binary version's archive
  std::vector<std::string> train_files, test_files;
  int64_t label_bytes;     // 1, or 2 (coarse, fine) for CIFAR-100
  int64_t coarse_classes;  // CIFAR-100's coarse labels (checked too)
};

constexpr int64_t kCifarSide = 32, kCifarChannels = 3;
constexpr int64_t kCifarPixels = kCifarChannels * kCifarSide * kCifarSide;

void append_cifar_file(const std::string& file, const CifarLayout& layout, int64_t classes,
                       ImageSet& set) {
  std::error_code ec;
  const auto size = static_cast<int64_t>(fs::file_size(file, ec));
  std::ifstream in(file, std::ios::binary);
  if (ec || !in) {
    throw DataError("image data: " + file + " does not exist or cannot be read (the " +
                    layout.name + " binary version, " + layout.archive + ")");
  }
  const int64_t record = layout.label_bytes + kCifarPixels;
  if (size == 0 || size % record != 0) {
    const int64_t expected = (size / record + 1) * record;
    throw DataError("image data: " + file + " is truncated: " + layout.name + " records are " +
                    std::to_string(record) + " bytes, so expected a multiple of " +
                    std::to_string(record) + " (" + std::to_string(expected) +
                    " for whole records), found " + std::to_string(size) + " bytes");
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (!in.read(reinterpret_cast<char*>(bytes.data()), size)) {
    throw DataError("image data: cannot read " + file);
  }
  const int64_t n = size / record;
  set.pixels.resize(static_cast<size_t>((set.count + n) * kCifarPixels));
  uint8_t* out = set.pixels.data() + set.count * kCifarPixels;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* r = bytes.data() + i * record;
    const int64_t label = r[layout.label_bytes - 1];
    if (layout.label_bytes == 2 && r[0] >= layout.coarse_classes) {
      throw DataError("image data: " + file + " has coarse label " + std::to_string(r[0]) +
                      " in record " + std::to_string(i) + ", expected below " +
                      std::to_string(layout.coarse_classes));
    }
    if (label >= classes) {
      throw DataError("image data: " + file + " has label " + std::to_string(label) +
                      " in record " + std::to_string(i) + ", expected below " +
                      std::to_string(classes));
    }
    std::copy(r + layout.label_bytes, r + record, out + i * kCifarPixels);
    set.labels.push_back(label);
  }
  set.count += n;
}

}  // namespace

std::string default_fashion_mnist_path() { return "/usr/share/datasets/fashion-mnist"; }

IdxFiles idx_files(const std::string& dir, const std::string& missing_hint) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw DataError(
        with_hint("image data: the IDX folder " + dir + " does not exist", missing_hint));
  }
  return {find_idx_file(dir, "train-images-idx3-ubyte", missing_hint),
          find_idx_file(dir, "train-labels-idx1-ubyte", missing_hint),
          find_idx_file(dir, "t10k-images-idx3-ubyte", missing_hint),
          find_idx_file(dir, "t10k-labels-idx1-ubyte", missing_hint)};
}

ImageData load_idx(const std::string& dir, const std::string& missing_hint) {
  const IdxFiles files = idx_files(dir, missing_hint);
  ImageData data;
  data.train = read_idx_pair(files.train_images, files.train_labels);
  data.test = read_idx_pair(files.test_images, files.test_labels);
  if (data.train.height != data.test.height || data.train.width != data.test.width) {
    throw DataError("image data: in " + dir + " the training images are " +
                    std::to_string(data.train.height) + " x " + std::to_string(data.train.width) +
                    " but the test images " + std::to_string(data.test.height) + " x " +
                    std::to_string(data.test.width));
  }
  data.classes = kIdxClasses;
  return data;
}

namespace {

CifarLayout cifar_layout(int classes) {
  CifarLayout layout;
  if (classes == 10) {
    layout = {
        "CIFAR-10", "cifar-10-batches-bin", "cifar-10-binary.tar.gz", {}, {"test_batch.bin"}, 1, 0};
    for (int i = 1; i <= 5; ++i)
      layout.train_files.push_back("data_batch_" + std::to_string(i) + ".bin");
  } else if (classes == 100) {
    layout = {
        "CIFAR-100", "cifar-100-binary", "cifar-100-binary.tar.gz", {"train.bin"}, {"test.bin"}, 2,
        20};
  } else {
    throw DataError("image data: CIFAR has 10 or 100 classes, not " + std::to_string(classes));
  }
  return layout;
}

}  // namespace

CifarFiles cifar_files(const std::string& dir, int classes) {
  const CifarLayout layout = cifar_layout(classes);
  // The folder itself, or the folder the official archive unpacks to inside it.
  std::error_code ec;
  fs::path base(dir);
  if (!fs::exists(base / layout.train_files[0], ec) &&
      fs::is_directory(base / layout.subfolder, ec)) {
    base /= layout.subfolder;
  }
  if (!fs::exists(base / layout.train_files[0], ec)) {
    throw DataError("image data: " + (base / layout.train_files[0]).string() +
                    " not found (nor in " + (fs::path(dir) / layout.subfolder).string() +
                    "): expects the " + layout.name + " binary version (" + layout.archive +
                    " from the dataset's authors; no Debian package provides it)");
  }
  CifarFiles files;
  for (const auto& name : layout.train_files) files.train.push_back((base / name).string());
  for (const auto& name : layout.test_files) files.test.push_back((base / name).string());
  for (const auto* list : {&files.train, &files.test}) {
    for (const auto& file : *list) {
      if (!fs::is_regular_file(file, ec)) {
        throw DataError("image data: " + file + " does not exist (the " + layout.name +
                        " binary version, " + layout.archive + ")");
      }
    }
  }
  return files;
}

ImageData load_cifar(const std::string& dir, int classes) {
  const CifarLayout layout = cifar_layout(classes);
  const CifarFiles files = cifar_files(dir, classes);
  ImageData data;
  data.classes = classes;
  for (ImageSet* set : {&data.train, &data.test}) {
    set->channels = kCifarChannels;
    set->height = set->width = kCifarSide;
  }
  for (const auto& file : files.train) append_cifar_file(file, layout, classes, data.train);
  for (const auto& file : files.test) append_cifar_file(file, layout, classes, data.test);
  return data;
}

}  // namespace ablate::experiments
