// Extensions and helpers every kernel uses.
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_control_flow_attributes : enable

// tanh that stays finite for large |x| on every driver.
float SafeTanh(float x) { return tanh(clamp(x, -15.0, 15.0)); }

// GELU, tanh approximation (gelu_pytorch_tanh).
float GeluTanh(float x) {
  const float c = 0.7978845608028654;  // sqrt(2 / pi)
  return 0.5 * x * (1.0 + SafeTanh(c * (x + 0.044715 * x * x * x)));
}

float Bf16ToF32(uint b) { return uintBitsToFloat(b << 16); }
float F16ToF32(uint h) { return unpackHalf2x16(h).x; }

// Flattened workgroup index for grids that exceed 65535 in x.
uint FlatGroup() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }
