// libFuzzer target: the image path of a request (encoded bytes -> decoded RGB
// -> resized pixel_values -> patches), as a Chat image part takes it.
// Built and run by tools/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "model/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace unicorn;
  // 2^20 pixels, not the default 2^26: a legitimately large image takes
  // seconds under the sanitizers and would read as a fuzzer timeout.
  StatusOr<Image> img = DecodeImage(data, size, "fuzz", int64_t(1) << 20);
  if (!img.ok()) return 0;
  VisionConfig v;
  v.image_size = 28;  // small: the decoder is under test, not the resampler's speed
  v.patch_size = 14;
  std::vector<float> pixels = PixelValues(*img, v);
  (void)Patchify(pixels, v.image_size, v.patch_size);
  return 0;
}
