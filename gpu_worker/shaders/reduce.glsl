// Workgroup reductions: subgroup ops first, then one value per subgroup
// through shared memory. The including shader defines WG (its workgroup
// size, a specialization constant) and calls these in uniform control flow.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

shared float reduce_smem[WG];

float WorkgroupSum(float v) {
  v = subgroupAdd(v);
  if (gl_NumSubgroups == 1) return v;
  if (subgroupElect()) reduce_smem[gl_SubgroupID] = v;
  barrier();
  float t = 0.0;
  for (uint i = 0; i < gl_NumSubgroups; ++i) t += reduce_smem[i];
  barrier();
  return t;
}

float WorkgroupMax(float v) {
  v = subgroupMax(v);
  if (gl_NumSubgroups == 1) return v;
  if (subgroupElect()) reduce_smem[gl_SubgroupID] = v;
  barrier();
  float t = reduce_smem[0];
  for (uint i = 1; i < gl_NumSubgroups; ++i) t = max(t, reduce_smem[i]);
  barrier();
  return t;
}
