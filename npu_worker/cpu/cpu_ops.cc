#include "npu_worker/cpu/cpu_ops.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/trace.h"
#include "model/quant.h"
#include "model/sampler.h"
#include "npu_worker/cpu/kernels.h"

namespace unicorn::cpu {
namespace {

class CpuBuffer final : public Buffer {
 public:
  explicit CpuBuffer(size_t size) : Buffer(size) {
    size_t bytes = ((std::max<size_t>(size, 1) * 4 + 63) / 64) * 64;
    data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
    UNICORN_CHECK(data_ != nullptr);
    std::memset(data_, 0, bytes);
  }
  ~CpuBuffer() override { std::free(data_); }
  float* data() const { return data_; }

 private:
  float* data_;
};

class CpuWeight final : public Weight {
 public:
  CpuWeight(const std::string& name, DType dtype, int64_t rows, int64_t cols, const uint8_t* data)
      : Weight(name, dtype, rows, cols), data_(data), row_bytes_(RowBytes(dtype, cols)) {}
  // An f32 copy (1-D tensors: norm weights and biases).
  CpuWeight(const std::string& name, int64_t cols, std::vector<float> values)
      : Weight(name, DType::kF32, 1, cols), owned_(std::move(values)) {
    data_ = reinterpret_cast<const uint8_t*>(owned_.data());
    row_bytes_ = size_t(cols) * 4;
  }
  const uint8_t* data() const { return data_; }
  size_t row_bytes() const { return row_bytes_; }
  const float* f32() const { return reinterpret_cast<const float*>(data_); }

 private:
  const uint8_t* data_;
  size_t row_bytes_;
  std::vector<float> owned_;
};

float* F(Buffer& b) { return static_cast<CpuBuffer&>(b).data(); }
const float* F(const Buffer& b) { return static_cast<const CpuBuffer&>(b).data(); }
const int32_t* I(const Buffer& b) {
  return reinterpret_cast<const int32_t*>(static_cast<const CpuBuffer&>(b).data());
}
const CpuWeight& W(const Weight& w) { return static_cast<const CpuWeight&>(w); }

bool IsQuantized(DType t) { return t == DType::kQ8_0 || t == DType::kQ4_0; }
bool IsKQuant(DType t) { return t >= DType::kQ2_K && t <= DType::kQ6_K; }

// Element-wise jobs smaller than this run on the calling thread: a few
// microseconds of work, about what waking the pool costs.
constexpr int64_t kElementwiseGrain = 16384;

template <typename T>
void Grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

}  // namespace

CpuOps::CpuOps(const CpuOptions& options)
    : pool_(options.threads > 0 ? options.threads
                                : std::max(1, int(std::thread::hardware_concurrency()))),
      two_planes_(options.two_plane_activations) {
  // UNICORN_CPU_ACTIVATION_PLANES=1|2 sets it for a whole process (the
  // workers, `unicorn run|bench|logits`): 2 trades speed for the f32 path's
  // argmax (README, "CPU activation precision").
  if (const char* e = std::getenv("UNICORN_CPU_ACTIVATION_PLANES")) {
    if (std::string(e) == "1") two_planes_ = false;
    if (std::string(e) == "2") two_planes_ = true;
  }
  scores_.resize(size_t(pool_.size()));
}

CpuOps::~CpuOps() = default;

std::string CpuOps::Describe() const {
  return absl::StrCat("cpu (", pool_.size(), " threads, ", KernelTarget(), ")");
}

std::unique_ptr<Buffer> CpuOps::Alloc(size_t size) { return std::make_unique<CpuBuffer>(size); }

StatusOr<std::unique_ptr<Weight>> CpuOps::LoadWeight(const TensorInfo& t) {
  auto err = [&](const std::string& msg) {
    return absl::InvalidArgumentError(absl::StrCat("[cpu] tensor ", t.name, ": ", msg));
  };
  if (t.shape.empty()) return err("scalar tensors are not weights");
  const int64_t rows = t.shape.size() == 1 ? 1 : t.shape[0];
  const int64_t cols = rows == 0 ? 0 : t.numel() / rows;
  if (rows <= 0 || cols <= 0) return err("empty tensor");
  const DTypeTraits& tr = Traits(t.dtype);
  if (cols % tr.block_elems != 0) {
    return err(absl::StrCat(std::string(tr.name), " rows of ", cols,
                            " elements are not whole blocks of ", tr.block_elems));
  }
  const size_t need = RowBytes(t.dtype, cols) * size_t(rows);
  if (t.data == nullptr || t.nbytes < need) {
    return err(absl::StrCat("has ", t.nbytes, " bytes of data, needs ", need));
  }
  if (t.shape.size() == 1) {  // norm weights and biases: f32 copies
    std::vector<float> v(static_cast<size_t>(cols));
    DequantizeRow(t.dtype, t.data, v.data(), cols);
    return std::unique_ptr<Weight>(new CpuWeight(t.name, cols, std::move(v)));
  }
  return std::unique_ptr<Weight>(new CpuWeight(t.name, t.dtype, rows, cols, t.data));
}

void CpuOps::Write(Buffer& dst, size_t offset, const void* src, size_t n) {
  UNICORN_CHECK(offset + n <= dst.size());
  std::memcpy(F(dst) + offset, src, n * 4);
}

void CpuOps::Read(const Buffer& src, size_t offset, void* dst, size_t n) {
  UNICORN_CHECK(offset + n <= src.size());
  std::memcpy(dst, F(src) + offset, n * 4);
}

void CpuOps::Copy(const Buffer& src, size_t src_off, Buffer& dst, size_t dst_off, size_t n) {
  trace::OpSpan span(trace::Kind::kOpCopy);
  UNICORN_CHECK(src_off + n <= src.size() && dst_off + n <= dst.size());
  std::memmove(F(dst) + dst_off, F(src) + src_off, n * 4);
}

void CpuOps::Embed(const Buffer& ids, const Weight& table, float scale, int n, Buffer& out) {
  trace::OpSpan span(trace::Kind::kOpEmbed);
  const CpuWeight& t = W(table);
  const int64_t d = t.cols();
  UNICORN_CHECK(size_t(n) <= ids.size() && size_t(n * d) <= out.size());
  const int32_t* id = I(ids);
  float* y = F(out);
  pool_.For(n, 1, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      float* row = y + i * d;
      if (id[i] < 0 || id[i] >= t.rows()) {
        std::fill(row, row + d, 0.0f);
        continue;
      }
      DequantizeRow(t.dtype(), t.data() + size_t(id[i]) * t.row_bytes(), row, d);
      for (int64_t j = 0; j < d; ++j) row[j] *= scale;
    }
  });
}

void CpuOps::RmsNorm(const Buffer& x, const Weight& w, int rows, int dim, float eps, Buffer& out) {
  trace::OpSpan span(trace::Kind::kOpNorm);
  UNICORN_CHECK(w.cols() == dim && w.dtype() == DType::kF32);
  UNICORN_CHECK(size_t(rows) * dim <= x.size() && size_t(rows) * dim <= out.size());
  const float* xs = F(x);
  const float* wv = W(w).f32();
  float* y = F(out);
  pool_.For(
      rows, 1, 1,
      [&](int64_t b, int64_t e, int) {
        for (int64_t r = b; r < e; ++r) RmsNormRow(xs + r * dim, wv, dim, eps, y + r * dim);
      },
      std::max<int64_t>(1, kElementwiseGrain / dim));
}

void CpuOps::LayerNorm(const Buffer& x, const Weight& w, const Weight& b, int rows, int dim,
                       float eps, Buffer& out) {
  trace::OpSpan span(trace::Kind::kOpNorm);
  UNICORN_CHECK(w.cols() == dim && b.cols() == dim);
  UNICORN_CHECK(w.dtype() == DType::kF32 && b.dtype() == DType::kF32);
  const float* xs = F(x);
  float* y = F(out);
  pool_.For(rows, 1, 1, [&](int64_t lo, int64_t hi, int) {
    for (int64_t r = lo; r < hi; ++r) {
      LayerNormRow(xs + r * dim, W(w).f32(), W(b).f32(), dim, eps, y + r * dim);
    }
  });
}

void CpuOps::QuantizeActivations(const float* x, int n, int64_t cols) {
  Grow(q8_q_, size_t(n) * cols);
  Grow(q8_d_, size_t(n) * cols / 32);
  Grow(q8_bias_, size_t(n) * cols / 4);
  if (two_planes_) {
    Grow(q8r_q_, size_t(n) * cols);
    Grow(q8r_d_, size_t(n) * cols / 32);
    Grow(q8r_bias_, size_t(n) * cols / 4);
    Grow(q8r_scratch_, size_t(pool_.size()) * cols);
  }
  Q8Rows q{q8_q_.data(), q8_d_.data(), q8_bias_.data()};
  Q8Rows r{q8r_q_.data(), q8r_d_.data(), q8r_bias_.data()};
  pool_.For(n, 1, 1, [&](int64_t b, int64_t e, int thread) {
    for (int64_t i = b; i < e; ++i) {
      QuantizeRowQ8(x + i * cols, cols, q, i);
      if (two_planes_) {
        ResidualRowQ8(x + i * cols, cols, q, q8r_scratch_.data() + thread * cols, r, i);
      }
    }
  });
}

void CpuOps::QuantizeActivationsK(const float* x, int n, int64_t cols) {
  Grow(q8k_q_, size_t(n) * cols);
  Grow(q8k_d_, size_t(n) * cols / 256);
  Grow(q8k_bsums_, size_t(n) * cols / 16);
  Q8KRows q{q8k_q_.data(), q8k_d_.data(), q8k_bsums_.data()};
  pool_.For(n, 1, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) QuantizeRowQ8K(x + i * cols, cols, q, i);
  });
}

void CpuOps::MatMul(const Buffer& x, const Weight& w, const Weight* bias, int n, Buffer& y) {
  trace::OpSpan span(trace::Kind::kOpMatMul);
  if (span.on()) span.set_kind(trace::MatMulOpKind(w.name()));
  const Weight* ws[] = {&w};
  Buffer* ys[] = {&y};
  MatMulImpl(x, ws, 1, n, ys);
  if (bias != nullptr) {
    UNICORN_CHECK(bias->cols() == w.rows() && bias->dtype() == DType::kF32);
    const float* bv = W(*bias).f32();
    float* yv = F(y);
    const int64_t out = w.rows();
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t r = 0; r < out; ++r) yv[i * out + r] += bv[r];
    }
  }
}

void CpuOps::MatMulMulti(const Buffer& x, const std::vector<const Weight*>& ws, int n,
                         const std::vector<Buffer*>& ys) {
  trace::OpSpan span(trace::Kind::kOpMatMul);
  if (span.on() && !ws.empty()) span.set_kind(trace::MatMulOpKind(ws[0]->name(), ws.size()));
  UNICORN_CHECK(ws.size() == ys.size());
  MatMulImpl(x, ws.data(), ws.size(), n, ys.data());
}

void CpuOps::MatMulImpl(const Buffer& x, const Weight* const* ws, size_t count, int n,
                        Buffer* const* ys) {
  UNICORN_CHECK(count > 0);
  const int64_t cols = ws[0]->cols();
  UNICORN_CHECK(size_t(n) * cols <= x.size());
  bool quantized = false, kquant = false, plain = false;
  int64_t total = 0;
  for (size_t j = 0; j < count; ++j) {
    UNICORN_CHECK(ws[j]->cols() == cols);
    UNICORN_CHECK(size_t(n) * ws[j]->rows() <= ys[j]->size());
    const DType t = ws[j]->dtype();
    (IsQuantized(t) ? quantized : IsKQuant(t) ? kquant : plain) = true;
    total += ws[j]->rows();
  }
  if (quantized) QuantizeActivations(F(x), n, cols);
  if (kquant) QuantizeActivationsK(F(x), n, cols);
  MatMulArgs base;
  base.cols = cols;
  base.n = n;
  base.x = F(x);
  base.xq = Q8Rows{q8_q_.data(), q8_d_.data(), q8_bias_.data()};
  if (quantized && two_planes_) base.xr = Q8Rows{q8r_q_.data(), q8r_d_.data(), q8r_bias_.data()};
  base.xk = Q8KRows{q8k_q_.data(), q8k_d_.data(), q8k_bsums_.data()};
  (void)plain;
  // One parallel loop over the rows of all weights, as if concatenated.
  pool_.For(total, 8, 4, [&](int64_t b, int64_t e, int) {
    int64_t first = 0;
    for (size_t j = 0; j < count && b < e; ++j) {
      const int64_t rows = ws[j]->rows();
      if (b < first + rows) {
        const int64_t r0 = b - first, r1 = std::min(e - first, rows);
        const CpuWeight& w = W(*ws[j]);
        MatMulArgs a = base;
        a.wtype = w.dtype();
        a.w = w.data();
        a.w_row_bytes = w.row_bytes();
        a.y = F(*ys[j]);
        a.y_stride = rows;
        MatMulRows(a, r0, r1);
        b = first + r1;
      }
      first += rows;
    }
  });
}

const std::vector<float>& CpuOps::InvFreq(const RopeParams& p, int head_dim) {
  auto key = std::make_tuple(p.theta, p.linear_factor, head_dim);
  auto it = inv_freq_.find(key);
  if (it != inv_freq_.end()) return it->second;
  // transformers' compute_default_rope_parameters, all in f32:
  //   inv_freq = 1 / theta ** (arange(0, dim, 2).float() / dim), then / factor (linear).
  std::vector<float> f(size_t(head_dim / 2));
  for (int i = 0; i < head_dim / 2; ++i) {
    const float e = float(2 * i) / float(head_dim);
    f[size_t(i)] = (1.0f / std::pow(p.theta, e)) / p.linear_factor;
  }
  return inv_freq_.emplace(key, std::move(f)).first->second;
}

void CpuOps::Rope(Buffer& x, const Buffer& pos, int n, int heads, int head_dim,
                  const RopeParams& p) {
  trace::OpSpan span(trace::Kind::kOpRope);
  const int half = head_dim / 2;
  const std::vector<float>& inv = InvFreq(p, head_dim);
  Grow(rope_cs_, size_t(n) * half * 2);
  const int32_t* ps = I(pos);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < half; ++j) {
      const float f = float(ps[i]) * inv[size_t(j)];  // f32 as transformers' freqs
      rope_cs_[(size_t(i) * half + j) * 2] = std::cos(f);
      rope_cs_[(size_t(i) * half + j) * 2 + 1] = std::sin(f);
    }
  }
  float* xs = F(x);
  pool_.For(
      int64_t(n) * heads, 1, 1,
      [&](int64_t b, int64_t e, int) {
        for (int64_t t = b; t < e; ++t) {
          float* v = xs + t * head_dim;
          const float* cs = rope_cs_.data() + size_t(t / heads) * half * 2;
          for (int j = 0; j < half; ++j) {
            const float c = cs[2 * j], s = cs[2 * j + 1];
            const float a = v[j], b2 = v[j + half];
            v[j] = a * c - b2 * s;
            v[j + half] = b2 * c + a * s;
          }
        }
      },
      std::max<int64_t>(1, kElementwiseGrain / head_dim));
}

void CpuOps::StoreKv(const Buffer& k, const Buffer& v, const Buffer& pos, const Buffer* rings,
                     int n, int kv_dim, int capacity, Buffer& k_store, Buffer& v_store) {
  trace::OpSpan span(trace::Kind::kOpStoreKv);
  const int32_t* ps = I(pos);
  const int32_t* rs = rings != nullptr ? I(*rings) : nullptr;
  for (int i = 0; i < n; ++i) {
    const size_t slot =
        size_t(rs != nullptr ? rs[i] : 0) * size_t(capacity) + size_t(ps[i] % capacity);
    UNICORN_CHECK((slot + 1) * size_t(kv_dim) <= k_store.size());
    std::memcpy(F(k_store) + slot * kv_dim, F(k) + size_t(i) * kv_dim, size_t(kv_dim) * 4);
    std::memcpy(F(v_store) + slot * kv_dim, F(v) + size_t(i) * kv_dim, size_t(kv_dim) * 4);
  }
}

void CpuOps::Attention(const Buffer& q, const Buffer& k_store, const Buffer& v_store,
                       const Buffer& spans, const Buffer* rings, int n, const AttentionParams& p,
                       Buffer& out) {
  trace::OpSpan span(trace::Kind::kOpAttentionCore);
  const int H = p.n_heads, D = p.head_dim, G = p.n_heads / p.n_kv_heads;
  const int64_t kv_stride = int64_t(p.n_kv_heads) * D;
  const int32_t* sp = I(spans);
  const int32_t* rs = rings != nullptr ? I(*rings) : nullptr;
  for (auto& s : scores_) Grow(s, size_t(p.capacity));
  const float* qs = F(q);
  const float* ks = F(k_store);
  const float* vs = F(v_store);
  float* os = F(out);
  pool_.For(int64_t(n) * H, 1, 2, [&](int64_t b, int64_t e, int thread) {
    float* scores = scores_[size_t(thread)].data();
    for (int64_t t = b; t < e; ++t) {
      const int64_t i = t / H, h = t % H, g = h / G;
      const int lo = sp[2 * i], hi = sp[2 * i + 1];
      const int len = hi - lo + 1;
      UNICORN_CHECK(lo >= 0 && len >= 1 && len <= p.capacity);
      // The row's ring: its sequence's slots in a store shared by a batch.
      const int64_t ring0 = int64_t(rs != nullptr ? rs[i] : 0) * p.capacity;
      UNICORN_CHECK((ring0 + p.capacity) * kv_stride <= int64_t(k_store.size()));
      const float* qv = qs + (i * H + h) * D;
      for (int j = 0; j < len; ++j) {
        const int64_t slot = ring0 + (lo + j) % p.capacity;
        float s = Dot(qv, ks + slot * kv_stride + g * D, D) * p.scale;
        if (p.softcap > 0) s = std::tanh(s / p.softcap) * p.softcap;
        scores[j] = s;
      }
      Softmax(scores, len);
      float* o = os + (i * H + h) * D;
      std::fill(o, o + D, 0.0f);
      for (int j = 0; j < len; ++j) {
        const int64_t slot = ring0 + (lo + j) % p.capacity;
        Axpy(scores[j], vs + slot * kv_stride + g * D, D, o);
      }
    }
  });
}

void CpuOps::GeluMul(const Buffer& gate, const Buffer& up, size_t n, Buffer& out) {
  trace::OpSpan span(trace::Kind::kOpGeglu);
  const float* g = F(gate);
  const float* u = F(up);
  float* o = F(out);
  pool_.For(int64_t(n), 64, 1,
            [&](int64_t b, int64_t e, int) { cpu::GeluMul(g + b, u + b, size_t(e - b), o + b); });
}

void CpuOps::Gelu(Buffer& x, size_t n) {
  trace::OpSpan span(trace::Kind::kOpGelu);
  float* v = F(x);
  pool_.For(
      int64_t(n), 64, 1, [&](int64_t b, int64_t e, int) { cpu::Gelu(v + b, size_t(e - b)); },
      kElementwiseGrain);
}

void CpuOps::Add(const Buffer& a, const Buffer& b, size_t n, Buffer& out) {
  trace::OpSpan span(trace::Kind::kOpAdd);
  cpu::Add(F(a), F(b), n, F(out));
}

void CpuOps::SoftCap(Buffer& x, size_t n, float cap) {
  trace::OpSpan span(trace::Kind::kOpSoftCap);
  float* v = F(x);
  pool_.For(int64_t(n), 64, 1,
            [&](int64_t b, int64_t e, int) { cpu::SoftCap(v + b, size_t(e - b), cap); });
}

void CpuOps::Argmax(const Buffer& x, int rows, int n, Buffer& ids) {
  trace::OpSpan span(trace::Kind::kOpArgmax);
  const float* v = F(x);
  int32_t* out = reinterpret_cast<int32_t*>(F(ids));
  pool_.For(int64_t(rows), 1, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      out[r] = int32_t(unicorn::Argmax(std::span<const float>(v + r * n, size_t(n))));
    }
  });
}

void CpuOps::AvgPool(const Buffer& x, int side, int c, int k, Buffer& out) {
  trace::OpSpan span(trace::Kind::kOpAvgPool);
  const int os = side / k;
  const float* xs = F(x);
  float* y = F(out);
  const float inv = 1.0f / float(k * k);
  pool_.For(int64_t(os) * os, 1, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t o = b; o < e; ++o) {
      const int oy = int(o / os), ox = int(o % os);
      float* dst = y + o * c;
      std::fill(dst, dst + c, 0.0f);
      for (int ky = 0; ky < k; ++ky) {
        for (int kx = 0; kx < k; ++kx) {
          const float* src = xs + (int64_t(oy * k + ky) * side + (ox * k + kx)) * c;
          for (int j = 0; j < c; ++j) dst[j] += src[j];
        }
      }
      for (int j = 0; j < c; ++j) dst[j] *= inv;
    }
  });
}

}  // namespace unicorn::cpu
