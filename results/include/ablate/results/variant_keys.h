#pragma once
// Which attention keys apply to which variant: the one rule shared by the runner (job ids reset
// the keys a variant ignores, so they never split a job; a plan stores only the keys that apply)
// and the reports (an arm's label names only keys that apply to its variant). It lives in the
// results library, the lowest torch-free one, so that both can use it; the semantics of each key
// are in core/include/ablate/core/attention.h.
#include <set>
#include <string>

namespace ablate::results {

// The attention keys (dotted, "attention.noise_scale") that an attention with this variant and
// faithful flag ignores: pgqa's noise keys for every other variant, kv_heads for mha and mqa,
// s2s attention.sites for mha (mha at any sites is mha everywhere),
// min_per_group and eps for the faithful dynamic variants, `faithful` for variants without a
// faithful mode, ... An unknown variant ignores nothing.
std::set<std::string> ignored_attention_keys(const std::string& variant, bool faithful);

}  // namespace ablate::results
