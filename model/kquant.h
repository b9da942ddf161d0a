// ggml's k-quant block formats (Q2_K..Q6_K) and Unicorn's NF4 extension:
// byte layouts, reference dequantization and quantization. These are the CPU
// twins the fast kernels are tested against.
//
// Every k-quant block ("super-block") holds 256 weights, split into
// sub-blocks of 16 or 32 weights with their own small scale (and, for the
// asymmetric types, min). Sub-block scales are themselves quantized against
// the super-block's f16 scale `d` (and `dmin`). Layouts, in file byte order:
//
//   Q2_K (84 B, 2.625 bpw): scales[16], qs[64], f16 d, f16 dmin
//     16 sub-blocks of 16. scales[s]: low nibble = scale, high nibble = min.
//     Weights in two halves of 128; in half h, the 2-bit field j (bits 2j..)
//     of qs[32h + l], l < 32, is weight 128h + 32j + l, sub-block 8h + 2j +
//     l/16.  w = d * (sc & 15) * q - dmin * (sc >> 4).
//   Q3_K (110 B, 3.4375 bpw): hmask[32], qs[64], scales[12], f16 d
//     16 sub-blocks of 16, 6-bit signed scales (stored + 32): sub-block s's
//     low 4 bits are scales[s] & 15 (s < 8) or scales[s - 8] >> 4, its high
//     2 bits are bits 2*(s/4).. of scales[8 + s % 4]. The 2-bit fields are
//     placed as Q2_K's; bit (4h + j) of hmask[l] is the third bit of the
//     weight in that position.  w = d * (scale - 32) * (q3 - 4).
//   Q4_K (144 B, 4.5 bpw): f16 d, f16 dmin, scales[12], qs[128]
//     8 sub-blocks of 32, 6-bit scale and min packed in scales[12]: for
//     s < 4, sc = scales[s] & 63, m = scales[s + 4] & 63; for s >= 4,
//     sc = (scales[s + 4] & 15) | (scales[s - 4] >> 6) << 4,
//     m = (scales[s + 4] >> 4) | (scales[s] >> 6) << 4.
//     qs[32p + l] holds weight 64p + l (low nibble, sub-block 2p) and
//     64p + 32 + l (high nibble, sub-block 2p + 1).  w = d * sc * q - dmin * m.
//   Q5_K (176 B, 5.5 bpw): f16 d, f16 dmin, scales[12], qh[32], qs[128]
//     as Q4_K plus a fifth bit: bit 2p of qh[l] for weight 64p + l, bit
//     2p + 1 for weight 64p + 32 + l.
//   Q6_K (210 B, 6.5625 bpw): ql[128], qh[64], int8 scales[16], f16 d
//     16 sub-blocks of 16. In half h (128 weights), for l < 32: weight
//     128h + l     = ql[64h + l] low  | (qh[32h + l] >> 0 & 3) << 4,
//     128h + 32 + l = ql[64h + 32 + l] low | (qh >> 2 & 3) << 4,
//     128h + 64 + l = ql[64h + l] high | (qh >> 4 & 3) << 4,
//     128h + 96 + l = ql[64h + 32 + l] high | (qh >> 6 & 3) << 4;
//     weight i's sub-block is i / 16.  w = d * scales[i / 16] * (q6 - 32).
//   NF4 (18 B per 32, 4.5 bpw; Unicorn only): f16 d, qs[16] as Q4_0;
//     w = d * kNf4Levels[nibble] (the 16 NormalFloat levels of QLoRA).
#pragma once

#include <cstdint>

namespace unicorn {

inline constexpr int kQK = 256;  // weights per k-quant super-block

struct BlockQ2_K {
  uint8_t scales[16];
  uint8_t qs[64];
  uint16_t d, dmin;
};
static_assert(sizeof(BlockQ2_K) == 84, "GGUF Q2_K block is 84 bytes");

struct BlockQ3_K {
  uint8_t hmask[32];
  uint8_t qs[64];
  uint8_t scales[12];
  uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110, "GGUF Q3_K block is 110 bytes");

struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
static_assert(sizeof(BlockQ4_K) == 144, "GGUF Q4_K block is 144 bytes");

struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
static_assert(sizeof(BlockQ5_K) == 176, "GGUF Q5_K block is 176 bytes");

struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210, "GGUF Q6_K block is 210 bytes");

// NormalFloat-4 levels (quantiles of N(0, 1) scaled to [-1, 1]).
extern const float kNf4Levels[16];

// One block of 256 weights (32 for NF4) <-> f32. `src`/`dst` are unaligned
// bytes in file layout.
void DequantizeQ2_K(const uint8_t* src, float* dst);
void DequantizeQ3_K(const uint8_t* src, float* dst);
void DequantizeQ4_K(const uint8_t* src, float* dst);
void DequantizeQ5_K(const uint8_t* src, float* dst);
void DequantizeQ6_K(const uint8_t* src, float* dst);
void DequantizeNF4(const uint8_t* src, float* dst);

// Quantizers. Scale search (documented in kquant.cc): per sub-block, a grid
// of candidate scales around max|x| / qmax (plus min for the asymmetric
// types), each refined by least squares on its rounded codes, keeping the
// lowest squared error; then the sub-block scales are quantized against the
// super-block scale and the codes re-rounded with the final scales.
void QuantizeQ2_K(const float* src, uint8_t* dst);
void QuantizeQ3_K(const float* src, uint8_t* dst);
void QuantizeQ4_K(const float* src, uint8_t* dst);
void QuantizeQ5_K(const float* src, uint8_t* dst);
void QuantizeQ6_K(const float* src, uint8_t* dst);
void QuantizeNF4(const float* src, uint8_t* dst);

}  // namespace unicorn
