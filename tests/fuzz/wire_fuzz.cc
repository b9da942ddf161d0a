// libFuzzer target: the ZeroMQ control frame parser (common/wire.h) and what
// a worker does with a parsed message's shared-memory descriptor. The input
// is split into frames at each "\x00|" pair; the first byte picks whether a
// routing-id frame leads (ROUTER side). Every command's payload is parsed as
// its message; a RunStage's `hidden` descriptor is opened against a small real
// arena (unknown regions, out-of-range offsets, wrong generations must all be
// clean errors). Built and run by tools/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/shm_ref.h"
#include "common/wire.h"
#include "proto/unicorn/worker.pb.h"
#include "shared_mem/arena.h"
#include "shared_mem/plan.h"
#include "shared_mem/slot.h"

namespace {

const unicorn::shm::Arena& SmallArena() {
  static std::unique_ptr<unicorn::shm::Arena> arena = [] {
    unicorn::shm::ModelLimits limits;
    limits.hidden = 8;
    limits.vocab = 16;
    limits.max_batch_tokens = 4;
    limits.max_sequences = 2;
    auto plan = unicorn::shm::ArenaPlan::ForModel(limits);
    if (!plan.ok()) abort();
    auto a = unicorn::shm::Arena::Create(*plan);
    if (!a.ok()) abort();
    return std::move(*a);
  }();
  return *arena;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace unicorn;
  if (size == 0) return 0;
  const bool with_identity = data[0] & 1;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<zmq::message_t> frames;
  while (frames.size() < 20) {
    size_t cut = rest.find(std::string_view("\0|", 2));
    std::string_view f = rest.substr(0, cut);
    frames.emplace_back(f.data(), f.size());
    if (cut == std::string_view::npos) break;
    rest.remove_prefix(cut + 2);
  }
  StatusOr<wire::Message> m = wire::Decode(frames, with_identity);
  if (!m.ok()) return 0;
  switch (m->command) {
    case wire::Command::kRunStage: {
      wire::RunStage req;
      if (!wire::ParsePayload(*m, &req).ok() || !req.has_hidden()) break;
      auto view = shm::BeginRead(SmallArena(), FromShmRef(req.hidden()));
      if (view.ok()) {
        (void)shm::EndRead(*view);
        shm::Release(*view);
      }
      break;
    }
    case wire::Command::kHello: {
      wire::Hello x;
      (void)wire::ParsePayload(*m, &x);
      break;
    }
    case wire::Command::kStageDone: {
      wire::StageDone x;
      (void)wire::ParsePayload(*m, &x);
      break;
    }
    case wire::Command::kLoadShard: {
      wire::LoadShard x;
      (void)wire::ParsePayload(*m, &x);
      break;
    }
    default: {
      wire::Heartbeat x;
      (void)wire::ParsePayload(*m, &x);
      break;
    }
  }
  return 0;
}
