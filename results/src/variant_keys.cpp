#include "ablate/results/variant_keys.h"

#include <initializer_list>

namespace ablate::results {

std::set<std::string> ignored_attention_keys(const std::string& v, bool faithful) {
  static const std::set<std::string> kKnown = {"mha",   "gqa",   "mqa",  "mkva", "gkva",
                                               "gqkva", "kdgqa", "dgqa", "pgqa", "wgqa"};
  if (kKnown.count(v) == 0) return {};  // not ours (an imported sweep's own name): ignore nothing
  const bool grouped = v == "gqa" || v == "kdgqa" || v == "dgqa" || v == "pgqa" || v == "wgqa";
  const bool dynamic = v == "kdgqa" || v == "dgqa";
  // faithful itself counts only for the variants that have a faithful mode.
  const bool has_faithful = dynamic || v == "pgqa";
  const bool is_faithful = has_faithful && faithful;
  std::set<std::string> out;
  auto add = [&](std::initializer_list<const char*> keys) {
    for (const char* k : keys) out.insert(std::string("attention.") + k);
  };
  if (!grouped) add({"kv_heads"});
  if (v != "gkva") add({"q_heads"});
  if (v != "gqkva") add({"q_groups", "kv_groups"});
  if (!has_faithful) add({"faithful"});
  if (!dynamic || is_faithful) add({"min_per_group"});
  if (v != "kdgqa" || is_faithful) add({"eps"});
  if (v != "dgqa") add({"ema_window", "ema_beta", "dgqa_mode"});
  if (v != "pgqa") add({"noise", "noise_scale", "noise_target", "noise_at_eval"});
  if (v != "wgqa") add({"weight_form", "weight_init"});
  if (v == "mha") add({"sites"});  // s2s: mha at the named sites is mha everywhere
  return out;
}

}  // namespace ablate::results
