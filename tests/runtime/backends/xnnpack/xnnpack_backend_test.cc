// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Parity of the XNNPACK backend with the reference backend on randomised graphs (fixed seeds),
// for every op path the backend claims; checks of what it must not claim; layout and error
// helpers. Graphs run through a small harness that plays the session's part: it infers shapes,
// gives every value a buffer, builds segments and runs them.
#include "src/runtime/backends/xnnpack/xnnpack_backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "src/runtime/backends/reference/reference_backend.h"
#include "src/runtime/backends/xnnpack/layout.h"
#include "src/runtime/backends/xnnpack/node_specs.h"
#include "src/runtime/backends/xnnpack/subgraph_builder.h"
#include "src/runtime/backends/xnnpack/xnnpack_status.h"
#include "src/runtime/op_registry.h"
#include "tests/testing/graph_builder.h"

namespace hml::runtime {
namespace {

using testing::GraphBuilder;

// ---------------------------------------------------------------------------------------------
// Harness.

Attributes Attrs(std::initializer_list<std::pair<const char*, std::vector<int64_t>>> ints = {}) {
  Attributes a;
  for (const auto& [name, v] : ints) a.SetInts(name, v);
  return a;
}

template <typename... T>
std::vector<Tensor> Inputs(T&&... tensors) {
  std::vector<Tensor> v;
  (v.push_back(std::move(tensors)), ...);
  return v;
}

Tensor RandomTensor(const Shape& shape, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  Tensor t = std::move(*Tensor::Allocate(DType::kFloat32, shape));
  std::uniform_real_distribution<float> dist(lo, hi);
  for (float& v : t.values<float>()) v = dist(rng);
  return t;
}

template <typename T>
Tensor RandomInts(const Shape& shape, std::mt19937& rng, int lo, int hi) {
  Tensor t = std::move(*Tensor::Allocate(DTypeOf<T>(), shape));
  std::uniform_int_distribution<int> dist(lo, hi);
  for (T& v : t.values<T>()) v = static_cast<T>(dist(rng));
  return t;
}

template <typename T>
Tensor Scalar(T v, Shape shape = {}) {
  return std::move(*Tensor::FromVector<T>(shape, std::span<const T>(&v, 1)));
}

Tensor Ints64(std::vector<int64_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return std::move(*Tensor::FromVector<int64_t>({n}, v));
}

Tensor Floats(Shape shape, std::vector<float> v) {
  return std::move(*Tensor::FromVector<float>(std::move(shape), v));
}

// Runs `graph` (shapes inferred) as the given segments, each on its backend, in order. Every
// value gets a buffer, as a session gives to reference segments.
Result<std::vector<Tensor>> RunSegments(
    const Graph& graph, const std::vector<Tensor>& inputs,
    const std::vector<std::pair<Backend*, std::vector<int>>>& segments) {
  const size_t num_values = graph.values.size();
  std::vector<Tensor> storage;
  std::vector<void*> buffers(num_values, nullptr);
  for (size_t v = 0; v < num_values; ++v) {
    const Value& value = graph.values[v];
    if (value.is_constant() || !value.shape_known || value.dtype == DType::kUndefined) continue;
    HML_ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(value.dtype, value.shape));
    buffers[v] = t.raw_data();
    storage.push_back(std::move(t));
  }
  std::vector<int> segment_of(graph.nodes.size(), -1);
  for (size_t s = 0; s < segments.size(); ++s) {
    for (int n : segments[s].second) segment_of[static_cast<size_t>(n)] = static_cast<int>(s);
  }
  const std::vector<int> producers = graph.Producers();
  std::vector<std::unique_ptr<Executable>> exes;
  for (size_t s = 0; s < segments.size(); ++s) {
    Segment seg;
    seg.graph = &graph;
    seg.nodes = segments[s].second;
    seg.buffers = buffers;
    for (int n : seg.nodes) {
      for (ValueId in : graph.nodes[static_cast<size_t>(n)].inputs) {
        if (in == kNoValue || graph.value(in).is_constant()) continue;
        const int p = producers[static_cast<size_t>(in)];
        if ((p < 0 || segment_of[static_cast<size_t>(p)] != static_cast<int>(s)) &&
            std::find(seg.inputs.begin(), seg.inputs.end(), in) == seg.inputs.end()) {
          seg.inputs.push_back(in);
        }
      }
    }
    for (int n : seg.nodes) {
      for (ValueId out : graph.nodes[static_cast<size_t>(n)].outputs) {
        if (out == kNoValue) continue;
        bool escapes =
            std::find(graph.outputs.begin(), graph.outputs.end(), out) != graph.outputs.end();
        for (size_t m = 0; m < graph.nodes.size(); ++m) {
          if (segment_of[m] == static_cast<int>(s)) continue;
          const auto& ins = graph.nodes[m].inputs;
          escapes = escapes || std::find(ins.begin(), ins.end(), out) != ins.end();
        }
        if (escapes) seg.outputs.push_back(out);
      }
    }
    HML_ASSIGN_OR_RETURN(std::unique_ptr<Executable> exe, segments[s].first->Compile(seg));
    exes.push_back(std::move(exe));
  }
  // Run twice with the same inputs: the second run must not depend on state from the first.
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < graph.inputs.size(); ++i) {
      std::memcpy(buffers[static_cast<size_t>(graph.inputs[i])], inputs[i].raw_data(),
                  inputs[i].byte_size());
    }
    for (auto& exe : exes) HML_RETURN_IF_ERROR(exe->Run());
  }
  std::vector<Tensor> outputs;
  for (ValueId out : graph.outputs) {
    const Value& v = graph.value(out);
    Tensor view = Tensor::View(v.dtype, v.shape, buffers[static_cast<size_t>(out)]);
    HML_ASSIGN_OR_RETURN(Tensor copy, view.Clone());
    outputs.push_back(std::move(copy));
  }
  return outputs;
}

std::vector<int> AllNodes(const Graph& g) {
  std::vector<int> nodes(g.nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) nodes[i] = static_cast<int>(i);
  return nodes;
}

class XnnpackBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto xnn = CreateXnnpackBackend(BackendOptions());
    ASSERT_TRUE(xnn.ok()) << xnn.status().ToString();
    xnn_ = std::move(*xnn);
    ref_ = CreateReferenceBackend(BackendOptions());
  }

  // Builds the graph and infers its shapes.
  static Result<Graph> Prepare(GraphBuilder& b) {
    Graph g = b.Build();
    HML_RETURN_IF_ERROR(InferShapes(g, BuiltinOps()));
    return g;
  }

  Result<std::vector<Tensor>> RunReference(const Graph& g, const std::vector<Tensor>& inputs) {
    return RunSegments(g, inputs, {{ref_.get(), AllNodes(g)}});
  }
  Result<std::vector<Tensor>> RunXnnpack(const Graph& g, const std::vector<Tensor>& inputs) {
    return RunSegments(g, inputs, {{xnn_.get(), AllNodes(g)}});
  }

  // Asserts that XNNPACK claims every node, then that one XNNPACK segment matches the
  // reference within `tol` of the output's largest magnitude (at least 1).
  void ExpectParity(GraphBuilder& b, const std::vector<Tensor>& inputs, double tol = 1e-4,
                    const std::string& what = "") {
    SCOPED_TRACE(what);
    Result<Graph> g = Prepare(b);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    const std::vector<bool> claims = xnn_->Claim(*g);
    for (size_t n = 0; n < claims.size(); ++n) {
      ASSERT_TRUE(claims[n]) << g->nodes[n].Describe(n) << " was not claimed";
    }
    ExpectSame(*g, inputs, {{xnn_.get(), AllNodes(*g)}}, tol);
  }

  // Runs `segments` and the reference and compares every output.
  void ExpectSame(const Graph& g, const std::vector<Tensor>& inputs,
                  const std::vector<std::pair<Backend*, std::vector<int>>>& segments, double tol) {
    Result<std::vector<Tensor>> want = RunReference(g, inputs);
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    Result<std::vector<Tensor>> got = RunSegments(g, inputs, segments);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(want->size(), got->size());
    for (size_t o = 0; o < want->size(); ++o) ExpectClose((*want)[o], (*got)[o], tol);
  }

  static void ExpectClose(const Tensor& want, const Tensor& got, double tol) {
    ASSERT_EQ(want.shape(), got.shape());
    ASSERT_EQ(want.dtype(), got.dtype());
    if (want.dtype() == DType::kInt8) {
      for (int64_t i = 0; i < want.num_elements(); ++i) {
        ASSERT_LE(std::abs(want.data<int8_t>()[i] - got.data<int8_t>()[i]), tol) << "element " << i;
      }
      return;
    }
    double scale = 1.0;
    for (float v : want.values<float>()) scale = std::max(scale, std::fabs(double{v}));
    for (int64_t i = 0; i < want.num_elements(); ++i) {
      const double w = want.data<float>()[i];
      const double g = got.data<float>()[i];
      ASSERT_LE(std::fabs(w - g), tol * scale)
          << "element " << i << " of " << ShapeToString(want.shape()) << ": want " << w << " got "
          << g;
    }
  }

  std::vector<bool> Claims(GraphBuilder& b) {
    Result<Graph> g = Prepare(b);
    EXPECT_TRUE(g.ok()) << g.status().ToString();
    return g.ok() ? xnn_->Claim(*g) : std::vector<bool>();
  }

  std::unique_ptr<Backend> xnn_;
  std::unique_ptr<Backend> ref_;
};

// ---------------------------------------------------------------------------------------------
// fp32 parity.

TEST_F(XnnpackBackendTest, ConvRandom) {
  std::mt19937 rng(1);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int ran = 0;
  for (int iter = 0; iter < 60; ++iter) {
    const int64_t n = pick(1, 2);
    const int64_t groups = pick(1, 3);
    const int64_t c_in = groups * pick(1, 3);
    int64_t c_out = groups * pick(1, 3);
    const bool depthwise = iter % 4 == 0;
    const int64_t dw_in = pick(2, 6);
    const int64_t cin = depthwise ? dw_in : c_in;
    const int64_t g = depthwise ? dw_in : groups;
    if (depthwise) c_out = dw_in * pick(1, 2);
    const int64_t kh = pick(1, 4), kw = pick(1, 4);
    const int64_t h = pick(5, 12), w = pick(5, 12);
    Attributes a;
    a.SetInt("group", g);
    a.SetInts("strides", {pick(1, 3), pick(1, 3)});
    a.SetInts("dilations", {pick(1, 2), pick(1, 2)});
    const int pad_mode = pick(0, 3);
    if (pad_mode == 0) {
      a.SetInts("pads", {pick(0, 2), pick(0, 2), pick(0, 2), pick(0, 2)});
    } else if (pad_mode == 1) {
      a.SetString("auto_pad", "SAME_UPPER");
    } else if (pad_mode == 2) {
      a.SetString("auto_pad", "SAME_LOWER");
    } else {
      a.SetString("auto_pad", "VALID");
    }
    const bool bias = pick(0, 1) == 1;
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {n, cin, h, w});
    b.Constant("w", RandomTensor({c_out, cin / g, kh, kw}, rng));
    if (bias) b.Constant("b", RandomTensor({c_out}, rng));
    b.Node("Conv", {"x", "w", bias ? "b" : ""}, {"y"}, a).Output("y");
    if (!Prepare(b).ok()) continue;  // window larger than the input
    ++ran;
    ExpectParity(b, Inputs(RandomTensor({n, cin, h, w}, rng)), 1e-4,
                 "conv iter " + std::to_string(iter));
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(ran, 40);
}

TEST_F(XnnpackBackendTest, ConvTransposeRandom) {
  std::mt19937 rng(2);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int ran = 0;
  for (int iter = 0; iter < 40; ++iter) {
    const int64_t groups = pick(1, 2);
    const int64_t c_in = groups * pick(1, 3);
    const int64_t cout_g = pick(1, 3);
    const int64_t kh = pick(1, 4), kw = pick(1, 4);
    const int64_t h = pick(2, 7), w = pick(2, 7);
    const int64_t sh = pick(1, 3), sw = pick(1, 3);
    Attributes a;
    a.SetInt("group", groups);
    a.SetInts("strides", {sh, sw});
    a.SetInts("dilations", {pick(1, 2), pick(1, 2)});
    if (iter % 3 == 0) {
      a.SetInts("output_shape", {h * sh, w * sw});
    } else {
      a.SetInts("pads", {pick(0, 1), pick(0, 1), pick(0, 1), pick(0, 1)});
      a.SetInts("output_padding",
                {pick(0, static_cast<int>(sh) - 1), pick(0, static_cast<int>(sw) - 1)});
    }
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {1, c_in, h, w});
    b.Constant("w", RandomTensor({c_in, cout_g, kh, kw}, rng));
    b.Constant("b", RandomTensor({cout_g * groups}, rng));
    b.Node("ConvTranspose", {"x", "w", "b"}, {"y"}, a).Output("y");
    Result<Graph> g = Prepare(b);
    if (!g.ok()) continue;
    if (!xnn_->Claim(*g)[0]) continue;  // e.g. negative pads from output_shape
    ++ran;
    ExpectParity(b, Inputs(RandomTensor({1, c_in, h, w}, rng)), 1e-4,
                 "deconv " + std::to_string(iter));
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(ran, 25);
}

TEST_F(XnnpackBackendTest, GemmRandom) {
  std::mt19937 rng(3);
  for (int iter = 0; iter < 24; ++iter) {
    const int64_t m = 1 + iter % 3, k = 3 + iter, n = 2 + (iter * 7) % 9;
    const bool trans_b = iter % 2 == 1;
    Attributes a;
    a.SetInt("transB", trans_b ? 1 : 0);
    if (iter % 3 == 1) a.SetFloat("alpha", 0.5f);
    if (iter % 4 == 2) a.SetFloat("beta", -1.5f);
    GraphBuilder b;
    b.Input("a", DType::kFloat32, {m, k});
    b.Constant("b", RandomTensor(trans_b ? Shape{n, k} : Shape{k, n}, rng));
    const int c_kind = iter % 5;
    const std::vector<Shape> c_shapes = {{n}, {1, n}, {1}, {}, {}};
    if (c_kind < 4) b.Constant("c", RandomTensor(c_shapes[static_cast<size_t>(c_kind)], rng));
    b.Node("Gemm", {"a", "b", c_kind < 4 ? "c" : ""}, {"y"}, a).Output("y");
    ExpectParity(b, Inputs(RandomTensor({m, k}, rng)), 1e-4, "gemm " + std::to_string(iter));
    if (HasFatalFailure()) return;
  }
}

TEST_F(XnnpackBackendTest, MatMulRandom) {
  std::mt19937 rng(4);
  for (int iter = 0; iter < 12; ++iter) {
    const int64_t k = 2 + iter, n = 1 + iter % 5;
    const std::vector<Shape> shapes = {{3, k}, {2, 3, k}, {2, 1, 2, 2, k}};
    const Shape a_shape = shapes[static_cast<size_t>(iter) % shapes.size()];
    GraphBuilder b;
    b.Input("a", DType::kFloat32, a_shape);
    b.Constant("b", RandomTensor({k, n}, rng));
    b.Node("MatMul", {"a", "b"}, {"y"}).Output("y");
    ExpectParity(b, Inputs(RandomTensor(a_shape, rng)), 1e-4, "matmul " + std::to_string(iter));
    if (HasFatalFailure()) return;
  }
}

TEST_F(XnnpackBackendTest, BinaryRandomBroadcast) {
  std::mt19937 rng(5);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const std::vector<std::string> ops = {"Add", "Sub", "Mul", "Div", "Max", "Min"};
  int ran = 0;
  for (int iter = 0; iter < 120; ++iter) {
    const std::string& op = ops[static_cast<size_t>(iter) % ops.size()];
    const size_t out_rank = static_cast<size_t>(pick(1, 4));
    Shape out;
    for (size_t i = 0; i < out_rank; ++i) out.push_back(pick(1, 5));
    // Each operand: a suffix of the output shape with some dims set to 1.
    auto operand = [&]() {
      const size_t r = static_cast<size_t>(pick(1, static_cast<int>(out_rank)));
      Shape s(out.end() - static_cast<std::ptrdiff_t>(r), out.end());
      for (int64_t& d : s) {
        if (pick(0, 2) == 0) d = 1;
      }
      return s;
    };
    Shape sa = out;
    Shape sb = operand();
    if (pick(0, 1)) std::swap(sa, sb);
    const bool a_const = pick(0, 3) == 0;
    const bool b_const = !a_const && pick(0, 2) == 0;
    GraphBuilder b;
    std::vector<Tensor> inputs;
    auto add = [&](const std::string& name, const Shape& s, bool constant) {
      Tensor t = RandomTensor(s, rng, op == "Div" ? 0.5f : -2.0f, 2.0f);
      if (constant) {
        b.Constant(name, std::move(t));
      } else {
        b.Input(name, DType::kFloat32, s);
        inputs.push_back(std::move(t));
      }
    };
    add("a", sa, a_const);
    add("b", sb, b_const);
    b.Node(op, {"a", "b"}, {"y"}).Output("y");
    Result<Graph> g = Prepare(b);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    if (!xnn_->Claim(*g)[0]) {
      // Only a lower-rank activation whose NCHW and NHWC orders differ may be refused.
      EXPECT_EQ(out_rank, 4u);
      bool explained = false;
      for (const auto& [s, constant] : {std::pair{sa, a_const}, std::pair{sb, b_const}}) {
        Shape padded(4 - s.size(), 1);
        padded.insert(padded.end(), s.begin(), s.end());
        explained = explained || (!constant && s.size() < 4 && !xnnpack::SameOrderInNhwc(padded));
      }
      EXPECT_TRUE(explained) << op << " " << ShapeToString(sa) << " " << ShapeToString(sb);
      continue;
    }
    ++ran;
    ExpectParity(b, inputs, 1e-5, op + " " + ShapeToString(sa) + " " + ShapeToString(sb));
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(ran, 90);
}

TEST_F(XnnpackBackendTest, UnaryActivations) {
  std::mt19937 rng(6);
  struct Case {
    std::string op;
    Attributes attrs;
    int64_t opset = 17;
  };
  std::vector<Case> cases = {{"Relu", {}}, {"Sigmoid", {}}, {"HardSwish", {}}, {"Abs", {}},
                             {"Neg", {}},  {"Elu", {}},     {"LeakyRelu", {}}};
  Attributes leaky;
  leaky.SetFloat("alpha", 0.2f);
  cases.push_back({"LeakyRelu", leaky});
  Attributes elu;
  elu.SetFloat("alpha", 0.7f);
  cases.push_back({"Elu", elu});
  Attributes clip6;
  clip6.SetFloat("min", -0.5f);
  clip6.SetFloat("max", 0.25f);
  cases.push_back({"Clip", clip6, 6});
  for (const Case& c : cases) {
    for (const Shape& shape : {Shape{2, 3, 4, 5}, Shape{3, 7}, Shape{9}}) {
      GraphBuilder b(c.opset);
      b.Input("x", DType::kFloat32, shape).Node(c.op, {"x"}, {"y"}, c.attrs).Output("y");
      ExpectParity(b, Inputs(RandomTensor(shape, rng, -4.0f, 4.0f)), 1e-5, c.op);
      if (HasFatalFailure()) return;
    }
  }
  // Sqrt on positive inputs; Clip with constant min/max inputs (opset 11+).
  GraphBuilder sq;
  sq.Input("x", DType::kFloat32, {2, 3, 4, 4}).Node("Sqrt", {"x"}, {"y"}).Output("y");
  ExpectParity(sq, Inputs(RandomTensor({2, 3, 4, 4}, rng, 0.0f, 9.0f)), 1e-5, "Sqrt");
  for (int variant = 0; variant < 3; ++variant) {
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {1, 4, 3, 3});
    b.Constant("lo", Scalar<float>(-0.3f)).Constant("hi", Scalar<float>(0.6f));
    const std::vector<std::string> in = variant == 0   ? std::vector<std::string>{"x", "lo", "hi"}
                                        : variant == 1 ? std::vector<std::string>{"x", "", "hi"}
                                                       : std::vector<std::string>{"x", "lo"};
    b.Node("Clip", in, {"y"}).Output("y");
    ExpectParity(b, Inputs(RandomTensor({1, 4, 3, 3}, rng)), 1e-6,
                 "Clip " + std::to_string(variant));
    if (HasFatalFailure()) return;
  }
}

TEST_F(XnnpackBackendTest, PReluPerChannelAndScalar) {
  std::mt19937 rng(7);
  for (const Shape& slope : {Shape{5, 1, 1}, Shape{1, 5, 1, 1}, Shape{1}}) {
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {2, 5, 3, 4});
    b.Constant("s", RandomTensor(slope, rng));
    b.Node("PRelu", {"x", "s"}, {"y"}).Output("y");
    ExpectParity(b, Inputs(RandomTensor({2, 5, 3, 4}, rng)), 1e-6, ShapeToString(slope));
    if (HasFatalFailure()) return;
  }
}

TEST_F(XnnpackBackendTest, SoftmaxAxes) {
  std::mt19937 rng(8);
  struct Case {
    Shape shape;
    int64_t axis;
    int64_t opset;
  };
  for (const Case& c : std::vector<Case>{{{3, 10}, -1, 13},
                                         {{2, 3, 7}, 2, 13},
                                         {{2, 6, 3, 4}, 1, 13},
                                         {{2, 6, 3, 4}, -3, 13},
                                         {{2, 6, 3, 4}, 1, 11},
                                         {{2, 6, 3, 4}, 0, 11},
                                         {{2, 3, 7}, 1, 11},
                                         {{4, 9}, 1, 11}}) {
    Attributes a;
    a.SetInt("axis", c.axis);
    GraphBuilder b(c.opset);
    b.Input("x", DType::kFloat32, c.shape).Node("Softmax", {"x"}, {"y"}, a).Output("y");
    ExpectParity(b, Inputs(RandomTensor(c.shape, rng, -3.0f, 3.0f)), 1e-5,
                 ShapeToString(c.shape) + " axis " + std::to_string(c.axis));
    if (HasFatalFailure()) return;
  }
}

TEST_F(XnnpackBackendTest, PoolingRandom) {
  std::mt19937 rng(9);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int ran = 0;
  for (int iter = 0; iter < 80; ++iter) {
    const bool max = iter % 2 == 0;
    const int64_t kh = pick(1, 4), kw = pick(2, 4);
    const int64_t h = pick(4, 11), w = pick(4, 11);
    Attributes a;
    a.SetInts("kernel_shape", {kh, kw});
    a.SetInts("strides", {pick(1, 3), pick(1, 3)});
    if (pick(0, 1)) {
      a.SetInts("pads", {pick(0, static_cast<int>(kh) - 1), pick(0, static_cast<int>(kw) - 1),
                         pick(0, static_cast<int>(kh) - 1), pick(0, static_cast<int>(kw) - 1)});
    } else if (pick(0, 1)) {
      a.SetString("auto_pad", pick(0, 1) ? "SAME_UPPER" : "SAME_LOWER");
    }
    if (pick(0, 2) == 0) a.SetInt("ceil_mode", 1);
    if (max && pick(0, 2) == 0) a.SetInts("dilations", {pick(1, 2), pick(1, 2)});
    if (!max && pick(0, 2) == 0) a.SetInt("count_include_pad", 1);
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {1, 3, h, w});
    b.Node(max ? "MaxPool" : "AveragePool", {"x"}, {"y"}, a).Output("y");
    Result<Graph> g = Prepare(b);
    if (!g.ok()) continue;
    if (!xnn_->Claim(*g)[0]) continue;  // e.g. count_include_pad with padding
    ++ran;
    ExpectParity(b, Inputs(RandomTensor({1, 3, h, w}, rng)), 1e-5,
                 std::string(max ? "max" : "avg") + " iter " + std::to_string(iter));
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(ran, 45);
  for (const char* op : {"GlobalAveragePool", "GlobalMaxPool"}) {
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {2, 5, 6, 7}).Node(op, {"x"}, {"y"}).Output("y");
    ExpectParity(b, Inputs(RandomTensor({2, 5, 6, 7}, rng)), 1e-5, op);
  }
}

TEST_F(XnnpackBackendTest, BatchNormalizationInference) {
  std::mt19937 rng(10);
  for (const Shape& shape : {Shape{2, 4, 3, 5}, Shape{3, 4, 6}, Shape{5, 4}}) {
    GraphBuilder b;
    b.Input("x", DType::kFloat32, shape);
    b.Constant("scale", RandomTensor({4}, rng)).Constant("bias", RandomTensor({4}, rng));
    b.Constant("mean", RandomTensor({4}, rng)).Constant("var", RandomTensor({4}, rng, 0.1f, 2.0f));
    b.Node("BatchNormalization", {"x", "scale", "bias", "mean", "var"}, {"y"}).Output("y");
    ExpectParity(b, Inputs(RandomTensor(shape, rng)), 1e-5, ShapeToString(shape));
    if (HasFatalFailure()) return;
  }
}

TEST_F(XnnpackBackendTest, ReshapeFamilyKeepsElementOrder) {
  std::mt19937 rng(11);
  {
    // Rank-4 with C == 1 flattens without reordering.
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {2, 1, 4, 5});
    b.Node("Flatten", {"x"}, {"f"}).Node("Relu", {"f"}, {"y"}).Output("y");
    ExpectParity(b, Inputs(RandomTensor({2, 1, 4, 5}, rng)), 0, "flatten C=1");
  }
  {
    // Rank 2 -> rank 4 with H*W == 1, then a conv.
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {3, 6});
    b.Constant("shape", Ints64({3, 6, 1, 1}));
    b.Constant("w", RandomTensor({4, 6, 1, 1}, rng));
    b.Node("Reshape", {"x", "shape"}, {"r"}).Node("Conv", {"r", "w"}, {"y"}).Output("y");
    ExpectParity(b, Inputs(RandomTensor({3, 6}, rng)), 1e-5, "reshape to 1x1");
  }
  {
    // [2,3,4] -> [2,1,3,4] (C == 1) -> [2,3,4] -> [2,1,3,1,4] (rank 5, plain).
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {2, 3, 4});
    b.Constant("axes", Ints64({1}));
    b.Constant("axes2", Ints64({1, 3}));
    b.Node("Unsqueeze", {"x", "axes"}, {"u"})
        .Node("Squeeze", {"u", "axes"}, {"s"})
        .Node("Unsqueeze", {"s", "axes2"}, {"y"})
        .Output("y");
    ExpectParity(b, Inputs(RandomTensor({2, 3, 4}, rng)), 0, "squeeze/unsqueeze");
  }
}

TEST_F(XnnpackBackendTest, FlattenIntoGemmPermutesWeights) {
  std::mt19937 rng(12);
  for (const char* op : {"Flatten", "Reshape", "ReshapeRelu"}) {
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {2, 3, 4, 5});
    b.Constant("w", RandomTensor({6, 3, 3, 3}, rng));
    b.Constant("fc", RandomTensor({7, 6 * 4 * 5}, rng));
    b.Constant("shape", Ints64({2, -1}));
    Attributes pads = Attrs({{"pads", {1, 1, 1, 1}}});
    b.Node("Conv", {"x", "w"}, {"c"}, pads);
    if (std::string(op) == "Flatten") {
      b.Node("Flatten", {"c"}, {"f"});
    } else {
      b.Node("Reshape", {"c", "shape"}, {"f0"});
      b.Node("Relu", {"f0"}, {"f"});
    }
    Attributes gemm;
    gemm.SetInt("transB", 1);
    b.Node("Gemm", {"f", "fc"}, {"y"}, gemm).Output("y");
    ExpectParity(b, Inputs(RandomTensor({2, 3, 4, 5}, rng)), 1e-4, op);
    if (HasFatalFailure()) return;
  }
}

TEST_F(XnnpackBackendTest, PadConstant) {
  std::mt19937 rng(13);
  {
    GraphBuilder b(13);
    b.Input("x", DType::kFloat32, {1, 3, 4, 5});
    b.Constant("pads", Ints64({0, 1, 2, 0, 0, 2, 1, 3}));
    b.Constant("v", Scalar<float>(0.75f));
    b.Node("Pad", {"x", "pads", "v"}, {"y"}).Output("y");
    ExpectParity(b, Inputs(RandomTensor({1, 3, 4, 5}, rng)), 0, "pad4d");
  }
  {
    GraphBuilder b(13);
    b.Input("x", DType::kFloat32, {3, 5});
    b.Constant("pads", Ints64({1, 0, 2, 3}));
    b.Node("Pad", {"x", "pads"}, {"y"}).Output("y");
    ExpectParity(b, Inputs(RandomTensor({3, 5}, rng)), 0, "pad2d");
  }
  {
    GraphBuilder b(7);
    Attributes a = Attrs({{"pads", {0, 0, 1, 1, 0, 0, 1, 1}}});
    a.SetFloat("value", -2.0f);
    b.Input("x", DType::kFloat32, {1, 2, 3, 3}).Node("Pad", {"x"}, {"y"}, a).Output("y");
    ExpectParity(b, Inputs(RandomTensor({1, 2, 3, 3}, rng)), 0, "pad opset 7");
  }
}

TEST_F(XnnpackBackendTest, ResizeLinear) {
  std::mt19937 rng(14);
  struct Case {
    std::string mode;
    Shape in;
    std::vector<float> scales;  // empty: sizes
    std::vector<int64_t> sizes;
  };
  const std::vector<Case> cases = {
      {"half_pixel", {1, 3, 4, 5}, {1, 1, 2, 2}, {}},
      {"half_pixel", {2, 2, 6, 8}, {1, 1, 0.5f, 0.5f}, {}},
      {"half_pixel", {1, 3, 4, 5}, {}, {1, 3, 7, 3}},
      {"pytorch_half_pixel", {1, 3, 4, 5}, {1, 1, 3, 2}, {}},
      {"align_corners", {1, 3, 4, 5}, {}, {1, 3, 9, 11}},
      {"align_corners", {1, 2, 5, 5}, {1, 1, 2, 2}, {}},
      {"asymmetric", {1, 3, 4, 5}, {1, 1, 2, 3}, {}},
      {"asymmetric", {1, 3, 4, 6}, {}, {1, 3, 6, 4}},
  };
  for (const Case& c : cases) {
    Attributes a;
    a.SetString("mode", "linear");
    a.SetString("coordinate_transformation_mode", c.mode);
    GraphBuilder b(13);
    b.Input("x", DType::kFloat32, c.in);
    if (c.sizes.empty()) {
      b.Constant("scales", Floats({4}, c.scales));
      b.Node("Resize", {"x", "", "scales"}, {"y"}, a);
    } else {
      b.Constant("sizes", Ints64(c.sizes));
      b.Node("Resize", {"x", "", "", "sizes"}, {"y"}, a);
    }
    b.Output("y");
    ExpectParity(b, Inputs(RandomTensor(c.in, rng)), 1e-5, c.mode);
    if (HasFatalFailure()) return;
  }
  // Upsample (opset 9) in linear mode is Resize with asymmetric coordinates.
  Attributes a;
  a.SetString("mode", "linear");
  GraphBuilder b(9);
  b.Input("x", DType::kFloat32, {1, 2, 3, 4}).Constant("scales", Floats({4}, {1, 1, 2, 3}));
  b.Node("Upsample", {"x", "scales"}, {"y"}, a).Output("y");
  ExpectParity(b, Inputs(RandomTensor({1, 2, 3, 4}, rng)), 1e-5, "Upsample");
}

// The acceptance case: a small CNN is one XNNPACK segment and matches the reference.
TEST_F(XnnpackBackendTest, MnistCnnIsOneSegment) {
  std::mt19937 rng(15);
  GraphBuilder b;
  b.Input("x", DType::kFloat32, {1, 1, 28, 28});
  b.Constant("w", RandomTensor({8, 1, 3, 3}, rng)).Constant("b", RandomTensor({8}, rng));
  b.Constant("fc", RandomTensor({10, 8 * 14 * 14}, rng, -0.1f, 0.1f));
  b.Constant("fcb", RandomTensor({10}, rng));
  b.Node("Conv", {"x", "w", "b"}, {"c"}, Attrs({{"pads", {1, 1, 1, 1}}}))
      .Node("Relu", {"c"}, {"r"})
      .Node("MaxPool", {"r"}, {"p"}, Attrs({{"kernel_shape", {2, 2}}, {"strides", {2, 2}}}))
      .Node("Flatten", {"p"}, {"f"});
  Attributes gemm;
  gemm.SetInt("transB", 1);
  b.Node("Gemm", {"f", "fc", "fcb"}, {"logits"}, gemm)
      .Node("Softmax", {"logits"}, {"y"})
      .Output("y");
  ExpectParity(b, Inputs(RandomTensor({1, 1, 28, 28}, rng)), 1e-5, "cnn");

  // The same through a Session: one segment, on XNNPACK.
  Result<Model> model = Model::FromGraph(b.Build());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  Result<std::unique_ptr<Session>> session = Session::Create(*model);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  const std::vector<SegmentInfo> segments = (*session)->segments();
  ASSERT_EQ(segments.size(), 1u);
  EXPECT_EQ(segments[0].backend, "xnnpack");
  EXPECT_EQ(segments[0].nodes.size(), 6u);
  SessionOptions ref_options;
  ref_options.backend = "reference";
  Result<std::unique_ptr<Session>> ref = Session::Create(*model, ref_options);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  Tensor x = RandomTensor({1, 1, 28, 28}, rng);
  std::vector<Tensor> in;
  in.push_back(std::move(x));
  Result<std::vector<Tensor>> got = (*session)->Run(in);
  Result<std::vector<Tensor>> want = (*ref)->Run(in);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  ExpectClose((*want)[0], (*got)[0], 1e-5);
}

// Any split into consecutive segments compiles and matches, including values crossing a
// boundary in NHWC or flattened-NHWC form.
TEST_F(XnnpackBackendTest, EverySegmentationMatches) {
  std::mt19937 rng(16);
  GraphBuilder b;
  b.Input("x", DType::kFloat32, {2, 3, 6, 6});
  b.Constant("w", RandomTensor({4, 3, 3, 3}, rng));
  b.Constant("bias", RandomTensor({4, 1, 1}, rng));
  b.Constant("fc", RandomTensor({5, 4 * 3 * 3}, rng));
  b.Node("Conv", {"x", "w"}, {"c"}, Attrs({{"pads", {1, 1, 1, 1}}}))
      .Node("Add", {"c", "bias"}, {"a"})
      .Node("Relu", {"a"}, {"r"})
      .Node("MaxPool", {"r"}, {"p"}, Attrs({{"kernel_shape", {2, 2}}, {"strides", {2, 2}}}))
      .Node("Flatten", {"p"}, {"f"})
      .Node("Sigmoid", {"f"}, {"s"});
  Attributes gemm;
  gemm.SetInt("transB", 1);
  b.Node("Gemm", {"s", "fc"}, {"y"}, gemm).Output("y");
  Result<Graph> g = Prepare(b);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  for (bool c : xnn_->Claim(*g)) ASSERT_TRUE(c);
  const int n = static_cast<int>(g->nodes.size());
  std::vector<Tensor> inputs;
  inputs.push_back(RandomTensor({2, 3, 6, 6}, rng));
  for (int mask = 0; mask < (1 << (n - 1)); ++mask) {
    std::vector<std::pair<Backend*, std::vector<int>>> segments(1, {xnn_.get(), {}});
    for (int i = 0; i < n; ++i) {
      if (i > 0 && (mask >> (i - 1)) & 1) segments.push_back({xnn_.get(), {}});
      segments.back().second.push_back(i);
    }
    SCOPED_TRACE("split mask " + std::to_string(mask));
    ExpectSame(*g, inputs, segments, 1e-4);
    if (HasFatalFailure()) return;
  }
  // Reference nodes in between.
  std::vector<std::pair<Backend*, std::vector<int>>> mixed = {{xnn_.get(), {0, 1}},
                                                              {ref_.get(), {2}},
                                                              {xnn_.get(), {3, 4}},
                                                              {ref_.get(), {5}},
                                                              {xnn_.get(), {6}}};
  ExpectSame(*g, inputs, mixed, 1e-4);
}

TEST_F(XnnpackBackendTest, MultithreadedMatches) {
  BackendOptions options;
  options.num_threads = 2;
  auto xnn2 = CreateXnnpackBackend(options);
  ASSERT_TRUE(xnn2.ok()) << xnn2.status().ToString();
  std::mt19937 rng(17);
  GraphBuilder b;
  b.Input("x", DType::kFloat32, {2, 8, 16, 16});
  b.Constant("w", RandomTensor({16, 8, 3, 3}, rng));
  b.Node("Conv", {"x", "w"}, {"c"}).Node("Relu", {"c"}, {"y"}).Output("y");
  Result<Graph> g = Prepare(b);
  ASSERT_TRUE(g.ok());
  std::vector<Tensor> inputs;
  inputs.push_back(RandomTensor({2, 8, 16, 16}, rng));
  ExpectSame(*g, inputs, {{xnn2->get(), AllNodes(*g)}}, 1e-4);
  BackendOptions bad;
  bad.num_threads = 0;
  EXPECT_EQ(CreateXnnpackBackend(bad).status().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// int8: ONNX QDQ patterns and QLinear ops.

// Claims like the XNNPACK backend and compiles through BuildExecutable, keeping the report of
// the last build: which nodes ran as XNNPACK qs8 nodes.
class ReportingBackend final : public Backend {
 public:
  // `min_qs8_conv_depth` 0 quantizes every matched convolution, so that the qs8 paths are the
  // ones under test; the production default is checked in ShallowConvRunsInFp32OnX86.
  explicit ReportingBackend(bool quantized, int64_t min_qs8_conv_depth = 0)
      : quantized_(quantized), min_qs8_conv_depth_(min_qs8_conv_depth) {}
  std::string_view name() const override { return "xnnpack-report"; }
  std::vector<bool> Claim(const Graph& graph) const override {
    const xnnpack::GraphAnalysis a(graph);
    std::vector<bool> c(graph.nodes.size());
    for (size_t n = 0; n < c.size(); ++n) c[n] = a.Claimed(static_cast<int>(n));
    return c;
  }
  bool NeedsInternalBuffers() const override { return false; }
  Result<std::unique_ptr<Executable>> Compile(const Segment& segment) override {
    const xnnpack::GraphAnalysis a(*segment.graph);
    xnnpack::CompileOptions options;
    options.quantized_compute = quantized_;
    options.min_qs8_conv_depth = min_qs8_conv_depth_;
    return xnnpack::BuildExecutable(segment, a, options, &report);
  }
  xnnpack::BuildReport report;

 private:
  bool quantized_;
  int64_t min_qs8_conv_depth_;
};

// Symmetric int8 quantization of `w` along axis 0 (per channel) or per tensor.
struct QuantizedWeights {
  Tensor q;
  Tensor scale;
  std::vector<float> scales;
};

QuantizedWeights QuantizeWeights(const Tensor& w, bool per_channel) {
  const int64_t channels = per_channel ? w.dim(0) : 1;
  const int64_t inner = w.num_elements() / channels;
  QuantizedWeights out;
  out.q = std::move(*Tensor::Allocate(DType::kInt8, w.shape()));
  for (int64_t c = 0; c < channels; ++c) {
    float m = 1e-3f;
    for (int64_t i = 0; i < inner; ++i) m = std::max(m, std::fabs(w.data<float>()[c * inner + i]));
    const float s = m / 127.0f;
    out.scales.push_back(s);
    for (int64_t i = 0; i < inner; ++i) {
      out.q.data<int8_t>()[c * inner + i] =
          static_cast<int8_t>(std::nearbyint(w.data<float>()[c * inner + i] / s));
    }
  }
  out.scale = per_channel ? Floats({channels}, out.scales) : Scalar<float>(out.scales[0]);
  return out;
}

// Adds "<name>_s" and "<name>_z" constants (per-tensor params) to `b`.
void QParamsConst(GraphBuilder& b, const std::string& name, float scale, int8_t zero_point) {
  b.Constant(name + "_s", Scalar<float>(scale)).Constant(name + "_z", Scalar<int8_t>(zero_point));
}

// x -> Q -> DQ, the QDQ form of an activation. Returns the dequantized name.
std::string QdqActivation(GraphBuilder& b, const std::string& x, float scale, int8_t zp) {
  QParamsConst(b, x + "_q", scale, zp);
  b.Node("QuantizeLinear", {x, x + "_q_s", x + "_q_z"}, {x + "_int8"});
  b.Node("DequantizeLinear", {x + "_int8", x + "_q_s", x + "_q_z"}, {x + "_dq"});
  return x + "_dq";
}

// Constant int8 weights behind a DequantizeLinear. Returns the dequantized name.
std::string QdqWeights(GraphBuilder& b, const std::string& name, const Tensor& w, bool per_channel,
                       int64_t axis = 0) {
  QuantizedWeights qw = QuantizeWeights(w, per_channel);
  b.Constant(name + "_int8", std::move(qw.q)).Constant(name + "_s", std::move(qw.scale));
  Attributes a;
  a.SetInt("axis", axis);
  b.Node("DequantizeLinear", {name + "_int8", name + "_s"}, {name + "_dq"}, a);
  return name + "_dq";
}

// An int32 bias quantized with scale x_scale * w_scale[c], behind a DequantizeLinear.
std::string QdqBias(GraphBuilder& b, const std::string& name, const Tensor& bias, float x_scale,
                    const std::vector<float>& w_scales) {
  const int64_t n = bias.num_elements();
  Tensor q = std::move(*Tensor::Allocate(DType::kInt32, {n}));
  std::vector<float> scales;
  for (int64_t i = 0; i < n; ++i) {
    const float s = x_scale * w_scales[w_scales.size() == 1 ? 0 : static_cast<size_t>(i)];
    scales.push_back(s);
    q.data<int32_t>()[i] = static_cast<int32_t>(std::nearbyint(bias.data<float>()[i] / s));
  }
  b.Constant(name + "_int32", std::move(q));
  b.Constant(name + "_s", w_scales.size() == 1 ? Scalar<float>(scales[0]) : Floats({n}, scales));
  Attributes a;
  a.SetInt("axis", 0);
  b.Node("DequantizeLinear", {name + "_int32", name + "_s"}, {name + "_dq"}, a);
  return name + "_dq";
}

class XnnpackInt8Test : public XnnpackBackendTest {
 protected:
  // Every node claimed; XNNPACK runs `want_quantized` nodes (op types) as qs8 nodes; the output
  // (dequantized from an int8 value with scale `step`) is within one step of the reference's.
  void ExpectQuantParity(GraphBuilder& b, const std::vector<Tensor>& inputs, double step,
                         const std::vector<std::string>& want_quantized,
                         const std::string& what = "") {
    SCOPED_TRACE(what);
    Result<Graph> g = Prepare(b);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    ReportingBackend backend(/*quantized=*/true);
    const std::vector<bool> claims = backend.Claim(*g);
    for (size_t n = 0; n < claims.size(); ++n) {
      ASSERT_TRUE(claims[n]) << g->nodes[n].Describe(n) << " was not claimed";
    }
    // The public backend claims the same.
    EXPECT_EQ(xnn_->Claim(*g), claims);
    Result<std::vector<Tensor>> want = RunReference(*g, inputs);
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    // With quantized compute off, the same segment runs in fp32 between converts (only int8
    // reshapes still move int8 data); it must match too.
    ReportingBackend fp32(/*quantized=*/false);
    for (ReportingBackend* be : {&backend, &fp32}) {
      Result<std::vector<Tensor>> got = RunSegments(*g, inputs, {{be, AllNodes(*g)}});
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      for (size_t o = 0; o < want->size(); ++o) {
        const Tensor& w = (*want)[o];
        const Tensor& t = (*got)[o];
        ASSERT_EQ(w.shape(), t.shape());
        for (int64_t i = 0; i < w.num_elements(); ++i) {
          ASSERT_LE(std::fabs(w.data<float>()[i] - t.data<float>()[i]), step * 1.0001 + 1e-6)
              << "element " << i << " of output " << o << (be == &fp32 ? " (fp32 mode)" : "");
        }
      }
    }
    std::vector<std::string> quantized;
    for (int n : backend.report.quantized_nodes) {
      quantized.push_back(g->nodes[static_cast<size_t>(n)].op_type);
    }
    EXPECT_EQ(quantized, want_quantized);
    for (int n : fp32.report.quantized_nodes) {
      EXPECT_EQ(xnnpack::KindOf(g->nodes[static_cast<size_t>(n)]), xnnpack::OpKind::kReshape);
    }
  }
};

TEST_F(XnnpackInt8Test, QdqConvRandom) {
  std::mt19937 rng(21);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int iter = 0; iter < 24; ++iter) {
    const bool depthwise = iter % 4 == 3;
    const int64_t groups = depthwise ? 4 : pick(1, 2);
    const int64_t c_in = depthwise ? 4 : groups * pick(1, 3);
    const int64_t c_out = depthwise ? 4 * pick(1, 2) : groups * pick(1, 4);
    const int64_t k = pick(1, 3);
    const int64_t h = pick(4, 9), w = pick(4, 9);
    const bool per_channel = iter % 2 == 0;
    const int act = iter % 3;  // none, Relu, Clip
    Attributes a;
    a.SetInt("group", groups);
    a.SetInts("strides", {pick(1, 2), pick(1, 2)});
    a.SetInts("pads", {pick(0, 1), pick(0, 1), pick(0, 1), pick(0, 1)});
    const float sx = 2.0f / 255.0f;
    const int8_t zx = static_cast<int8_t>(pick(-20, 20));
    const double fan_in = static_cast<double>(c_in / groups * k * k);
    const float sy = static_cast<float>(std::sqrt(fan_in) / 127.0);
    const int8_t zy = static_cast<int8_t>(act == 0 ? pick(-10, 10) : -128 + pick(0, 20));
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {1, c_in, h, w});
    const std::string xd = QdqActivation(b, "x", sx, zx);
    Tensor wf = RandomTensor({c_out, c_in / groups, k, k}, rng);
    QuantizedWeights probe = QuantizeWeights(wf, per_channel);
    const std::string wd = QdqWeights(b, "w", wf, per_channel);
    const std::string bd =
        QdqBias(b, "b", RandomTensor({c_out}, rng, -0.5f, 0.5f), sx, probe.scales);
    b.Node("Conv", {xd, wd, bd}, {"c"}, a);
    std::string pre_q = "c";
    if (act == 1) {
      b.Node("Relu", {"c"}, {"r"});
      pre_q = "r";
    } else if (act == 2) {
      b.Constant("lo", Scalar<float>(0.0f)).Constant("hi", Scalar<float>(1.0f));
      b.Node("Clip", {"c", "lo", "hi"}, {"r"});
      pre_q = "r";
    }
    QParamsConst(b, "y", sy, zy);
    b.Node("QuantizeLinear", {pre_q, "y_s", "y_z"}, {"yq"});
    b.Node("DequantizeLinear", {"yq", "y_s", "y_z"}, {"y"}).Output("y");
    const std::vector<Tensor> inputs = Inputs(RandomTensor({1, c_in, h, w}, rng));
    ExpectQuantParity(b, inputs, sy, {"Conv"}, "qconv " + std::to_string(iter));
    if (HasFatalFailure()) return;
    if (depthwise) {
      // The production policy keeps depthwise convolutions in qs8 at any depth.
      Result<Graph> g = Prepare(b);
      ASSERT_TRUE(g.ok());
      ReportingBackend policy(/*quantized=*/true, xnnpack::CompileOptions().min_qs8_conv_depth);
      ASSERT_TRUE(RunSegments(*g, inputs, {{&policy, AllNodes(*g)}}).ok());
      EXPECT_EQ(policy.report.quantized_nodes.size(), 1u) << "depthwise qconv " << iter;
    }
  }
}

TEST_F(XnnpackInt8Test, QdqGemmAndMatMul) {
  std::mt19937 rng(22);
  for (int iter = 0; iter < 12; ++iter) {
    const bool gemm = iter < 8;
    const bool trans_b = iter % 2 == 1;
    const bool per_channel = (iter / 2) % 2 == 1;
    const int64_t k = 8 + iter, n = 3 + iter % 4;
    const float sx = 2.0f / 255.0f;
    const float sy = static_cast<float>(std::sqrt(static_cast<double>(k)) / 127.0);
    GraphBuilder b;
    const Shape a_shape = gemm || iter % 2 == 0 ? Shape{2, k} : Shape{2, 3, k};
    b.Input("a", DType::kFloat32, a_shape);
    const std::string ad = QdqActivation(b, "a", sx, 3);
    Tensor wf = RandomTensor(trans_b && gemm ? Shape{n, k} : Shape{k, n}, rng);
    // Per output channel: axis 0 of [N, K], axis 1 of [K, N].
    std::string wd;
    std::vector<float> w_scales;
    if (trans_b && gemm) {
      w_scales = QuantizeWeights(wf, per_channel).scales;
      wd = QdqWeights(b, "w", wf, per_channel, 0);
    } else {
      // Quantize the transposed matrix per row, then store it [K, N] with axis 1.
      Tensor wt = std::move(*Tensor::Allocate(DType::kFloat32, {n, k}));
      for (int64_t i = 0; i < k; ++i) {
        for (int64_t j = 0; j < n; ++j) wt.data<float>()[j * k + i] = wf.data<float>()[i * n + j];
      }
      QuantizedWeights qt = QuantizeWeights(wt, per_channel);
      w_scales = qt.scales;
      Tensor q = std::move(*Tensor::Allocate(DType::kInt8, {k, n}));
      for (int64_t i = 0; i < k; ++i) {
        for (int64_t j = 0; j < n; ++j)
          q.data<int8_t>()[i * n + j] = qt.q.data<int8_t>()[j * k + i];
      }
      b.Constant("w_int8", std::move(q)).Constant("w_s", std::move(qt.scale));
      Attributes axis;
      axis.SetInt("axis", 1);
      b.Node("DequantizeLinear", {"w_int8", "w_s"}, {"w_dq"}, axis);
      wd = "w_dq";
    }
    if (gemm) {
      Attributes a;
      a.SetInt("transB", trans_b ? 1 : 0);
      const std::string bd = QdqBias(b, "b", RandomTensor({n}, rng), sx, w_scales);
      b.Node("Gemm", {ad, wd, bd}, {"c"}, a);
    } else {
      b.Node("MatMul", {ad, wd}, {"c"});
    }
    QParamsConst(b, "y", sy, -5);
    b.Node("QuantizeLinear", {"c", "y_s", "y_z"}, {"yq"});
    b.Node("DequantizeLinear", {"yq", "y_s", "y_z"}, {"y"}).Output("y");
    ExpectQuantParity(b, Inputs(RandomTensor(a_shape, rng)), sy, {gemm ? "Gemm" : "MatMul"},
                      "qfc " + std::to_string(iter));
    if (HasFatalFailure()) return;
  }
}

TEST_F(XnnpackInt8Test, QdqPoolAddMulReshape) {
  std::mt19937 rng(23);
  const float s = 2.0f / 255.0f;
  {
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {1, 3, 6, 6});
    const std::string xd = QdqActivation(b, "x", s, 4);
    b.Node("MaxPool", {xd}, {"p"}, Attrs({{"kernel_shape", {2, 2}}, {"strides", {2, 2}}}));
    b.Node("QuantizeLinear", {"p", "x_q_s", "x_q_z"}, {"pq"});
    b.Node("DequantizeLinear", {"pq", "x_q_s", "x_q_z"}, {"y"}).Output("y");
    ExpectQuantParity(b, Inputs(RandomTensor({1, 3, 6, 6}, rng)), s, {"MaxPool"}, "maxpool");
  }
  for (const char* op : {"Add", "Mul"}) {
    for (int variant = 0; variant < 3; ++variant) {
      GraphBuilder b;
      b.Input("x", DType::kFloat32, {1, 4, 3, 3});
      const std::string xd = QdqActivation(b, "x", s, 4);
      std::string other;
      if (variant == 0) {
        b.Input("z", DType::kFloat32, {1, 4, 3, 3});
        other = QdqActivation(b, "z", 1.0f / 255.0f, -7);
      } else if (variant == 1) {
        b.Input("z", DType::kFloat32, {1, 1, 3});  // broadcast, same order in NHWC
        other = QdqActivation(b, "z", 1.0f / 255.0f, -7);
      } else {
        other = QdqWeights(b, "c", RandomTensor({4, 1, 1}, rng), /*per_channel=*/false);
      }
      b.Node(op, {xd, other}, {"a"});
      const float sy = std::string(op) == "Add" ? 3.0f / 255.0f : 1.0f / 255.0f;
      QParamsConst(b, "y", sy, 2);
      b.Node("QuantizeLinear", {"a", "y_s", "y_z"}, {"aq"});
      b.Node("DequantizeLinear", {"aq", "y_s", "y_z"}, {"y"}).Output("y");
      std::vector<Tensor> inputs;
      inputs.push_back(RandomTensor({1, 4, 3, 3}, rng));
      if (variant == 0) inputs.push_back(RandomTensor({1, 4, 3, 3}, rng));
      if (variant == 1) inputs.push_back(RandomTensor({1, 1, 3}, rng));
      ExpectQuantParity(b, inputs, sy, {op}, std::string(op) + " " + std::to_string(variant));
      if (HasFatalFailure()) return;
    }
  }
}

// A QDQ CNN: conv -> relu -> maxpool -> flatten -> gemm -> softmax, int8 in between; one
// segment, qs8 compute, softmax in fp32.
TEST_F(XnnpackInt8Test, QdqCnnEndToEnd) {
  std::mt19937 rng(24);
  const float sx = 1.0f / 255.0f;
  GraphBuilder b;
  b.Input("x", DType::kFloat32, {1, 1, 28, 28});
  const std::string xd = QdqActivation(b, "x", sx, -128);
  Tensor wf = RandomTensor({8, 1, 3, 3}, rng);
  QuantizedWeights probe = QuantizeWeights(wf, true);
  const std::string wd = QdqWeights(b, "w", wf, true);
  const std::string bd = QdqBias(b, "b", RandomTensor({8}, rng, -0.2f, 0.2f), sx, probe.scales);
  b.Node("Conv", {xd, wd, bd}, {"c"}, Attrs({{"pads", {1, 1, 1, 1}}})).Node("Relu", {"c"}, {"r"});
  const float s1 = 3.0f / 127.0f;
  QParamsConst(b, "r", s1, -128);
  b.Node("QuantizeLinear", {"r", "r_s", "r_z"}, {"rq"});
  b.Node("DequantizeLinear", {"rq", "r_s", "r_z"}, {"rd"});
  b.Node("MaxPool", {"rd"}, {"p"}, Attrs({{"kernel_shape", {2, 2}}, {"strides", {2, 2}}}));
  b.Node("QuantizeLinear", {"p", "r_s", "r_z"}, {"pq"});
  b.Node("DequantizeLinear", {"pq", "r_s", "r_z"}, {"pd"});
  b.Node("Flatten", {"pd"}, {"f"});
  b.Node("QuantizeLinear", {"f", "r_s", "r_z"}, {"fq"});
  b.Node("DequantizeLinear", {"fq", "r_s", "r_z"}, {"fd"});
  Tensor fc = RandomTensor({10, 8 * 14 * 14}, rng, -0.05f, 0.05f);
  QuantizedWeights fprobe = QuantizeWeights(fc, true);
  const std::string fcd = QdqWeights(b, "fc", fc, true);
  const std::string fcb = QdqBias(b, "fcb", RandomTensor({10}, rng), s1, fprobe.scales);
  Attributes gemm;
  gemm.SetInt("transB", 1);
  b.Node("Gemm", {"fd", fcd, fcb}, {"l"}, gemm);
  const float sl = 8.0f / 127.0f;
  QParamsConst(b, "l", sl, 0);
  b.Node("QuantizeLinear", {"l", "l_s", "l_z"}, {"lq"});
  b.Node("DequantizeLinear", {"lq", "l_s", "l_z"}, {"ld"});
  b.Node("Softmax", {"ld"}, {"y"}).Output("y");
  // A one-step difference in a logit moves a probability by at most ~sl of itself.
  ExpectQuantParity(b, Inputs(RandomTensor({1, 1, 28, 28}, rng, 0.0f, 1.0f)), sl,
                    {"Conv", "MaxPool", "Flatten", "Gemm"}, "qcnn");
  if (HasFatalFailure()) return;

  // With the production policy, on x86 the shallow conv (depth 1*3*3) runs in fp32 between
  // converts while the Gemm stays qs8; the results agree all the same.
  Result<Graph> g = Prepare(b);
  ASSERT_TRUE(g.ok());
  ReportingBackend policy(/*quantized=*/true, xnnpack::CompileOptions().min_qs8_conv_depth);
  std::vector<Tensor> inputs = Inputs(RandomTensor({1, 1, 28, 28}, rng, 0.0f, 1.0f));
  Result<std::vector<Tensor>> want = RunReference(*g, inputs);
  Result<std::vector<Tensor>> got = RunSegments(*g, inputs, {{&policy, AllNodes(*g)}});
  ASSERT_TRUE(want.ok() && got.ok());
  for (int64_t i = 0; i < (*want)[0].num_elements(); ++i) {
    EXPECT_LE(std::fabs((*want)[0].data<float>()[i] - (*got)[0].data<float>()[i]), sl * 1.0001);
  }
  std::vector<std::string> quantized_ops;
  for (int n : policy.report.quantized_nodes) quantized_ops.push_back(g->nodes[n].op_type);
#if defined(__x86_64__)
  EXPECT_EQ(std::count(quantized_ops.begin(), quantized_ops.end(), "Conv"), 0);
#else
  EXPECT_EQ(std::count(quantized_ops.begin(), quantized_ops.end(), "Conv"), 1);
#endif
  EXPECT_EQ(std::count(quantized_ops.begin(), quantized_ops.end(), "Gemm"), 1);

  // Through a Session: one XNNPACK segment.
  Result<Model> model = Model::FromGraph(b.Build());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  Result<std::unique_ptr<Session>> session = Session::Create(*model);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  ASSERT_EQ((*session)->segments().size(), 1u);
  EXPECT_EQ((*session)->segments()[0].backend, "xnnpack");
}

TEST_F(XnnpackInt8Test, QLinearConvAndMatMul) {
  std::mt19937 rng(25);
  for (int iter = 0; iter < 8; ++iter) {
    const bool per_channel = iter % 2 == 0;
    const bool depthwise = iter % 4 == 1;
    const int64_t c_in = 4, c_out = depthwise ? 4 : 6, groups = depthwise ? 4 : 1;
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {1, c_in, 6, 5});
    const float sx = 2.0f / 255.0f, sy = 4.0f / 127.0f;
    QParamsConst(b, "x", sx, 1);
    b.Node("QuantizeLinear", {"x", "x_s", "x_z"}, {"xq"});
    QuantizedWeights qw =
        QuantizeWeights(RandomTensor({c_out, c_in / groups, 3, 3}, rng), per_channel);
    Tensor bias = RandomInts<int32_t>({c_out}, rng, -300, 300);
    const std::vector<float> w_scales = qw.scales;
    b.Constant("w", std::move(qw.q)).Constant("w_s", std::move(qw.scale));
    b.Constant("w_z", per_channel ? std::move(*Tensor::Allocate(DType::kInt8, {c_out}))
                                  : Scalar<int8_t>(0));
    b.Constant("bias", std::move(bias));
    QParamsConst(b, "y", sy, -3);
    Attributes a = Attrs({{"pads", {1, 1, 1, 1}}});
    a.SetInt("group", groups);
    b.Node("QLinearConv", {"xq", "x_s", "x_z", "w", "w_s", "w_z", "y_s", "y_z", "bias"}, {"yq"}, a);
    // Then an int8 flatten and a QLinearMatMul.
    b.Node("Flatten", {"yq"}, {"fq"});
    const int64_t k = c_out * 6 * 5;
    QuantizedWeights mw = QuantizeWeights(RandomTensor({k, 5}, rng, -0.1f, 0.1f), false);
    b.Constant("m", std::move(mw.q)).Constant("m_s", std::move(mw.scale));
    b.Constant("m_z", Scalar<int8_t>(0));
    QParamsConst(b, "o", 8.0f / 127.0f, 0);
    b.Node("QLinearMatMul", {"fq", "y_s", "y_z", "m", "m_s", "m_z", "o_s", "o_z"}, {"oq"});
    b.Node("DequantizeLinear", {"oq", "o_s", "o_z"}, {"o"}).Output("o");
    b.Node("DequantizeLinear", {"yq", "y_s", "y_z"}, {"y"}).Output("y");
    std::vector<Tensor> inputs;
    inputs.push_back(RandomTensor({1, c_in, 6, 5}, rng));
    // The matmul reads the conv's int8 output: a one-step conv difference propagates, so the
    // matmul output gets the conv step times its weights' reach.
    ExpectQuantParity(b, inputs, 8.0f / 127.0f, {"QLinearConv", "Flatten", "QLinearMatMul"},
                      "qlinear " + std::to_string(iter));
    if (HasFatalFailure()) return;
  }
}

// A requantization scale XNNPACK's qs8 conv rejects: the backend recompiles in fp32 and still
// matches.
TEST_F(XnnpackInt8Test, OutOfRangeScaleFallsBackToFp32) {
  std::mt19937 rng(26);
  GraphBuilder b;
  b.Input("x", DType::kFloat32, {1, 2, 4, 4});
  const std::string xd = QdqActivation(b, "x", 1.0f, 0);
  const std::string wd = QdqWeights(b, "w", RandomTensor({3, 2, 1, 1}, rng, 50.0f, 100.0f), false);
  b.Node("Conv", {xd, wd}, {"c"});
  QParamsConst(b, "y", 1e-3f, 0);  // x_scale * w_scale / y_scale >> 256
  b.Node("QuantizeLinear", {"c", "y_s", "y_z"}, {"yq"});
  b.Node("DequantizeLinear", {"yq", "y_s", "y_z"}, {"y"}).Output("y");
  Result<Graph> g = Prepare(b);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  for (bool c : xnn_->Claim(*g)) ASSERT_TRUE(c);
  std::vector<Tensor> inputs;
  inputs.push_back(RandomTensor({1, 2, 4, 4}, rng, -3.0f, 3.0f));
  ExpectSame(*g, inputs, {{xnn_.get(), AllNodes(*g)}}, 1e-6);
}

class CapturingLogger final : public Logger {
 public:
  void Write(LogLevel level, std::string_view file, int line, std::string_view message) override {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.emplace_back(message);
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

// A qs8 add whose input-to-output scale ratio XNNPACK rejects when it creates the runtime: the
// backend logs once and recompiles the segment in fp32.
TEST_F(XnnpackInt8Test, RejectedQs8NodeRecompilesInFp32) {
  std::mt19937 rng(28);
  GraphBuilder b;
  b.Input("x", DType::kFloat32, {1, 2, 3, 3}).Input("z", DType::kFloat32, {1, 2, 3, 3});
  const std::string xd = QdqActivation(b, "x", 1.0f, 0);
  const std::string zd = QdqActivation(b, "z", 1.0f, 0);
  b.Node("Add", {xd, zd}, {"a"});
  QParamsConst(b, "y", 1.0f / 4096.0f, 0);
  b.Node("QuantizeLinear", {"a", "y_s", "y_z"}, {"aq"});
  b.Node("DequantizeLinear", {"aq", "y_s", "y_z"}, {"y"}).Output("y");
  Result<Graph> g = Prepare(b);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  CapturingLogger logger;
  BackendOptions options;
  options.logger = &logger;
  auto xnn = CreateXnnpackBackend(options);
  ASSERT_TRUE(xnn.ok());
  for (bool c : (*xnn)->Claim(*g)) ASSERT_TRUE(c);
  std::vector<Tensor> inputs;
  inputs.push_back(RandomTensor({1, 2, 3, 3}, rng, -0.02f, 0.02f));
  inputs.push_back(RandomTensor({1, 2, 3, 3}, rng, -0.02f, 0.02f));
  ExpectSame(*g, inputs, {{xnn->get(), AllNodes(*g)}}, 1e-6);
  const std::vector<std::string> lines = logger.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("running quantized nodes in fp32"), std::string::npos) << lines[0];
}

// Int8 values cross segment boundaries in either form.
TEST_F(XnnpackInt8Test, QdqSegmentations) {
  std::mt19937 rng(27);
  const float sx = 2.0f / 255.0f;
  GraphBuilder b;
  b.Input("x", DType::kFloat32, {1, 3, 5, 5});
  const std::string xd = QdqActivation(b, "x", sx, 0);
  Tensor wf = RandomTensor({4, 3, 3, 3}, rng);
  const std::string wd = QdqWeights(b, "w", wf, true);
  b.Node("Conv", {xd, wd}, {"c"}, Attrs({{"pads", {1, 1, 1, 1}}})).Node("Relu", {"c"}, {"r"});
  const float sy = 5.2f / 127.0f;
  QParamsConst(b, "y", sy, -128);
  b.Node("QuantizeLinear", {"r", "y_s", "y_z"}, {"yq"});
  b.Node("DequantizeLinear", {"yq", "y_s", "y_z"}, {"y"}).Output("y");
  Result<Graph> g = Prepare(b);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  const int n = static_cast<int>(g->nodes.size());
  std::vector<Tensor> inputs;
  inputs.push_back(RandomTensor({1, 3, 5, 5}, rng));
  Result<std::vector<Tensor>> want = RunReference(*g, inputs);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  for (int mask = 0; mask < (1 << (n - 1)); ++mask) {
    std::vector<std::pair<Backend*, std::vector<int>>> segments(1, {xnn_.get(), {}});
    for (int i = 0; i < n; ++i) {
      if (i > 0 && (mask >> (i - 1)) & 1) segments.push_back({xnn_.get(), {}});
      segments.back().second.push_back(i);
    }
    Result<std::vector<Tensor>> got = RunSegments(*g, inputs, segments);
    ASSERT_TRUE(got.ok()) << "mask " << mask << ": " << got.status().ToString();
    for (int64_t i = 0; i < (*want)[0].num_elements(); ++i) {
      ASSERT_LE(std::fabs((*want)[0].data<float>()[i] - (*got)[0].data<float>()[i]), sy * 1.0001)
          << "mask " << mask;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// What is not claimed.

TEST_F(XnnpackBackendTest, DoesNotClaimUnsupported) {
  std::mt19937 rng(18);
  {
    GraphBuilder b;  // weights from an input
    b.Input("x", DType::kFloat32, {1, 2, 5, 5}).Input("w", DType::kFloat32, {3, 2, 3, 3});
    b.Node("Conv", {"x", "w"}, {"y"}).Output("y");
    EXPECT_FALSE(Claims(b)[0]) << "non-constant weights";
  }
  {
    GraphBuilder b;  // 1-D convolution
    b.Input("x", DType::kFloat32, {1, 2, 9}).Constant("w", RandomTensor({3, 2, 3}, rng));
    b.Node("Conv", {"x", "w"}, {"y"}).Output("y");
    EXPECT_FALSE(Claims(b)[0]) << "1-D conv";
  }
  {
    GraphBuilder b;  // MatMul over a rank-4 activation (NHWC inside)
    b.Input("x", DType::kFloat32, {1, 2, 3, 4}).Constant("w", RandomTensor({4, 5}, rng));
    b.Node("MatMul", {"x", "w"}, {"y"}).Output("y");
    EXPECT_FALSE(Claims(b)[0]) << "rank-4 MatMul";
  }
  {
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {1, 2, 5, 5});
    Attributes a = Attrs({{"kernel_shape", {3, 3}}, {"pads", {1, 1, 1, 1}}});
    a.SetInt("count_include_pad", 1);
    b.Node("AveragePool", {"x"}, {"y"}, a).Output("y");
    EXPECT_FALSE(Claims(b)[0]) << "count_include_pad with padding";
  }
  {
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {1, 2, 5, 5});
    b.Node("MaxPool", {"x"}, {"y"}, Attrs({{"kernel_shape", {1, 1}}, {"strides", {2, 2}}}))
        .Output("y");
    EXPECT_FALSE(Claims(b)[0]) << "1x1 pooling";
  }
  {
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {2, 3, 4});
    Attributes a;
    a.SetInt("axis", 1);
    b.Node("Softmax", {"x"}, {"y"}, a).Output("y");
    EXPECT_FALSE(Claims(b)[0]) << "opset-13 softmax over a middle axis";
  }
  {
    GraphBuilder b;  // Flatten with C > 1 read by something other than a fully-connected node
    b.Input("x", DType::kFloat32, {1, 3, 2, 2}).Constant("c", RandomTensor({12}, rng));
    b.Node("Flatten", {"x"}, {"f"}).Node("Add", {"f", "c"}, {"y"}).Output("y");
    const std::vector<bool> c = Claims(b);
    EXPECT_FALSE(c[0]) << "order-changing flatten";
    EXPECT_TRUE(c[1]);
  }
  {
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {1, 2, 3, 3});
    Attributes a;
    a.SetString("mode", "nearest");
    b.Constant("scales", Floats({4}, {1, 1, 2, 2}));
    b.Node("Resize", {"x", "", "scales"}, {"y"}, a).Output("y");
    EXPECT_FALSE(Claims(b)[0]) << "nearest resize";
  }
  {
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {1, 2, 3, 3}).Constant("pads", Ints64({0, 0, 1, 1, 0, 0, 1, 1}));
    Attributes a;
    a.SetString("mode", "reflect");
    b.Node("Pad", {"x", "pads"}, {"y"}, a).Output("y");
    EXPECT_FALSE(Claims(b)[0]) << "reflect pad";
  }
  {
    GraphBuilder b;
    b.Input("a", DType::kFloat32, {3})
        .Input("b", DType::kFloat32, {3})
        .Input("c", DType::kFloat32, {3});
    b.Node("Max", {"a", "b", "c"}, {"y"}).Output("y");
    EXPECT_FALSE(Claims(b)[0]) << "3-input Max";
  }
  {
    GraphBuilder b;
    b.Input("a", DType::kInt64, {3}).Input("b", DType::kInt64, {3});
    b.Node("Add", {"a", "b"}, {"y"}).Output("y");
    EXPECT_FALSE(Claims(b)[0]) << "int64 Add";
  }
  {
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {4}).Input("lo", DType::kFloat32, {});
    b.Node("Clip", {"x", "lo"}, {"y"}).Output("y");
    EXPECT_FALSE(Claims(b)[0]) << "run-time Clip bound";
  }
  {
    GraphBuilder b;
    b.Input("a", DType::kFloat32, {4, 3}).Constant("b", RandomTensor({4, 5}, rng));
    Attributes a;
    a.SetInt("transA", 1);
    b.Node("Gemm", {"a", "b"}, {"y"}, a).Output("y");
    EXPECT_FALSE(Claims(b)[0]) << "transA";
  }
  {
    GraphBuilder b;  // a rank-3 activation broadcast against NHWC with differing orders
    b.Input("a", DType::kFloat32, {1, 3, 2, 2}).Input("b", DType::kFloat32, {3, 1, 2});
    b.Node("Add", {"a", "b"}, {"y"}).Output("y");
    EXPECT_FALSE(Claims(b)[0]) << "order-changing broadcast";
  }
  {
    GraphBuilder b;  // rank 3 -> rank 4 with C > 1 and H*W > 1 reorders elements
    b.Input("x", DType::kFloat32, {2, 3, 4}).Constant("axes", Ints64({0}));
    b.Node("Unsqueeze", {"x", "axes"}, {"y"}).Output("y");
    EXPECT_FALSE(Claims(b)[0]) << "order-changing unsqueeze";
  }
  {
    GraphBuilder b;
    b.Input("x", DType::kFloat32, {1, 2, 3, 3}).Node("Tanh", {"x"}, {"y"}).Output("y");
    EXPECT_FALSE(Claims(b)[0]) << "Tanh is not in this XNNPACK";
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

TEST(XnnpackLayoutTest, TransposesRoundTrip) {
  std::vector<float> src(2 * 3 * 5);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i);
  std::vector<float> nhwc(src.size()), back(src.size());
  xnnpack::TransposeNchwToNhwc(src.data(), nhwc.data(), 2, 3, 5, 4);
  // Element (n=1, c=2, hw=4) sits at ((1*5)+4)*3+2 in NHWC.
  EXPECT_EQ(nhwc[(1 * 5 + 4) * 3 + 2], src[(1 * 3 + 2) * 5 + 4]);
  xnnpack::TransposeNhwcToNchw(nhwc.data(), back.data(), 2, 3, 5, 4);
  EXPECT_EQ(back, src);
  std::vector<int8_t> b8 = {1, 2, 3, 4, 5, 6}, t8(6);
  xnnpack::TransposeNchwToNhwc(b8.data(), t8.data(), 1, 2, 3, 1);
  EXPECT_EQ(t8, (std::vector<int8_t>{1, 4, 2, 5, 3, 6}));
  EXPECT_TRUE(xnnpack::SameOrderInNhwc({4, 1, 3, 3}));
  EXPECT_TRUE(xnnpack::SameOrderInNhwc({4, 7, 1, 1}));
  EXPECT_FALSE(xnnpack::SameOrderInNhwc({1, 2, 1, 3}));
}

TEST(XnnpackStatusTest, TranslatesWithContext) {
  const Status s = xnnpack::XnnStatusToStatus(xnn_status_invalid_parameter,
                                              "xnn_define_convolution_2d", "Conv 'conv1'");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "xnn_define_convolution_2d for Conv 'conv1': xnn_status_invalid_parameter");
  EXPECT_TRUE(xnnpack::XnnStatusToStatus(xnn_status_success, "x", "y").ok());
  EXPECT_EQ(xnnpack::XnnStatusToStatus(xnn_status_unsupported_hardware, "x", "").code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(xnnpack::XnnStatusToStatus(xnn_status_out_of_memory, "x", "").code(),
            StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace hml::runtime
