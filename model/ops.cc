#include "model/ops.h"

#include "model/sampler.h"

namespace unicorn {

void Ops::Argmax(const Buffer& x, int rows, int n, Buffer& ids) {
  std::vector<float> row(static_cast<size_t>(n));
  std::vector<int32_t> out(static_cast<size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    Read(x, size_t(r) * size_t(n), row.data(), size_t(n));
    out[size_t(r)] = int32_t(unicorn::Argmax(row));
  }
  Write(ids, 0, out.data(), size_t(rows));
}

}  // namespace unicorn
