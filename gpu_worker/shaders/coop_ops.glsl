// The cooperative-matrix operations of the tensor-core kernels (matmul_coop,
// matmul_int8_coop): 16 x 16 F16
// fragments (FRAG) multiplied into F32 sums (ACC) by a subgroup of 32, as
// VK_NV_cooperative_matrix does them; or, with UNICORN_COOP_EMULATE, by
// plain loops, so that the kernel's indexing runs (slowly) on devices
// without the extension, lavapipe included.
//   COOP_LOAD(m, arr, at, stride, col_major): m = arr[at ..], rows (or
//     columns, col_major) `stride` elements apart
//   COOP_STORE(m, arr, at, stride, col_major): the reverse
//   COOP_MAD(d, a, b): d += a b
//   SG_ID, SG_LANE: this invocation's subgroup and lane; SG_SYNC(): the
//     subgroup's shared-memory writes seen by all its lanes
//   COOP_UNROLL: for the loops around them
//   ToF16(v): v as F16, clamped to its range (no infinities)
// Emulated, subgroups are invocations 32 s .. 32 s + 31, and SG_SYNC() is a
// workgroup barrier: kernels call it only where the whole workgroup
// arrives (a real subgroup barrier needs only the subgroup). An emulated
// fragment is a handle to where it was loaded from, read when it is
// multiplied: the kernel must not overwrite it in between. The kernel
// declares the shared arrays its fragments come from before this include,
// names each (COOP_EMU_SRC_<array>: 0, 1, ...) and reads them with
// COOP_EMU_READ(src, i). Sum e of a fragment lives in lane e % 32.
#ifdef UNICORN_COOP_EMULATE

struct EmuFrag {
  uint src, at, stride;
  bool col_major;
};
struct EmuAcc {
  float v[8];  // elements lane + 32 j
};
#define FRAG EmuFrag
#define ACC EmuAcc
#define SG_ID (gl_LocalInvocationID.x / 32)
#define SG_LANE (gl_LocalInvocationID.x % 32)
#define SG_SYNC()         \
  memoryBarrierShared(); \
  barrier()
// Not unrolled: lavapipe's compile time grows with the emulation unrolled.
#define COOP_UNROLL [[dont_unroll]]
// Element e = r * 16 + c of a fragment stored from `at`.
uint CoopAt(uint at, uint stride, bool col_major, uint e) {
  return at + (col_major ? (e % 16) * stride + e / 16 : (e / 16) * stride + e % 16);
}
#define ACC_ZERO(m) \
  [[unroll]] for (uint j_ = 0; j_ < 8; ++j_) m.v[j_] = 0.0
#define COOP_LOAD(m, arr, at, stride, col_major) \
  m = EmuFrag(COOP_EMU_SRC_##arr, at, stride, col_major)
#define COOP_STORE(m, arr, at, stride, col_major) \
  [[unroll]] for (uint j_ = 0; j_ < 8; ++j_) arr[CoopAt(at, stride, col_major, SG_LANE + 32 * j_)] = m.v[j_]
EmuAcc EmuMulAdd(EmuFrag a, EmuFrag b, EmuAcc d) {
  [[unroll]] for (uint j = 0; j < 8; ++j) {
    const uint e = SG_LANE + 32 * j, r = e / 16, c = e % 16;
    float s = d.v[j];
    [[dont_unroll]] for (uint k = 0; k < 16; ++k) {
      s += float(COOP_EMU_READ(a.src, CoopAt(a.at, a.stride, a.col_major, r * 16 + k))) *
           float(COOP_EMU_READ(b.src, CoopAt(b.at, b.stride, b.col_major, k * 16 + c)));
    }
    d.v[j] = s;
  }
  return d;
}
#define COOP_MAD(d, a, b) d = EmuMulAdd(a, b, d)

#else

#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_NV_cooperative_matrix : require
#define FRAG fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define SG_ID gl_SubgroupID
#define SG_LANE gl_SubgroupInvocationID
#define SG_SYNC()                 \
  subgroupMemoryBarrierShared(); \
  subgroupBarrier()
#define COOP_UNROLL [[unroll]]
#define ACC_ZERO(m) m = ACC(0.0)
#define COOP_LOAD(m, arr, at, stride, col_major) coopMatLoadNV(m, arr, at, stride, col_major)
#define COOP_STORE(m, arr, at, stride, col_major) coopMatStoreNV(m, arr, at, stride, col_major)
#define COOP_MAD(d, a, b) d = coopMatMulAddNV(a, b, d)

#endif

float16_t ToF16(float v) { return float16_t(clamp(v, -65504.0, 65504.0)); }
