// Attention kernels (split-K decode + reduce, flash-style prefill) against
// the F64 twin: causal, sliding window over a ring-buffer cache, an image
// block seen bidirectionally, GQA, logit soft-capping, and SigLIP's F32
// bidirectional form over a fused QKV buffer.
#include "model/quant.h"
#include "tests/gpu_worker/cpu_twins.h"
#include "tests/gpu_worker/vk_test_util.h"

namespace unicorn::vk::testing {
namespace {

// Same inputs on both sides (F16 keys widened exactly); F32 exp and sums
// over <= 64 keys against F64: ~1e-6 of the output scale.
constexpr double kAttnTol = 1e-5;
// The tensor-core prefill kernel also rounds q * scale and P to F16 (2^-11
// relative each). Emulated on lavapipe it stays within 2.9e-4; 3e-3 leaves
// room for the tensor cores' own sums.
constexpr double kCoopAttnTol = 3e-3;

using Path = AttnParams::Path;

// A test's attention shape: n tokens of H heads (Hkv kv heads) of D over a
// store of `cap` slots, scale D^-0.5, F32 store [cap, Hkv, D].
AttnParams Shape(int n, int H, int Hkv, int D, int cap, float softcap, int n_splits, Path path) {
  AttnParams ap;
  ap.n_tokens = n;
  ap.n_heads = H;
  ap.n_kv_heads = Hkv;
  ap.head_dim = D;
  ap.cap = cap;
  ap.scale = 1.0f / std::sqrt(float(D));
  ap.softcap = softcap;
  ap.n_splits = n_splits;
  ap.path = path;
  return ap;
}

struct Scenario {
  int n_heads = 4, n_kv_heads = 2, head_dim = 64;
  int cap = 64, window = 0;
  int n_pos = 40;  // keys exist at positions [first_key, n_pos)
  int first_key = 0;
  std::vector<int> pos, end;  // the query tokens
  float softcap = 0;
  int n_splits = 3;          // decode: uneven splits of the key range
  int decode_workgroup = 0;  // decode kernel invocations (0: the default)
};

// With `merge` (decode path), the one-dispatch form (AttnParams::counters)
// runs too, twice in the same command buffer: its output must equal the two-
// dispatch form's bit for bit, and its counters must be left zero.
void RunScenario(const Scenario& sc, Path path, bool f16 = true, bool merge = false) {
  SCOPED_TRACE(::testing::Message()
               << sc.pos.size() << " tokens up to position " << sc.pos.back() << ", head_dim "
               << sc.head_dim << ", " << sc.n_splits << " splits, " << (f16 ? "F16" : "F32")
               << ", workgroup " << sc.decode_workgroup);
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  CoopEmulated emulated(*env.kernels);
  const bool coop = path == Path::kPrefillCoop;
  if (coop && !emulated.runs()) GTEST_SKIP() << "no tensor cores or F16 on " << d.caps().name;
  const int H = sc.n_heads, Hkv = sc.n_kv_heads, D = sc.head_dim, n = int(sc.pos.size());
  // Keys and values by position (F16-exact), and the ring cache holding them.
  std::vector<float> keys(size_t(Hkv) * sc.n_pos * D, 0.0f), values(keys.size(), 0.0f);
  // F16 cache [Hkv, cap, D], or the F32 store [cap, Hkv, D] of model/ops.h.
  std::vector<uint16_t> kc(size_t(Hkv) * sc.cap * D, 0), vc(kc.size(), 0);
  std::vector<float> kf(kc.size(), 0.0f), vf(kc.size(), 0.0f);
  std::vector<float> kr = Random(keys.size(), 3, -2, 2), vr = Random(keys.size(), 4, -2, 2);
  for (int g = 0; g < Hkv; ++g) {
    for (int j = sc.first_key; j < sc.n_pos; ++j) {
      for (int i = 0; i < D; ++i) {
        size_t at = (size_t(g) * sc.n_pos + j) * D + i;
        size_t slot = (size_t(g) * sc.cap + j % sc.cap) * D + i;
        kc[slot] = F32ToF16(kr[at]);
        vc[slot] = F32ToF16(vr[at]);
        keys[at] = F16ToF32(kc[slot]);
        values[at] = F16ToF32(vc[slot]);
        size_t fslot = (size_t(j % sc.cap) * Hkv + g) * D + i;
        kf[fslot] = keys[at];
        vf[fslot] = values[at];
      }
    }
  }
  std::vector<float> q = Random(size_t(n) * H * D, 5, -1, 1);
  // Spans: [lo, end - 1] inclusive.
  std::vector<int32_t> spans;
  std::vector<int> lo(n);
  for (int t = 0; t < n; ++t) {
    lo[t] = sc.window > 0 ? std::max(0, sc.pos[t] - sc.window + 1) : 0;
    spans.insert(spans.end(), {lo[t], sc.end[t] - 1});
  }
  AttnParams ap = Shape(n, H, Hkv, D, sc.cap, sc.softcap, sc.n_splits, path);
  ap.kv_f16 = f16;
  if (f16) {
    ap.kv_token_stride = D;
    ap.kv_head_stride = sc.cap * D;
  }
  ap.decode_workgroup = uint32_t(sc.decode_workgroup);
  Buffer bq = Upload(d, q), bp = Upload(d, spans);
  Buffer bk = f16 ? Upload(d, kc) : Upload(d, kf), bv = f16 ? Upload(d, vc) : Upload(d, vf);
  Buffer bo = Zeros(d, q.size() * 4), bo1 = Zeros(d, q.size() * 4);
  Buffer scratch = Zeros(d, std::max<uint64_t>(Kernels::AttnScratchBytes(ap), 16));
  Buffer counters = Zeros(d, Kernels::AttnCounterBytes(ap));
  RunCmd(d, [&](CommandBuffer& cmd) {
    Status s = env.kernels->Attention(cmd, bq.All(), bk.All(), bv.All(), bp.All(), bo.All(),
                                      scratch.All(), ap);
    ASSERT_TRUE(s.ok()) << s;
    AttnParams one = ap;
    one.counters = counters.All();
    for (int i = 0; merge && i < 2; ++i) {
      cmd.ComputeBarrier();
      s = env.kernels->Attention(cmd, bq.All(), bk.All(), bv.All(), bp.All(), bo1.All(),
                                 scratch.All(), one);
      ASSERT_TRUE(s.ok()) << s;
    }
  });
  std::vector<float> want =
      AttentionRef(q, keys, values, lo, sc.end, H, Hkv, D, sc.n_pos, ap.scale, sc.softcap);
  const std::vector<float> got = Download<float>(d, bo, want.size());
  EXPECT_LT(MaxRelError(got, want), coop ? kCoopAttnTol : kAttnTol);
  if (merge) {
    EXPECT_EQ(Download<float>(d, bo1, want.size()), got);
    EXPECT_EQ(Download<uint32_t>(d, counters, counters.size() / 4),
              std::vector<uint32_t>(counters.size() / 4, 0));
  }
}

Scenario Causal(int n_tokens, int last_pos) {
  Scenario sc;
  sc.n_pos = last_pos + 1;
  for (int p = last_pos - n_tokens + 1; p <= last_pos; ++p) {
    sc.pos.push_back(p);
    sc.end.push_back(p + 1);
  }
  return sc;
}

// Prefill over many query and key tiles: 70 tokens (ragged for any tile of
// rows), a sliding window of 48, one image block, 128-wide heads.
Scenario ManyTilesWithAnImage() {
  Scenario sc = Causal(70, 139);
  sc.cap = 160;
  sc.window = 48;
  sc.head_dim = 128;
  for (int t = 30; t < 45; ++t) sc.end[t] = 45 + 70;  // positions 100..114: one image
  return sc;
}

// 37 tokens whose keys wrap around a 64-slot ring.
Scenario RingOfManyTiles() {
  Scenario ring = Causal(37, 99);
  ring.cap = 64;
  ring.window = 28;  // position 63 sees 36..63: all in the ring
  ring.first_key = 36;
  return ring;
}

class VkAttention : public ::testing::TestWithParam<Path> {};

TEST_P(VkAttention, CausalGlobal) {
  RunScenario(Causal(GetParam() == Path::kDecode ? 1 : 40, 39), GetParam());
}

TEST_P(VkAttention, SlidingWindowOverRing) {
  // window 8 over a 16-slot ring holding positions 8..23; queries at 20..23
  // need keys 13..23 only.
  Scenario sc = Causal(4, 23);
  sc.cap = 16;
  sc.window = 8;
  sc.first_key = 8;
  RunScenario(sc, GetParam());
}

TEST_P(VkAttention, ImageBlockIsBidirectional) {
  Scenario sc = Causal(30, 29);
  for (int t = 10; t < 20; ++t) sc.end[t] = 20;  // tokens 10..19: one image
  sc.window = 16;
  RunScenario(sc, GetParam());
}

TEST_P(VkAttention, GqaFourToOneWithSoftCapAndWideHeads) {
  Scenario sc = Causal(3, 33);
  sc.n_heads = 4;
  sc.n_kv_heads = 1;
  sc.head_dim = 256;
  sc.softcap = 5.0f;
  RunScenario(sc, GetParam());
}

TEST_P(VkAttention, F32StoreOfTheOpsInterface) {
  Scenario sc = Causal(GetParam() == Path::kDecode ? 2 : 9, 20);
  sc.head_dim = 128;
  RunScenario(sc, GetParam(), /*f16=*/false);
}

INSTANTIATE_TEST_SUITE_P(Paths, VkAttention,
                         ::testing::Values(Path::kDecode, Path::kPrefill, Path::kPrefillTiled,
                                           Path::kPrefillCoop),
                         [](const auto& info) {
                           return std::string(info.param == Path::kDecode         ? "Decode"
                                              : info.param == Path::kPrefill      ? "Prefill"
                                              : info.param == Path::kPrefillTiled ? "PrefillTiled"
                                                                                  : "PrefillCoop");
                         });

// The register-tiled prefill kernel over many query and key tiles: ragged
// tokens (not a multiple of its 16 rows), a sliding window, an image block,
// keys from a ring, an F32 store, head dims that are not whole quads (the
// scalar loads), and 256-wide heads (tiles of 16 keys where 32 do not fit
// shared memory, as on lavapipe); and what it refuses.
TEST(VkAttention, TiledPrefillOverManyTiles) {
  const Scenario sc = ManyTilesWithAnImage();
  RunScenario(sc, Path::kPrefillTiled);
  RunScenario(sc, Path::kPrefillTiled, /*f16=*/false);
  const Scenario ring = RingOfManyTiles();
  RunScenario(ring, Path::kPrefillTiled);
  Scenario odd = Causal(21, 52);
  odd.head_dim = 70;
  odd.n_kv_heads = 1;
  RunScenario(odd, Path::kPrefillTiled);
  RunScenario(odd, Path::kPrefillTiled, /*f16=*/false);
  Scenario wide = Causal(33, 80);
  wide.head_dim = 256;
  wide.cap = 96;
  wide.softcap = 5.0f;
  RunScenario(wide, Path::kPrefillTiled);

  UNICORN_VK_ENV(env);
  AttnParams ap = Shape(33, 4, 2, 256, 96, 0, 0, Path::kPrefillTiled);
  ap.kv_f16 = true;
  // 37,248 bytes of shared memory for 32 keys, 26,880 for 16.
  EXPECT_EQ(env.kernels->TiledAttentionKeys(ap),
            env.device->caps().max_shared_memory >= 37248 ? 32u : 16u);
  Buffer b = Zeros(*env.device, 1 << 16);
  CommandBuffer cmd(*env.device);
  cmd.Begin();
  ap.rings = b.Sub(0, 132);  // a batch's rings take the decode kernel
  Status s = env.kernels->Attention(cmd, b.All(), b.All(), b.All(), b.All(), b.All(), b.All(), ap);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("register-tiled"), std::string::npos) << s;
}

// The tensor-core prefill kernel over many query and key tiles: ragged
// tokens (not a multiple of 16), a sliding window, an image block, keys
// from a ring, and an F32 store; and what it refuses.
TEST(VkAttention, PrefillOnTensorCoresOverManyTiles) {
  const Scenario sc = ManyTilesWithAnImage();
  RunScenario(sc, Path::kPrefillCoop);
  const Scenario ring = RingOfManyTiles();
  RunScenario(ring, Path::kPrefillCoop, /*f16=*/false);

  UNICORN_VK_ENV(env);
  Buffer b = Zeros(*env.device, 1 << 16);
  CommandBuffer cmd(*env.device);
  cmd.Begin();
  AttnParams ap;
  ap.n_tokens = 8;
  ap.n_heads = ap.n_kv_heads = 1;
  ap.head_dim = 72;  // SigLIP's: not whole fragments
  ap.cap = 8;
  ap.path = Path::kPrefillCoop;
  CoopEmulated emulated(*env.kernels);
  Status s = env.kernels->Attention(cmd, b.All(), b.All(), b.All(), b.All(), b.All(), b.All(), ap);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find(emulated.runs() ? "head_dim 72" : "tensor-core"), std::string::npos)
      << s;
}

// Decode attention in one dispatch (the last split of each token and kv
// head merges): the same output as split + merge, for GQA groups of 2 and 4,
// a ring, splits left without keys, soft-capping and an F32 store.
TEST(VkAttention, OneDispatchDecodeEqualsSplitAndMerge) {
  RunScenario(Causal(1, 39), Path::kDecode, true, true);
  Scenario ring = Causal(4, 23);
  ring.cap = 16;
  ring.window = 8;
  ring.first_key = 8;
  RunScenario(ring, Path::kDecode, true, true);
  RunScenario(Causal(2, 1), Path::kDecode, true, true);  // splits with no keys count too
  Scenario wide = Causal(3, 33);
  wide.n_kv_heads = 1;
  wide.head_dim = 256;
  wide.softcap = 5.0f;
  RunScenario(wide, Path::kDecode, true, true);
  Scenario f32 = Causal(2, 20);
  f32.head_dim = 128;
  RunScenario(f32, Path::kDecode, false, true);
}

// Decode splits of at least UNICORN_ATTN_MIN_CHUNK keys: a split longer
// than one tile of keys, every one of 64 splits busy, a short context that
// leaves most of 64 splits idle (the merge reads only the busy ones), and a
// head_dim that is not a multiple of 8 (the scalar loads, F32 store).
TEST(VkAttention, DecodeSplitsFollowTheContextLength) {
  Scenario tiles = Causal(1, 399);  // 3 splits of 134 keys
  tiles.cap = 400;
  RunScenario(tiles, Path::kDecode, true, true);
  Scenario all = Causal(2, 2047);
  all.n_splits = 64;
  all.cap = 2048;
  RunScenario(all, Path::kDecode, true, true);
  Scenario idle = Causal(3, 39);
  idle.n_splits = 64;
  RunScenario(idle, Path::kDecode, true, true);
  Scenario odd = Causal(2, 70);
  odd.head_dim = 72;
  odd.cap = 128;
  RunScenario(odd, Path::kDecode, false, true);
  // Half the default's subgroups per workgroup (each walks twice the keys).
  for (Scenario* sc : {&tiles, &idle, &odd}) {
    sc->decode_workgroup = 128;
    RunScenario(*sc, Path::kDecode, sc != &odd, true);
  }
}

// Decode with the tokens' own keys new (AttnParams::new_kv): q, k and v raw
// from their products. Against the three dispatches it replaces (head norm +
// RoPE of q, of k into the store with v, then decode attention) on the same
// inputs: the outputs and the stores. One token, or rows of a batch each in
// its own ring (the contract), over a window that wraps its ring.
struct NewKvCase {
  int n_heads = 8, n_kv_heads = 4, head_dim = 256, cap = 64, window = 0, n_splits = 3;
  std::vector<int32_t> pos, rings;  // rings empty: one token, ring 0
  float softcap = 0;
};

void RunNewKv(const NewKvCase& c) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const int H = c.n_heads, Hkv = c.n_kv_heads, D = c.head_dim, n = int(c.pos.size());
  const int n_rings = c.rings.empty() ? 1 : 1 + *std::max_element(c.rings.begin(), c.rings.end());
  const size_t store_floats = size_t(n_rings) * c.cap * Hkv * D;
  // Earlier keys and values already in the store (any values do).
  std::vector<float> store_k = Random(store_floats, 11, -2, 2), store_v = Random(store_floats, 12);
  std::vector<float> q = Random(size_t(n) * H * D, 13, -2, 2);
  std::vector<float> k = Random(size_t(n) * Hkv * D, 14, -2, 2), v = Random(k.size(), 15);
  std::vector<float> qw = Random(D, 16, -0.5, 0.5), kw = Random(D, 17, -0.5, 0.5);
  std::vector<float> freq = Kernels::RopeInvFreq(D, 1e4, 1.0);
  std::vector<int32_t> spans;
  for (int32_t p : c.pos)
    spans.insert(spans.end(), {c.window ? std::max(0, p - c.window + 1) : 0, p});
  AttnParams ap = Shape(n, H, Hkv, D, c.cap, c.softcap, c.n_splits, Path::kDecode);
  Buffer bpos = Upload(d, c.pos), bspans = Upload(d, spans), bfreq = Upload(d, freq);
  Buffer bqw = Upload(d, qw), bkw = Upload(d, kw), bv = Upload(d, v);
  Buffer brings = Upload(d, c.rings.empty() ? std::vector<int32_t>{0} : c.rings);
  if (!c.rings.empty()) ap.rings = brings.All();
  struct Side {
    Buffer q, k, ks, vs, out, scratch;
  };
  auto side = [&] {
    return Side{Upload(d, q),           Upload(d, k),
                Upload(d, store_k),     Upload(d, store_v),
                Zeros(d, q.size() * 4), Zeros(d, Kernels::AttnScratchBytes(ap))};
  };
  Side three = side(), one = side();
  RunCmd(d, [&](CommandBuffer& cmd) {
    HeadParams hq{UNICORN_HEAD_NORM | UNICORN_HEAD_ROPE, uint32_t(H), uint32_t(D), 0, 1e-6f, {}};
    Status s = env.kernels->HeadNormRope(cmd, three.q.All(), bqw.All(), bfreq.All(), bpos.All(),
                                         three.q.All(), three.q.All(), three.q.All(), n, hq);
    ASSERT_TRUE(s.ok()) << s;
    HeadParams hk{
        hq.flags | UNICORN_HEAD_STORE, uint32_t(Hkv), uint32_t(D), uint32_t(c.cap), 1e-6f, {}};
    if (!c.rings.empty()) {
      hk.flags |= UNICORN_HEAD_RINGS;
      hk.rings = brings.All();
    }
    s = env.kernels->HeadNormRope(cmd, three.k.All(), bkw.All(), bfreq.All(), bpos.All(),
                                  three.ks.All(), bv.All(), three.vs.All(), n, hk);
    ASSERT_TRUE(s.ok()) << s;
    cmd.ComputeBarrier();
    s = env.kernels->Attention(cmd, three.q.All(), three.ks.All(), three.vs.All(), bspans.All(),
                               three.out.All(), three.scratch.All(), ap);
    ASSERT_TRUE(s.ok()) << s;
    AttnParams fused = ap;
    fused.new_kv = {one.k.All(), bv.All(), bqw.All(), bkw.All(), bfreq.All(), bpos.All(), 1e-6f};
    s = env.kernels->Attention(cmd, one.q.All(), one.ks.All(), one.vs.All(), bspans.All(),
                               one.out.All(), one.scratch.All(), fused);
    ASSERT_TRUE(s.ok()) << s;
  });
  // The head norms' sums run in another order (a subgroup against the whole
  // workgroup): a few F32 ulps, against O(1) for a wrong key or position.
  const std::vector<float> want = Download<float>(d, three.out, q.size());
  EXPECT_LT(MaxRelError(Download<float>(d, one.out, q.size()), want), 1e-5);
  EXPECT_LT(MaxRelError(Download<float>(d, one.ks, store_floats),
                        Download<float>(d, three.ks, store_floats)),
            1e-5);
  EXPECT_EQ(Download<float>(d, one.vs, store_floats), Download<float>(d, three.vs, store_floats));
  if (n == 1 && c.rings.empty()) {  // and the F64 twin, through the store's keys
    const int p = c.pos[0], lo = spans[0];
    std::vector<float> keys(size_t(Hkv) * (p + 1) * D), values(keys.size()), qn(q.size());
    for (int h = 0; h < H; ++h) {
      std::vector<float> head(&q[size_t(h) * D], &q[size_t(h) * D] + D);
      head = RopeRef(RmsNormRef(head, qw, 1, D, 1e-6f), p, freq);
      std::copy(head.begin(), head.end(), &qn[size_t(h) * D]);
    }
    for (int g = 0; g < Hkv; ++g) {
      for (int j = lo; j <= p; ++j) {
        const size_t slot = (size_t(j % c.cap) * Hkv + g) * D;
        std::vector<float> key(&store_k[slot], &store_k[slot] + D);
        std::vector<float> value(&store_v[slot], &store_v[slot] + D);
        if (j == p) {
          key.assign(&k[size_t(g) * D], &k[size_t(g) * D] + D);
          key = RopeRef(RmsNormRef(key, kw, 1, D, 1e-6f), p, freq);
          value.assign(&v[size_t(g) * D], &v[size_t(g) * D] + D);
        }
        std::copy(key.begin(), key.end(), &keys[(size_t(g) * (p + 1) + j) * D]);
        std::copy(value.begin(), value.end(), &values[(size_t(g) * (p + 1) + j) * D]);
      }
    }
    // RoPE's GPU sin/cos may be 2^-11 off (see VkHeadNormRope).
    std::vector<float> twin =
        AttentionRef(qn, keys, values, {lo}, {p + 1}, H, Hkv, D, p + 1, ap.scale, c.softcap);
    EXPECT_LT(MaxRelError(Download<float>(d, one.out, q.size()), twin), 1e-3);
  }
}

TEST(VkAttention, NewKeysNormedAndRotatedInTheDecodeKernel) {
  {
    SCOPED_TRACE("one token, GQA 2, 256-wide heads");
    RunNewKv({.pos = {39}, .rings = {}});
  }
  {
    SCOPED_TRACE("one token, a window over a wrapped ring, 128-wide heads");
    RunNewKv({.n_heads = 4,
              .n_kv_heads = 2,
              .head_dim = 128,
              .cap = 16,
              .window = 16,
              .n_splits = 4,
              .pos = {50},
              .rings = {}});
  }
  {
    SCOPED_TRACE("a batch, a ring per row, GQA 4, soft-capping");
    RunNewKv({.n_heads = 4,
              .n_kv_heads = 1,
              .head_dim = 64,
              .cap = 32,
              .window = 0,
              .n_splits = 2,
              .pos = {5, 31, 0},
              .rings = {2, 0, 1},
              .softcap = 5.0f});
  }
}

// SigLIP: q, k, v side by side in one F32 [n, 3 H D] buffer, every token
// sees every token, head_dim 72 (not a multiple of 16); on both prefill
// kernels.
class VkVisionAttention : public ::testing::TestWithParam<Path> {};
TEST_P(VkVisionAttention, BidirectionalF32FromFusedQkv) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const int n = 30, H = 2, D = 72, width = 3 * H * D;
  std::vector<float> qkv = Random(size_t(n) * width, 7, -1, 1);
  std::vector<float> q(n * H * D), keys(H * n * D), values(H * n * D);
  std::vector<int> lo(n, 0), end(n, n);
  std::vector<int32_t> spans;
  for (int t = 0; t < n; ++t) {
    spans.insert(spans.end(), {0, n - 1});
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < D; ++i) {
        q[(t * H + h) * D + i] = qkv[t * width + h * D + i];
        keys[(h * n + t) * D + i] = qkv[t * width + H * D + h * D + i];
        values[(h * n + t) * D + i] = qkv[t * width + 2 * H * D + h * D + i];
      }
  }
  Buffer bqkv = Upload(d, qkv), bp = Upload(d, spans), bo = Zeros(d, n * H * D * 4);
  AttnParams ap = Shape(n, H, H, D, n, 0.0f, 0, GetParam());
  ap.q_stride = width;
  ap.o_stride = H * D;
  ap.kv_f16 = false;
  ap.kv_token_stride = width;
  ap.kv_head_stride = D;
  const VkDeviceSize total = qkv.size() * 4, third = H * D * 4;
  RunCmd(d, [&](CommandBuffer& cmd) {
    Status s = env.kernels->Attention(cmd, bqkv.All(), bqkv.Sub(third, total - third),
                                      bqkv.Sub(2 * third, total - 2 * third), bp.All(), bo.All(),
                                      bo.All(), ap);
    ASSERT_TRUE(s.ok()) << s;
  });
  std::vector<float> want = AttentionRef(q, keys, values, lo, end, H, H, D, n, ap.scale, 0.0f);
  EXPECT_LT(MaxRelError(Download<float>(d, bo, want.size()), want), kAttnTol);
}
INSTANTIATE_TEST_SUITE_P(Kernels, VkVisionAttention,
                         ::testing::Values(Path::kPrefill, Path::kPrefillTiled),
                         [](const auto& info) {
                           return std::string(info.param == Path::kPrefill ? "Rows8" : "Tiled");
                         });

}  // namespace
}  // namespace unicorn::vk::testing
