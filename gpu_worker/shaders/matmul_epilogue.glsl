// The epilogue of the product kernels (matvec, matmul, matmul_batch): output
// v of weight row `row` into y[o], in this order: + bias, GELU, GEGLU (times
// `up`, the sum of the matching up row), soft-capping, + y[o] (residual).
// The including shader declares FLAGS, p (MatMulPush), y and bias.
void StoreOutput(float v, float up, uint row, uint o) {
  if ((FLAGS & UNICORN_MM_BIAS) != 0) v += bias[row];
  if ((FLAGS & UNICORN_MM_GELU) != 0) v = GeluTanh(v);
  if ((FLAGS & UNICORN_MM_GEGLU) != 0) v = GeluTanh(v) * up;
  if ((FLAGS & UNICORN_MM_SOFTCAP) != 0) v = p.softcap * SafeTanh(v / p.softcap);
  if ((FLAGS & UNICORN_MM_ACC) != 0) v += y[o];
  y[o] = v;
}
