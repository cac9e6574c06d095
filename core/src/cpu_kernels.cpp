#include "cpu_kernels.h"

namespace ablate::core::detail {
namespace {

// Calls rotate(in1, in2, c, s, out1, out2, half) for every vector of `shape`: its two halves in
// `in` and `out`, the angles of its position.
template <typename Rotate>
void each_vector(const RopeShape& shape, const float* in, const float* cos, const float* sin,
                 float* out, Rotate rotate) {
  const int64_t h = shape.half, d = 2 * h;
  for (int64_t b = 0; b < shape.batch; ++b) {
    for (int64_t p = 0; p < shape.positions; ++p) {
      const float* c = cos + p * h;
      const float* s = sin + p * h;
      for (int64_t n = 0; n < shape.heads; ++n) {
        const int64_t at = ((b * shape.positions + p) * shape.heads + n) * d;
        rotate(in + at, in + at + h, c, s, out + at, out + at + h, h);
      }
    }
  }
}

}  // namespace

void rope_forward(const RopeShape& shape, const float* x, const float* cos, const float* sin,
                  float* out) {
  each_vector(shape, x, cos, sin, out,
              [](const float* x1, const float* x2, const float* c, const float* s, float* o1,
                 float* o2, int64_t h) {
                for (int64_t i = 0; i < h; ++i) {
                  const float a = x1[i] * c[i], b = x2[i] * s[i];
                  const float e = x2[i] * c[i], f = x1[i] * s[i];
                  o1[i] = a - b;
                  o2[i] = e + f;
                }
              });
}

void rope_backward(const RopeShape& shape, const float* g, const float* cos, const float* sin,
                   float* gx) {
  each_vector(shape, g, cos, sin, gx,
              [](const float* g1, const float* g2, const float* c, const float* s, float* d1,
                 float* d2, int64_t h) {
                for (int64_t i = 0; i < h; ++i) {
                  const float a = g1[i] * c[i], b = g2[i] * s[i];
                  const float e = g2[i] * c[i], f = g1[i] * s[i];
                  d1[i] = (a + b) + 0.0f;
                  d2[i] = (e - f) + 0.0f;
                }
              });
}

}  // namespace ablate::core::detail
