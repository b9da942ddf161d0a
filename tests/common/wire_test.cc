#include "common/wire.h"

#include <gtest/gtest.h>

#include "proto/unicorn/worker.pb.h"

namespace unicorn::wire {
namespace {

std::vector<zmq::message_t> Frames(std::initializer_list<std::string> parts) {
  std::vector<zmq::message_t> v;
  for (const auto& p : parts) v.emplace_back(p.data(), p.size());
  return v;
}

std::string Tag(uint8_t version = kProtocolVersion) {
  return std::string(kProtocolTag) + std::string(1, char(version));
}

TEST(Wire, RoundTripOverInproc) {
  zmq::context_t ctx;
  zmq::socket_t router(ctx, zmq::socket_type::router);
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  router.bind("inproc://t");
  dealer.set(zmq::sockopt::routing_id, "w1");
  dealer.connect("inproc://t");
  Hello h;
  h.set_worker_name("gpu");
  h.set_incarnation(42);
  ASSERT_TRUE(Send(dealer, "", Command::kHello, h).ok());
  std::optional<Message> got;
  for (int i = 0; i < 100 && !got; ++i) {
    auto r = TryReceive(router, true);
    ASSERT_TRUE(r.ok()) << r.status();
    got = *r;
    if (!got) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->identity, "w1");
  EXPECT_EQ(got->command, Command::kHello);
  Hello back;
  ASSERT_TRUE(ParsePayload(*got, &back).ok());
  EXPECT_EQ(back.worker_name(), "gpu");
  EXPECT_EQ(back.incarnation(), 42u);
}

TEST(Wire, RejectsMalformedFrames) {
  struct Case {
    std::vector<std::string> frames;
    absl::StatusCode code;
    const char* text;
  };
  const Case cases[] = {
      {{"id", Tag(), "\x03"}, absl::StatusCode::kInvalidArgument, "expected 3 frames"},
      {{"id", "HTTP/1.1", "\x03", ""}, absl::StatusCode::kInvalidArgument, "bad protocol tag"},
      {{"id", Tag(9), "\x03", ""}, absl::StatusCode::kFailedPrecondition, "protocol version 9"},
      {{"id", Tag(), "\x03\x03", ""}, absl::StatusCode::kInvalidArgument, "1 byte"},
      {{"id", Tag(), std::string(1, '\x7f'), ""},
       absl::StatusCode::kInvalidArgument,
       "unknown command 127"},
  };
  for (const auto& c : cases) {
    std::vector<zmq::message_t> f;
    for (const auto& p : c.frames) f.emplace_back(p.data(), p.size());
    auto r = Decode(f, true);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), c.code);
    EXPECT_NE(std::string(r.status().message()).find(c.text), std::string::npos)
        << r.status().message();
  }
}

TEST(Wire, MalformedPayloadIsAnError) {
  auto f = Frames({Tag(), std::string(1, char(Command::kHeartbeat)), "\xff\xff\xff"});
  auto m = Decode(f, false);
  ASSERT_TRUE(m.ok());
  Heartbeat hb;
  Status s = ParsePayload(*m, &hb);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("malformed Heartbeat"), std::string::npos);
}

}  // namespace
}  // namespace unicorn::wire
