// libFuzzer target: the input as a config file, through parse_config and validate
// (runner/parse.h), then the canonical form's promise (runner/canonical.h): to_yaml reads back
// into an equal config, with the same job id. Bad input must end as a ConfigError (exit status 2
// in `ablate train`); any other exception, a broken promise (a trap), a crash, a sanitizer
// report or a hang is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ablate/runner/canonical.h"
#include "ablate/runner/parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ablate::runner;
  const std::string text(reinterpret_cast<const char*>(data), size);
  Config config;
  try {
    config = parse_config(text, "fuzz.yaml");
  } catch (const ConfigError&) {
    return 0;
  }
  // A config parse_config accepted is valid, and its canonical text is a valid config again.
  validate(config);
  const std::string canonical = to_yaml(config);
  const Config again = parse_config(canonical, "canonical.yaml");
  if (to_yaml(again) != canonical || job_id(again) != job_id(config)) __builtin_trap();
  return 0;
}
