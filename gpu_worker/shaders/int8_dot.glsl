// Packed int8 dot products of weight blocks with int8 activation blocks, as
// the int8 product kernels (matvec_int8.comp, matmul_int8_rows.comp) use
// them. Per 32-weight block: eight OpSDot into an exact integer sum s, then
// d_w * d_x * s. Q4_0 nibbles go in unsigned (0..15); the -8 offset is in
// the activation block's bias (q8_activations.glsl), whose addition also
// turns s into a float without an int-to-float conversion (slow on NVIDIA):
// the bits Q8_FLOAT_BIAS + s are the float 12582912 + s while |s| < 2^22
// (here |s| <= 32 * 127 * 127).
// The including shader enables GL_EXT_spirv_intrinsics and includes
// q8_activations.glsl.

// OpSDot (SPV_KHR_integer_dot_product): the dot product of a and b as four
// signed 8-bit lanes each (format 0: PackedVectorFormat4x8Bit). Debian 12's
// glslc lacks GL_EXT_integer_dot_product, hence the intrinsic.
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018],
                  id = 4450) int DotI8x4(uint a, uint b, spirv_literal int packed_format);

// Sixteen bytes of Q4_0 nibbles as int8 lanes: weights 0..15 into wa,
// 16..31 into wb.
void UnpackQ4(uvec4 v, out uvec4 wa, out uvec4 wb) {
  wa = v & 0x0F0F0F0Fu;
  wb = (v >> 4) & 0x0F0F0F0Fu;
}

// d_w * d_x * (w . x) of one block, given the activation block's bias.
float BlockDot(uvec4 wa, uvec4 wb, uvec4 xa, uvec4 xb, int xbias, float dwx) {
  int s = xbias;
  s += DotI8x4(wa.x, xa.x, 0) + DotI8x4(wa.y, xa.y, 0) + DotI8x4(wa.z, xa.z, 0) +
       DotI8x4(wa.w, xa.w, 0) + DotI8x4(wb.x, xb.x, 0) + DotI8x4(wb.y, xb.y, 0) +
       DotI8x4(wb.z, xb.z, 0) + DotI8x4(wb.w, xb.w, 0);
  return dwx * (intBitsToFloat(s) - Q8_FLOAT_BIAS_F);
}
