// Trace spans: where the time of a request, a step, a layer goes, across the
// coordinator and the workers.
//
// A span is a fixed-size record (no strings, no allocation): a Kind (whose
// name and category are static), start and end on CLOCK_MONOTONIC, the
// process that ran it, and the request, step and layer it belongs to. On one
// host CLOCK_MONOTONIC is shared by every process, so spans from different
// processes line up as they are. (A worker on another host would have its
// spans shifted by the clock offset that the heartbeats measure: see
// common/wire.h.)
//
// Recording is sampled: a thread marks the step it runs as traced with a
// StepScope (the engine, from the profile config), and the ScopedSpan /
// Record calls below do nothing (one thread-local load) outside a traced
// step. Spans go to a Sink: the coordinator's process-wide Ring, or a worker's
// per-stage Collector whose spans travel back in the StageDone reply.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace unicorn::trace {

// CLOCK_MONOTONIC in nanoseconds.
int64_t NowNs();

enum class Kind : uint8_t {
  // Coordinator, per request.
  kQueue,     // submitted -> admitted to a step
  kTokenize,  // prompt text -> ids (chat template included)
  kInStep,    // marks that a request ran in a step (start/end = the step's)
  kSample,    // logits -> token
  kStream,    // token -> text, handed to the client's stream
  // Coordinator, per step.
  kStep,      // one engine step: schedule .. last stream write
  kSchedule,  // building the batch
  kHop,       // one stage: RunStage sent -> StageDone received (layer = stage index)
  kLogits,    // reading the logits slot
  // Worker, per stage.
  kReceive,  // parsing the RunStage request
  kShmRead,  // input hidden states out of the arena
  kCompute,  // the whole stage on the device
  kEmbedding,
  kAttention,  // layer = the layer
  kFfn,        // layer = the layer
  kLmHead,
  kShmWrite,  // output into the arena (the reply itself is not timed: its
              // span would have to travel in the message it times; the
              // coordinator's hop span covers it)
  // Images (appended: the wire carries kinds by value).
  kImagePreprocess,  // coordinator, per request: decode, resize, normalize its images
  kVisionHop,        // coordinator: pixels written -> the vision worker's answer read
  kVision,           // worker: SigLIP + projector on one image
  // Ops inside a model part (appended; category "op"): one span per op, or
  // per fused group of ops on Vulkan, nested in its part's span; layer = the
  // part's layer (-1 outside layers). A matrix product is named by the role
  // of its weight (the GGUF name without "blk.N." and ".weight").
  kOpEmbed,
  kOpNorm,     // RMSNorm / LayerNorm
  kOpAddNorm,  // Vulkan: post-norm + residual add (+ the next pre-norm), fused
  kOpQkv,      // CPU: q/k/v projections in one call
  kOpQ,
  kOpK,
  kOpV,
  kOpAttnOutput,  // o_proj
  kOpGateUp,      // CPU: gate/up projections in one call
  kOpGate,
  kOpUp,
  kOpGateUpGeglu,  // Vulkan: gate/up products with the GeGLU, fused (few tokens)
  kOpDown,
  kOpLmHead,          // the tied LM head (token_embd as the output matrix)
  kOpMatMul,          // any other product (vision tower, projector)
  kOpHeadNormRope,    // Vulkan: q/k head norm + RoPE, fused
  kOpHeadNormRopeKv,  // Vulkan: k head norm + RoPE + the K/V store, fused
  kOpRope,
  kOpStoreKv,
  kOpAttentionCore,  // scores, softmax, weighted values
  kOpGeglu,
  kOpGelu,
  kOpAdd,
  kOpSoftCap,
  kOpAvgPool,
  kOpCopy,    // a buffer copy queued with the ops
  kOpArgmax,  // greedy rows' token ids from their logits
  kCount,
};

const char* KindName(Kind k);      // "queue", "attention", ...
const char* KindCategory(Kind k);  // "request", "step", "worker", "layer", "op"
// Whether `k` is one of the per-op kinds (kOpEmbed ..), whose spans nest in a
// part span (and are not summed with the parts).
inline bool IsOp(Kind k) { return k >= Kind::kOpEmbed && k < Kind::kCount; }
// The op kind of a matrix product by its weight's GGUF name
// ("blk.3.attn_q.weight" -> kOpQ, "token_embd.weight" -> kOpLmHead);
// `count` > 1 for several products of one input in one call (kOpQkv,
// kOpGateUp). Call it only in traced steps: it reads the name.
Kind MatMulOpKind(const std::string& weight_name, size_t count = 1);
// A Kind from its wire value (spans that arrive in StageDone); false if unknown.
bool KindFromInt(int v, Kind* out);

struct Span {
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  uint64_t request_id = 0;  // 0 = not tied to one request (step and worker spans)
  uint64_t step = 0;        // 0 = not in a step (queue, tokenize)
  int32_t layer = -1;       // layer, or stage index for kHop; -1 = none
  uint16_t process = 0;     // ProcessId(): 0 is this process
  Kind kind = Kind::kStep;
  bool device = false;  // GPU time (device timestamps), not host time
};

// Names of processes ("coordinator", "npu", "gpu"): small ids, stable for the
// life of this process. ProcessId("") is 0, the local process.
uint16_t ProcessId(const std::string& name);
std::string ProcessName(uint16_t id);
void SetLocalProcessName(const std::string& name);

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void Add(const Span& s) = 0;
};

// A fixed-capacity ring of the most recent spans, safe from any thread. The
// oldest spans are overwritten once it is full.
class Ring final : public Sink {
 public:
  explicit Ring(size_t capacity);
  void Add(const Span& s) override;
  // Spans that end at or after `since_ns`, in recording order.
  std::vector<Span> Since(int64_t since_ns) const;
  // Spans of a request: its own, and every span of the steps it ran in.
  std::vector<Span> ForRequest(uint64_t request_id) const;
  size_t capacity() const { return buf_.size(); }

 private:
  mutable std::mutex mu_;
  std::vector<Span> buf_;
  uint64_t next_ = 0;  // spans ever added
};

// A worker's spans of one stage: fixed capacity, reused, one thread.
class Collector final : public Sink {
 public:
  explicit Collector(size_t capacity) { spans_.reserve(capacity); }
  void Add(const Span& s) override {
    if (spans_.size() < spans_.capacity()) spans_.push_back(s);
  }
  void Clear() { spans_.clear(); }
  const std::vector<Span>& spans() const { return spans_; }

 private:
  std::vector<Span> spans_;
};

// The calling thread's tracing state: where spans go and the step they
// belong to. A null sink means "not traced".
struct ThreadState {
  Sink* sink = nullptr;
  uint64_t step = 0;
  int32_t layer = -1;  // the layer whose part runs now (LayerScope), for op spans
};
ThreadState& Current();

inline bool Enabled() { return Current().sink != nullptr; }

// Marks the calling thread as running a part of `layer` (-1: none) until the
// scope ends, so that op spans (OpSpan) carry the layer without every op
// being told it.
class LayerScope {
 public:
  explicit LayerScope(int32_t layer) : saved_(Current().layer) { Current().layer = layer; }
  ~LayerScope() { Current().layer = saved_; }
  LayerScope(const LayerScope&) = delete;
  LayerScope& operator=(const LayerScope&) = delete;

 private:
  int32_t saved_;
};

// Marks the calling thread as running `step`, traced into `sink` (null: not
// traced), until the scope ends.
class StepScope {
 public:
  StepScope(Sink* sink, uint64_t step) : saved_(Current()) { Current() = {sink, step}; }
  ~StepScope() { Current() = saved_; }
  StepScope(const StepScope&) = delete;
  StepScope& operator=(const StepScope&) = delete;

 private:
  ThreadState saved_;
};

// Records a finished span in the current step (no-op when not traced).
inline void Record(Kind kind, int64_t start_ns, int64_t end_ns, uint64_t request_id = 0,
                   int32_t layer = -1) {
  ThreadState& t = Current();
  if (t.sink == nullptr) return;
  Span s;
  s.start_ns = start_ns;
  s.end_ns = end_ns;
  s.request_id = request_id;
  s.step = t.step;
  s.layer = layer;
  s.kind = kind;
  t.sink->Add(s);
}

// Records a span timed on the device (GPU timestamps, already converted to
// CLOCK_MONOTONIC) in the current step (no-op when not traced).
inline void RecordDevice(Kind kind, int64_t start_ns, int64_t end_ns, int32_t layer = -1) {
  ThreadState& t = Current();
  if (t.sink == nullptr) return;
  Span s;
  s.start_ns = start_ns;
  s.end_ns = end_ns;
  s.step = t.step;
  s.layer = layer;
  s.kind = kind;
  s.device = true;
  t.sink->Add(s);
}

// Times its own scope (no clock read when not traced).
class ScopedSpan {
 public:
  explicit ScopedSpan(Kind kind, int32_t layer = -1, uint64_t request_id = 0)
      : kind_(kind), layer_(layer), request_id_(request_id), start_(Enabled() ? NowNs() : 0) {}
  ~ScopedSpan() {
    if (start_ != 0) Record(kind_, start_, NowNs(), request_id_, layer_);
  }
  ScopedSpan(const ScopedSpan&) = delete;
  ScopedSpan& operator=(const ScopedSpan&) = delete;

 private:
  Kind kind_;
  int32_t layer_;
  uint64_t request_id_;
  int64_t start_;
};

// Times one op of a backend that runs ops as they are called (the CPU
// backend): a host span of `kind` in the current layer (no clock read when
// not traced). on() says whether it records, so a caller can compute a
// costlier kind (MatMulOpKind) only then.
class OpSpan {
 public:
  explicit OpSpan(Kind kind) : kind_(kind), start_(Enabled() ? NowNs() : 0) {}
  ~OpSpan() {
    if (start_ != 0) Record(kind_, start_, NowNs(), 0, Current().layer);
  }
  bool on() const { return start_ != 0; }
  void set_kind(Kind kind) { kind_ = kind; }
  OpSpan(const OpSpan&) = delete;
  OpSpan& operator=(const OpSpan&) = delete;

 private:
  Kind kind_;
  int64_t start_;
};

}  // namespace unicorn::trace
