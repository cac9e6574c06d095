#pragma once
// Canonical form of a resolved Config and its hash, the job id (DESIGN.md section 2).
//
// The canonical text is YAML that parse_config reads back into an equal Config: sections nested,
// keys sorted at every level, ints as integers, floats in the shortest text that round-trips
// (so 1e-3, 0.001 and 1.0e-3 give the same text), strings
// quoted only where YAML needs it. Fields of the other task (model.patch in an lm config) are
// left out: they cannot be set there and do not affect the run. Torch-free and YAML-free.
#include <string>

#include "ablate/runner/config.h"

namespace ablate::runner {

struct FieldInfo;

// Shortest round-trip text of a double, always with a '.' and a signed exponent if any, as YAML
// 1.1 and 1.2 readers both take for a float ("0.001", "1.0e-6", "10000.0", "1.5e+20"); ".inf",
// "-.inf", ".nan" for the non-finite values.
std::string format_float(double value);

// A string as a YAML scalar: plain when YAML reads it back as the same string, else
// double-quoted with escapes.
std::string yaml_quote(const std::string& text);

// The canonical YAML scalar of one field's value in `config`.
std::string format_value(const FieldInfo& field, const Config& config);

// Every field of config's task, nested by section, keys sorted.
std::string to_yaml(const Config& config);

// to_yaml restricted to the semantic fields: what the job id hashes.
std::string canonical_semantic_text(const Config& config);

// 16 lowercase hex digits of XXH64 (seed 0) over canonical_semantic_text.
std::string config_hash(const Config& config);

}  // namespace ablate::runner
