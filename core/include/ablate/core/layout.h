// Attention variants and their head layouts: which query and key/value projection each output
// head reads. Torch-free, so configuration code can validate a variant without LibTorch.
//
// Notation (docs/design.md section 4): H output heads, G key/value heads. A static variant is fully
// described by n_q query projections, n_kv key/value projections and a map from each of the H
// output heads to one query and one key/value projection. Dynamic variants (kdgqa, dgqa) start
// from the uniform contiguous map and move queries between key/value heads while they run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ablate::core {

enum class Variant {
  kMha,    // H queries, H key/values, head i -> (i, i)
  kGqa,    // H queries, G key/values, contiguous groups of H/G heads share one key/value
  kMqa,    // H queries, 1 key/value
  kMkva,   // 1 query, H key/values: every head reads query 0
  kGkva,   // g queries, H key/values: head j -> (j / (H/g), j)
  kGqkva,  // gq queries, gkv key/values, one head per (query, key/value) pair: H = gq * gkv
  kKdgqa,  // H queries, G key/values, allocation from key-head norms every forward
  kDgqa,   // H queries, G key/values, allocation from an EMA of key-head norms every window
  kPgqa,   // as gqa plus a noise perturbation
  kWgqa,   // as gqa, each key/value head a learned weighted sum of H original heads
};

// All variant names in enum order, as written in configs ("mha", "gqa", ...).
const std::vector<std::string>& variant_names();
std::string to_string(Variant variant);
// Throws std::invalid_argument naming the valid choices when `name` is not a variant.
Variant parse_variant(const std::string& name);

// kdgqa and dgqa: the head map changes while the module runs.
bool is_dynamic(Variant variant);

// The knobs that decide a layout. 0 means "not set" for the optional counts.
struct LayoutInputs {
  Variant variant = Variant::kMha;  // which variant
  int64_t heads = 0;                // H, output heads (must be > 0)
  int64_t kv_heads = 0;             // G for gqa, kdgqa, dgqa, pgqa, wgqa; 0 means H
  int64_t q_heads = 0;              // g for gkva (required there)
  int64_t q_groups = 0;             // gq for gqkva (required there)
  int64_t kv_groups = 0;            // gkv for gqkva (required there)
};

struct HeadLayout {
  int64_t heads = 0;                // H
  int64_t n_q = 0;                  // query projections
  int64_t n_kv = 0;                 // key/value projections
  std::vector<int64_t> q_of_head;   // size H: query projection read by each head
  std::vector<int64_t> kv_of_head;  // size H: key/value projection (dynamic: the uniform start)
  // True when every head reads key/value head h / (H / n_kv), the layout fused GQA kernels
  // (scaled_dot_product_attention with enable_gqa) take without copying K/V.
  bool kv_contiguous = false;
  // Number of key/value projections that stand behind the G grouped heads before any weighting
  // (wgqa keeps H original heads and folds them into G): the count that sets parameters.
  int64_t kv_projection_heads = 0;
};

// Validates the inputs and builds the layout. Throws std::invalid_argument that names the
// option ("attention.kv_heads") and the valid values.
HeadLayout make_head_layout(const LayoutInputs& inputs);

// Positive divisors of n, ascending: the valid group counts for n heads.
std::vector<int64_t> divisors(int64_t n);

}  // namespace ablate::core
