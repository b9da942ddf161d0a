// Requests through the checks every API shares: the stop tokens (and
// ignore_eos); images: limits, a model without a vision tower, undecodable
// bytes, and the pixels a good image becomes; the raw prompt's image markers.
#include "coordinator/request_builder.h"

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "model/image.h"

namespace unicorn {
namespace {

// A 4x4 red PNG.
std::string RedPng() {
  std::string png;
  EXPECT_TRUE(absl::Base64Unescape(
      "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEElEQVR4nGP4z8AARwzEcQCukw/"
      "x0F8jngAAAABJRU5ErkJggg==",
      &png));
  return png;
}

TEST(RequestOptions, StopTokensAreTheEndOfTurnIdsUnlessIgnoreEos) {
  auto tok = Tokenizer::FromFolder(UNICORN_SOURCE_DIR "/models/demo");
  ASSERT_TRUE(tok.ok()) << tok.status();
  GenerationParams p;
  auto r = ToEngineRequest(p, {}, **tok);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stop_tokens, (*tok)->stop_ids());
  EXPECT_FALSE(r->stop_tokens.empty());  // <eos>, <end_of_turn>
  p.ignore_eos = true;
  p.stop = {"\n\n"};
  r = ToEngineRequest(p, {}, **tok);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->stop_tokens.empty());
  EXPECT_EQ(r->stop, std::vector<std::string>{"\n\n"});  // stop strings still apply
}

VisionSupport Vision() {
  VisionSupport v;
  v.model_name = "vision-small";
  v.has_vision = true;
  v.has_worker = true;
  v.config.image_size = 8;
  return v;
}

TEST(RequestImages, AGoodImageBecomesNormalizedPixelsAndIsTimed) {
  EngineRequest r;
  ASSERT_TRUE(PreprocessImages({RedPng(), RedPng()}, Vision(), {}, &r).ok());
  ASSERT_EQ(r.images.size(), 2u);
  ASSERT_EQ(r.images[0].size(), 3u * 8 * 8);  // [3, image_size, image_size]
  // Red, normalized with mean 0.5 and std 0.5: channel 0 is +1, the others -1.
  EXPECT_FLOAT_EQ(r.images[0][0], 1.0f);
  EXPECT_FLOAT_EQ(r.images[0][64], -1.0f);
  EXPECT_GT(r.preprocess_start_ns, 0);
  EXPECT_GE(r.preprocess_end_ns, r.preprocess_start_ns);
}

TEST(RequestImages, ErrorsNameTheProblem) {
  struct Case {
    std::vector<std::string> images;
    VisionSupport vision;
    ServiceLimits limits;
    const char* message;
  };
  VisionSupport text_only = Vision();
  text_only.has_vision = false;
  text_only.model_name = "demo";
  VisionSupport no_worker = Vision();
  no_worker.has_worker = false;
  ServiceLimits two_images, small;
  two_images.max_images = 2;
  small.max_image_bytes = 10;
  const Case cases[] = {
      {{RedPng()}, text_only, {}, "model demo has no vision tower"},
      {{RedPng()}, no_worker, {}, "plan names no vision worker"},
      {{RedPng(), RedPng(), RedPng()}, Vision(), two_images, "3 images exceed the limit of 2"},
      {{RedPng()}, Vision(), small, "bytes exceed the limit of 10 per image"},
      {{"GIF89a broken"}, Vision(), {}, "cannot decode the image"},
  };
  for (const Case& c : cases) {
    EngineRequest r;
    Status s = PreprocessImages(c.images, c.vision, c.limits, &r);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_NE(s.message().find(c.message), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace unicorn
