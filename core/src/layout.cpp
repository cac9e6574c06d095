#include "ablate/core/layout.h"

#include <sstream>
#include <stdexcept>

namespace ablate::core {
namespace {

std::string join(const std::vector<int64_t>& values) {
  std::ostringstream out;
  for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
  return out.str();
}

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

// `count` must be set and divide `heads`; `option` names it in the message.
void require_divisor(const char* option, int64_t count, int64_t heads, const char* variant) {
  if (count <= 0 || heads % count != 0) {
    std::ostringstream out;
    out << option << " = " << count << " is invalid for variant " << variant
        << ": it must divide attention.heads = " << heads << " (valid: " << join(divisors(heads))
        << ")";
    fail(out.str());
  }
}

// Head h reads key/value h / (H / groups): contiguous blocks, as repeat_interleave makes them.
std::vector<int64_t> contiguous_map(int64_t heads, int64_t groups) {
  std::vector<int64_t> map(heads);
  for (int64_t h = 0; h < heads; ++h) map[h] = h / (heads / groups);
  return map;
}

std::vector<int64_t> identity_map(int64_t heads) { return contiguous_map(heads, heads); }

}  // namespace

const std::vector<std::string>& variant_names() {
  static const std::vector<std::string> names = {"mha",   "gqa",   "mqa",  "mkva", "gkva",
                                                 "gqkva", "kdgqa", "dgqa", "pgqa", "wgqa"};
  return names;
}

std::string to_string(Variant variant) { return variant_names().at(static_cast<size_t>(variant)); }

Variant parse_variant(const std::string& name) {
  const auto& names = variant_names();
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<Variant>(i);
  }
  std::ostringstream out;
  out << "attention.variant = '" << name << "' is not a variant (valid: ";
  for (size_t i = 0; i < names.size(); ++i) out << (i ? ", " : "") << names[i];
  out << ")";
  fail(out.str());
}

bool is_dynamic(Variant variant) { return variant == Variant::kKdgqa || variant == Variant::kDgqa; }

std::vector<int64_t> divisors(int64_t n) {
  std::vector<int64_t> out;
  for (int64_t d = 1; d <= n; ++d) {
    if (n % d == 0) out.push_back(d);
  }
  return out;
}

HeadLayout make_head_layout(const LayoutInputs& in) {
  const int64_t H = in.heads;
  if (H <= 0) fail("attention.heads = " + std::to_string(H) + " is invalid: it must be >= 1");
  const std::string name = to_string(in.variant);

  HeadLayout layout;
  layout.heads = H;
  switch (in.variant) {
    case Variant::kMha:
      layout.n_q = layout.n_kv = H;
      layout.q_of_head = layout.kv_of_head = identity_map(H);
      break;
    case Variant::kMqa:
      layout.n_q = H;
      layout.n_kv = 1;
      layout.q_of_head = identity_map(H);
      layout.kv_of_head = contiguous_map(H, 1);
      break;
    case Variant::kGqa:
    case Variant::kKdgqa:
    case Variant::kDgqa:
    case Variant::kPgqa:
    case Variant::kWgqa: {
      const int64_t G = in.kv_heads == 0 ? H : in.kv_heads;
      require_divisor("attention.kv_heads", G, H, name.c_str());
      layout.n_q = H;
      layout.n_kv = G;
      layout.q_of_head = identity_map(H);
      layout.kv_of_head = contiguous_map(H, G);
      break;
    }
    case Variant::kMkva:
      layout.n_q = 1;
      layout.n_kv = H;
      layout.q_of_head = contiguous_map(H, 1);
      layout.kv_of_head = identity_map(H);
      break;
    case Variant::kGkva: {
      const int64_t g = in.q_heads;
      require_divisor("attention.q_heads", g, H, name.c_str());
      layout.n_q = g;
      layout.n_kv = H;
      layout.q_of_head = contiguous_map(H, g);
      layout.kv_of_head = identity_map(H);
      break;
    }
    case Variant::kGqkva: {
      const int64_t gq = in.q_groups, gkv = in.kv_groups;
      if (gq <= 0 || gkv <= 0 || gq * gkv != H) {
        std::ostringstream out;
        out << "attention.q_groups = " << gq << " and attention.kv_groups = " << gkv
            << " are invalid for variant gqkva: their product must equal attention.heads = " << H
            << " (q_groups from: " << join(divisors(H)) << ")";
        fail(out.str());
      }
      // Head h pairs query h % gq with key/value h / gq: the queries are tiled gkv times, so
      // consecutive heads share a key/value head and fused GQA kernels apply.
      layout.n_q = gq;
      layout.n_kv = gkv;
      layout.q_of_head.resize(H);
      layout.kv_of_head.resize(H);
      for (int64_t h = 0; h < H; ++h) {
        layout.q_of_head[h] = h % gq;
        layout.kv_of_head[h] = h / gq;
      }
      break;
    }
  }
  layout.kv_contiguous = layout.kv_of_head == contiguous_map(H, layout.n_kv);
  layout.kv_projection_heads = in.variant == Variant::kWgqa ? H : layout.n_kv;
  return layout;
}

}  // namespace ablate::core
