#include "ablate/experiments/device_name.h"

namespace ablate::experiments {

std::string device_name_problem(const std::string& name) {
  if (name == "auto" || name == "cpu" || name == "cuda") return "";
  const bool cuda_n = name.rfind("cuda:", 0) == 0 && name.size() > 5 &&
                      name.find_first_not_of("0123456789", 5) == std::string::npos;
  return cuda_n ? "" : name + ", which is neither auto, cpu, cuda nor cuda:N";
}

bool is_cuda_device_name(const std::string& name) {
  return name != "auto" && name != "cpu" && device_name_problem(name).empty();
}

}  // namespace ablate::experiments
