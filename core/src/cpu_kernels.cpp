#include "cpu_kernels.h"

namespace ablate::core::detail {

void rope_forward(const RopeShape& shape, const float* x, const float* cos, const float* sin,
                  float* out) {
  const int64_t h = shape.half, d = 2 * h;
  for (int64_t b = 0; b < shape.batch; ++b) {
    for (int64_t p = 0; p < shape.positions; ++p) {
      const float* c = cos + p * h;
      const float* s = sin + p * h;
      for (int64_t n = 0; n < shape.heads; ++n) {
        const int64_t at = ((b * shape.positions + p) * shape.heads + n) * d;
        const float* x1 = x + at;
        const float* x2 = x1 + h;
        float* o1 = out + at;
        float* o2 = o1 + h;
        for (int64_t i = 0; i < h; ++i) {
          const float a = x1[i] * c[i], bb = x2[i] * s[i];
          const float e = x2[i] * c[i], f = x1[i] * s[i];
          o1[i] = a - bb;
          o2[i] = e + f;
        }
      }
    }
  }
}

void rope_backward(const RopeShape& shape, const float* g, const float* cos, const float* sin,
                   float* gx) {
  const int64_t h = shape.half, d = 2 * h;
  for (int64_t b = 0; b < shape.batch; ++b) {
    for (int64_t p = 0; p < shape.positions; ++p) {
      const float* c = cos + p * h;
      const float* s = sin + p * h;
      for (int64_t n = 0; n < shape.heads; ++n) {
        const int64_t at = ((b * shape.positions + p) * shape.heads + n) * d;
        const float* g1 = g + at;
        const float* g2 = g1 + h;
        float* d1 = gx + at;
        float* d2 = d1 + h;
        for (int64_t i = 0; i < h; ++i) {
          const float a = g1[i] * c[i], bb = g2[i] * s[i];
          const float e = g2[i] * c[i], f = g1[i] * s[i];
          d1[i] = (a + bb) + 0.0f;
          d2[i] = (e - f) + 0.0f;
        }
      }
    }
  }
}

}  // namespace ablate::core::detail
