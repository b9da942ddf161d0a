// Int8 activations (quantize_q8.comp) and the Q4_0/Q8_0 products over them
// (matvec_int8.comp), against CPU twins: the quantization against the CPU
// backend's formula, the product against the F64 product of the exactly
// dequantized weights with the activations the GPU quantized.
#include <cmath>
#include <functional>

#include "tests/gpu_worker/cpu_twins.h"
#include "tests/gpu_worker/vk_test_util.h"

namespace unicorn::vk::testing {
namespace {

// As in matmul_test.cc: only the F32 accumulation order differs from the
// F64 twin (plus one rounding of d_w * d_x per block).
constexpr double kMatTol = 1e-5;
// The tensor cores (matmul_int8_coop.comp) round each dequantized weight and
// activation to F16 (2^-11 relative) before the F32 sums: the bound of
// matmul_coop_test.cc for F16-rounded inputs against exact ones.
constexpr double kTensorCoreTol = 4e-3;

// Turns the kernels' int8 path on for one test (lavapipe has int8 dot
// products, though not in hardware, so the default there is off).
class Int8On {
 public:
  explicit Int8On(Kernels& k) : k_(k), was_(k.int8()) { k.set_int8(true); }
  ~Int8On() { k_.set_int8(was_); }

 private:
  Kernels& k_;
  bool was_;
};

// The twin of quantize_q8.comp: per block of 32, d = max|x| / 127 and
// q = round_half_even(x / d).
void QuantizeRef(const float* x, int k, std::vector<int>* q, std::vector<float>* d) {
  for (int b = 0; b < k / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float db = amax / 127.0f, id = db != 0 ? 1.0f / db : 0.0f;
    d->push_back(db);
    for (int j = 0; j < 32; ++j) q->push_back(int(std::nearbyint(x[b * 32 + j] * id)));
  }
}

// The GPU's quantized activations, dequantized: [n, k].
struct Quantized {
  std::vector<int> q;     // [n, k]
  std::vector<float> d;   // [n, k / 32]
  std::vector<int> bias;  // [n, k / 32]: 0x4B400000 - 8 * sum(q)
  // The activations the blocks stand for: d * q.   [n, k]
  std::vector<float> Values() const {
    std::vector<float> v(q.size());
    for (size_t i = 0; i < q.size(); ++i) v[i] = d[i / 32] * float(q[i]);
    return v;
  }
};
Quantized ReadQuantized(Device& dev, const Buffer& xq, int n, int k) {
  const size_t words = size_t(n) * k / 4, blocks = size_t(n) * k / 32;
  std::vector<uint32_t> raw = Download<uint32_t>(dev, xq, words + 2 * blocks);
  Quantized out;
  for (size_t i = 0; i < words; ++i) {
    for (int b = 0; b < 4; ++b) out.q.push_back(int(int8_t(uint8_t(raw[i] >> (8 * b)))));
  }
  for (size_t i = 0; i < blocks; ++i) {
    float d;
    std::memcpy(&d, &raw[words + 2 * i], 4);
    out.d.push_back(d);
    out.bias.push_back(int(raw[words + 2 * i + 1]));
  }
  return out;
}

// Records `producer`, which writes y [n, k] in F32 and, fused, its int8
// blocks into `fused`; then QuantizeQ8 of y. Expects the two int8 outputs
// equal, word for word.
void ExpectFusedEqualsQuantize(Env& env, const Buffer& y, const Buffer& fused, uint32_t n,
                               uint32_t k, const std::function<Status(CommandBuffer&)>& producer,
                               const std::string& what) {
  Device& d = *env.device;
  const uint64_t qb = Kernels::Q8ActivationBytes(n, k);
  Buffer plain = Zeros(d, qb);
  RunCmd(d, [&](CommandBuffer& cmd) {
    Status s = producer(cmd);
    ASSERT_TRUE(s.ok()) << s << " (" << what << ")";
    cmd.Barrier();
    s = env.kernels->QuantizeQ8(cmd, y.All(), plain.All(), n, k);
    ASSERT_TRUE(s.ok()) << s;
  });
  EXPECT_EQ(Download<uint32_t>(d, fused, qb / 4), Download<uint32_t>(d, plain, qb / 4)) << what;
}

struct Case {
  DType dtype;
  int m, k, n;
  uint32_t flags = 0;
  uint32_t rows = 0, wg = 0, cols = 0;  // 0 = the default shape
  MatMulOptions::Int8Order order = MatMulOptions::Int8Order::kAuto;
  uint32_t row_lanes = 0;    // kRowLanes
  uint32_t coop_blocks = 0;  // kTensorCores (rows = fragments of 16)
};

void RunCase(const Case& c) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  if (!d.caps().int8_dot) GTEST_SKIP() << "no int8 dot products on " << d.caps().name;
  const bool coop = c.order == MatMulOptions::Int8Order::kTensorCores;
  CoopEmulated emulated(*env.kernels);
  if (coop && !emulated.runs()) GTEST_SKIP() << "no tensor cores or F16 on " << d.caps().name;
  Int8On on(*env.kernels);
  const bool geglu = c.flags & UNICORN_MM_GEGLU;
  const int rows = geglu ? 2 * c.m : c.m;
  TestMatrix w = MakeMatrix(c.dtype, rows, c.k, 300 + c.m + c.k, 0.5f);
  std::vector<float> x = Random(size_t(c.n) * c.k, 17, -1, 1);
  std::vector<float> bias = Random(c.m, 8, -1, 1);
  std::vector<float> y0 = Random(size_t(c.n) * c.m, 9, -1, 1);
  Buffer bw = Upload(d, w.bytes), bx = Upload(d, x), bb = Upload(d, bias), by = Upload(d, y0);
  Buffer bq = Zeros(d, Kernels::Q8ActivationBytes(c.n, c.k));
  Weight wt{bw.All(), c.dtype, uint32_t(rows), uint32_t(c.k)};
  MatMulOptions opt;
  opt.flags = c.flags;
  opt.bias = bb.All();
  opt.softcap = 3.0f;
  opt.xq = bq.All();
  opt.matvec_rows = c.rows;
  opt.matvec_wg = c.wg;
  opt.int8_cols = c.cols;
  opt.int8_order = c.order;
  opt.int8_row_lanes = c.row_lanes;
  opt.int8_coop_blocks = c.coop_blocks;
  RunCmd(d, [&](CommandBuffer& cmd) {
    Status s = env.kernels->QuantizeQ8(cmd, bx.All(), bq.All(), c.n, c.k);
    ASSERT_TRUE(s.ok()) << s;
    cmd.Barrier();
    s = env.kernels->MatMul(cmd, wt, bx.All(), by.All(), c.n, opt);
    ASSERT_TRUE(s.ok()) << s;
  });
  const std::vector<float> xd = ReadQuantized(d, bq, c.n, c.k).Values();
  std::vector<float> got = Download<float>(d, by, y0.size());
  std::vector<float> want = MatMulRef(w.values, xd, c.m, c.k, c.n, c.flags, bias, 3.0f, y0);
  EXPECT_LT(MaxRelError(got, want), coop ? kTensorCoreTol : kMatTol)
      << Traits(c.dtype).name << " m=" << c.m << " k=" << c.k << " n=" << c.n
      << " flags=" << c.flags << " shape " << c.rows << "x" << c.wg << " cols " << c.cols
      << " order " << int(c.order) << " row lanes " << c.row_lanes << " k step " << c.coop_blocks;
}

// The quantization matches the CPU formula: scales to the ulp, every q
// exactly except at a rounding tie that a 1-ulp reciprocal can move, and
// the bias of each block from its own q.
TEST(VkInt8, QuantizeMatchesTheCpuFormula) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const int n = 5, k = 320;
  std::vector<float> x = Random(size_t(n) * k, 21, -3, 3);
  for (int j = 0; j < 32; ++j) x[64 + j] = 0;  // an all-zero block: d = 0, q = 0
  Buffer bx = Upload(d, x), bq = Zeros(d, Kernels::Q8ActivationBytes(n, k));
  RunCmd(d, [&](CommandBuffer& cmd) {
    Status s = env.kernels->QuantizeQ8(cmd, bx.All(), bq.All(), n, k);
    ASSERT_TRUE(s.ok()) << s;
  });
  const Quantized got = ReadQuantized(d, bq, n, k);
  std::vector<int> q;
  std::vector<float> ds;
  for (int t = 0; t < n; ++t) QuantizeRef(x.data() + t * k, k, &q, &ds);
  int off_by_one = 0;
  for (size_t b = 0; b < ds.size(); ++b) {
    EXPECT_NEAR(got.d[b], ds[b], 1e-7 * ds[b]) << "block " << b;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      const size_t i = b * 32 + j;
      sum += got.q[i];
      const int diff = std::abs(got.q[i] - q[i]);
      EXPECT_LE(diff, 1) << "element " << i;
      off_by_one += diff;
    }
    EXPECT_EQ(got.bias[b], 0x4B400000 - 8 * sum) << "block " << b;
  }
  EXPECT_LE(off_by_one, 2);
  EXPECT_EQ(got.d[2], 0.0f);
}

TEST(VkInt8, QuantizeRefusesRowsOutOfWholeBlocks) {
  UNICORN_VK_ENV(env);
  Buffer b = Zeros(*env.device, 1 << 16);
  CommandBuffer cmd(*env.device);
  cmd.Begin();
  Status s = env.kernels->QuantizeQ8(cmd, b.All(), b.All(), 2, 48);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("k % 32"), std::string::npos) << s;
}

// The fused post-norm + residual + next norm writes its output's int8 blocks
// exactly as QuantizeQ8 writes them from that output: one row per
// workgroup with one vec4 per invocation (decode) and with several (wide
// batches of rows).
TEST(VkInt8, FusedNormWritesWhatQuantizeWrites) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  Int8On on(*env.kernels);
  if (!env.kernels->CanQuantizeInNorm(64)) GTEST_SKIP() << "no subgroup shuffles of 8+";
  for (auto [rows, n] : {std::pair{5u, 320u}, {70u, 2048u}}) {
    std::vector<float> x = Random(size_t(rows) * n, 31, -2, 2);
    std::vector<float> h = Random(size_t(rows) * n, 32, -2, 2);
    Buffer bx = Upload(d, x), bh = Upload(d, h), bw = Upload(d, Random(n, 33, -1, 1)),
           bw2 = Upload(d, Random(n, 34, -1, 1)), by = Zeros(d, size_t(rows) * n * 4);
    Buffer fused = Zeros(d, Kernels::Q8ActivationBytes(rows, n));
    ExpectFusedEqualsQuantize(
        env, by, fused, rows, n,
        [&](CommandBuffer& cmd) {
          return env.kernels->AddRmsNorm(cmd, bx.All(), bw.All(), bh.All(), bw2.All(), by.All(),
                                         rows, n, 1e-6f, fused.All());
        },
        absl::StrCat(rows, " rows of ", n));
  }
  // Without a next norm, or rows out of whole blocks: a clear error.
  Buffer b = Zeros(d, 1 << 16);
  CommandBuffer cmd(d);
  cmd.Begin();
  for (auto [n, next] : {std::pair{48u, true}, {64u, false}}) {
    Status s = env.kernels->AddRmsNorm(cmd, b.All(), b.All(), b.All(), next ? b.All() : SubBuffer{},
                                       b.All(), 2, n, 1e-6f, b.All());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find("int8"), std::string::npos) << s;
  }
}

// Decode attention's merge (attn_reduce_q8) writes its output's int8 blocks
// exactly as QuantizeQ8 writes them from that output, for Gemma 3's head
// sizes (256 and 128) and a head of one block, over several tokens; also
// in the one-dispatch form (attn_decode_merge_q8).
TEST(VkInt8, AttentionMergeWritesWhatQuantizeWrites) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  Int8On on(*env.kernels);
  struct Shape {
    uint32_t n, heads, kv_heads, dim;
  };
  for (const Shape& sh : {Shape{3, 4, 2, 256}, Shape{2, 8, 4, 128}, Shape{4, 2, 1, 32}}) {
    const uint32_t cap = 24, hd = sh.heads * sh.dim;
    AttnParams ap;
    ap.n_tokens = sh.n;
    ap.n_heads = sh.heads;
    ap.n_kv_heads = sh.kv_heads;
    ap.head_dim = sh.dim;
    ap.cap = cap;
    ap.scale = 1.0f / std::sqrt(float(sh.dim));
    ap.path = AttnParams::Path::kDecode;
    ap.n_splits = 3;
    ASSERT_TRUE(env.kernels->CanQuantizeInAttention(ap));
    std::vector<int32_t> spans;
    for (uint32_t t = 0; t < sh.n; ++t) spans.insert(spans.end(), {0, int32_t(cap - 1 - t)});
    Buffer bq = Upload(d, Random(size_t(sh.n) * hd, 41, -1, 1)),
           bk = Upload(d, Random(size_t(cap) * sh.kv_heads * sh.dim, 42, -1, 1)),
           bv = Upload(d, Random(size_t(cap) * sh.kv_heads * sh.dim, 43, -1, 1)),
           bp = Upload(d, spans), bo = Zeros(d, size_t(sh.n) * hd * 4),
           scratch = Zeros(d, Kernels::AttnScratchBytes(ap));
    Buffer counters = Zeros(d, Kernels::AttnCounterBytes(ap));
    for (bool one : {false, true}) {  // split + merge, or one dispatch (AttnParams::counters)
      Buffer fused = Zeros(d, Kernels::Q8ActivationBytes(sh.n, hd));
      ap.xq = fused.All();
      ap.counters = one ? counters.All() : SubBuffer{};
      ExpectFusedEqualsQuantize(
          env, bo, fused, sh.n, hd,
          [&](CommandBuffer& cmd) {
            return env.kernels->Attention(cmd, bq.All(), bk.All(), bv.All(), bp.All(), bo.All(),
                                          scratch.All(), ap);
          },
          absl::StrCat(sh.n, " tokens of ", sh.heads, " x ", sh.dim, one ? ", one dispatch" : ""));
    }
  }
  // Heads out of whole blocks, or outputs with gaps between tokens: a clear error.
  Buffer b = Zeros(d, 1 << 20);
  CommandBuffer cmd(d);
  cmd.Begin();
  for (auto [dim, stride] : {std::pair{48u, 0u}, {64u, 512u}}) {
    AttnParams ap;
    ap.n_tokens = 1;
    ap.n_heads = ap.n_kv_heads = 4;
    ap.head_dim = dim;
    ap.cap = 8;
    ap.o_stride = stride;
    ap.path = AttnParams::Path::kDecode;
    ap.xq = b.All();
    EXPECT_FALSE(env.kernels->CanQuantizeInAttention(ap));
    Status s =
        env.kernels->Attention(cmd, b.All(), b.All(), b.All(), b.All(), b.All(), b.All(), ap);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find("int8"), std::string::npos) << s;
  }
}

// A GEGLU product that also writes its output as int8 blocks (for the down
// product) writes exactly what QuantizeQ8 writes from that output: every
// token class, 1-8 rows per workgroup, two column groups (11 and 16 tokens), and
// twice in one command buffer (the block counters are left zero).
TEST(VkInt8, GegluProductWritesWhatQuantizeWrites) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  if (!d.caps().int8_dot) GTEST_SKIP() << "no int8 dot products on " << d.caps().name;
  Int8On on(*env.kernels);
  CoopEmulated emulated(*env.kernels);
  // Lanes over rows (row_lanes > 0): 8-row workgroups, and 64-row ones
  // that finish two blocks each, the last of them past m.
  // The tensor cores (coop_blocks > 0): 16-row workgroups (two per block)
  // and 32-row ones.
  struct Shape {
    uint32_t m, k, n, rows, cols, row_lanes = 0, coop_blocks = 0;
  };
  for (const Shape& sh :
       {Shape{96, 64, 1, 2, 1}, Shape{64, 128, 5, 1, 8}, Shape{128, 64, 16, 4, 8},
        Shape{64, 96, 11, 8, 8}, Shape{64, 128, 11, 1, 8, 8}, Shape{96, 192, 16, 2, 16, 32},
        Shape{96, 192, 16, 1, 16, 0, 2}, Shape{64, 256, 7, 2, 16, 0, 1}}) {
    if (sh.coop_blocks && !emulated.runs()) continue;
    TestMatrix w = MakeMatrix(DType::kQ4_0, 2 * int(sh.m), int(sh.k), 500 + int(sh.m), 0.5f);
    Buffer bw = Upload(d, w.bytes), bx = Upload(d, Random(size_t(sh.n) * sh.k, 51, -1, 1));
    Buffer bq = Zeros(d, Kernels::Q8ActivationBytes(sh.n, sh.k)), by = Zeros(d, sh.n * sh.m * 4);
    Buffer fused = Zeros(d, Kernels::Q8ActivationBytes(sh.n, sh.m)),
           counters = Zeros(d, sh.m / 32 * 4);
    Weight wt{bw.All(), DType::kQ4_0, 2 * sh.m, sh.k};
    MatMulOptions opt;
    opt.flags = UNICORN_MM_GEGLU;
    opt.xq = bq.All();
    opt.matvec_rows = sh.rows;
    opt.int8_cols = sh.cols;
    if (sh.row_lanes) {
      opt.int8_order = MatMulOptions::Int8Order::kRowLanes;
      opt.int8_row_lanes = sh.row_lanes;
      opt.matvec_wg = 64;
    }
    if (sh.coop_blocks) {
      opt.int8_order = MatMulOptions::Int8Order::kTensorCores;
      opt.int8_coop_blocks = sh.coop_blocks;
      opt.matvec_wg = 64;  // fits lavapipe's 32 KiB of shared memory
    }
    opt.xq_out = fused.All();
    opt.counters = counters.All();
    const std::string what =
        absl::StrCat(sh.m, " outputs, ", sh.n, " tokens, ", sh.rows, " rows x ", sh.cols,
                     " tokens per workgroup, ", sh.row_lanes, " row lanes");
    ExpectFusedEqualsQuantize(
        env, by, fused, sh.n, sh.m,
        [&](CommandBuffer& cmd) {
          UNICORN_RETURN_IF_ERROR(env.kernels->QuantizeQ8(cmd, bx.All(), bq.All(), sh.n, sh.k));
          for (int rep = 0; rep < 2; ++rep) {
            cmd.Barrier();
            UNICORN_RETURN_IF_ERROR(env.kernels->MatMul(cmd, wt, bx.All(), by.All(), sh.n, opt));
          }
          return absl::OkStatus();
        },
        what);
    EXPECT_EQ(Download<uint32_t>(d, counters, sh.m / 32), std::vector<uint32_t>(sh.m / 32, 0u))
        << what;
  }
  // Outputs out of whole blocks, or a buffer too small: a clear error.
  Buffer b = Zeros(d, 1 << 16);
  CommandBuffer cmd(d);
  cmd.Begin();
  for (auto [m, bytes] : {std::pair{48u, 1u << 16}, {64u, 64u}}) {
    MatMulOptions opt;
    opt.flags = UNICORN_MM_GEGLU;
    opt.xq = b.All();
    opt.xq_out = b.Sub(0, bytes);
    opt.counters = b.All();
    Weight wt{b.All(), DType::kQ8_0, 2 * m, 32};
    Status s = env.kernels->MatMul(cmd, wt, b.All(), b.All(), 1, opt);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find("int8"), std::string::npos) << s;
  }
}

class VkInt8Dtype : public ::testing::TestWithParam<DType> {};

// Every token class, ragged rows (not a multiple of the workgroup's rows),
// rows of one block, tokens past a column group.
TEST_P(VkInt8Dtype, DefaultShapes) {
  RunCase({GetParam(), 37, 256, 2});
  RunCase({GetParam(), 21, 352, 7});
  RunCase({GetParam(), 16, 32, 16});
  RunCase({GetParam(), 9, 128, 13});
  RunCase({GetParam(), 11, 64, 1});
}

// Each epilogue, and GEGLU over gate and up rows.
TEST_P(VkInt8Dtype, Epilogues) {
  RunCase({GetParam(), 19, 128, 6, UNICORN_MM_GEGLU});
  RunCase({GetParam(), 40, 96, 16, UNICORN_MM_BIAS | UNICORN_MM_GELU});
  RunCase({GetParam(), 24, 64, 3, UNICORN_MM_ACC});
  RunCase({GetParam(), 24, 64, 9, UNICORN_MM_SOFTCAP});
}

// The tuning candidates: 1-8 rows, 32-128 invocations (more than blocks in
// a row), 8 or 16 tokens per workgroup.
TEST_P(VkInt8Dtype, WorkgroupShapes) {
  RunCase({GetParam(), 37, 256, 16, 0, 1, 32, 8});
  RunCase({GetParam(), 13, 128, 11, UNICORN_MM_GEGLU, 2, 64, 16});
  RunCase({GetParam(), 37, 256, 16, 0, 8, 32, 8});
  RunCase({GetParam(), 13, 128, 11, UNICORN_MM_GEGLU, 4, 128, 8});
  // The rows' weights in registers, activations streamed (W_REGS).
  constexpr auto kW = MatMulOptions::Int8Order::kWeights;
  RunCase({GetParam(), 37, 256, 16, 0, 4, 32, 16, kW});
  RunCase({GetParam(), 13, 128, 11, UNICORN_MM_GEGLU, 2, 32, 16, kW});
  RunCase({GetParam(), 40, 96, 5, UNICORN_MM_BIAS | UNICORN_MM_GELU, 8, 64, 8, kW});
}

// Lanes over rows (matmul_int8_rows.comp): 8-32 row lanes, 1-2 rows each,
// 2-8 k phases (more than the blocks of a row, and a last step of fewer),
// ragged rows and tokens past a column group, each epilogue.
TEST_P(VkInt8Dtype, RowLaneShapes) {
  constexpr auto kL = MatMulOptions::Int8Order::kRowLanes;
  RunCase({GetParam(), 37, 256, 16, 0, 1, 128, 16, kL, 32});
  RunCase({GetParam(), 13, 128, 11, UNICORN_MM_GEGLU, 2, 64, 8, kL, 16});
  RunCase({GetParam(), 70, 192, 5, UNICORN_MM_BIAS | UNICORN_MM_GELU, 1, 64, 16, kL, 8});
  RunCase({GetParam(), 24, 64, 9, UNICORN_MM_SOFTCAP, 2, 128, 8, kL, 8});
  RunCase({GetParam(), 40, 320, 3, UNICORN_MM_ACC, 1, 256, 16, kL, 32});
  RunCase({GetParam(), 33, 640, 16, UNICORN_MM_GEGLU, 1, 32, 16, kL, 16});
}

// The tensor cores (matmul_int8_coop.comp; emulated where the device has
// none): 1, 2 or 4 fragments of 16 rows, 2-8 subgroups splitting k (more
// than the steps of a row, and a last step past k), k steps of 1-4 blocks;
// ragged rows, 2-16 tokens, each epilogue.
TEST_P(VkInt8Dtype, TensorCoreShapes) {
  constexpr auto kT = MatMulOptions::Int8Order::kTensorCores;
  RunCase({GetParam(), 37, 256, 16, 0, 1, 128, 0, kT, 0, 1});
  RunCase({GetParam(), 13, 352, 11, UNICORN_MM_GEGLU, 2, 64, 0, kT, 0, 2});
  RunCase({GetParam(), 70, 192, 5, UNICORN_MM_BIAS | UNICORN_MM_GELU, 1, 64, 0, kT, 0, 4});
  RunCase({GetParam(), 24, 64, 9, UNICORN_MM_SOFTCAP, 2, 128, 0, kT, 0, 1});
  RunCase({GetParam(), 40, 320, 2, UNICORN_MM_ACC, 4, 64, 0, kT, 0, 1});
  RunCase({GetParam(), 33, 640, 16, UNICORN_MM_GEGLU, 1, 128, 0, kT, 0, 2});
  RunCase({GetParam(), 64, 1024, 16, 0, 1, 256, 0, kT, 0, 1});
}

// Where the device has no tensor cores (and emulation is off), or the shape
// cannot run, the product is refused with the reason.
TEST(VkInt8, TensorCoreShapesRefusedWithTheReason) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  if (!d.caps().int8_dot) GTEST_SKIP() << "no int8 dot products on " << d.caps().name;
  Int8On on(*env.kernels);
  Buffer b = Zeros(d, 1 << 16);
  CommandBuffer cmd(d);
  cmd.Begin();
  struct Bad {
    uint32_t fragments, wg, blocks;
    const char* why;
  };
  for (const Bad& bad :
       {Bad{3, 128, 1, "3 fragments"}, Bad{1, 128, 3, "k steps of 3 blocks"},
        Bad{1, 48, 1, "48 invocations"}, Bad{4, 256, 4, "bytes of shared memory"}}) {
    MatMulOptions opt;
    opt.flags = UNICORN_MM_GEGLU;
    opt.xq = b.All();
    opt.int8_order = MatMulOptions::Int8Order::kTensorCores;
    opt.matvec_rows = bad.fragments;
    opt.matvec_wg = bad.wg;
    opt.int8_coop_blocks = bad.blocks;
    Weight wt{b.All(), DType::kQ4_0, 64, 64};
    Status s = env.kernels->MatMul(cmd, wt, b.All(), b.All(), 4, opt);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    const std::string want = env.kernels->coopmat() ? bad.why : "no tensor-core products";
    EXPECT_NE(s.message().find(want), std::string::npos) << s;
  }
}

// Both loop orders add the same products in the same order per output:
// the same bits, GEGLU and the int8 output of the next product included.
TEST(VkInt8, WeightsInRegistersEqualsActivationsInRegisters) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  if (!d.caps().int8_dot) GTEST_SKIP() << "no int8 dot products on " << d.caps().name;
  Int8On on(*env.kernels);
  for (DType t : {DType::kQ4_0, DType::kQ8_0}) {
    const uint32_t m = 64, k = 160, n = 13;
    TestMatrix w = MakeMatrix(t, 2 * int(m), int(k), 77, 0.5f);
    Buffer bw = Upload(d, w.bytes), bx = Upload(d, Random(size_t(n) * k, 78, -1, 1));
    Buffer bq = Zeros(d, Kernels::Q8ActivationBytes(n, k));
    Buffer counters = Zeros(d, m / 32 * 4);
    std::vector<float> y[2];
    std::vector<uint32_t> q[2];
    for (int order = 0; order < 2; ++order) {
      Buffer by = Zeros(d, n * m * 4), qo = Zeros(d, Kernels::Q8ActivationBytes(n, m));
      MatMulOptions opt;
      opt.flags = UNICORN_MM_GEGLU;
      opt.xq = bq.All();
      opt.matvec_rows = 2;
      opt.int8_cols = 16;
      opt.int8_order =
          order ? MatMulOptions::Int8Order::kWeights : MatMulOptions::Int8Order::kActivations;
      opt.xq_out = qo.All();
      opt.counters = counters.All();
      RunCmd(d, [&](CommandBuffer& cmd) {
        Status s = env.kernels->QuantizeQ8(cmd, bx.All(), bq.All(), n, k);
        ASSERT_TRUE(s.ok()) << s;
        cmd.Barrier();
        s = env.kernels->MatMul(cmd, {bw.All(), t, 2 * m, k}, bx.All(), by.All(), n, opt);
        ASSERT_TRUE(s.ok()) << s;
      });
      y[order] = Download<float>(d, by, n * m);
      q[order] = Download<uint32_t>(d, qo, Kernels::Q8ActivationBytes(n, m) / 4);
    }
    EXPECT_EQ(y[1], y[0]) << Traits(t).name;
    EXPECT_EQ(q[1], q[0]) << Traits(t).name;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, VkInt8Dtype, ::testing::Values(DType::kQ8_0, DType::kQ4_0),
                         [](const auto& info) { return std::string(Traits(info.param).name); });

// Autotuning times the int8 shapes (on zero int8 blocks) on first use of a
// shape and records the product with the winner, exactly.
TEST(VkInt8, AutotunePicksAShapeAndStaysExact) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  if (!d.caps().int8_dot) GTEST_SKIP() << "no int8 dot products";
  auto k = Kernels::Create(d);
  ASSERT_TRUE(k.ok()) << k.status();
  (*k)->set_autotune(true);
  (*k)->set_int8(true);
  const int n = 12;  // 8 and 16 tokens per workgroup among the candidates
  TestMatrix w = MakeMatrix(DType::kQ4_0, 40, 64, 3);
  std::vector<float> x = Random(size_t(n) * 64, 4);
  Buffer bw = Upload(d, w.bytes), bx = Upload(d, x), by = Zeros(d, size_t(n) * 40 * 4);
  Buffer bq = Zeros(d, Kernels::Q8ActivationBytes(n, 64));
  MatMulOptions opt;
  opt.xq = bq.All();
  RunCmd(d, [&](CommandBuffer& cmd) {
    Status s = (*k)->QuantizeQ8(cmd, bx.All(), bq.All(), n, 64);
    ASSERT_TRUE(s.ok()) << s;
    cmd.Barrier();
    s = (*k)->MatMul(cmd, {bw.All(), DType::kQ4_0, 40, 64}, bx.All(), by.All(), n, opt);
    ASSERT_TRUE(s.ok()) << s;
  });
  const Quantized q = ReadQuantized(d, bq, n, 64);
  const std::vector<float> xd = q.Values();
  EXPECT_LT(
      MaxRelError(Download<float>(d, by, size_t(n) * 40), MatMulRef(w.values, xd, 40, 64, n, 0)),
      kMatTol)
      << n << " tokens";
  if (d.caps().timestamps) {
    ASSERT_EQ((*k)->tuning_log().size(), 1u);
    for (const std::string& line : (*k)->tuning_log())
      EXPECT_EQ(line.rfind("int8 ", 0), 0u) << line;
  }
}

// Other weight types, 17+ tokens and a short buffer get a clear error.
TEST(VkInt8, ProductRefusesWhatItCannotRun) {
  UNICORN_VK_ENV(env);
  if (!env.device->caps().int8_dot) GTEST_SKIP() << "no int8 dot products";
  Int8On on(*env.kernels);
  Buffer b = Zeros(*env.device, 1 << 16);
  CommandBuffer cmd(*env.device);
  cmd.Begin();
  MatMulOptions opt;
  opt.xq = b.All();
  for (auto [t, n] : {std::pair{DType::kF16, 4u}, {DType::kQ4_0, 17u}}) {
    Status s = env.kernels->MatMul(cmd, {b.All(), t, 8, 64}, b.All(), b.All(), n, opt);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find("int8"), std::string::npos) << s;
  }
  // Lanes over rows need rows of whole words (k % 64 == 0) and an even
  // number of k phases.
  opt.int8_order = MatMulOptions::Int8Order::kRowLanes;
  for (auto [k, wg] : {std::pair{96u, 128u}, {64u, 96u}}) {
    opt.matvec_wg = wg;
    Status s = env.kernels->MatMul(cmd, {b.All(), DType::kQ4_0, 8, k}, b.All(), b.All(), 4, opt);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find("row lanes"), std::string::npos) << s;
  }
  opt = MatMulOptions{};
  opt.xq = b.All();
  opt.xq.size = 100;
  Status s = env.kernels->MatMul(cmd, {b.All(), DType::kQ4_0, 8, 64}, b.All(), b.All(), 4, opt);
  EXPECT_NE(s.message().find("too small"), std::string::npos) << s;
}

}  // namespace
}  // namespace unicorn::vk::testing
