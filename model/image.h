// Image input for Gemma 3's vision tower, as transformers'
// Gemma3ImageProcessor prepares it: decode (PNG, JPEG, ... through
// stb_image), convert to RGB, resize to image_size x image_size with PIL's
// bilinear filter (antialiased when shrinking), rescale by 1/255, normalize
// (x - mean) / std per channel. Then cut into patches for the patch
// embedding, which runs as a matrix product.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/gemma3_config.h"

namespace unicorn {

// 8-bit RGB, row-major, interleaved: rgb[(y * width + x) * 3 + c].
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// Decodes an encoded image (PNG, JPEG, BMP, GIF first frame, ...). Grey
// becomes RGB by replication, alpha is dropped (PIL's convert("RGB")).
// Errors name `what` and the decoder's reason; an image whose header
// declares more than `max_pixels` is refused before decoding.
StatusOr<Image> DecodeImage(const uint8_t* data, size_t size, const std::string& what,
                            int64_t max_pixels = int64_t(1) << 26);
StatusOr<Image> DecodeImageFile(const std::string& path);

// PIL's Image.resize((width, height), Image.BILINEAR) for 8-bit RGB: a
// separable triangle filter whose support grows with the shrink factor
// (antialiasing), horizontal pass first, weights in 22-bit fixed point and
// each pass rounded and clamped to 8 bits, as PIL's ImagingResample does.
Image ResizeBilinear(const Image& in, int width, int height);

// pixel_values [3, size, size] (channel planes), size = vision.image_size:
// resize, then (x / 255 - mean[c]) / std[c] in f32.
std::vector<float> PixelValues(const Image& image, const VisionConfig& vision);

// Patches [n_patches, 3 * p * p] from pixel_values [3, size, size]: patch
// (py, px) is row py * (size / p) + px, its elements ordered (c, ky, kx), the
// layout of the patch-embedding conv weight [hidden, 3, p, p].
std::vector<float> Patchify(const std::vector<float>& pixel_values, int size, int patch);

}  // namespace unicorn
