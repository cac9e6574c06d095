#pragma once
// Whether the data a config names is there, before a job loads it (docs/design.md section 3):
// `ablate plan` and `ablate run` check every job with it before anything is written. The files
// are listed as the dataset's reader lists them (text_files, list_token_shards, idx_files,
// cifar_files), so the rules are the readers' own; the files are read, and their contents
// checked, when the job loads them (a DataError then). Torch-free.
#include <string>
#include <vector>

#include "ablate/runner/config.h"

namespace ablate::experiments {

// The file or folder a dataset is read from: data.path, or the Debian package's location for
// fortunes and fashion-mnist without one.
std::string data_path(const runner::DataConfig& data);

// What a "does not exist" error of an IDX dataset adds: how to install the Debian package when
// the path is its default location, else "" (a path the user gave is named as it is).
std::string missing_data_hint(const runner::DataConfig& data);

struct DataProblem {
  std::string key;      // "data.path" or "data.val_path"
  std::string message;  // the reader's DataError message
};

// The problems of the data `data` names: a path that does not exist, or holds none of the files
// its dataset's reader needs. Empty when there is none, and for a dataset without the path it
// needs (validate() reports that).
std::vector<DataProblem> data_problems(const runner::DataConfig& data);

}  // namespace ablate::experiments
