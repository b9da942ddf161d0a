#include "model/image.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "stb/stb_image.h"

namespace unicorn {

StatusOr<Image> DecodeImage(const uint8_t* data, size_t size, const std::string& what,
                            int64_t max_pixels) {
  if (size > size_t(INT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat("[image] ", what, ": file too large"));
  }
  int w = 0, h = 0, channels = 0;
  // A small file may declare a huge image (a decompression bomb): check the
  // header first. 2^26 pixels (8192 x 8192) is far above any vision input.
  if (stbi_info_from_memory(data, int(size), &w, &h, &channels) &&
      int64_t(w) * int64_t(h) > max_pixels) {
    return absl::InvalidArgumentError(absl::StrCat(
        "[image] ", what, ": ", w, "x", h, " pixels is too large (limit ", max_pixels, ")"));
  }
  // Asking for 3 channels: grey is replicated, alpha dropped.
  stbi_uc* pixels = stbi_load_from_memory(data, int(size), &w, &h, &channels, 3);
  if (pixels == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("[image] ", what, ": cannot decode: ", stbi_failure_reason()));
  }
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.assign(pixels, pixels + size_t(w) * size_t(h) * 3);
  stbi_image_free(pixels);
  return img;
}

StatusOr<Image> DecodeImageFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat("[image] cannot open ", path));
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return DecodeImage(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
}

namespace {

// PIL's Resample.c constants: coefficients in 22-bit fixed point.
constexpr int kPrecisionBits = 32 - 8 - 2;

// Per output pixel: the first input pixel, the count, and fixed-point
// weights (PIL's precompute_coeffs + normalize_coeffs_8bpc, bilinear filter
// with support 1).
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;  // [out, ksize]
};

Coeffs Precompute(int in_size, int out_size) {
  const double scale = double(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;
  Coeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.first.resize(size_t(out_size));
  c.count.resize(size_t(out_size));
  c.k.assign(size_t(out_size) * size_t(c.ksize), 0);
  std::vector<double> w(size_t(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0;
    for (int x = 0; x < xmax; ++x) {
      const double t = std::fabs((x + xmin - center + 0.5) * ss);
      w[size_t(x)] = t < 1.0 ? 1.0 - t : 0.0;
      ww += w[size_t(x)];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[size_t(x)] / ww : w[size_t(x)];
      c.k[size_t(xx) * c.ksize + x] =
          int32_t(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    c.first[size_t(xx)] = xmin;
    c.count[size_t(xx)] = xmax;
  }
  return c;
}

uint8_t Clip8(int32_t v) {
  const int32_t s = v >> kPrecisionBits;
  return uint8_t(std::clamp(s, 0, 255));
}

// Resamples rows [row_first, row_first + rows) of `in` to `width` columns.
Image HorizontalPass(const Image& in, int row_first, int rows, int width, const Coeffs& ch) {
  Image out;
  out.width = width;
  out.height = rows;
  out.rgb.resize(size_t(width) * size_t(rows) * 3);
  for (int y = 0; y < rows; ++y) {
    const uint8_t* row = in.rgb.data() + size_t(y + row_first) * size_t(in.width) * 3;
    uint8_t* dst = out.rgb.data() + size_t(y) * size_t(width) * 3;
    for (int xx = 0; xx < width; ++xx) {
      const int32_t* k = ch.k.data() + size_t(xx) * size_t(ch.ksize);
      const int x0 = ch.first[size_t(xx)];
      for (int c = 0; c < 3; ++c) {
        int32_t ss = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < ch.count[size_t(xx)]; ++x) ss += row[(x0 + x) * 3 + c] * k[x];
        dst[xx * 3 + c] = Clip8(ss);
      }
    }
  }
  return out;
}

// Resamples `src` (whose row 0 is input row `row0`) to `height` rows.
Image VerticalPass(const Image& src, int row0, int height, const Coeffs& cv) {
  Image out;
  out.width = src.width;
  out.height = height;
  out.rgb.resize(size_t(src.width) * size_t(height) * 3);
  for (int yy = 0; yy < height; ++yy) {
    const int32_t* k = cv.k.data() + size_t(yy) * size_t(cv.ksize);
    const int y0 = cv.first[size_t(yy)] - row0;
    for (int x = 0; x < src.width * 3; ++x) {
      int32_t ss = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < cv.count[size_t(yy)]; ++y) {
        ss += src.rgb[size_t(y0 + y) * size_t(src.width) * 3 + size_t(x)] * k[y];
      }
      out.rgb[size_t(yy) * size_t(src.width) * 3 + size_t(x)] = Clip8(ss);
    }
  }
  return out;
}

}  // namespace

Image ResizeBilinear(const Image& in, int width, int height) {
  if (in.width == width && in.height == height) return in;
  const Coeffs ch = Precompute(in.width, width);
  const Coeffs cv = Precompute(in.height, height);
  // PIL's ImagingResampleInner: the horizontal pass first, over only the
  // input rows the vertical pass reads (bit-exact with PIL).
  const int y_first = cv.first[0];
  const int y_last = cv.first[size_t(height - 1)] + cv.count[size_t(height - 1)];
  const bool horizontal = width != in.width;
  const bool vertical = height != in.height;
  if (!horizontal) return VerticalPass(in, 0, height, cv);
  // An image far taller than wide (a 2 x 1,000,000 strip) would make that
  // intermediate [y_last - y_first, width] huge: over 2^24 pixels, shrink
  // the height first (then the result may differ from PIL's by rounding).
  if (vertical && int64_t(width) * (y_last - y_first) > (int64_t(1) << 24)) {
    const Image tall = VerticalPass(in, 0, height, cv);
    return HorizontalPass(tall, 0, height, width, ch);
  }
  const Image tmp = HorizontalPass(in, y_first, y_last - y_first, width, ch);
  return vertical ? VerticalPass(tmp, y_first, height, cv) : tmp;
}

std::vector<float> PixelValues(const Image& image, const VisionConfig& vision) {
  const int s = vision.image_size;
  const Image r = ResizeBilinear(image, s, s);
  std::vector<float> px(size_t(3) * s * s);
  for (int c = 0; c < 3; ++c) {
    const float mean = float(vision.image_mean[size_t(c)]);
    const float std = float(vision.image_std[size_t(c)]);
    for (int i = 0; i < s * s; ++i) {
      // rescale: x * (1/255) in double, stored as f32; normalize in f32
      // (transformers' image_transforms.rescale / normalize).
      const float v = float(double(r.rgb[size_t(i) * 3 + c]) * (1.0 / 255.0));
      px[size_t(c) * s * s + i] = (v - mean) / std;
    }
  }
  return px;
}

std::vector<float> Patchify(const std::vector<float>& pixel_values, int size, int patch) {
  const int side = size / patch;
  const int cols = 3 * patch * patch;
  std::vector<float> out(size_t(side) * side * cols);
  for (int py = 0; py < side; ++py) {
    for (int px = 0; px < side; ++px) {
      float* dst = out.data() + size_t(py * side + px) * cols;
      for (int c = 0; c < 3; ++c) {
        for (int ky = 0; ky < patch; ++ky) {
          const float* src =
              pixel_values.data() + size_t(c) * size * size + size_t(py * patch + ky) * size;
          for (int kx = 0; kx < patch; ++kx) {
            *dst++ = src[px * patch + kx];
          }
        }
      }
    }
  }
  return out;
}

}  // namespace unicorn
