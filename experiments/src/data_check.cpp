#include "ablate/experiments/data_check.h"

#include "ablate/experiments/data_error.h"
#include "ablate/experiments/image_data.h"
#include "ablate/experiments/pairs_data.h"
#include "ablate/experiments/text_data.h"
#include "ablate/experiments/token_shards.h"

namespace ablate::experiments {

std::string data_path(const runner::DataConfig& data) {
  if (!data.path.empty()) return data.path;
  if (data.dataset == "fortunes") return default_fortunes_path();
  if (data.dataset == "fashion-mnist") return default_fashion_mnist_path();
  return "";
}

std::string missing_data_hint(const runner::DataConfig& data) {
  if (data.dataset == "fashion-mnist" && data.path.empty()) {
    return "install the Debian package dataset-fashion-mnist (apt-get install "
           "dataset-fashion-mnist)";
  }
  return "";
}

std::vector<DataProblem> data_problems(const runner::DataConfig& data) {
  std::vector<DataProblem> problems;
  const std::string path = data_path(data);
  if (path.empty()) return problems;
  try {
    const std::string& d = data.dataset;
    if (d == "fortunes" || d == "text") {
      TextOptions options;
      options.path = path;
      options.fortune_format = d == "fortunes";
      text_files(options);
    } else if (d == "bin") {
      list_token_shards(path);
    } else if (d == "pairs") {
      check_pairs_file(path);
    } else if (d == "cifar10" || d == "cifar100") {
      cifar_files(path, d == "cifar10" ? 10 : 100);
    } else {
      idx_files(path, missing_data_hint(data));
    }
  } catch (const DataError& e) {
    problems.push_back({"data.path", e.what()});
  }
  if (data.dataset == "bin" && !data.val_path.empty()) {
    try {
      list_token_shards(data.val_path);
    } catch (const DataError& e) {
      problems.push_back({"data.val_path", e.what()});
    }
  }
  return problems;
}

}  // namespace ablate::experiments
