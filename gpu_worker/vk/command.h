// Command buffer recording, submission and GPU timestamps.
//
//   vk::CommandBuffer cmd(device);
//   cmd.Begin();
//   cmd.Dispatch(rms_norm, {x, w, y}, push, {rows, 1, 1});
//   cmd.Barrier();
//   ...
//   UNICORN_RETURN_IF_ERROR(cmd.End());
//   UNICORN_RETURN_IF_ERROR(cmd.SubmitAndWait());  // may be re-submitted as is
//
// Descriptor sets come from pools the command buffer owns; they live until the
// next Begin(), so a recorded command buffer can be submitted again and again
// (the inputs that change per step live in buffers, not in the recording).
#pragma once

#include <vulkan/vulkan.h>

#include <array>
#include <initializer_list>
#include <string>
#include <vector>

#include "common/status.h"
#include "gpu_worker/vk/memory.h"

namespace unicorn::vk {

class Device;
class Pipeline;

struct Groups {
  uint32_t x = 1, y = 1, z = 1;
};

struct TimestampRecord {
  std::string label;  // the pipeline name, or the Mark() label
  double ms = 0;      // GPU time since the previous timestamp
};

class CommandBuffer {
 public:
  // `max_timestamps` > 0 enables per-dispatch GPU timing (Profile()).
  explicit CommandBuffer(Device& device, uint32_t max_timestamps = 0);
  ~CommandBuffer();
  CommandBuffer(const CommandBuffer&) = delete;
  CommandBuffer& operator=(const CommandBuffer&) = delete;

  // Starts a new recording; forgets the previous one and its descriptor sets.
  void Begin();
  // Binds `p` and `buffers` (bindings 0..n-1), pushes `push`, dispatches.
  void Dispatch(const Pipeline& p, std::initializer_list<SubBuffer> buffers, const void* push,
                uint32_t push_bytes, Groups groups);
  template <class Push>
  void Dispatch(const Pipeline& p, std::initializer_list<SubBuffer> buffers, const Push& push,
                Groups groups) {
    Dispatch(p, buffers, &push, sizeof(Push), groups);
  }
  // Names the following dispatches in Profile() (default: the pipeline name).
  void SetLabel(std::string label) { label_ = std::move(label); }
  const std::string& label() const { return label_; }
  // Ablation, for measuring what an op costs in a whole step (results are
  // wrong then): dispatches whose label (or pipeline name) starts with one
  // of `prefixes` are left out, and "barrier" leaves out the barriers.
  void Skip(std::vector<std::string> prefixes);
  // Makes every earlier shader or transfer write visible to later shaders and
  // transfers (a full compute/transfer memory barrier).
  void Barrier();
  // The same between dispatches only: earlier shader writes visible to later
  // shaders. Waits on less (no transfer stage) where no copy is involved.
  void ComputeBarrier();
  // Barriers between the work of this recording (Barrier, ComputeBarrier),
  // counted since Begin().
  uint64_t barriers() const { return barriers_; }
  void Copy(const SubBuffer& src, const SubBuffer& dst, VkDeviceSize bytes);
  void Fill(const SubBuffer& dst, uint32_t value);
  // Closes the recording; reports an error recorded earlier (pool exhaustion).
  Status End();

  Status Submit();  // non-blocking
  Status Wait();    // blocks until the last Submit() finished
  Status SubmitAndWait();

  // Span marks (trace spans of model parts): ReserveMarks(n) before Begin()
  // makes room for n timestamps, which Begin() resets on the device each
  // run; Mark() writes the next one once all earlier work has completed.
  // MarkTicks() gives them (device ticks) after Wait(). False from
  // ReserveMarks when the queue cannot write timestamps.
  bool ReserveMarks(uint32_t n);
  void Mark();
  StatusOr<std::vector<uint64_t>> MarkTicks();

  // With timestamps enabled: the GPU time of each dispatch of the last run,
  // in recording order (valid after Wait()).
  StatusOr<std::vector<TimestampRecord>> Profile();

  VkCommandBuffer handle() const { return cmd_; }
  Device& device() { return device_; }

 private:
  VkDescriptorSet AllocateSet(VkDescriptorSetLayout layout);
  void Timestamp(const std::string& label);

  Device& device_;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkCommandBuffer cmd_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  bool pending_ = false;
  std::vector<VkDescriptorPool> descriptor_pools_;
  size_t current_pool_ = 0;
  Status error_;
  VkQueryPool queries_ = VK_NULL_HANDLE;
  uint32_t max_timestamps_ = 0;
  std::vector<std::string> labels_;
  std::string label_;
  std::vector<std::string> skip_;
  bool skip_barriers_ = false;
  VkQueryPool marks_ = VK_NULL_HANDLE;
  uint32_t marks_cap_ = 0, marks_used_ = 0;
  uint64_t barriers_ = 0;
};

}  // namespace unicorn::vk
