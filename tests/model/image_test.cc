// Image decoding and preprocessing: PIL's bilinear resize reproduced exactly
// (reference outputs from tests/data/image/make_resize_refs.py), pixel
// normalisation and the patch layout of the patch-embedding conv.
#include "model/image.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "model/npy.h"

namespace unicorn {
namespace {

const std::string kData = std::string(UNICORN_SOURCE_DIR) + "/tests/data/image/";
// Measured (stb_image vs PIL 9.4 / libjpeg-turbo): mean <= 0.09 levels, 99.9th
// percentile <= 2, max <= 3 on these files. Bounds: about twice that.
constexpr double kJpegMean = 0.25;
constexpr int kJpegP999 = 4, kJpegMax = 6;

TEST(ImageTest, BilinearResizeEqualsPil) {
  auto src = DecodeImageFile(kData + "src.png");
  ASSERT_TRUE(src.ok()) << src.status();
  ASSERT_EQ(src->width, 97);
  ASSERT_EQ(src->height, 61);
  for (auto [w, h] : {std::pair{32, 32}, {40, 33}, {97, 20}, {150, 61}, {120, 120}}) {
    auto ref = ReadNpy(kData + std::to_string(w) + "x" + std::to_string(h) + ".npy");
    ASSERT_TRUE(ref.ok()) << ref.status();
    ASSERT_EQ(ref->shape, (std::vector<int64_t>{h, w, 3}));
    const Image out = ResizeBilinear(*src, w, h);
    ASSERT_EQ(out.rgb.size(), ref->data.size());
    int differ = 0;
    for (size_t i = 0; i < out.rgb.size(); ++i) differ += out.rgb[i] != ref->data[i];
    // Same integer arithmetic as PIL: every byte equal.
    EXPECT_EQ(differ, 0) << w << "x" << h;
  }
}

// JPEG through stb_image against PIL's libjpeg-turbo decode of the same files
// (make_jpeg_refs.py): baseline 4:2:0 and 4:4:4, progressive, grayscale
// (expanded to RGB as PIL's convert("RGB") does). The two decoders use
// different IDCTs and chroma upsampling, so pixels may differ by a few
// levels (see the bounds above); those bounds still catch any wrong colour conversion, channel
// order, subsampling or progressive-scan bug (those move pixels by tens of levels).
TEST(ImageTest, JpegDecodesLikePil) {
  for (const char* name : {"baseline420", "baseline444", "progressive", "gray"}) {
    SCOPED_TRACE(name);
    auto img = DecodeImageFile(kData + name + ".jpg");
    ASSERT_TRUE(img.ok()) << img.status();
    auto ref = ReadNpy(kData + name + ".npy");
    ASSERT_TRUE(ref.ok()) << ref.status();
    const bool gray = ref->shape.size() == 2;
    ASSERT_EQ(img->width, 97);
    ASSERT_EQ(img->height, 61);
    ASSERT_EQ(img->rgb.size(), size_t(97 * 61 * 3));
    std::vector<int> diffs;
    for (size_t p = 0; p < size_t(97 * 61); ++p) {
      for (size_t c = 0; c < 3; ++c) {
        const int want = int(ref->data[gray ? p : 3 * p + c]);
        diffs.push_back(std::abs(int(img->rgb[3 * p + c]) - want));
      }
    }
    std::sort(diffs.begin(), diffs.end());
    double mean = 0;
    for (int d : diffs) mean += d;
    mean /= double(diffs.size());
    const int p999 = diffs[diffs.size() * 999 / 1000], max = diffs.back();
    EXPECT_LT(mean, kJpegMean) << "mean abs difference in levels";
    EXPECT_LE(p999, kJpegP999) << "99.9th percentile in levels";
    EXPECT_LE(max, kJpegMax);
  }
}

TEST(ImageTest, PixelValuesAndPatches) {
  Image img{2, 2, {0, 255, 51, 255, 0, 102, 0, 0, 0, 255, 255, 255}};
  VisionConfig v;
  v.image_size = 2;
  v.patch_size = 1;
  const std::vector<float> px = PixelValues(img, v);
  ASSERT_EQ(px.size(), 12u);
  EXPECT_FLOAT_EQ(px[0], -1.0f);  // R of pixel (0, 0): 0 -> -1
  EXPECT_FLOAT_EQ(px[4], 1.0f);   // G plane, pixel (0, 0): 255 -> 1
  EXPECT_NEAR(px[8], 51 / 127.5 - 1, 1e-6);
  // Patches of 1x1: row = pixel, cols (r, g, b).
  const std::vector<float> p = Patchify(px, 2, 1);
  EXPECT_EQ(p[3 * 3 + 0], px[3]);
  EXPECT_EQ(p[3 * 3 + 2], px[8 + 3]);
  // 4x4 image in 2x2 patches: patch 1 (top right), element (c=0, ky=1, kx=0).
  std::vector<float> big(3 * 16);
  for (size_t i = 0; i < big.size(); ++i) big[i] = float(i);
  const std::vector<float> q = Patchify(big, 4, 2);
  EXPECT_EQ(q[1 * 12 + 2], big[0 * 16 + 1 * 4 + 2]);
  EXPECT_EQ(q[3 * 12 + 4 + 3], big[1 * 16 + 3 * 4 + 3]);  // patch 3, c=1, ky=1, kx=1
}

TEST(ImageTest, UndecodableBytesAreAnError) {
  const std::string junk = "not an image at all";
  auto r = DecodeImage(reinterpret_cast<const uint8_t*>(junk.data()), junk.size(), "junk.png");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("junk.png"), std::string::npos);
  EXPECT_FALSE(DecodeImageFile("/nonexistent.png").ok());
}

}  // namespace
}  // namespace unicorn

namespace unicorn {
namespace {

// A strip far taller than wide (found by the image fuzzer: a 2 x 1,048,577
// BMP) resizes height first instead of building a [1,048,577 x 896]
// intermediate; it must finish and give the requested size.
TEST(ImageResize, TallStripShrinksHeightFirst) {
  Image strip;
  strip.width = 2;
  strip.height = 1 << 20;
  strip.rgb.assign(size_t(strip.width) * strip.height * 3, 200);
  const Image r = ResizeBilinear(strip, 896, 896);
  ASSERT_EQ(r.width, 896);
  ASSERT_EQ(r.height, 896);
  for (uint8_t v : r.rgb) ASSERT_EQ(v, 200);  // a flat image stays flat
}

}  // namespace
}  // namespace unicorn
