#pragma once
// Image classification datasets for the ViT task (docs/design.md section 5). Torch-free header.
//  - IDX (MNIST, Fashion-MNIST): train-images-idx3-ubyte, train-labels-idx1-ubyte,
//    t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each raw or gzip-compressed with a `.gz`
//    name (gzip is recognised by its magic bytes 1f 8b, whatever the name). Big-endian header:
//    magic 0x00000803 and dims count, rows, cols for images; 0x00000801 and count for labels;
//    then exactly count * rows * cols (count) bytes. Labels are < 10.
//  - CIFAR-10 binary: data_batch_1.bin .. data_batch_5.bin and test_batch.bin, records of one
//    label byte (< 10) and 3072 pixel bytes (3 x 32 x 32, channel-major). CIFAR-100 binary:
//    train.bin and test.bin, records of a coarse label (< 20), a fine label (< 100, the one
//    used) and 3072 pixel bytes.
// Every size is checked: a truncated file (raw or gzip) or a corrupt gzip stream is a DataError
// naming the file, never garbage.
#include <cstdint>
#include <string>
#include <vector>

namespace ablate::experiments {

struct ImageSet {
  int64_t count = 0, channels = 1, height = 0, width = 0;
  std::vector<uint8_t> pixels;  // count x channels x height x width, row major
  std::vector<int64_t> labels;  // count
};

struct ImageData {
  ImageSet train, test;
  int64_t classes = 0;
};

// The four IDX files of `dir` (each raw or .gz), without reading them. Throws DataError for a
// missing folder or file, with `missing_hint` appended (e.g. "install the Debian package
// dataset-fashion-mnist"; "" for none).
struct IdxFiles {
  std::string train_images, train_labels, test_images, test_labels;
};
IdxFiles idx_files(const std::string& dir, const std::string& missing_hint);

// Reads the four IDX files in `dir` (10 classes); a missing one as idx_files.
ImageData load_idx(const std::string& dir, const std::string& missing_hint);

// The CIFAR-10 (classes 10) or CIFAR-100 (classes 100) batch files of `dir` or of its subfolder
// (see load_cifar), without reading them. Throws DataError when one is missing.
struct CifarFiles {
  std::vector<std::string> train, test;
};
CifarFiles cifar_files(const std::string& dir, int classes);

// Reads CIFAR-10 (classes 10) or CIFAR-100 (classes 100) binary batches from `dir` or from its
// subfolder cifar-10-batches-bin / cifar-100-binary (the folders the official archives unpack
// to).
ImageData load_cifar(const std::string& dir, int classes);

// Where the Debian package `dataset-fashion-mnist` installs Fashion-MNIST.
std::string default_fashion_mnist_path();

}  // namespace ablate::experiments
