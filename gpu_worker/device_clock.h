// DeviceClock: puts GPU timestamp ticks on CLOCK_MONOTONIC (nanoseconds), so
// that device-timed trace spans line up with the host's spans.
//
// Two ways, the first when the device offers it:
// - Calibrated: a sample (tick, monotonic ns) taken together by
//   VK_EXT_calibrated_timestamps anchors the ticks:
//     ns = sample_ns + (tick - sample_tick) * ns_per_tick,
//   the tick difference taken modulo the timestamp's valid bits (signed), so
//   a counter narrower than 64 bits that wrapped since the sample still
//   converts. The owner re-samples now and then to follow drift.
// - Pinned (fallback): the last timestamp of a submission is pinned to the
//   moment the host saw the submission finish (the fence wait's return; the
//   GPU finished at or before it), the others placed back from it:
//     ns = done_ns - (last_tick - tick) * ns_per_tick.
#pragma once

#include <cstdint>

namespace unicorn::vk {

class DeviceClock {
 public:
  DeviceClock() = default;
  DeviceClock(double ns_per_tick, uint32_t valid_bits)
      : ns_per_tick_(ns_per_tick),
        mask_(valid_bits == 0 || valid_bits >= 64 ? ~uint64_t(0) : (uint64_t(1) << valid_bits) - 1),
        bits_(valid_bits == 0 || valid_bits >= 64 ? 64 : valid_bits) {}

  // Anchors ticks to the host clock: `tick` and `ns` were read together.
  void Calibrate(uint64_t tick, int64_t ns) {
    ref_tick_ = tick & mask_;
    ref_ns_ = ns;
    calibrated_ = true;
  }
  bool calibrated() const { return calibrated_; }
  // The host time of the last calibration sample (0: none).
  int64_t calibrated_ns() const { return calibrated_ ? ref_ns_ : 0; }

  // CLOCK_MONOTONIC ns of `tick`: calibrated, or pinned (`last_tick` of the
  // same submission at `done_ns`).
  int64_t ToNs(uint64_t tick, uint64_t last_tick, int64_t done_ns) const {
    if (calibrated_) return ref_ns_ + Scale(Delta(tick, ref_tick_));
    return done_ns - Scale(Delta(last_tick, tick));
  }

 private:
  // a - b in ticks, modulo the valid bits, as a signed number.
  int64_t Delta(uint64_t a, uint64_t b) const {
    uint64_t d = (a - b) & mask_;
    if (bits_ < 64 && (d >> (bits_ - 1)) != 0) return int64_t(d) - int64_t(mask_) - 1;
    return int64_t(d);
  }
  int64_t Scale(int64_t ticks) const { return int64_t(double(ticks) * ns_per_tick_); }

  double ns_per_tick_ = 1;
  uint64_t mask_ = ~uint64_t(0);
  uint32_t bits_ = 64;
  bool calibrated_ = false;
  uint64_t ref_tick_ = 0;
  int64_t ref_ns_ = 0;
};

}  // namespace unicorn::vk
