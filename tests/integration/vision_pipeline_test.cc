// Images through the real three processes: the coordinator decodes and
// normalizes the image, the vision worker (the GPU worker here) runs SigLIP +
// projector on the pixels it finds in the arena, the embedding stage takes
// the image rows and the attention stages (the NPU worker) apply the
// bidirectional mask within each image. The greedy tokens equal the
// single-process Gemma3Session's on the same prompt and image, for the
// vision-small HF folder and for its GGUF + mmproj pair; max_step_tokens is
// small enough that an unsplit image block forces a chunk boundary to move.
// Also: a corrupt image, a traced image request, and a replay after the
// vision worker is killed mid-generation.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "model/backend_registry.h"
#include "model/chat_template.h"
#include "model/engine.h"
#include "npu_worker/cpu/cpu_backend.h"
#include "proto/unicorn/service.grpc.pb.h"
#include "tests/integration/test_system.h"

namespace {

using unicorn::testing::TestSystem;

const std::string kModels = UNICORN_SOURCE_DIR "/tests/data/models/vision-small";
const std::string kImage = kModels + "/ref/image.png";
const std::string kGguf = kModels + "/gguf/vision-small-q8_0.gguf";
const std::string kMmproj = kModels + "/gguf/mmproj-vision-small-f32.gguf";

// Vision on the GPU worker, attention on the NPU worker, FFN on the GPU
// worker (both on their CPU backends: no device needed). Every request is
// traced (cheap on this model). 20 tokens per step: the 16 image tokens of
// vision-small never fit behind the prompt's first tokens in one step.
constexpr char kBody[] =
    "workers:\n  npu: {kind: npu}\n  gpu: {kind: gpu, backend: cpu}\n"
    "plan: {embedding: gpu, lm_head: gpu, vision: gpu, layers: [{attention: npu, ffn: gpu}]}\n"
    "profile: {sample_every_n_steps: 0, requests: 1.0}\n";
constexpr char kCoordinator[] = "max_step_tokens: 20, max_sequences: 4";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The single-process model: greedy ids after `ids` with the images'
// embeddings, up to `n` tokens or a stop token (included, as the stream
// includes it).
std::vector<int> OneProcess(const std::string& model, const std::string& mmproj,
                            const std::vector<int>& ids, int n_images, int n) {
  unicorn::BackendRegistry backends;
  unicorn::cpu::RegisterCpuBackend(backends);
  unicorn::EngineOptions eo;
  eo.model = model;
  eo.mmproj = mmproj;
  auto engine = unicorn::Engine::Open(eo, backends);
  EXPECT_TRUE(engine.ok()) << engine.status();
  if (!engine.ok()) return {};
  auto tok = (*engine)->LoadTokenizer();
  EXPECT_TRUE(tok.ok());
  std::vector<float> embeds;
  for (int i = 0; i < n_images; ++i) {
    auto e = (*engine)->EmbedImageFile(kImage);
    EXPECT_TRUE(e.ok()) << e.status();
    embeds.insert(embeds.end(), e->begin(), e->end());
  }
  unicorn::SessionOptions so;
  so.max_context = 1024;
  so.max_chunk = 256;
  auto session = unicorn::Gemma3Session::Create((*engine)->model(), so);
  std::vector<float> logits;
  EXPECT_TRUE((*session)->Prefill(ids, embeds, unicorn::LogitsMode::kLast, &logits).ok());
  std::vector<int> out;
  const auto& stop = (*tok)->stop_ids();
  while (int(out.size()) < n) {
    const int next = int(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(next);
    if (std::find(stop.begin(), stop.end(), next) != stop.end()) break;
    EXPECT_TRUE((*session)->Decode(next, &logits).ok());
  }
  return out;
}

// The prompt ids the coordinator makes of a Generate with images and no
// markers (markers in front, expanded as Gemma3Processor does), or of a chat.
std::vector<int> PromptIds(const std::string& model, const std::string& prompt, int n_images,
                           bool chat) {
  unicorn::BackendRegistry backends;
  unicorn::cpu::RegisterCpuBackend(backends);
  unicorn::EngineOptions eo;
  eo.model = model;
  eo.mmproj = model == kGguf ? kMmproj : "";
  auto engine = unicorn::Engine::Open(eo, backends);
  auto tok = (*engine)->LoadTokenizer();
  const int mm = (*engine)->config().vision.mm_tokens_per_image;
  std::vector<int32_t> ids;
  if (chat) {
    unicorn::ChatMessage m;
    m.role = "user";
    std::vector<unicorn::ChatPart> parts;
    for (int i = 0; i < n_images; ++i) parts.push_back({unicorn::ChatPart::Kind::kImage, "", ""});
    parts.push_back({unicorn::ChatPart::Kind::kText, prompt, ""});
    m.content = parts;
    unicorn::ChatOptions o;
    o.add_generation_prompt = true;
    ids = *unicorn::EncodeChatPrompt(**tok, {m}, o, mm);
  } else {
    std::string p;
    for (int i = 0; i < n_images; ++i) p += "<start_of_image>";
    ids = (*tok)->Encode(unicorn::ExpandImageTokens(p + prompt, mm));
  }
  return std::vector<int>(ids.begin(), ids.end());
}

struct Result {
  std::vector<int> ids;
  grpc::Status status;
  std::string request_id;
};

Result Generate(unicorn::v1::Unicorn::Stub& stub, const std::string& prompt,
                const std::vector<std::string>& images, int n, bool chat = false,
                std::function<void(int)> on_token = nullptr) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  std::unique_ptr<grpc::ClientReader<unicorn::v1::GenerateResponse>> reader;
  if (chat) {
    unicorn::v1::ChatRequest req;
    auto* m = req.add_messages();
    m->set_role("user");
    for (const auto& img : images) m->add_parts()->set_image(img);
    m->add_parts()->set_text(prompt);
    req.set_max_tokens(n);
    req.set_trace(true);
    reader = stub.Chat(&ctx, req);
  } else {
    unicorn::v1::GenerateRequest req;
    req.set_prompt(prompt);
    for (const auto& img : images) req.add_images(img);
    req.set_max_tokens(n);
    req.set_trace(true);
    reader = stub.Generate(&ctx, req);
  }
  Result r;
  unicorn::v1::GenerateResponse resp;
  while (reader->Read(&resp)) {
    r.request_id = resp.request_id();
    if (resp.token_id() >= 0) {
      r.ids.push_back(resp.token_id());
      if (on_token) on_token(int(r.ids.size()));
    }
  }
  r.status = reader->Finish();
  return r;
}

class VisionPipeline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    sys_ = new TestSystem("vis", kModels, kBody, kCoordinator);
    auto up = sys_->Up();
    ASSERT_EQ(up.code, 0) << up.out;
  }
  static void TearDownTestSuite() {
    delete sys_;
    sys_ = nullptr;
  }
  static std::unique_ptr<unicorn::v1::Unicorn::Stub> Stub(const TestSystem& sys) {
    return unicorn::v1::Unicorn::NewStub(
        grpc::CreateChannel(sys.address(), grpc::InsecureChannelCredentials()));
  }
  static TestSystem* sys_;
};
TestSystem* VisionPipeline::sys_ = nullptr;

TEST_F(VisionPipeline, GenerateWithAnImageEqualsTheSingleProcessModel) {
  const std::string png = ReadFile(kImage);
  auto stub = Stub(*sys_);
  for (int n_images : {1, 2}) {
    const std::string prompt = "Describe this image.";
    const std::vector<int> want =
        OneProcess(kModels, "", PromptIds(kModels, prompt, n_images, false), n_images, 24);
    ASSERT_FALSE(want.empty());
    Result got = Generate(*stub, prompt, std::vector<std::string>(size_t(n_images), png), 24);
    ASSERT_TRUE(got.status.ok()) << got.status.error_message();
    EXPECT_EQ(got.ids, want) << n_images << " images";
  }
}

TEST_F(VisionPipeline, ChatWithAnImageEqualsTheSingleProcessModel) {
  auto stub = Stub(*sys_);
  const std::string prompt = "What is in the picture?";
  const std::vector<int> want = OneProcess(kModels, "", PromptIds(kModels, prompt, 1, true), 1, 24);
  Result got = Generate(*stub, prompt, {ReadFile(kImage)}, 24, /*chat=*/true);
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  EXPECT_EQ(got.ids, want);
}

TEST_F(VisionPipeline, CorruptImageIsInvalidArgumentNamingTheDecodeProblem) {
  auto stub = Stub(*sys_);
  std::string bad = ReadFile(kImage).substr(0, 100);  // a PNG cut short
  Result got = Generate(*stub, "Describe this image.", {bad}, 4);
  EXPECT_EQ(got.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(got.status.error_message().find("decode"), std::string::npos)
      << got.status.error_message();
  got = Generate(*stub, "Describe this image.", {"not an image at all"}, 4, /*chat=*/true);
  EXPECT_EQ(got.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(got.status.error_message().find("decode"), std::string::npos)
      << got.status.error_message();
  // More markers than images.
  got = Generate(*stub, "<start_of_image> and <start_of_image>", {ReadFile(kImage)}, 4);
  EXPECT_EQ(got.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(got.status.error_message().find("markers"), std::string::npos);
}

TEST_F(VisionPipeline, TraceHasImagePreprocessAndAVisionSpanOnTheVisionWorker) {
  auto stub = Stub(*sys_);
  Result got = Generate(*stub, "Describe this image.", {ReadFile(kImage)}, 4);
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  grpc::ClientContext ctx;
  unicorn::v1::ProfileRequest req;
  req.set_request_id(got.request_id);
  unicorn::v1::ProfileResponse prof;
  grpc::Status st = stub->Profile(&ctx, req, &prof);
  ASSERT_TRUE(st.ok()) << st.error_message();
  auto doc = nlohmann::json::parse(prof.trace_json());
  std::map<int, std::string> process;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "process_name") {
      process[e["pid"].get<int>()] = e["args"]["name"];
    }
  }
  bool preprocess = false, vision_on_gpu = false, vision_hop = false;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] != "X") continue;
    const std::string name = e["name"], proc = process[e["pid"].get<int>()];
    preprocess |= name == "image preprocess" && proc == "coordinator";
    vision_on_gpu |= name == "vision" && proc == "gpu";
    vision_hop |= name == "vision hop" && proc == "coordinator";
  }
  EXPECT_TRUE(preprocess) << prof.summary();
  EXPECT_TRUE(vision_on_gpu) << prof.summary();
  EXPECT_TRUE(vision_hop) << prof.summary();
  EXPECT_NE(prof.summary().find("image preprocess"), std::string::npos) << prof.summary();
  EXPECT_NE(prof.summary().find("vision @gpu"), std::string::npos) << prof.summary();
}

// The engine keeps the image embeddings with the request: after the vision
// worker (which also runs the embedding and the FFNs) is killed and started
// again, the replayed prefill needs no image from the client and the stream
// goes on exactly.
TEST_F(VisionPipeline, ReplayAfterTheVisionWorkerIsKilledKeepsTheStreamExact) {
  const std::string prompt = "Describe this image.";
  const int n = 64;
  const std::vector<int> want = OneProcess(kModels, "", PromptIds(kModels, prompt, 1, false), 1, n);
  ASSERT_GE(want.size(), 8u) << "the reference stops too early to be interrupted";
  auto stub = Stub(*sys_);
  auto replays = [&] {
    grpc::ClientContext ctx;
    unicorn::v1::StatsResponse s;
    EXPECT_TRUE(stub->Stats(&ctx, {}, &s).ok());
    return s.replays_total();
  };
  const int64_t before = replays();
  std::atomic<bool> killed{false};
  auto on_token = [&](int count) {
    if (count == 2 && !killed.exchange(true)) {
      // Blocks the stream's reader (not the coordinator) while the worker
      // dies and comes back, so the rest of the tokens come after the replay.
      sys_->Signal("gpu", SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      sys_->Restart("gpu", "gpu-worker");
    }
  };
  Result got = Generate(*stub, prompt, {ReadFile(kImage)}, n, false, on_token);
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  EXPECT_EQ(got.ids, want);
  // The kill landed before the end only if the stream was still going: the
  // replay counter says whether this run tested a replay at all.
  if (int(want.size()) > 2 + 8) {
    EXPECT_GT(replays(), before);
  }
}

// The GPU worker on Vulkan (lavapipe in CI) runs the vision tower, the
// embedding and the FFNs on the device: the same greedy tokens as the CPU
// model in one process. Only 8 are compared: the backends sum in different
// orders, and a later near-tie could flip (the 8 are equal on lavapipe).
TEST(VisionPipelineVulkan, VisionTowerOnTheVulkanWorker) {
  std::string body = kBody;
  body.replace(body.find("backend: cpu"), 12, "backend: vulkan");
  ::setenv("UNICORN_LOG_LEVEL", "info", 1);  // the shard's description is logged at info
  TestSystem sys("visv", kModels, body, kCoordinator);
  auto up = sys.Up();
  ::setenv("UNICORN_LOG_LEVEL", "warn", 1);
  ASSERT_EQ(up.code, 0) << up.out;
  auto stub = unicorn::v1::Unicorn::NewStub(
      grpc::CreateChannel(sys.address(), grpc::InsecureChannelCredentials()));
  const std::string prompt = "Describe this image.";
  const std::vector<int> want = OneProcess(kModels, "", PromptIds(kModels, prompt, 1, false), 1, 8);
  Result got = Generate(*stub, prompt, {ReadFile(kImage)}, 8);
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  EXPECT_EQ(got.ids, want);
  EXPECT_NE(sys.Log("gpu").find("vision tower (SigLIP + projector) on the same backend"),
            std::string::npos)
      << sys.Log("gpu");
}

// The GGUF text model with its mmproj file: the worker loads the vision
// tower from the mmproj.
TEST(VisionPipelineGguf, GgufWithMmprojEqualsTheSingleProcessModel) {
  TestSystem sys("visg", kGguf, std::string("mmproj: ") + kMmproj + "\n" + kBody, kCoordinator);
  auto up = sys.Up();
  ASSERT_EQ(up.code, 0) << up.out;
  auto stub = unicorn::v1::Unicorn::NewStub(
      grpc::CreateChannel(sys.address(), grpc::InsecureChannelCredentials()));
  const std::string prompt = "Describe this image.";
  const std::vector<int> want =
      OneProcess(kGguf, kMmproj, PromptIds(kGguf, prompt, 1, false), 1, 16);
  Result got = Generate(*stub, prompt, {ReadFile(kImage)}, 16);
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  EXPECT_EQ(got.ids, want);
}

// The same GGUF without its mmproj: no vision tower, a clear error.
TEST(VisionPipelineGguf, GgufWithoutMmprojSaysItHasNoVisionTower) {
  TestSystem sys("visn", kGguf, kBody, kCoordinator);
  auto up = sys.Up();
  ASSERT_EQ(up.code, 0) << up.out;
  auto stub = unicorn::v1::Unicorn::NewStub(
      grpc::CreateChannel(sys.address(), grpc::InsecureChannelCredentials()));
  Result got = Generate(*stub, "Describe this image.", {ReadFile(kImage)}, 4);
  EXPECT_EQ(got.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(got.status.error_message().find("has no vision tower"), std::string::npos)
      << got.status.error_message();
  // Text still works.
  got = Generate(*stub, "Hello", {}, 4);
  EXPECT_TRUE(got.status.ok()) << got.status.error_message();
}

}  // namespace
