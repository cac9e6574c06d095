#pragma once
// A small PNG decoder for tests that look at pictures (figures, browser screenshots): enough of
// the format to tell a blank image from a drawn one and to find a known colour. Header-only; the
// target must link zlib (ablate::testing does, through ZLIB::ZLIB).
//
// Reads non-interlaced images of bit depth 8 or 16 in colour types 0 (grey), 2 (RGB), 3 (palette,
// bit depth 8), 4 (grey + alpha) and 6 (RGBA), with all five row filters, checking every chunk's
// CRC. Ancillary chunks are skipped except tRNS of palette images. Anything else throws.
#include <zlib.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

namespace ablate::testing {

struct PngImage {
  uint32_t width = 0;
  uint32_t height = 0;
  std::vector<uint8_t> rgba;  // 4 bytes per pixel, rows top to bottom, 8 bits per channel

  std::array<uint8_t, 4> pixel(uint32_t x, uint32_t y) const {
    const size_t i = (static_cast<size_t>(y) * width + x) * 4;
    return {rgba[i], rgba[i + 1], rgba[i + 2], rgba[i + 3]};
  }
  size_t pixels() const { return static_cast<size_t>(width) * height; }
};

inline constexpr char kPngSignature[] = "\x89PNG\r\n\x1a\n";

// True when `bytes` start with the 8-byte PNG signature.
inline bool has_png_signature(const std::string& bytes) {
  return bytes.size() >= 8 && bytes.compare(0, 8, kPngSignature, 8) == 0;
}

namespace png_detail {

inline uint32_t be32(const std::string& s, size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(s[at])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(s[at + 3]));
}

[[noreturn]] inline void fail(const std::string& what) { throw std::runtime_error("png: " + what); }

inline std::string inflate_all(const std::string& in, size_t expected) {
  std::string out(expected, '\0');
  z_stream z{};
  if (inflateInit(&z) != Z_OK) fail("inflateInit failed");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&z, Z_FINISH);
  const size_t produced = out.size() - z.avail_out;
  inflateEnd(&z);
  if (rc != Z_STREAM_END)
    fail("image data do not inflate to " + std::to_string(expected) + " bytes");
  if (produced != expected)
    fail("image data are " + std::to_string(produced) + " bytes, not " + std::to_string(expected));
  return out;
}

inline uint8_t paeth(int a, int b, int c) {
  const int p = a + b - c;
  const int pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return static_cast<uint8_t>(a);
  if (pb <= pc) return static_cast<uint8_t>(b);
  return static_cast<uint8_t>(c);
}

}  // namespace png_detail

// Decodes a whole PNG file held in memory. Throws std::runtime_error on anything it cannot read.
inline PngImage decode_png(const std::string& bytes) {
  using namespace png_detail;
  if (!has_png_signature(bytes)) fail("no PNG signature");
  size_t at = 8;
  uint32_t width = 0, height = 0;
  int depth = 0, type = -1;
  bool seen_header = false, seen_end = false;
  std::string idat;
  std::vector<std::array<uint8_t, 4>> palette;
  while (at < bytes.size() && !seen_end) {
    if (bytes.size() - at < 12) fail("truncated chunk at byte " + std::to_string(at));
    const uint32_t length = be32(bytes, at);
    if (length > bytes.size() - at - 12) fail("chunk longer than the file");
    const std::string name = bytes.substr(at + 4, 4);
    const std::string data = bytes.substr(at + 8, length);
    const uint32_t crc = be32(bytes, at + 8 + length);
    const uLong computed = crc32(0L, reinterpret_cast<const Bytef*>(bytes.data() + at + 4),
                                 static_cast<uInt>(length + 4));
    if (computed != crc) fail("CRC mismatch in chunk " + name);
    at += 12 + length;
    if (name == "IHDR") {
      if (length != 13) fail("IHDR is not 13 bytes");
      width = be32(data, 0);
      height = be32(data, 4);
      depth = static_cast<uint8_t>(data[8]);
      type = static_cast<uint8_t>(data[9]);
      if (data[10] != 0 || data[11] != 0) fail("unknown compression or filter method");
      if (data[12] != 0) fail("interlaced images are not supported");
      if (width == 0 || height == 0) fail("empty image");
      const bool ok = (type == 3) ? depth == 8
                                  : (type == 0 || type == 2 || type == 4 || type == 6) &&
                                        (depth == 8 || depth == 16);
      if (!ok) {
        fail("colour type " + std::to_string(type) + " at bit depth " + std::to_string(depth) +
             " is not supported");
      }
      seen_header = true;
    } else if (!seen_header) {
      fail("the first chunk is " + name + ", not IHDR");
    } else if (name == "PLTE") {
      if (length % 3 != 0 || length == 0) fail("bad PLTE length");
      for (uint32_t i = 0; i < length; i += 3) {
        palette.push_back({static_cast<uint8_t>(data[i]), static_cast<uint8_t>(data[i + 1]),
                           static_cast<uint8_t>(data[i + 2]), 255});
      }
    } else if (name == "tRNS" && type == 3) {
      for (uint32_t i = 0; i < length && i < palette.size(); ++i) {
        palette[i][3] = static_cast<uint8_t>(data[i]);
      }
    } else if (name == "IDAT") {
      idat += data;
    } else if (name == "IEND") {
      seen_end = true;
    } else if ((static_cast<uint8_t>(name[0]) & 0x20) == 0) {
      fail("unknown critical chunk " + name);
    }
  }
  if (!seen_end) fail("no IEND chunk (truncated file)");
  if (type == 3 && palette.empty()) fail("palette image without PLTE");

  const int channels = type == 0 ? 1 : type == 2 ? 3 : type == 3 ? 1 : type == 4 ? 2 : 4;
  const size_t bpp = static_cast<size_t>(channels) * (depth / 8);  // bytes per pixel
  const size_t stride = static_cast<size_t>(width) * bpp;
  const std::string raw = inflate_all(idat, (stride + 1) * height);

  // Undo the row filters in place, each row against the unfiltered row above.
  std::vector<uint8_t> rows(stride * height);
  for (uint32_t y = 0; y < height; ++y) {
    const uint8_t filter = static_cast<uint8_t>(raw[y * (stride + 1)]);
    const uint8_t* in = reinterpret_cast<const uint8_t*>(raw.data()) + y * (stride + 1) + 1;
    uint8_t* out = rows.data() + y * stride;
    const uint8_t* up = y > 0 ? out - stride : nullptr;
    for (size_t i = 0; i < stride; ++i) {
      const int a = i >= bpp ? out[i - bpp] : 0;
      const int b = up != nullptr ? up[i] : 0;
      const int c = (up != nullptr && i >= bpp) ? up[i - bpp] : 0;
      int v = in[i];
      switch (filter) {
        case 0:
          break;
        case 1:
          v += a;
          break;
        case 2:
          v += b;
          break;
        case 3:
          v += (a + b) / 2;
          break;
        case 4:
          v += paeth(a, b, c);
          break;
        default:
          fail("unknown filter type " + std::to_string(filter) + " in row " + std::to_string(y));
      }
      out[i] = static_cast<uint8_t>(v & 0xff);
    }
  }

  PngImage image;
  image.width = width;
  image.height = height;
  image.rgba.resize(static_cast<size_t>(width) * height * 4);
  const size_t step = depth / 8;  // 16-bit samples keep their high byte
  for (size_t p = 0; p < image.pixels(); ++p) {
    const uint8_t* s = rows.data() + p * bpp;
    uint8_t* d = image.rgba.data() + p * 4;
    auto sample = [&](int k) { return s[k * step]; };
    switch (type) {
      case 0:
        d[0] = d[1] = d[2] = sample(0);
        d[3] = 255;
        break;
      case 2:
        d[0] = sample(0);
        d[1] = sample(1);
        d[2] = sample(2);
        d[3] = 255;
        break;
      case 3: {
        if (s[0] >= palette.size()) fail("palette index out of range");
        const auto& c = palette[s[0]];
        d[0] = c[0];
        d[1] = c[1];
        d[2] = c[2];
        d[3] = c[3];
        break;
      }
      case 4:
        d[0] = d[1] = d[2] = sample(0);
        d[3] = sample(1);
        break;
      default:
        d[0] = sample(0);
        d[1] = sample(1);
        d[2] = sample(2);
        d[3] = sample(3);
    }
  }
  return image;
}

// Reads and decodes a PNG file.
inline PngImage read_png(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("png: cannot open " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return decode_png(s.str());
}

// The colour a pixel shows over a white page (alpha composited), as 0xRRGGBB.
inline uint32_t over_white(const PngImage& image, size_t p) {
  const uint8_t* d = image.rgba.data() + p * 4;
  uint32_t rgb = 0;
  for (int k = 0; k < 3; ++k) {
    const uint32_t c = (d[k] * d[3] + 255u * (255u - d[3]) + 127u) / 255u;
    rgb = (rgb << 8) | c;
  }
  return rgb;
}

// Pixels whose colour over white is within `tolerance` of `rgb` (0xRRGGBB) in every channel.
inline size_t count_near(const PngImage& image, uint32_t rgb, int tolerance = 0) {
  size_t n = 0;
  for (size_t p = 0; p < image.pixels(); ++p) {
    const uint32_t c = over_white(image, p);
    bool near = true;
    for (int shift = 0; shift <= 16 && near; shift += 8) {
      const int a = static_cast<int>((c >> shift) & 0xff);
      const int b = static_cast<int>((rgb >> shift) & 0xff);
      near = std::abs(a - b) <= tolerance;
    }
    n += near ? 1 : 0;
  }
  return n;
}

// Distinct RGBA values in the image.
inline size_t count_colours(const PngImage& image) {
  std::unordered_set<uint32_t> seen;
  for (size_t p = 0; p < image.pixels(); ++p) {
    const uint8_t* d = image.rgba.data() + p * 4;
    seen.insert((static_cast<uint32_t>(d[0]) << 24) | (static_cast<uint32_t>(d[1]) << 16) |
                (static_cast<uint32_t>(d[2]) << 8) | d[3]);
  }
  return seen.size();
}

}  // namespace ablate::testing
