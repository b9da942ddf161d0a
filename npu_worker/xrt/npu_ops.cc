#include "npu_worker/xrt/npu_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "model/quant.h"

namespace unicorn::npu {
namespace {

// The CPU backend's weight, plus the NPU copy when a kernel serves its shape.
class NpuWeight final : public Weight {
 public:
  NpuWeight(std::unique_ptr<Weight> cpu)
      : Weight(cpu->name(), cpu->dtype(), cpu->rows(), cpu->cols()), cpu_(std::move(cpu)) {}
  const Weight& cpu() const { return *cpu_; }

  int kernel = -1;               // index into NpuOps::kernels_, -1 = CPU only
  std::unique_ptr<NpuBo> bo;     // Bt [rows, cols] in the kernel's dtype
  std::vector<float> row_scale;  // int8: [rows] per-row scales
  std::vector<float> f32;        // 1-D weights: [cols] as f32 (biases)

 private:
  std::unique_ptr<Weight> cpu_;
};

const NpuWeight& W(const Weight& w) { return static_cast<const NpuWeight&>(w); }
const Weight& C(const Weight& w) { return W(w).cpu(); }

// Symmetric int8 of `n` values with scale max|v| / 127 (0 rows get scale 0).
float QuantizeRowI8(const float* v, int64_t n, int8_t* out) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(v[i]));
  const float scale = amax / 127.0f;
  const float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int8_t>(std::lrintf(v[i] * inv));
  return scale;
}

}  // namespace

StatusOr<std::unique_ptr<NpuOps>> NpuOps::Create(NpuDevice& device,
                                                 const std::vector<GemmSpec>& specs,
                                                 const cpu::CpuOptions& cpu_options) {
  std::unique_ptr<NpuOps> ops(new NpuOps(device, cpu_options));
  for (const GemmSpec& s : specs) {
    UNICORN_ASSIGN_OR_RETURN(auto gemm, NpuGemm::Create(device, s));
    ops->kernels_.push_back({std::move(gemm), false});
  }
  return ops;
}

std::string NpuOps::Describe() const {
  std::string s =
      absl::StrCat("xrt: ", device_.Describe(), ", ", kernels_.size(), " GEMM kernel(s)");
  for (const Kernel& k : kernels_) {
    const GemmSpec& g = k.gemm->spec();
    absl::StrAppend(&s, " ", g.name, "[", g.m, "x", g.k, "x", g.n, "]");
  }
  return absl::StrCat(s, "; other ops on ", cpu_.Describe());
}

int NpuOps::disabled_kernels() const {
  int n = 0;
  for (const Kernel& k : kernels_) n += k.disabled;
  return n;
}

StatusOr<std::unique_ptr<Weight>> NpuOps::LoadWeight(const TensorInfo& t) {
  UNICORN_ASSIGN_OR_RETURN(auto cpu, cpu_.LoadWeight(t));
  auto w = std::make_unique<NpuWeight>(std::move(cpu));
  const int64_t rows = w->rows(), cols = w->cols();
  if (t.shape.size() == 1) {
    w->f32.resize(cols);
    DequantizeRow(t.dtype, t.data, w->f32.data(), cols);
    return std::unique_ptr<Weight>(std::move(w));
  }
  for (size_t i = 0; i < kernels_.size(); ++i) {
    const GemmSpec& g = kernels_[i].gemm->spec();
    if (kernels_[i].disabled || g.n != rows || g.k != cols) continue;
    NpuGemm& gemm = *kernels_[i].gemm;
    std::vector<uint8_t> bt(gemm.b_bytes());
    std::vector<float> row(cols);
    const size_t row_bytes = RowBytes(t.dtype, cols);
    if (g.dtype == GemmDType::kInt8) w->row_scale.resize(rows);
    for (int64_t r = 0; r < rows; ++r) {
      DequantizeRow(t.dtype, t.data + r * row_bytes, row.data(), cols);
      if (g.dtype == GemmDType::kBf16) {
        uint16_t* dst = reinterpret_cast<uint16_t*>(bt.data()) + r * cols;
        for (int64_t c = 0; c < cols; ++c) dst[c] = F32ToBF16(row[c]);
      } else {
        w->row_scale[r] =
            QuantizeRowI8(row.data(), cols, reinterpret_cast<int8_t*>(bt.data()) + r * cols);
      }
    }
    UNICORN_ASSIGN_OR_RETURN(w->bo, gemm.UploadWeight(bt.data(), bt.size()));
    w->kernel = int(i);
    break;
  }
  return std::unique_ptr<Weight>(std::move(w));
}

void NpuOps::Embed(const Buffer& ids, const Weight& table, float scale, int n, Buffer& out) {
  cpu_.Embed(ids, C(table), scale, n, out);
}

void NpuOps::RmsNorm(const Buffer& x, const Weight& w, int rows, int dim, float eps, Buffer& out) {
  cpu_.RmsNorm(x, C(w), rows, dim, eps, out);
}

void NpuOps::LayerNorm(const Buffer& x, const Weight& w, const Weight& b, int rows, int dim,
                       float eps, Buffer& out) {
  cpu_.LayerNorm(x, C(w), C(b), rows, dim, eps, out);
}

Status NpuOps::NpuMatMul(const Buffer& x, const Weight& weight, int n, Buffer& y) {
  const NpuWeight& w = W(weight);
  if (w.kernel < 0 || kernels_[w.kernel].disabled) {
    return absl::FailedPreconditionError(
        absl::StrCat("[npu] no NPU kernel serves ", w.name(), " [", w.rows(), ", ", w.cols(), "]"));
  }
  NpuGemm& gemm = *kernels_[w.kernel].gemm;
  const GemmSpec& g = gemm.spec();
  const int64_t in = w.cols(), out = w.rows();
  x_.resize(size_t(n) * in);
  y_.resize(size_t(n) * out);
  cpu_.Read(x, 0, x_.data(), x_.size());
  a_.resize(gemm.a_bytes());
  a_scale_.resize(g.m);
  c_.resize(gemm.c_bytes() / 4);
  for (int r0 = 0; r0 < n; r0 += g.m) {
    const int rows = std::min(g.m, n - r0);
    std::fill(a_.begin(), a_.end(), 0);
    for (int r = 0; r < rows; ++r) {
      const float* src = x_.data() + size_t(r0 + r) * in;
      if (g.dtype == GemmDType::kBf16) {
        uint16_t* dst = reinterpret_cast<uint16_t*>(a_.data()) + size_t(r) * in;
        for (int64_t c = 0; c < in; ++c) dst[c] = F32ToBF16(src[c]);
      } else {
        a_scale_[r] = QuantizeRowI8(src, in, reinterpret_cast<int8_t*>(a_.data()) + size_t(r) * in);
      }
    }
    UNICORN_RETURN_IF_ERROR(gemm.Run(a_.data(), a_.size(), *w.bo, c_.data(), c_.size() * 4));
    for (int r = 0; r < rows; ++r) {
      float* dst = y_.data() + size_t(r0 + r) * out;
      const uint32_t* src = c_.data() + size_t(r) * out;
      if (g.dtype == GemmDType::kBf16) {
        std::memcpy(dst, src, size_t(out) * 4);
      } else {
        for (int64_t c = 0; c < out; ++c) {
          dst[c] = float(int32_t(src[c])) * a_scale_[r] * w.row_scale[c];
        }
      }
    }
  }
  cpu_.Write(y, 0, y_.data(), y_.size());
  ++npu_matmuls_;
  return absl::OkStatus();
}

void NpuOps::MatMul(const Buffer& x, const Weight& w, const Weight* bias, int n, Buffer& y) {
  const NpuWeight& nw = W(w);
  if (nw.kernel >= 0 && !kernels_[nw.kernel].disabled) {
    Status s = NpuMatMul(x, w, n, y);
    if (s.ok()) {
      if (bias != nullptr) {
        const std::vector<float>& b = W(*bias).f32;
        // y_ still holds the product; add the bias per row.
        for (int r = 0; r < n; ++r) {
          for (int64_t c = 0; c < nw.rows(); ++c) y_[size_t(r) * nw.rows() + c] += b[c];
        }
        cpu_.Write(y, 0, y_.data(), y_.size());
      }
      return;
    }
    LOG_ERROR("{}; kernel disabled, {} and later products of its shape run on the CPU", s.message(),
              nw.name());
    kernels_[nw.kernel].disabled = true;
  }
  cpu_.MatMul(x, C(w), bias ? &C(*bias) : nullptr, n, y);
}

void NpuOps::MatMulMulti(const Buffer& x, const std::vector<const Weight*>& ws, int n,
                         const std::vector<Buffer*>& ys) {
  bool any_npu = false;
  for (const Weight* w : ws) any_npu = any_npu || W(*w).kernel >= 0;
  if (!any_npu) {
    cpu_ws_.resize(ws.size());  // kept: a decode step allocates nothing
    for (size_t j = 0; j < ws.size(); ++j) cpu_ws_[j] = &C(*ws[j]);
    cpu_.MatMulMulti(x, cpu_ws_, n, ys);
    return;
  }
  for (size_t j = 0; j < ws.size(); ++j) MatMul(x, *ws[j], nullptr, n, *ys[j]);
}

}  // namespace unicorn::npu
