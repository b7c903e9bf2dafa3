// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Tests of the "nn" op group on the reference kernels: hand-computed cases (many taken from the
// ONNX operator docs, which the conformance suite also uses), comparisons against naive
// implementations written straight from the ONNX definitions, algebraic properties (grouped conv
// = per-group convs, ConvTranspose = adjoint of Conv, QLinear* = dequantize -> float op ->
// quantize) and error cases.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "tests/testing/graph_builder.h"

namespace hml {
namespace {

using runtime::Attributes;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using testing::EvalOp;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------------
// Helpers.

template <typename T>
Tensor Make(Shape shape, const std::vector<T>& values) {
  Result<Tensor> t = Tensor::FromVector<T>(std::move(shape), values);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(*t) : Tensor();
}

Tensor F(Shape shape, const std::vector<float>& values) {
  return Make<float>(std::move(shape), values);
}

// Values 0, 1, 2, ... as float.
Tensor Iota(Shape shape, float start = 0.0f) {
  Result<Tensor> t = Tensor::Allocate(DType::kFloat32, std::move(shape));
  EXPECT_TRUE(t.ok());
  for (int64_t i = 0; i < t->num_elements(); ++i)
    t->data<float>()[i] = start + static_cast<float>(i);
  return std::move(*t);
}

Tensor Random(Shape shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  Result<Tensor> t = Tensor::Allocate(DType::kFloat32, std::move(shape));
  EXPECT_TRUE(t.ok());
  for (float& v : t->values<float>()) v = dist(rng);
  return std::move(*t);
}

template <typename T>
Tensor RandomInt(const Shape& shape, uint32_t seed, int lo, int hi) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  Result<Tensor> t = Tensor::Allocate(DTypeOf<T>(), shape);
  EXPECT_TRUE(t.ok());
  for (T& v : t->values<T>()) v = static_cast<T>(dist(rng));
  return std::move(*t);
}

Tensor Scalar(float v) { return F({}, {v}); }

template <typename T>
std::vector<T> Values(const Tensor& t) {
  if (t.empty() || t.dtype() != DTypeOf<T>()) {
    ADD_FAILURE() << "tensor has dtype " << DTypeName(t.dtype()) << ", wanted "
                  << DTypeName(DTypeOf<T>());
    return {};
  }
  std::vector<T> v(t.values<T>().begin(), t.values<T>().end());
  return v;
}

std::vector<float> Floats(const Tensor& t) { return Values<float>(t); }

template <typename... Ts>
std::vector<Tensor> In(Ts&&... ts) {
  std::vector<Tensor> v;
  (v.push_back(std::forward<Ts>(ts)), ...);
  return v;
}

// Attribute builder: Attrs().Ints("pads", {1, 1}).Int("group", 2).
class Attrs {
 public:
  Attrs& Int(std::string name, int64_t v) {
    a_.SetInt(std::move(name), v);
    return *this;
  }
  Attrs& Ints(std::string name, std::vector<int64_t> v) {
    a_.SetInts(std::move(name), std::move(v));
    return *this;
  }
  Attrs& Float(std::string name, float v) {
    a_.SetFloat(std::move(name), v);
    return *this;
  }
  Attrs& Str(std::string name, std::string v) {
    a_.SetString(std::move(name), std::move(v));
    return *this;
  }
  operator Attributes() const { return a_; }  // NOLINT(google-explicit-constructor)

 private:
  Attributes a_;
};

// Evaluates a one-output node; on failure records it and returns an empty tensor.
Tensor Eval(const std::string& op, std::vector<Tensor> inputs, Attributes attrs = {},
            int64_t opset = 17) {
  Result<std::vector<Tensor>> r = EvalOp(op, std::move(inputs), std::move(attrs), 1, opset);
  EXPECT_TRUE(r.ok()) << op << ": " << r.status().ToString();
  if (!r.ok()) return Tensor();
  return std::move((*r)[0]);
}

Status EvalStatus(const std::string& op, std::vector<Tensor> inputs, Attributes attrs = {},
                  int num_outputs = 1, int64_t opset = 17) {
  return EvalOp(op, std::move(inputs), std::move(attrs), num_outputs, opset).status();
}

void ExpectFloatsNear(const Tensor& got, const std::vector<float>& want, float tol = 1e-5f) {
  std::vector<float> g = Floats(got);
  ASSERT_EQ(g.size(), want.size());
  for (size_t i = 0; i < g.size(); ++i) {
    EXPECT_NEAR(g[i], want[i], tol * std::max(1.0f, std::fabs(want[i]))) << "at " << i;
  }
}

void ExpectTensorsNear(const Tensor& got, const Tensor& want, float tol = 1e-5f) {
  ASSERT_EQ(got.shape(), want.shape());
  ExpectFloatsNear(got, Floats(want), tol);
}

// Multi-index helpers for the naive implementations.
bool NextIndex(std::vector<int64_t>& idx, const std::vector<int64_t>& dims) {
  for (size_t i = idx.size(); i-- > 0;) {
    if (++idx[i] < dims[i]) return true;
    idx[i] = 0;
  }
  return false;
}

int64_t Flat(const std::vector<int64_t>& idx, const std::vector<int64_t>& dims) {
  int64_t f = 0;
  for (size_t i = 0; i < idx.size(); ++i) f = f * dims[i] + idx[i];
  return f;
}

int64_t Product(const std::vector<int64_t>& dims) {
  int64_t p = 1;
  for (int64_t d : dims) p *= d;
  return p;
}

// Geometry of a naive sliding window, N-D.
struct NaiveWindow {
  std::vector<int64_t> kernel, strides, dilations, pads_begin, pads_end;
};

std::vector<int64_t> NaiveOutSpatial(const std::vector<int64_t>& in, const NaiveWindow& w) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < in.size(); ++i) {
    const int64_t ek = (w.kernel[i] - 1) * w.dilations[i] + 1;
    out.push_back((in[i] + w.pads_begin[i] + w.pads_end[i] - ek) / w.strides[i] + 1);
  }
  return out;
}

// Conv straight from the ONNX definition: for every output position and tap, a bounds-checked
// read. x [N, C, in...], w [M, C/group, k...].
Tensor NaiveConv(const Tensor& x, const Tensor& w, const Tensor* bias, int64_t group,
                 const NaiveWindow& win) {
  const int64_t n_batch = x.dim(0), c_in = x.dim(1), m_out = w.dim(0), cg = w.dim(1);
  const int64_t mg = m_out / group;
  const std::vector<int64_t> in(x.shape().begin() + 2, x.shape().end());
  const std::vector<int64_t> ks(w.shape().begin() + 2, w.shape().end());
  const std::vector<int64_t> out = NaiveOutSpatial(in, win);
  Shape out_shape = {n_batch, m_out};
  out_shape.insert(out_shape.end(), out.begin(), out.end());
  Tensor y = *Tensor::Allocate(DType::kFloat32, out_shape);
  const size_t r = in.size();
  for (int64_t n = 0; n < n_batch; ++n) {
    for (int64_t m = 0; m < m_out; ++m) {
      std::vector<int64_t> o(r, 0);
      do {
        double acc = bias ? bias->data<float>()[m] : 0.0;
        const int64_t g = m / mg;
        for (int64_t ci = 0; ci < cg; ++ci) {
          const int64_t c = g * cg + ci;
          std::vector<int64_t> k(r, 0);
          do {
            std::vector<int64_t> pos(r);
            bool inside = true;
            for (size_t d = 0; d < r; ++d) {
              pos[d] = o[d] * win.strides[d] - win.pads_begin[d] + k[d] * win.dilations[d];
              inside = inside && pos[d] >= 0 && pos[d] < in[d];
            }
            if (!inside) continue;
            acc +=
                static_cast<double>(x.data<float>()[(n * c_in + c) * Product(in) + Flat(pos, in)]) *
                w.data<float>()[(m * cg + ci) * Product(ks) + Flat(k, ks)];
          } while (NextIndex(k, ks));
        }
        y.data<float>()[(n * m_out + m) * Product(out) + Flat(o, out)] = static_cast<float>(acc);
      } while (NextIndex(o, out));
    }
  }
  return y;
}

// Max or average pooling straight from the definitions (count_include_pad counts the padded
// positions inside [-pads_begin, in + pads_end)). Also fills row-major Indices for max.
Tensor NaivePool(const Tensor& x, const NaiveWindow& win, bool max, bool include_pad,
                 std::vector<int64_t>* indices = nullptr) {
  const int64_t planes = x.dim(0) * x.dim(1);
  const std::vector<int64_t> in(x.shape().begin() + 2, x.shape().end());
  const std::vector<int64_t> out = NaiveOutSpatial(in, win);
  Shape out_shape = {x.dim(0), x.dim(1)};
  out_shape.insert(out_shape.end(), out.begin(), out.end());
  Tensor y = *Tensor::Allocate(DType::kFloat32, out_shape);
  const size_t r = in.size();
  for (int64_t p = 0; p < planes; ++p) {
    std::vector<int64_t> o(r, 0);
    do {
      double sum = 0.0;
      float best = -std::numeric_limits<float>::infinity();
      int64_t best_index = -1, count = 0;
      std::vector<int64_t> k(r, 0);
      do {
        std::vector<int64_t> pos(r);
        bool inside = true, in_padded = true;
        for (size_t d = 0; d < r; ++d) {
          pos[d] = o[d] * win.strides[d] - win.pads_begin[d] + k[d] * win.dilations[d];
          inside = inside && pos[d] >= 0 && pos[d] < in[d];
          in_padded = in_padded && pos[d] >= -win.pads_begin[d] && pos[d] < in[d] + win.pads_end[d];
        }
        if (include_pad ? in_padded : inside) ++count;
        if (!inside) continue;
        const int64_t flat = p * Product(in) + Flat(pos, in);
        const float v = x.data<float>()[flat];
        sum += v;
        if (v > best) {
          best = v;
          best_index = flat;
        }
      } while (NextIndex(k, win.kernel));
      const int64_t oi = p * Product(out) + Flat(o, out);
      y.data<float>()[oi] = max ? best : static_cast<float>(sum / static_cast<double>(count));
      if (indices != nullptr) indices->push_back(best_index);
    } while (NextIndex(o, out));
  }
  return y;
}

Attrs WindowAttrs(const NaiveWindow& w) {
  std::vector<int64_t> pads = w.pads_begin;
  pads.insert(pads.end(), w.pads_end.begin(), w.pads_end.end());
  Attrs a;
  a.Ints("kernel_shape", w.kernel).Ints("strides", w.strides).Ints("dilations", w.dilations);
  a.Ints("pads", pads);
  return a;
}

// Copies channels [begin, end) of dim `axis` of a float tensor.
Tensor SliceChannels(const Tensor& t, int axis, int64_t begin, int64_t end) {
  Shape s = t.shape();
  const int64_t outer = Product(Shape(s.begin(), s.begin() + axis));
  const int64_t inner = Product(Shape(s.begin() + axis + 1, s.end()));
  const int64_t len = s[static_cast<size_t>(axis)];
  s[static_cast<size_t>(axis)] = end - begin;
  Tensor r = *Tensor::Allocate(DType::kFloat32, s);
  float* dst = r.data<float>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = begin; c < end; ++c) {
      const float* src = t.data<float>() + (o * len + c) * inner;
      dst = std::copy(src, src + inner, dst);
    }
  }
  return r;
}

double Dot(const Tensor& a, const Tensor& b) {
  double s = 0.0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    s += static_cast<double>(a.data<float>()[i]) * b.data<float>()[i];
  }
  return s;
}

Tensor Clone(const Tensor& t) { return std::move(*t.Clone()); }

// ---------------------------------------------------------------------------------------------
// Conv.

TEST(ConvTest, HandComputed2x2Kernel) {
  Tensor y = Eval("Conv", In(Iota({1, 1, 3, 3}), F({1, 1, 2, 2}, {1, 1, 1, 1})));
  EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_THAT(Floats(y), ElementsAre(8, 12, 20, 24));
}

TEST(ConvTest, PadsAndStridesMatchOnnxDocExample) {
  // ONNX Conv doc: 5x5 input 0..24, 3x3 kernel of ones, pads 1.
  Tensor w = F({1, 1, 3, 3}, std::vector<float>(9, 1.0f));
  Tensor padded = Eval("Conv", In(Iota({1, 1, 5, 5}), Clone(w)),
                       Attrs().Ints("kernel_shape", {3, 3}).Ints("pads", {1, 1, 1, 1}));
  EXPECT_THAT(Floats(padded),
              ElementsAreArray({12,  21, 27, 33,  24,  33,  54,  63, 72,  51,  63,  99, 108,
                                117, 81, 93, 144, 153, 162, 111, 72, 111, 117, 123, 84}));
  Tensor strided = Eval("Conv", In(Iota({1, 1, 5, 5}), Clone(w)),
                        Attrs().Ints("pads", {1, 1, 1, 1}).Ints("strides", {2, 2}));
  EXPECT_EQ(strided.shape(), (Shape{1, 1, 3, 3}));
  EXPECT_THAT(Floats(strided), ElementsAreArray({12, 27, 24, 63, 108, 81, 72, 117, 84}));
}

TEST(ConvTest, AsymmetricPadsAndStrides) {
  // ONNX conv_with_strides_and_asymmetric_padding: 7x5 input, pads [1, 0, 1, 0], strides 2.
  Tensor y = Eval("Conv", In(Iota({1, 1, 7, 5}), F({1, 1, 3, 3}, std::vector<float>(9, 1.0f))),
                  Attrs().Ints("pads", {1, 0, 1, 0}).Ints("strides", {2, 2}));
  EXPECT_EQ(y.shape(), (Shape{1, 1, 4, 2}));
  EXPECT_THAT(Floats(y), ElementsAreArray({21, 33, 99, 117, 189, 207, 171, 183}));
}

TEST(ConvTest, AutoPadSameUpperAndLowerPutTheOddPadOnOppositeSides) {
  // 1-D, kernel [1, 10]: total padding 1 goes to the end (UPPER) or the start (LOWER).
  Tensor x = F({1, 1, 4}, {1, 2, 3, 4});
  Tensor w = F({1, 1, 2}, {1, 10});
  Tensor upper = Eval("Conv", In(Clone(x), Clone(w)), Attrs().Str("auto_pad", "SAME_UPPER"));
  EXPECT_THAT(Floats(upper), ElementsAre(21, 32, 43, 4));
  Tensor lower = Eval("Conv", In(Clone(x), Clone(w)), Attrs().Str("auto_pad", "SAME_LOWER"));
  EXPECT_THAT(Floats(lower), ElementsAre(10, 21, 32, 43));
  Tensor valid = Eval("Conv", In(Clone(x), Clone(w)), Attrs().Str("auto_pad", "VALID"));
  EXPECT_THAT(Floats(valid), ElementsAre(21, 32, 43));
}

TEST(ConvTest, SameLowerWithStrideMatchesOnnxExample) {
  // ONNX conv_with_autopad_same: 5x5, 3x3 ones, strides 2, SAME_LOWER.
  Tensor y = Eval("Conv", In(Iota({1, 1, 5, 5}), F({1, 1, 3, 3}, std::vector<float>(9, 1.0f))),
                  Attrs().Str("auto_pad", "SAME_LOWER").Ints("strides", {2, 2}));
  EXPECT_EQ(y.shape(), (Shape{1, 1, 3, 3}));
  EXPECT_THAT(Floats(y), ElementsAreArray({12, 27, 24, 63, 108, 81, 72, 117, 84}));
}

TEST(ConvTest, DilationAndBias1D) {
  Tensor y = Eval("Conv", In(F({1, 1, 5}, {1, 2, 3, 4, 5}), F({1, 1, 2}, {1, 1}), F({1}, {0.5f})),
                  Attrs().Ints("dilations", {2}));
  EXPECT_THAT(Floats(y), ElementsAre(4.5f, 6.5f, 8.5f));
}

TEST(ConvTest, ThreeDimensional) {
  Tensor y = Eval("Conv", In(Iota({1, 1, 2, 2, 3}), F({2, 1, 2, 2, 2}, std::vector<float>(16, 1))),
                  Attrs().Ints("pads", {0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(y.shape(), (Shape{1, 2, 1, 1, 3}));
  // Each w column summed over d and h is 18 + 4 * w; windows take two adjacent columns, the
  // last one half in padding.
  EXPECT_THAT(Floats(y), ElementsAre(40, 48, 26, 40, 48, 26));
}

TEST(ConvTest, MatchesNaiveConvOverManyGeometries) {
  struct Case {
    Shape x, w;
    int64_t group;
    NaiveWindow win;
  };
  const std::vector<Case> cases = {
      {{2, 3, 9}, {4, 3, 3}, 1, {{3}, {2}, {1}, {1}, {2}}},
      {{1, 4, 7, 6}, {6, 2, 3, 2}, 2, {{3, 2}, {1, 2}, {2, 1}, {2, 0}, {1, 1}}},
      {{1, 6, 8, 8}, {12, 1, 3, 3}, 6, {{3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}}},  // depthwise x2
      {{2, 5, 6, 5}, {3, 5, 1, 1}, 1, {{1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}}},   // pointwise
      {{1, 2, 5, 6, 7},
       {4, 1, 2, 3, 2},
       2,
       {{2, 3, 2}, {1, 2, 3}, {2, 1, 1}, {1, 0, 2}, {0, 1, 1}}},
      {{1, 3, 10, 11}, {2, 3, 3, 3}, 1, {{3, 3}, {3, 2}, {3, 2}, {4, 0}, {0, 3}}},
  };
  uint32_t seed = 1;
  for (const Case& c : cases) {
    Tensor x = Random(c.x, seed++);
    Tensor w = Random(c.w, seed++);
    Tensor b = Random({c.w[0]}, seed++);
    Tensor want = NaiveConv(x, w, &b, c.group, c.win);
    Tensor got =
        Eval("Conv", In(Clone(x), Clone(w), Clone(b)), WindowAttrs(c.win).Int("group", c.group));
    SCOPED_TRACE(ShapeToString(c.x) + " * " + ShapeToString(c.w));
    ExpectTensorsNear(got, want, 1e-5f);
  }
}

TEST(ConvTest, GroupedConvEqualsPerGroupConvs) {
  const int64_t group = 3;
  Tensor x = Random({2, 6, 7, 5}, 11);
  Tensor w = Random({9, 2, 3, 3}, 12);
  Tensor b = Random({9}, 13);
  Attrs attrs = Attrs().Ints("pads", {1, 0, 1, 2}).Ints("strides", {2, 1});
  Tensor grouped = Eval("Conv", In(Clone(x), Clone(w), Clone(b)), Attrs(attrs).Int("group", 3));
  ASSERT_EQ(grouped.shape(), (Shape{2, 9, 4, 5}));
  for (int64_t g = 0; g < group; ++g) {
    Tensor part =
        Eval("Conv",
             In(SliceChannels(x, 1, 2 * g, 2 * g + 2), SliceChannels(w, 0, 3 * g, 3 * g + 3),
                SliceChannels(b, 0, 3 * g, 3 * g + 3)),
             attrs);
    ExpectTensorsNear(SliceChannels(grouped, 1, 3 * g, 3 * g + 3), part, 1e-6f);
  }
}

TEST(ConvTest, RejectsBadInputsWithClearErrors) {
  // Weight channels * group != input channels.
  Status s = EvalStatus("Conv", In(Random({1, 4, 5, 5}, 1), Random({2, 3, 3, 3}, 2)));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("group"));
  // Output channels not divisible by group.
  s = EvalStatus("Conv", In(Random({1, 4, 5, 5}, 1), Random({3, 2, 3, 3}, 2)),
                 Attrs().Int("group", 2));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("divisible by group"));
  // Bias of the wrong length.
  s = EvalStatus("Conv", In(Random({1, 1, 5, 5}, 1), Random({2, 1, 3, 3}, 2), Random({3}, 3)));
  EXPECT_THAT(std::string(s.message()), HasSubstr("bias"));
  // int8 data is QLinearConv's job.
  s = EvalStatus("Conv", In(RandomInt<int8_t>({1, 1, 5, 5}, 1, -5, 5), Random({1, 1, 3, 3}, 2)));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("int8"));
  // Kernel larger than the padded input.
  s = EvalStatus("Conv", In(Random({1, 1, 2, 2}, 1), Random({1, 1, 3, 3}, 2)));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("larger than the padded input"));
  // Wrong number of pads.
  s = EvalStatus("Conv", In(Random({1, 1, 5, 5}, 1), Random({1, 1, 3, 3}, 2)),
                 Attrs().Ints("pads", {1, 1}));
  EXPECT_THAT(std::string(s.message()), HasSubstr("pads"));
  // Four spatial dims: valid ONNX, not supported by the reference kernel.
  s = EvalStatus("Conv", In(Random({1, 1, 2, 2, 2, 2}, 1), Random({1, 1, 1, 1, 1, 1}, 2)));
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("spatial dims"));
}

// ---------------------------------------------------------------------------------------------
// ConvTranspose.

TEST(ConvTransposeTest, MatchesOnnxDocExample) {
  Tensor y =
      Eval("ConvTranspose", In(Iota({1, 1, 3, 3}), F({1, 2, 3, 3}, std::vector<float>(18, 1.0f))));
  ASSERT_EQ(y.shape(), (Shape{1, 2, 5, 5}));
  const std::vector<float> plane = {0,  1,  3, 3,  2,  3,  8,  15, 12, 7,  9,  21, 36,
                                    27, 15, 9, 20, 33, 24, 13, 6,  13, 21, 15, 8};
  std::vector<float> want = plane;
  want.insert(want.end(), plane.begin(), plane.end());
  EXPECT_THAT(Floats(y), ElementsAreArray(want));
}

TEST(ConvTransposeTest, StridesAndPads) {
  // ONNX convtranspose_pads: strides [3, 2], pads [1, 2, 1, 2] -> 7x3.
  Tensor y =
      Eval("ConvTranspose", In(Iota({1, 1, 3, 3}), F({1, 2, 3, 3}, std::vector<float>(18, 1.0f))),
           Attrs().Ints("strides", {3, 2}).Ints("pads", {1, 2, 1, 2}));
  ASSERT_EQ(y.shape(), (Shape{1, 2, 7, 3}));
  std::vector<float> got = Floats(y);
  EXPECT_THAT(
      std::vector<float>(got.begin(), got.begin() + 21),
      ElementsAreArray({1, 1, 3, 1, 1, 3, 7, 4, 9, 7, 4, 9, 7, 4, 9, 13, 7, 15, 13, 7, 15}));
}

TEST(ConvTransposeTest, OutputShapeLargerThanFullResultPadsWithZeros) {
  // Regression: total padding -1 (output_shape [10, 8] from a full result of 9x7) used to be
  // rejected. Per ONNX the extra row/column goes at the end and holds only the bias (0 here).
  Tensor y =
      Eval("ConvTranspose", In(Iota({1, 1, 3, 3}), F({1, 2, 3, 3}, std::vector<float>(18, 1.0f))),
           Attrs().Ints("strides", {3, 2}).Ints("output_shape", {10, 8}));
  ASSERT_EQ(y.shape(), (Shape{1, 2, 10, 8}));
  std::vector<float> got = Floats(y);
  EXPECT_THAT(std::vector<float>(got.begin(), got.begin() + 8),
              ElementsAre(0, 0, 1, 1, 3, 2, 2, 0));
  EXPECT_THAT(std::vector<float>(got.begin() + 24, got.begin() + 32),
              ElementsAre(3, 3, 7, 4, 9, 5, 5, 0));
  EXPECT_THAT(std::vector<float>(got.begin() + 72, got.begin() + 80),
              ElementsAre(0, 0, 0, 0, 0, 0, 0, 0));
}

TEST(ConvTransposeTest, OutputShapeWithOddTotalPaddingPadsTheStartFirst) {
  // Full result [1, 3, 6, 5, 3]; output_shape 4 leaves total padding 1, which ONNX puts at the
  // beginning unless auto_pad is SAME_UPPER.
  Tensor x = F({1, 1, 3}, {1, 2, 3});
  Tensor w = F({1, 1, 3}, {1, 1, 1});
  Tensor y = Eval("ConvTranspose", In(Clone(x), Clone(w)), Attrs().Ints("output_shape", {4}));
  EXPECT_THAT(Floats(y), ElementsAre(3, 6, 5, 3));
  Tensor upper = Eval("ConvTranspose", In(Clone(x), Clone(w)),
                      Attrs().Ints("output_shape", {4}).Str("auto_pad", "SAME_UPPER"));
  EXPECT_THAT(Floats(upper), ElementsAre(1, 3, 6, 5));
}

TEST(ConvTransposeTest, AutoPadSameUpperMatchesOnnxExample) {
  Tensor y =
      Eval("ConvTranspose", In(Iota({1, 1, 3, 3}), F({1, 2, 3, 3}, std::vector<float>(18, 1.0f))),
           Attrs().Str("auto_pad", "SAME_UPPER").Ints("strides", {2, 2}));
  ASSERT_EQ(y.shape(), (Shape{1, 2, 6, 6}));
  std::vector<float> got = Floats(y);
  EXPECT_THAT(std::vector<float>(got.begin(), got.begin() + 18),
              ElementsAreArray({0, 0, 1, 1, 3, 2, 0, 0, 1, 1, 3, 2, 3, 3, 8, 5, 12, 7}));
}

TEST(ConvTransposeTest, OutputPaddingAndBias) {
  Tensor y = Eval("ConvTranspose", In(F({1, 1, 2}, {1, 2}), F({1, 1, 2}, {1, 10}), F({1}, {0.5f})),
                  Attrs().Ints("strides", {2}).Ints("output_padding", {1}));
  // Full result [1, 10, 2, 20] plus one output_padding position holding only the bias.
  EXPECT_THAT(Floats(y), ElementsAre(1.5f, 10.5f, 2.5f, 20.5f, 0.5f));
}

TEST(ConvTransposeTest, IsTheAdjointOfConv) {
  // <Conv(x; W), y> == <x, ConvTranspose(y; W)> for the same W, when ConvTranspose's output has
  // x's shape. Covers 1-D/2-D/3-D, groups, strides, dilations and pads.
  struct Case {
    Shape x, w;
    int64_t group;
    NaiveWindow win;
  };
  const std::vector<Case> cases = {
      {{2, 3, 9}, {4, 3, 3}, 1, {{3}, {2}, {1}, {1}, {1}}},
      {{1, 4, 7, 9}, {6, 2, 3, 2}, 2, {{3, 2}, {2, 3}, {1, 2}, {1, 0}, {1, 1}}},
      {{1, 4, 6, 5, 7},
       {4, 1, 2, 3, 3},
       4,
       {{2, 3, 3}, {2, 1, 2}, {1, 1, 2}, {0, 1, 1}, {0, 1, 2}}},
  };
  uint32_t seed = 100;
  for (const Case& c : cases) {
    Tensor x = Random(c.x, seed++);
    Tensor w = Random(c.w, seed++);
    Attrs attrs = WindowAttrs(c.win).Int("group", c.group);
    Tensor conv = Eval("Conv", In(Clone(x), Clone(w)), attrs);
    ASSERT_FALSE(conv.empty());
    Tensor y = Random(conv.shape(), seed++);
    Shape out_spatial(c.x.begin() + 2, c.x.end());
    Tensor convt = Eval("ConvTranspose", In(Clone(y), Clone(w)),
                        Attrs(attrs).Ints("output_shape", out_spatial));
    ASSERT_EQ(convt.shape(), c.x);
    // With explicit output_shape the pads come from the ONNX formula; check they equal ours.
    Tensor convt_pads = Eval("ConvTranspose", In(Clone(y), Clone(w)), attrs);
    if (convt_pads.shape() == c.x) ExpectTensorsNear(convt_pads, convt, 1e-6f);
    const double lhs = Dot(conv, y), rhs = Dot(x, convt);
    EXPECT_NEAR(lhs, rhs, 1e-4 * std::max(1.0, std::fabs(lhs))) << ShapeToString(c.x);
  }
}

TEST(ConvTransposeTest, RejectsBadInputs) {
  Status s = EvalStatus("ConvTranspose", In(Random({1, 2, 3, 3}, 1), Random({3, 1, 3, 3}, 2)));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("weight dim 0"));
  s = EvalStatus("ConvTranspose", In(Random({1, 1, 3}, 1), Random({1, 1, 3}, 2)),
                 Attrs().Ints("strides", {2}).Ints("output_padding", {2}));
  EXPECT_THAT(std::string(s.message()), HasSubstr("output_padding"));
}

// ---------------------------------------------------------------------------------------------
// Gemm.

TEST(GemmTest, AllAttributesWithRowBias) {
  // A^T is [[1, 2, 3], [4, 5, 6]] (A = [[1,4],[2,5],[3,6]]); B^T is [[1, 0], [0, 1], [1, 1]].
  Tensor a = F({3, 2}, {1, 4, 2, 5, 3, 6});
  Tensor b = F({2, 3}, {1, 0, 1, 0, 1, 1});
  Tensor c = F({1, 2}, {10, 20});
  Tensor y = Eval("Gemm", In(std::move(a), std::move(b), std::move(c)),
                  Attrs().Int("transA", 1).Int("transB", 1).Float("alpha", 0.5f).Float("beta", 2));
  // A'B' = [[4, 5], [10, 11]].
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  EXPECT_THAT(Floats(y), ElementsAre(22, 42.5f, 25, 45.5f));
}

TEST(GemmTest, BiasBroadcastsUnidirectionally) {
  Tensor a = F({2, 2}, {1, 2, 3, 4});
  Tensor b = F({2, 2}, {1, 0, 0, 1});
  EXPECT_THAT(Floats(Eval("Gemm", In(Clone(a), Clone(b), Scalar(1)))), ElementsAre(2, 3, 4, 5));
  EXPECT_THAT(Floats(Eval("Gemm", In(Clone(a), Clone(b), F({2, 1}, {10, 20})))),
              ElementsAre(11, 12, 23, 24));
  EXPECT_THAT(Floats(Eval("Gemm", In(Clone(a), Clone(b), F({2}, {10, 20})))),
              ElementsAre(11, 22, 13, 24));
  EXPECT_THAT(Floats(Eval("Gemm", In(Clone(a), Clone(b)))), ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(Floats(Eval("Gemm", In(Clone(a), Clone(b), Tensor()))), ElementsAre(1, 2, 3, 4));
}

TEST(GemmTest, TransposesMatchExplicitProducts) {
  Tensor a = Random({5, 7}, 1);
  Tensor b = Random({7, 4}, 2);
  Tensor want = Eval("MatMul", In(Clone(a), Clone(b)));
  // Transposed copies of a and b.
  Tensor at = *Tensor::Allocate(DType::kFloat32, {7, 5});
  Tensor bt = *Tensor::Allocate(DType::kFloat32, {4, 7});
  for (int i = 0; i < 5; ++i) {
    for (int k = 0; k < 7; ++k) at.data<float>()[k * 5 + i] = a.data<float>()[i * 7 + k];
  }
  for (int k = 0; k < 7; ++k) {
    for (int j = 0; j < 4; ++j) bt.data<float>()[j * 7 + k] = b.data<float>()[k * 4 + j];
  }
  ExpectTensorsNear(Eval("Gemm", In(Clone(at), Clone(b)), Attrs().Int("transA", 1)), want);
  ExpectTensorsNear(Eval("Gemm", In(Clone(a), Clone(bt)), Attrs().Int("transB", 1)), want);
  ExpectTensorsNear(
      Eval("Gemm", In(Clone(at), Clone(bt)), Attrs().Int("transA", 1).Int("transB", 1)), want);
}

TEST(GemmTest, RejectsBadShapes) {
  Status s = EvalStatus("Gemm", In(Random({2, 3}, 1), Random({2, 3}, 2)));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("inner dimensions"));
  s = EvalStatus("Gemm", In(Random({2, 3}, 1), Random({3, 2}, 2), Random({3}, 3)));
  EXPECT_THAT(std::string(s.message()), HasSubstr("broadcastable"));
  s = EvalStatus("Gemm", In(Random({1, 2, 3}, 1), Random({3, 2}, 2)));
  EXPECT_THAT(std::string(s.message()), HasSubstr("rank 2"));
}

// ---------------------------------------------------------------------------------------------
// MatMul.

TEST(MatMulTest, TwoDimensional) {
  Tensor y = Eval("MatMul", In(F({2, 3}, {1, 2, 3, 4, 5, 6}), F({3, 2}, {7, 8, 9, 10, 11, 12})));
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  EXPECT_THAT(Floats(y), ElementsAre(58, 64, 139, 154));
}

TEST(MatMulTest, OneDimensionalOperandsArePromotedAndDropped) {
  Tensor m = F({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor v3 = F({3}, {1, 0, -1});
  Tensor v2 = F({2}, {1, 1});
  Tensor mv = Eval("MatMul", In(Clone(m), Clone(v3)));
  EXPECT_EQ(mv.shape(), (Shape{2}));
  EXPECT_THAT(Floats(mv), ElementsAre(-2, -2));
  Tensor vm = Eval("MatMul", In(Clone(v2), Clone(m)));
  EXPECT_EQ(vm.shape(), (Shape{3}));
  EXPECT_THAT(Floats(vm), ElementsAre(5, 7, 9));
  Tensor vv = Eval("MatMul", In(Clone(v3), F({3}, {2, 3, 4})));
  EXPECT_EQ(vv.shape(), (Shape{}));
  EXPECT_THAT(Floats(vv), ElementsAre(-2));
  // Batched matrix times a vector.
  Tensor bv = Eval("MatMul", In(Iota({2, 2, 3}), Clone(v3)));
  EXPECT_EQ(bv.shape(), (Shape{2, 2}));
  EXPECT_THAT(Floats(bv), ElementsAre(-2, -2, -2, -2));
}

TEST(MatMulTest, BatchDimsBroadcast) {
  Tensor a = Random({2, 1, 2, 3}, 5);
  Tensor b = Random({3, 3, 4}, 6);
  Tensor y = Eval("MatMul", In(Clone(a), Clone(b)));
  ASSERT_EQ(y.shape(), (Shape{2, 3, 2, 4}));
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 3; ++j) {
      for (int r = 0; r < 2; ++r) {
        for (int c = 0; c < 4; ++c) {
          double want = 0;
          for (int k = 0; k < 3; ++k) {
            want += static_cast<double>(a.data<float>()[(i * 2 + r) * 3 + k]) *
                    b.data<float>()[(j * 3 + k) * 4 + c];
          }
          EXPECT_NEAR(y.data<float>()[((i * 3 + j) * 2 + r) * 4 + c], want, 1e-5);
        }
      }
    }
  }
}

TEST(MatMulTest, IntegerTypes) {
  Tensor y32 =
      Eval("MatMul", In(Make<int32_t>({2, 2}, {1, -2, 3, 4}), Make<int32_t>({2, 1}, {5, 6})));
  EXPECT_THAT(Values<int32_t>(y32), ElementsAre(-7, 39));
  const int64_t big = int64_t{1} << 40;
  Tensor y64 = Eval("MatMul", In(Make<int64_t>({1, 2}, {big, 3}), Make<int64_t>({2, 1}, {4, -5})));
  EXPECT_THAT(Values<int64_t>(y64), ElementsAre(4 * big - 15));
  // int32 products wrap modulo 2^32 like numpy instead of being undefined.
  Tensor wrap = Eval("MatMul", In(Make<int32_t>({1, 1}, {65536}), Make<int32_t>({1, 1}, {65537})));
  EXPECT_THAT(Values<int32_t>(wrap), ElementsAre(65536));
}

TEST(MatMulTest, ZeroSizedDims) {
  // K = 0: every output is an empty sum.
  Tensor y = Eval("MatMul", In(Make<float>({2, 0}, {}), Make<float>({0, 3}, {})));
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_THAT(Floats(y), ElementsAre(0, 0, 0, 0, 0, 0));
  // M = 0 with broadcast batch dims: an empty output.
  Tensor e = Eval("MatMul", In(Make<float>({4, 1, 0, 2}, {}), Random({1, 5, 2, 3}, 1)));
  EXPECT_EQ(e.shape(), (Shape{4, 5, 0, 3}));
  EXPECT_EQ(e.num_elements(), 0);
}

TEST(MatMulTest, RejectsBadInputs) {
  Status s = EvalStatus("MatMul", In(Random({2, 3}, 1), Random({2, 3}, 2)));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("inner dimensions"));
  s = EvalStatus("MatMul", In(Random({2, 2, 3}, 1), Random({3, 3, 2}, 2)));
  EXPECT_THAT(std::string(s.message()), HasSubstr("broadcast"));
  s = EvalStatus("MatMul", In(Random({2, 3}, 1), Make<int32_t>({3, 1}, {1, 2, 3})));
  EXPECT_THAT(std::string(s.message()), HasSubstr("dtype"));
  s = EvalStatus("MatMul", In(Make<uint8_t>({1, 1}, {1}), Make<uint8_t>({1, 1}, {1})));
  EXPECT_THAT(std::string(s.message()), HasSubstr("uint8"));
}

// ---------------------------------------------------------------------------------------------
// MaxPool.

TEST(MaxPoolTest, ValuesAndIndicesInBothStorageOrders) {
  Tensor x = Iota({1, 1, 4, 4}, 1);
  Attrs attrs = Attrs().Ints("kernel_shape", {2, 2}).Ints("strides", {2, 2});
  Result<std::vector<Tensor>> r = EvalOp("MaxPool", In(Clone(x)), attrs, 2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(Floats((*r)[0]), ElementsAre(6, 8, 14, 16));
  EXPECT_THAT(Values<int64_t>((*r)[1]), ElementsAre(5, 7, 13, 15));
  r = EvalOp("MaxPool", In(Clone(x)), Attrs(attrs).Int("storage_order", 1), 2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(Values<int64_t>((*r)[1]), ElementsAre(5, 13, 7, 15));
}

TEST(MaxPoolTest, IndicesCountAcrossBatchAndChannels) {
  Tensor x = F({2, 2, 1, 2}, {1, 0, 0, 1, 5, 6, 8, 7});
  Result<std::vector<Tensor>> r =
      EvalOp("MaxPool", In(std::move(x)), Attrs().Ints("kernel_shape", {1, 2}), 2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(Floats((*r)[0]), ElementsAre(1, 1, 6, 8));
  EXPECT_THAT(Values<int64_t>((*r)[1]), ElementsAre(0, 3, 5, 6));
}

TEST(MaxPoolTest, CeilMode) {
  Tensor y = Eval("MaxPool", In(Iota({1, 1, 4, 4}, 1)),
                  Attrs().Ints("kernel_shape", {3, 3}).Ints("strides", {2, 2}).Int("ceil_mode", 1));
  EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_THAT(Floats(y), ElementsAre(11, 12, 15, 16));
}

TEST(MaxPoolTest, SameUpperAndLower) {
  Tensor x = F({1, 1, 4}, {1, 5, 2, 4});
  EXPECT_THAT(Floats(Eval("MaxPool", In(Clone(x)),
                          Attrs().Ints("kernel_shape", {2}).Str("auto_pad", "SAME_UPPER"))),
              ElementsAre(5, 5, 4, 4));
  EXPECT_THAT(Floats(Eval("MaxPool", In(Clone(x)),
                          Attrs().Ints("kernel_shape", {2}).Str("auto_pad", "SAME_LOWER"))),
              ElementsAre(1, 5, 5, 4));
}

TEST(MaxPoolTest, MatchesNaivePoolingWithPadsStridesDilations) {
  const std::vector<std::pair<Shape, NaiveWindow>> cases = {
      {{2, 3, 11}, {{3}, {2}, {2}, {1}, {2}}},
      {{1, 2, 9, 8}, {{3, 2}, {2, 1}, {2, 3}, {1, 1}, {2, 0}}},
      {{1, 2, 5, 6, 7}, {{2, 3, 2}, {1, 2, 3}, {2, 1, 1}, {1, 0, 1}, {0, 2, 1}}},
  };
  uint32_t seed = 40;
  for (const auto& [shape, win] : cases) {
    Tensor x = Random(shape, seed++);
    std::vector<int64_t> want_indices;
    Tensor want = NaivePool(x, win, /*max=*/true, false, &want_indices);
    Result<std::vector<Tensor>> r = EvalOp("MaxPool", In(Clone(x)), WindowAttrs(win), 2);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ExpectTensorsNear((*r)[0], want, 0.0f);
    EXPECT_THAT(Values<int64_t>((*r)[1]), ElementsAreArray(want_indices));
  }
}

TEST(MaxPoolTest, Int8AndUint8) {
  Tensor u = Eval("MaxPool", In(Make<uint8_t>({1, 1, 4}, {3, 250, 7, 9})),
                  Attrs().Ints("kernel_shape", {2}).Ints("pads", {1, 0}));
  EXPECT_THAT(Values<uint8_t>(u), ElementsAre(3, 250, 250, 9));
  Tensor s = Eval("MaxPool", In(Make<int8_t>({1, 1, 4}, {-128, -5, -7, 9})),
                  Attrs().Ints("kernel_shape", {2}).Ints("pads", {1, 0}));
  EXPECT_THAT(Values<int8_t>(s), ElementsAre(-128, -5, -5, 9));
}

TEST(MaxPoolTest, NanPropagates) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor y = Eval("MaxPool", In(F({1, 1, 4}, {1, nan, 3, 2})), Attrs().Ints("kernel_shape", {2}));
  std::vector<float> v = Floats(y);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_TRUE(std::isnan(v[1]));
  EXPECT_EQ(v[2], 3);
}

TEST(MaxPoolTest, RejectsBadInputs) {
  Status s = EvalStatus("MaxPool", In(Random({1, 1, 4, 4}, 1)));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("kernel_shape"));
  s = EvalStatus("MaxPool", In(Random({1, 1, 4, 4}, 1)), Attrs().Ints("kernel_shape", {2}));
  EXPECT_THAT(std::string(s.message()), HasSubstr("kernel_shape"));
  s = EvalStatus("MaxPool", In(Random({1, 1, 4, 4}, 1)),
                 Attrs().Ints("kernel_shape", {2, 2}).Ints("strides", {0, 1}));
  EXPECT_THAT(std::string(s.message()), HasSubstr("strides"));
  s = EvalStatus("MaxPool", In(Make<int32_t>({1, 1, 2}, {1, 2})),
                 Attrs().Ints("kernel_shape", {2}));
  EXPECT_THAT(std::string(s.message()), HasSubstr("int32"));
  // A dilated window that skips over the whole input has no maximum.
  s = EvalStatus("MaxPool", In(Random({1, 1, 2}, 1)),
                 Attrs().Ints("kernel_shape", {2}).Ints("dilations", {3}).Ints("pads", {1, 1}));
  EXPECT_THAT(std::string(s.message()), HasSubstr("only padding"));
}

// ---------------------------------------------------------------------------------------------
// AveragePool, GlobalAveragePool, GlobalMaxPool.

TEST(AveragePoolTest, CountIncludePad) {
  Tensor x = F({1, 1, 3}, {1, 2, 3});
  Attrs attrs = Attrs().Ints("kernel_shape", {2}).Ints("pads", {1, 1});
  EXPECT_THAT(Floats(Eval("AveragePool", In(Clone(x)), attrs)), ElementsAre(1, 1.5f, 2.5f, 3));
  EXPECT_THAT(Floats(Eval("AveragePool", In(Clone(x)), Attrs(attrs).Int("count_include_pad", 1))),
              ElementsAre(0.5f, 1.5f, 2.5f, 1.5f));
}

TEST(AveragePoolTest, CeilModeMatchesOnnxExample) {
  Tensor y = Eval("AveragePool", In(Iota({1, 1, 4, 4}, 1)),
                  Attrs().Ints("kernel_shape", {3, 3}).Ints("strides", {2, 2}).Int("ceil_mode", 1));
  EXPECT_THAT(Floats(y), ElementsAre(6, 7.5f, 12, 13.5f));
}

TEST(AveragePoolTest, CeilModeWindowPastThePaddingCountsOnlyPaddedPositions) {
  // in 6, kernel 3, stride 2, pads 1: the last window [5, 8) covers input 5, pad 6, and 7
  // beyond the padding.
  Tensor x = F({1, 1, 6}, {1, 2, 3, 4, 5, 6});
  Attrs attrs = Attrs()
                    .Ints("kernel_shape", {3})
                    .Ints("strides", {2})
                    .Ints("pads", {1, 1})
                    .Int("ceil_mode", 1);
  EXPECT_THAT(Floats(Eval("AveragePool", In(Clone(x)), Attrs(attrs).Int("count_include_pad", 1))),
              ElementsAre(1, 3, 5, 3));
  EXPECT_THAT(Floats(Eval("AveragePool", In(Clone(x)), attrs)), ElementsAre(1.5f, 3, 5, 6));
}

TEST(AveragePoolTest, MatchesNaivePooling) {
  const std::vector<std::pair<Shape, NaiveWindow>> cases = {
      {{2, 3, 11}, {{3}, {2}, {1}, {1}, {2}}},
      {{1, 2, 9, 8}, {{3, 2}, {2, 1}, {1, 1}, {1, 1}, {2, 0}}},
      {{1, 2, 5, 6, 7}, {{2, 3, 2}, {1, 2, 3}, {1, 1, 1}, {1, 0, 1}, {0, 2, 1}}},
  };
  uint32_t seed = 60;
  for (const auto& [shape, win] : cases) {
    Tensor x = Random(shape, seed++);
    for (int include : {0, 1}) {
      Tensor want = NaivePool(x, win, /*max=*/false, include != 0);
      Tensor got =
          Eval("AveragePool", In(Clone(x)), WindowAttrs(win).Int("count_include_pad", include));
      ExpectTensorsNear(got, want, 1e-6f);
    }
  }
}

TEST(GlobalPoolTest, AverageAndMax) {
  Tensor x = F({1, 2, 2, 2}, {1, 2, 3, 4, -1, -8, 5, 0});
  Tensor avg = Eval("GlobalAveragePool", In(Clone(x)));
  EXPECT_EQ(avg.shape(), (Shape{1, 2, 1, 1}));
  EXPECT_THAT(Floats(avg), ElementsAre(2.5f, -1));
  Tensor max = Eval("GlobalMaxPool", In(Clone(x)));
  EXPECT_EQ(max.shape(), (Shape{1, 2, 1, 1}));
  EXPECT_THAT(Floats(max), ElementsAre(4, 5));
  Tensor avg1d = Eval("GlobalAveragePool", In(Iota({2, 1, 4})));
  EXPECT_EQ(avg1d.shape(), (Shape{2, 1, 1}));
  EXPECT_THAT(Floats(avg1d), ElementsAre(1.5f, 5.5f));
  EXPECT_THAT(std::string(EvalStatus("GlobalAveragePool", In(Iota({2, 3}))).message()),
              HasSubstr("rank >= 3"));
}

// ---------------------------------------------------------------------------------------------
// BatchNormalization.

TEST(BatchNormTest, MatchesOnnxExample) {
  Tensor y = Eval("BatchNormalization", In(F({1, 2, 1, 3}, {-1, 0, 1, 2, 3, 4}), F({2}, {1, 1.5f}),
                                           F({2}, {0, 1}), F({2}, {0, 3}), F({2}, {1, 1.5f})));
  ExpectFloatsNear(y, {-0.999995f, 0, 0.999995f, -0.22474074f, 1, 2.2247407f});
}

TEST(BatchNormTest, EpsilonAndRank2And3Inputs) {
  // (x - mean) / sqrt(var + eps) * scale + bias with var + eps = 4.
  Tensor y2 = Eval("BatchNormalization",
                   In(F({2, 1}, {3, 7}), F({1}, {2}), F({1}, {1}), F({1}, {1}), F({1}, {3.5f})),
                   Attrs().Float("epsilon", 0.5f));
  EXPECT_THAT(Floats(y2), ElementsAre(3, 7));
  Tensor y3 = Eval("BatchNormalization",
                   In(F({1, 2, 2}, {1, 3, 10, 20}), F({2}, {1, 1}), F({2}, {0, 0}), F({2}, {1, 10}),
                      F({2}, {4, 25})),
                   Attrs().Float("epsilon", 0.0f));
  ExpectFloatsNear(y3, {0, 1, 0, 2});
}

TEST(BatchNormTest, SpatialZeroBeforeOpset9UsesPerElementStatistics) {
  Tensor y = Eval("BatchNormalization",
                  In(F({1, 2, 2}, {1, 2, 3, 4}), F({2, 2}, {1, 2, 3, 4}), F({2, 2}, {0, 0, 0, 1}),
                     F({2, 2}, {1, 1, 1, 1}), F({2, 2}, {1, 1, 1, 1})),
                  Attrs().Int("spatial", 0).Float("epsilon", 0.0f), 7);
  ExpectFloatsNear(y, {0, 2, 6, 13});
}

TEST(BatchNormTest, TrainingModeIsUnimplemented) {
  auto inputs = [] {
    return In(Random({2, 3, 2}, 1), F({3}, {1, 1, 1}), F({3}, {0, 0, 0}), F({3}, {0, 0, 0}),
              F({3}, {1, 1, 1}));
  };
  Status s = EvalStatus("BatchNormalization", inputs(), Attrs().Int("training_mode", 1), 3, 15);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("BatchNormalization"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("training_mode"));
  // Before opset 14, asking for the running statistics means training.
  s = EvalStatus("BatchNormalization", inputs(), {}, 5, 9);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("training outputs"));
}

TEST(BatchNormTest, RejectsWrongParameterShapes) {
  Status s =
      EvalStatus("BatchNormalization", In(Random({2, 3, 2}, 1), F({2}, {1, 1}), F({3}, {0, 0, 0}),
                                          F({3}, {0, 0, 0}), F({3}, {1, 1, 1})));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("[3]"));
}

// ---------------------------------------------------------------------------------------------
// Softmax and LogSoftmax.

TEST(SoftmaxTest, HandComputed) {
  ExpectFloatsNear(Eval("Softmax", In(F({1, 3}, {1, 2, 3}))),
                   {0.09003057f, 0.24472847f, 0.66524096f});
  ExpectFloatsNear(Eval("LogSoftmax", In(F({1, 3}, {1, 2, 3}))),
                   {-2.40760596f, -1.40760596f, -0.40760596f});
}

TEST(SoftmaxTest, LargeNumbersAreStable) {
  ExpectFloatsNear(Eval("Softmax", In(F({2, 2}, {1000, 1001, -1000, -1001}))),
                   {0.26894142f, 0.73105858f, 0.73105858f, 0.26894142f});
  ExpectFloatsNear(Eval("LogSoftmax", In(F({1, 2}, {1000, 1001}))), {-1.31326169f, -0.31326169f});
}

TEST(SoftmaxTest, AxisSemanticsDependOnOpset) {
  Tensor x = Random({2, 3, 4}, 7);
  // Opset 13: along axis 1 only, each of the 2 x 4 columns sums to 1.
  std::vector<float> y13 = Floats(Eval("Softmax", In(Clone(x)), Attrs().Int("axis", 1), 13));
  ASSERT_EQ(y13.size(), 24u);
  for (int n = 0; n < 2; ++n) {
    for (int i = 0; i < 4; ++i) {
      float s = 0;
      for (int c = 0; c < 3; ++c) s += y13[static_cast<size_t>((n * 3 + c) * 4 + i)];
      EXPECT_NEAR(s, 1.0f, 1e-6f);
    }
  }
  // Opset 11: coerced to [2, 12], each block of 12 sums to 1.
  std::vector<float> y11 = Floats(Eval("Softmax", In(Clone(x)), Attrs().Int("axis", 1), 11));
  ASSERT_EQ(y11.size(), 24u);
  for (int n = 0; n < 2; ++n) {
    float s = 0;
    for (int i = 0; i < 12; ++i) s += y11[static_cast<size_t>(n * 12 + i)];
    EXPECT_NEAR(s, 1.0f, 1e-6f);
  }
  // Default axis: -1 from opset 13, 1 before (here the same as coercing at 1).
  ExpectTensorsNear(Eval("Softmax", In(Clone(x)), {}, 13),
                    Eval("Softmax", In(Clone(x)), Attrs().Int("axis", 2), 13));
  ExpectTensorsNear(Eval("Softmax", In(Clone(x)), {}, 11),
                    Eval("Softmax", In(Clone(x)), Attrs().Int("axis", 1), 11));
  // Negative axis.
  ExpectTensorsNear(Eval("LogSoftmax", In(Clone(x)), Attrs().Int("axis", -2), 13),
                    Eval("LogSoftmax", In(Clone(x)), Attrs().Int("axis", 1), 13));
}

TEST(SoftmaxTest, LogSoftmaxIsLogOfSoftmax) {
  Tensor x = Random({3, 5}, 9, -10, 10);
  std::vector<float> s = Floats(Eval("Softmax", In(Clone(x)), Attrs().Int("axis", 0)));
  std::vector<float> l = Floats(Eval("LogSoftmax", In(Clone(x)), Attrs().Int("axis", 0)));
  ASSERT_EQ(s.size(), l.size());
  for (size_t i = 0; i < s.size(); ++i) EXPECT_NEAR(std::log(s[i]), l[i], 1e-4f);
}

TEST(SoftmaxTest, RejectsBadAxis) {
  Status s = EvalStatus("Softmax", In(Random({2, 3}, 1)), Attrs().Int("axis", 2));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("axis 2"));
}

// ---------------------------------------------------------------------------------------------
// QuantizeLinear and DequantizeLinear.

TEST(QuantizeLinearTest, MatchesOnnxExample) {
  Tensor y = Eval("QuantizeLinear",
                  In(F({6}, {0, 2, 3, 1000, -254, -1000}), Scalar(2), Make<uint8_t>({}, {128})));
  EXPECT_THAT(Values<uint8_t>(y), ElementsAre(128, 129, 130, 255, 1, 0));
}

TEST(QuantizeLinearTest, RoundsHalfToEvenAndSaturatesInt8) {
  Tensor y = Eval("QuantizeLinear",
                  In(F({7}, {1, 3, 5, -1, -3, 1000, -1000}), Scalar(2), Make<int8_t>({}, {0})));
  EXPECT_THAT(Values<int8_t>(y), ElementsAre(0, 2, 2, 0, -2, 127, -128));
}

TEST(QuantizeLinearTest, DefaultsToUint8WithZeroPointZero) {
  Tensor y = Eval("QuantizeLinear", In(F({3}, {-3, 4, 600}), Scalar(2)));
  EXPECT_THAT(Values<uint8_t>(y), ElementsAre(0, 2, 255));
}

TEST(QuantizeLinearTest, PerAxis) {
  // ONNX quantizelinear_axis: scales [2, 4, 5], zero points [84, 24, 196] along axis 1.
  Tensor x = F({1, 3, 3, 2}, {-162, 10, -100, 232, -20, -50, -76, 0, 0, 252, 32, -44, 245, -485,
                              -960, -270, -375, -470});
  Tensor y = Eval("QuantizeLinear",
                  In(std::move(x), F({3}, {2, 4, 5}), Make<uint8_t>({3}, {84, 24, 196})));
  EXPECT_THAT(Values<uint8_t>(y), ElementsAreArray({3, 89, 34, 200, 74, 59, 5, 24, 24, 87, 32, 13,
                                                    245, 99, 4, 142, 121, 102}));
  // Axis 0 with a negative index.
  Tensor z = Eval("QuantizeLinear",
                  In(F({2, 2}, {2, 2, 2, 2}), F({2}, {1, 2}), Make<int8_t>({2}, {0, -1})),
                  Attrs().Int("axis", -2));
  EXPECT_THAT(Values<int8_t>(z), ElementsAre(2, 2, 0, 0));
}

TEST(QuantizeLinearTest, Int32Input) {
  Tensor y =
      Eval("QuantizeLinear", In(Make<int32_t>({3}, {-5, 5, 7}), Scalar(2), Make<int8_t>({}, {1})));
  EXPECT_THAT(Values<int8_t>(y), ElementsAre(-1, 3, 5));
}

TEST(QuantizeLinearTest, RejectsBadParameters) {
  Status s = EvalStatus("QuantizeLinear", In(Random({2, 3}, 1), F({2}, {1, 1})));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("per-axis"));
  s = EvalStatus("QuantizeLinear", In(Random({2, 3}, 1), F({3}, {1, 1, 1})), {}, 1, 10);
  EXPECT_THAT(std::string(s.message()), HasSubstr("before opset 13"));
  s = EvalStatus("QuantizeLinear", In(Random({2}, 1), Scalar(1), Make<int32_t>({}, {0})));
  EXPECT_THAT(std::string(s.message()), HasSubstr("int32"));
}

TEST(DequantizeLinearTest, PerTensorPerAxisAndInt32) {
  Tensor y = Eval("DequantizeLinear",
                  In(Make<uint8_t>({4}, {0, 3, 128, 255}), Scalar(2), Make<uint8_t>({}, {128})));
  EXPECT_THAT(Floats(y), ElementsAre(-256, -250, 0, 254));
  Tensor s8 = Eval("DequantizeLinear", In(Make<int8_t>({3}, {-128, 0, 127}), Scalar(0.5f)));
  EXPECT_THAT(Floats(s8), ElementsAre(-64, 0, 63.5f));
  Tensor axis = Eval("DequantizeLinear", In(Make<uint8_t>({1, 3, 2}, {0, 10, 20, 30, 40, 50}),
                                            F({3}, {1, 2, 4}), Make<uint8_t>({3}, {0, 20, 50})));
  EXPECT_THAT(Floats(axis), ElementsAre(0, 10, 0, 20, -40, 0));
  Tensor i32 = Eval("DequantizeLinear", In(Make<int32_t>({2}, {-1000000, 7}), Scalar(0.25f)));
  EXPECT_THAT(Floats(i32), ElementsAre(-250000, 1.75f));
}

TEST(DequantizeLinearTest, QuantizeDequantizeRoundTrips) {
  Tensor x = Make<int8_t>({2, 3}, {-128, -1, 0, 1, 50, 127});
  Tensor f = Eval("DequantizeLinear",
                  In(Clone(x), F({3}, {0.5f, 0.25f, 2}), Make<int8_t>({3}, {-3, 0, 7})));
  Tensor back = Eval("QuantizeLinear",
                     In(std::move(f), F({3}, {0.5f, 0.25f, 2}), Make<int8_t>({3}, {-3, 0, 7})));
  EXPECT_THAT(Values<int8_t>(back), ElementsAreArray(Values<int8_t>(x)));
}

TEST(DequantizeLinearTest, RejectsMismatchedZeroPoint) {
  Status s = EvalStatus("DequantizeLinear",
                        In(Make<uint8_t>({2}, {1, 2}), Scalar(1), Make<int8_t>({}, {0})));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("zero point"));
  s = EvalStatus("DequantizeLinear", In(Random({2}, 1), Scalar(1)));
  EXPECT_THAT(std::string(s.message()), HasSubstr("float32"));
}

// ---------------------------------------------------------------------------------------------
// QLinearConv.

TEST(QLinearConvTest, MatchesOnnxExample) {
  // ONNX qlinearconv: 1x1 kernel, per-tensor parameters.
  Tensor x = Make<uint8_t>({1, 1, 2, 2}, {255, 174, 162, 25});
  Tensor y = Eval("QLinearConv",
                  In(std::move(x), Scalar(0.00369204697f), Make<uint8_t>({}, {132}),
                     Make<uint8_t>({1, 1, 1, 1}, {0}), F({1}, {0.00172794575f}),
                     Make<uint8_t>({1}, {255}), Scalar(0.00162681262f), Make<uint8_t>({}, {123})));
  // acc = (x - 132) * (0 - 255); y = round(acc * 0.0039215...) + 123, saturated.
  EXPECT_THAT(Values<uint8_t>(y), ElementsAre(0, 81, 93, 230));
}

// Runs QLinearConv and the float path DequantizeLinear -> Conv -> QuantizeLinear on the same
// data. All scales are powers of two and the sums stay below 2^24, so the float path is exact
// and both must agree bit for bit.
template <typename XT, typename WT, typename YT>
void ExpectQLinearConvMatchesFloatPath(const Shape& x_shape, const Shape& w_shape, int64_t group,
                                       bool per_channel, const Attrs& attrs, uint32_t seed) {
  const int64_t m = w_shape[0];
  constexpr int kXLo = std::is_signed_v<XT> ? -128 : 0, kXHi = std::is_signed_v<XT> ? 127 : 255;
  constexpr int kWLo = std::is_signed_v<WT> ? -128 : 0, kWHi = std::is_signed_v<WT> ? 127 : 255;
  Tensor x = RandomInt<XT>(x_shape, seed, kXLo, kXHi);
  Tensor w = RandomInt<WT>(w_shape, seed + 1, kWLo, kWHi);
  Tensor x_zp = Make<XT>({}, {static_cast<XT>(std::is_signed_v<XT> ? -3 : 130)});
  const int64_t nparams = per_channel ? m : 1;
  std::vector<float> w_scales;
  std::vector<WT> w_zps;
  for (int64_t i = 0; i < nparams; ++i) {
    w_scales.push_back(std::ldexp(1.0f, -static_cast<int>(6 + i % 3)));
    w_zps.push_back(static_cast<WT>(std::is_signed_v<WT> ? i % 5 - 2 : 120 + i % 7));
  }
  Shape p_shape = per_channel ? Shape{m} : Shape{};
  Tensor w_scale = Make<float>(p_shape, w_scales);
  Tensor w_zp = Make<WT>(p_shape, w_zps);
  const float x_scale = 0.125f, y_scale = 0.25f;
  Tensor y_zp = Make<YT>({}, {static_cast<YT>(std::is_signed_v<YT> ? 5 : 100)});
  Tensor bias = RandomInt<int32_t>({m}, seed + 2, -3000, 3000);

  Tensor q = Eval("QLinearConv",
                  In(Clone(x), Scalar(x_scale), Clone(x_zp), Clone(w), Clone(w_scale), Clone(w_zp),
                     Scalar(y_scale), Clone(y_zp), Clone(bias)),
                  Attrs(attrs).Int("group", group));
  ASSERT_FALSE(q.empty());

  Tensor xf = Eval("DequantizeLinear", In(Clone(x), Scalar(x_scale), Clone(x_zp)));
  Tensor wf =
      Eval("DequantizeLinear", In(Clone(w), Clone(w_scale), Clone(w_zp)), Attrs().Int("axis", 0));
  Tensor bf = *Tensor::Allocate(DType::kFloat32, {m});
  for (int64_t i = 0; i < m; ++i) {
    bf.data<float>()[i] = static_cast<float>(bias.data<int32_t>()[i]) * x_scale *
                          w_scales[static_cast<size_t>(per_channel ? i : 0)];
  }
  Tensor yf = Eval("Conv", In(std::move(xf), std::move(wf), std::move(bf)),
                   Attrs(attrs).Int("group", group));
  Tensor want = Eval("QuantizeLinear", In(std::move(yf), Scalar(y_scale), Clone(y_zp)));
  ASSERT_EQ(q.shape(), want.shape());
  EXPECT_THAT(Values<YT>(q), ElementsAreArray(Values<YT>(want)));
}

TEST(QLinearConvTest, EqualsDequantizeConvQuantize) {
  Attrs pads = Attrs().Ints("pads", {1, 0, 1, 1}).Ints("strides", {2, 1});
  ExpectQLinearConvMatchesFloatPath<uint8_t, uint8_t, uint8_t>({1, 4, 7, 6}, {6, 2, 3, 3}, 2, false,
                                                               pads, 1);
  ExpectQLinearConvMatchesFloatPath<uint8_t, int8_t, uint8_t>({2, 3, 6, 6}, {4, 3, 3, 3}, 1, true,
                                                              pads, 2);
  ExpectQLinearConvMatchesFloatPath<int8_t, int8_t, int8_t>({1, 4, 5, 5}, {8, 1, 3, 3}, 4, true,
                                                            Attrs().Ints("pads", {1, 1, 1, 1}), 3);
  ExpectQLinearConvMatchesFloatPath<int8_t, uint8_t, uint8_t>(
      {1, 2, 9}, {3, 2, 3}, 1, true, Attrs().Ints("dilations", {2}).Ints("pads", {2, 0}), 4);
  ExpectQLinearConvMatchesFloatPath<uint8_t, int8_t, int8_t>(
      {1, 2, 3, 4, 5}, {2, 2, 2, 2, 3}, 1, false, Attrs().Str("auto_pad", "SAME_UPPER"), 5);
}

TEST(QLinearConvTest, SaturatesAndRoundsHalfToEven) {
  // 1x1 conv with weight 1: y = round((x - 0) * 1 * 0.5 / 1) + 0: 1 -> 0, 3 -> 2, 5 -> 2,
  // 7 -> 4, and 255 * 2 = 510 saturates to 255.
  Tensor y =
      Eval("QLinearConv", In(Make<uint8_t>({1, 1, 1, 5}, {1, 3, 5, 7, 255}), Scalar(0.5f),
                             Make<uint8_t>({}, {0}), Make<uint8_t>({1, 1, 1, 1}, {3}), Scalar(1),
                             Make<uint8_t>({}, {2}), Scalar(1), Make<uint8_t>({}, {0})));
  EXPECT_THAT(Values<uint8_t>(y), ElementsAre(0, 2, 2, 4, 128));
  Tensor sat =
      Eval("QLinearConv", In(Make<uint8_t>({1, 1, 1, 2}, {255, 0}), Scalar(1),
                             Make<uint8_t>({}, {0}), Make<int8_t>({1, 1, 1, 1}, {127}), Scalar(1),
                             Make<int8_t>({}, {0}), Scalar(1), Make<int8_t>({}, {0})));
  EXPECT_THAT(Values<int8_t>(sat), ElementsAre(127, 0));
}

TEST(QLinearConvTest, RejectsBadParameters) {
  auto inputs = [](Tensor w_scale) {
    return In(Make<uint8_t>({1, 2, 3, 3}, std::vector<uint8_t>(18, 1)), Scalar(1),
              Make<uint8_t>({}, {0}), Make<uint8_t>({3, 2, 1, 1}, std::vector<uint8_t>(6, 1)),
              std::move(w_scale), Make<uint8_t>({}, {0}), Scalar(1), Make<uint8_t>({}, {0}));
  };
  Status s = EvalStatus("QLinearConv", inputs(F({2}, {1, 1})));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("one per output channel"));
  EXPECT_TRUE(EvalStatus("QLinearConv", inputs(F({3}, {1, 1, 1}))).ok());
  // x_zero_point must have x's dtype.
  s = EvalStatus("QLinearConv",
                 In(Make<uint8_t>({1, 1, 1, 1}, {1}), Scalar(1), Make<int8_t>({}, {0}),
                    Make<uint8_t>({1, 1, 1, 1}, {1}), Scalar(1), Make<uint8_t>({}, {0}), Scalar(1),
                    Make<uint8_t>({}, {0})));
  EXPECT_THAT(std::string(s.message()), HasSubstr("zero point"));
}

// ---------------------------------------------------------------------------------------------
// QLinearMatMul.

TEST(QLinearMatMulTest, MatchesOnnxExample) {
  Tensor a = Make<uint8_t>({2, 4}, {208, 236, 0, 238, 3, 214, 255, 29});
  Tensor b = Make<uint8_t>({4, 3}, {152, 51, 244, 60, 26, 255, 0, 127, 246, 127, 254, 247});
  Tensor y = Eval("QLinearMatMul", In(Clone(a), F({1}, {0.0066f}), Make<uint8_t>({1}, {113}),
                                      Clone(b), F({1}, {0.00705f}), Make<uint8_t>({1}, {114}),
                                      F({1}, {0.0107f}), Make<uint8_t>({1}, {118})));
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_THAT(Values<uint8_t>(y), ElementsAre(168, 115, 255, 1, 66, 151));
}

TEST(QLinearMatMulTest, PerRowAndPerColumnBatchedEqualsFloatPath) {
  // a [2, 3, 4] int8 with per-row parameters [2, 3, 1]; b [4, 5] uint8 with per-column [5].
  Tensor a = RandomInt<int8_t>({2, 3, 4}, 1, -128, 127);
  Tensor b = RandomInt<uint8_t>({4, 5}, 2, 0, 255);
  std::vector<float> a_scales;
  std::vector<int8_t> a_zps;
  for (int i = 0; i < 6; ++i) {
    a_scales.push_back(std::ldexp(1.0f, -(i % 3)));
    a_zps.push_back(static_cast<int8_t>(i - 3));
  }
  std::vector<float> b_scales;
  std::vector<uint8_t> b_zps;
  for (int j = 0; j < 5; ++j) {
    b_scales.push_back(std::ldexp(1.0f, -(4 + j % 2)));
    b_zps.push_back(static_cast<uint8_t>(125 + j));
  }
  Tensor y =
      Eval("QLinearMatMul", In(Clone(a), Make<float>({2, 3, 1}, a_scales),
                               Make<int8_t>({2, 3, 1}, a_zps), Clone(b), Make<float>({5}, b_scales),
                               Make<uint8_t>({5}, b_zps), Scalar(0.5f), Make<int8_t>({}, {-7})));
  ASSERT_EQ(y.shape(), (Shape{2, 3, 5}));
  // Float path, done by hand: exact because every scale is a power of two.
  Tensor af =
      Eval("DequantizeLinear",
           In(Clone(a.Reshaped({6, 4})), Make<float>({6}, a_scales), Make<int8_t>({6}, a_zps)),
           Attrs().Int("axis", 0));
  Tensor bf =
      Eval("DequantizeLinear", In(Clone(b), Make<float>({5}, b_scales), Make<uint8_t>({5}, b_zps)));
  Tensor yf = Eval("MatMul", In(std::move(af), std::move(bf)));
  Tensor want = Eval("QuantizeLinear", In(std::move(yf), Scalar(0.5f), Make<int8_t>({}, {-7})));
  EXPECT_THAT(Values<int8_t>(y), ElementsAreArray(Values<int8_t>(want)));
}

TEST(QLinearMatMulTest, BatchBroadcastAndOneDimensionalOperands) {
  // b is broadcast over a's batch; identity-like b with zero points 0 copies a's rows.
  Tensor a = Make<uint8_t>({2, 1, 2}, {1, 2, 3, 4});
  Tensor b = Make<uint8_t>({2, 2}, {1, 0, 0, 1});
  auto params = [](Tensor a_in, Tensor b_in) {
    return In(std::move(a_in), Scalar(1), Make<uint8_t>({}, {0}), std::move(b_in), Scalar(1),
              Make<uint8_t>({}, {0}), Scalar(1), Make<uint8_t>({}, {0}));
  };
  Tensor y = Eval("QLinearMatMul", params(Clone(a), Clone(b)));
  EXPECT_EQ(y.shape(), (Shape{2, 1, 2}));
  EXPECT_THAT(Values<uint8_t>(y), ElementsAre(1, 2, 3, 4));
  Tensor v = Eval("QLinearMatMul", params(Make<uint8_t>({2}, {3, 5}), Clone(b)));
  EXPECT_EQ(v.shape(), (Shape{2}));
  EXPECT_THAT(Values<uint8_t>(v), ElementsAre(3, 5));
}

TEST(QLinearMatMulTest, RejectsBadParameters) {
  auto inputs = [](Tensor a_scale, Tensor a_zp) {
    return In(Make<uint8_t>({2, 3}, {1, 2, 3, 4, 5, 6}), std::move(a_scale), std::move(a_zp),
              Make<uint8_t>({3, 1}, {1, 1, 1}), Scalar(1), Make<uint8_t>({}, {0}), Scalar(1),
              Make<uint8_t>({}, {0}));
  };
  // Three scales for two rows.
  Status s = EvalStatus("QLinearMatMul", inputs(F({3}, {1, 1, 1}), Make<uint8_t>({3}, {0, 0, 0})));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("input 1"));
  // A zero point of the wrong dtype.
  s = EvalStatus("QLinearMatMul", inputs(F({2}, {1, 1}), Make<int8_t>({2}, {0, 0})));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(EvalStatus("QLinearMatMul", inputs(F({2}, {1, 1}), Make<uint8_t>({2}, {0, 0}))).ok());
}

}  // namespace
}  // namespace hml
