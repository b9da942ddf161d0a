// Push-constant structs and shared constants of every kernel, for C++ and
// GLSL alike: glslc includes this same file, so the layouts cannot drift.
// Members are 4-byte scalars only (uint, int, float), which lay out the same
// under C++ and GLSL's std430 push-constant rules; C++ checks each size
// (<= 128 bytes, the smallest maxPushConstantsSize Vulkan guarantees).
#ifndef UNICORN_GPU_WORKER_SHADERS_PUSH_CONSTANTS_H_
#define UNICORN_GPU_WORKER_SHADERS_PUSH_CONSTANTS_H_

#ifdef __cplusplus
#include <cstdint>
namespace unicorn::vk {
using uint = uint32_t;
#define UNICORN_PUSH_SIZE(T, bytes) \
  static_assert(sizeof(T) == (bytes) && sizeof(T) <= 128, #T " size changed");
#else
#define UNICORN_PUSH_SIZE(T, bytes)
#endif

// Weight element types (specialization constant DTYPE); equal to the values
// of unicorn::DType (checked in kernels.cc).
#define UNICORN_DT_F32 0
#define UNICORN_DT_F16 1
#define UNICORN_DT_BF16 2
#define UNICORN_DT_Q8_0 3
#define UNICORN_DT_Q4_0 4
#define UNICORN_DT_Q2_K 5  // k-quants: rows of whole 256-weight super-blocks
#define UNICORN_DT_Q3_K 6
#define UNICORN_DT_Q4_K 7
#define UNICORN_DT_Q5_K 8
#define UNICORN_DT_Q6_K 9

// norm.comp modes (specialization constant MODE).
#define UNICORN_NORM_RMS 0      // y = x * rsqrt(mean(x^2) + eps) * (1 + w)
#define UNICORN_NORM_LAYER 1    // y = (x - mean) * rsqrt(var + eps) * w + b   (b: aux)
#define UNICORN_NORM_ADD_RMS 2  // h += RMS(x, w); y = RMS(h, aux)
#define UNICORN_NORM_ADD 3      // h += RMS(x, w)

// One workgroup per row r: x[r*x_stride .. +n), y[r*y_stride ..), h[r*h_stride ..).
struct NormPush {
  uint rows;
  uint n;
  uint x_stride;
  uint y_stride;
  uint h_stride;
  float eps;
};
UNICORN_PUSH_SIZE(NormPush, 24)

// Matrix products y = W x for each of n tokens (matvec.comp for a few tokens,
// matmul.comp for many). W: [rows, k] in its GGUF block layout (DTYPE);
// x: [n, x_stride] F32; y: [n, y_stride] F32 (m outputs per token).
// Epilogue flags (specialization constant FLAGS), applied in this order:
#define UNICORN_MM_BIAS 1     // + bias[row]
#define UNICORN_MM_GELU 2     // gelu_tanh(.)
#define UNICORN_MM_GEGLU 4    // W is [2m, k] (gate rows, then up rows): gelu(W_g x) * (W_u x)
#define UNICORN_MM_SOFTCAP 8  // softcap * tanh(. / softcap)
#define UNICORN_MM_ACC 16     // y += . (a residual add) instead of y = .
struct MatMulPush {
  uint k;
  uint m;
  uint n;
  uint x_stride;
  uint y_stride;
  float softcap;
};
UNICORN_PUSH_SIZE(MatMulPush, 24)

// embed.comp: y[t, :] = dequant(table[ids[t], :]) * scale, table [vocab, k].
struct EmbedPush {
  uint k;
  uint n;
  uint vocab;
  uint y_stride;
  float scale;
};
UNICORN_PUSH_SIZE(EmbedPush, 20)

// head_norm_rope.comp: per head of x [n, heads, D] (workgroup (head, token)),
// in this order: RMS-norm with (1 + w); NeoX RoPE at pos[t] (i32); then
// either back into x or, with STORE, into the K/V store [cap, heads * D] at
// slot pos % cap, copying v [n, heads * D] into its store alongside.
#define UNICORN_HEAD_NORM 1
#define UNICORN_HEAD_ROPE 2
#define UNICORN_HEAD_STORE 4
#define UNICORN_HEAD_RINGS 8  // STORE into ring rings[t] of a batch's store (slots ring * cap + pos % cap)
struct HeadPush {
  uint heads;
  uint head_dim;
  uint cap;
  float eps;
};
UNICORN_PUSH_SIZE(HeadPush, 16)

// Attention over a K/V store of `cap` slots (text: the store [cap, Hkv * D];
// vision: F32 activations with their own strides; F16 stores work too).
// Query t sees the keys at positions spans[t].x .. spans[t].y (inclusive,
// i32; causal, sliding-window and image masks are built into the spans); the
// key at position j lives in slot j % cap.
// The attention kernels' largest head_dim (Gemma 3: 256 on 1B/4B/12B, 128 on 27B).
#define UNICORN_MAX_HEAD_DIM 256
// Decode attention splits a token's keys into at most this many ranges of
// at least UNICORN_ATTN_MIN_CHUNK keys each (attn_keys.glsl).
#define UNICORN_ATTN_MAX_SPLITS 64
#define UNICORN_ATTN_MIN_CHUNK 32
// Subgroups in a decode attention workgroup, at most (attn_decode.comp).
#define UNICORN_ATTN_MAX_SUBGROUPS 64
struct AttnPush {
  uint n_tokens;
  uint n_heads;
  uint n_kv_heads;
  uint head_dim;
  uint cap;
  float scale;           // query_pre_attn_scalar^-0.5
  float softcap;         // 0 = none
  uint q_stride;         // floats between tokens in q
  uint o_stride;         // floats between tokens in the output
  uint kv_token_stride;  // elements between slots
  uint kv_head_stride;   // elements between heads
  uint n_splits;         // decode: key-range splits per (token, kv head)
};
UNICORN_PUSH_SIZE(AttnPush, 48)

// elementwise.comp ops (specialization constant OP) over n outputs.
#define UNICORN_EW_ADD 0      // y = a + b
#define UNICORN_EW_GEGLU 1    // y = gelu(a) * b
#define UNICORN_EW_SOFTCAP 2  // y = param * tanh(a / param)
#define UNICORN_EW_GELU 3     // y = gelu(a)
struct ElementwisePush {
  uint n;
  uint width;
  float param;
};
UNICORN_PUSH_SIZE(ElementwisePush, 12)

// patchify.comp: image [C, S, S] -> patches [(S/P)^2, C*P*P] in (c, ky, kx)
// order, the flattening of a conv weight [out, C, P, P].
struct PatchPush {
  uint image_size;
  uint patch_size;
  uint channels;
};
UNICORN_PUSH_SIZE(PatchPush, 12)

// argmax.comp: each row's first index of its largest value.
struct ArgmaxPush {
  uint n;       // values per row
  uint stride;  // floats between rows
};
UNICORN_PUSH_SIZE(ArgmaxPush, 8)

// avg_pool.comp: tokens on a grid_in x grid_in grid [grid_in^2, c] ->
// grid_out x grid_out averages of (grid_in/grid_out)^2 tokens [grid_out^2, c].
struct PoolPush {
  uint grid_in;
  uint grid_out;
  uint channels;
};
UNICORN_PUSH_SIZE(PoolPush, 12)

#ifdef __cplusplus
}  // namespace unicorn::vk
#endif

#endif  // UNICORN_GPU_WORKER_SHADERS_PUSH_CONSTANTS_H_
