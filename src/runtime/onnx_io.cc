// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/onnx_io.h"

#include <cstring>
#include <limits>

#include "onnx/onnx_pb.h"
#include "src/runtime/op_registry.h"
#include "src/runtime/passes.h"

namespace hml::runtime {
namespace {

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// Reads TensorProto `proto` into an owned Tensor, checking the data length against the dims
// before allocating.
Result<Tensor> TensorFromProto(const onnx::TensorProto& proto, std::string_view what) {
  auto error = [&](const std::string& why) {
    return InvalidArgumentError(std::string(what) + " " + Quote(proto.name()) + ": " + why);
  };
  if (proto.has_segment()) return UnimplementedError(std::string(what) + " " +
                                                     Quote(proto.name()) +
                                                     ": segmented tensors are not supported");
  if (proto.data_location() == onnx::TensorProto::EXTERNAL || proto.external_data_size() > 0) {
    return UnimplementedError(std::string(what) + " " + Quote(proto.name()) +
                              ": external tensor data is not supported; embed the weights");
  }
  auto dtype = DTypeFromOnnx(proto.data_type());
  if (!dtype.ok()) return dtype.status().WithContext(std::string(what) + " " + Quote(proto.name()));
  Shape shape(proto.dims().begin(), proto.dims().end());
  for (int64_t d : shape) {
    if (d < 0) return error("negative dimension in " + ShapeToString(shape));
  }
  auto count = CheckedNumElements(shape, *dtype);
  if (!count.ok()) return count.status().WithContext(std::string(what) + " " + Quote(proto.name()));
  const int64_t n = *count;
  const size_t elem = DTypeSize(*dtype);

  // Check the payload's length before allocating anything.
  if (proto.has_raw_data()) {
    if (proto.raw_data().size() != static_cast<size_t>(n) * elem) {
      return error("raw_data holds " + std::to_string(proto.raw_data().size()) +
                   " bytes but dims " + ShapeToString(shape) + " of " +
                   std::string(DTypeName(*dtype)) + " need " +
                   std::to_string(static_cast<size_t>(n) * elem));
    }
  } else {
    int64_t have = 0;
    switch (*dtype) {
      case DType::kFloat32:
        have = proto.float_data_size();
        break;
      case DType::kInt64:
        have = proto.int64_data_size();
        break;
      default:
        have = proto.int32_data_size();
        break;
    }
    if (have != n) {
      return error("holds " + std::to_string(have) + " values but dims " + ShapeToString(shape) +
                   " need " + std::to_string(n));
    }
  }

  HML_ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(*dtype, shape));
  if (proto.has_raw_data()) {
    if (n > 0) std::memcpy(t.raw_data(), proto.raw_data().data(), proto.raw_data().size());
    return t;
  }
  for (int64_t i = 0; i < n; ++i) {
    switch (*dtype) {
      case DType::kFloat32:
        t.data<float>()[i] = proto.float_data(static_cast<int>(i));
        break;
      case DType::kInt64:
        t.data<int64_t>()[i] = proto.int64_data(static_cast<int>(i));
        break;
      case DType::kInt32:
        t.data<int32_t>()[i] = proto.int32_data(static_cast<int>(i));
        break;
      case DType::kInt8: {
        const int32_t v = proto.int32_data(static_cast<int>(i));
        if (v < -128 || v > 127) return error("int8 value " + std::to_string(v) + " out of range");
        t.data<int8_t>()[i] = static_cast<int8_t>(v);
        break;
      }
      case DType::kUInt8: {
        const int32_t v = proto.int32_data(static_cast<int>(i));
        if (v < 0 || v > 255) return error("uint8 value " + std::to_string(v) + " out of range");
        t.data<uint8_t>()[i] = static_cast<uint8_t>(v);
        break;
      }
      case DType::kUndefined:
        break;
    }
  }
  return t;
}

Result<Attribute> AttributeFromProto(const onnx::AttributeProto& proto, const std::string& where) {
  Attribute a;
  auto unsupported = [&](const std::string& kind) {
    return UnimplementedError(where + ": attribute " + Quote(proto.name()) + " of type " + kind +
                              " is not supported");
  };
  if (!proto.ref_attr_name().empty()) return unsupported("reference (function attribute)");
  switch (proto.type()) {
    case onnx::AttributeProto::FLOAT:
      a.kind = Attribute::Kind::kFloat;
      a.f = proto.f();
      break;
    case onnx::AttributeProto::INT:
      a.kind = Attribute::Kind::kInt;
      a.i = proto.i();
      break;
    case onnx::AttributeProto::STRING:
      a.kind = Attribute::Kind::kString;
      a.s = proto.s();
      break;
    case onnx::AttributeProto::FLOATS:
      a.kind = Attribute::Kind::kFloats;
      a.floats.assign(proto.floats().begin(), proto.floats().end());
      break;
    case onnx::AttributeProto::INTS:
      a.kind = Attribute::Kind::kInts;
      a.ints.assign(proto.ints().begin(), proto.ints().end());
      break;
    case onnx::AttributeProto::STRINGS:
      a.kind = Attribute::Kind::kStrings;
      a.strings.assign(proto.strings().begin(), proto.strings().end());
      break;
    case onnx::AttributeProto::TENSOR: {
      a.kind = Attribute::Kind::kTensor;
      auto t = TensorFromProto(proto.t(), where + " attribute " + Quote(proto.name()));
      if (!t.ok()) return t.status();
      a.tensor = std::make_shared<const Tensor>(std::move(*t));
      break;
    }
    case onnx::AttributeProto::GRAPH:
    case onnx::AttributeProto::GRAPHS:
      return unsupported("GRAPH (control flow)");
    case onnx::AttributeProto::SPARSE_TENSOR:
    case onnx::AttributeProto::SPARSE_TENSORS:
      return unsupported("SPARSE_TENSOR");
    case onnx::AttributeProto::TYPE_PROTO:
    case onnx::AttributeProto::TYPE_PROTOS:
      return unsupported("TYPE_PROTO");
    case onnx::AttributeProto::TENSORS:
      return unsupported("TENSORS");
    default:
      return InvalidArgumentError(where + ": attribute " + Quote(proto.name()) +
                                  " has no valid type");
  }
  return a;
}

// Fills dtype and shape of `v` from a ValueInfoProto.
Status ReadValueInfo(const onnx::ValueInfoProto& info, const std::string& what, Value& v) {
  if (!info.type().has_tensor_type()) {
    return UnimplementedError(what + " " + Quote(info.name()) + " is not a tensor");
  }
  const auto& tt = info.type().tensor_type();
  auto dtype = DTypeFromOnnx(tt.elem_type());
  if (!dtype.ok()) return dtype.status().WithContext(what + " " + Quote(info.name()));
  v.dtype = *dtype;
  if (tt.has_shape()) {
    if (tt.shape().dim_size() > kMaxRank) {
      return InvalidArgumentError(what + " " + Quote(info.name()) + ": rank " +
                                  std::to_string(tt.shape().dim_size()) + " exceeds " +
                                  std::to_string(kMaxRank));
    }
    v.shape.clear();
    for (const auto& d : tt.shape().dim()) {
      if (d.has_dim_value()) {
        if (d.dim_value() < 0) {
          return InvalidArgumentError(what + " " + Quote(info.name()) + " has a negative dim");
        }
        v.shape.push_back(d.dim_value());
      } else {
        v.shape.push_back(-1);
      }
    }
    v.shape_known = true;
  }
  return Status::Ok();
}

// A Constant node's value as a tensor.
Result<Tensor> ConstantNodeValue(const onnx::NodeProto& node, const std::string& where) {
  for (const auto& attr : node.attribute()) {
    const std::string& name = attr.name();
    if (name == "value") {
      if (attr.type() != onnx::AttributeProto::TENSOR) break;
      return TensorFromProto(attr.t(), where + " value");
    }
    if (name == "value_float") {
      float f = attr.f();
      return Tensor::FromVector<float>({}, std::span<const float>(&f, 1));
    }
    if (name == "value_floats") {
      std::vector<float> v(attr.floats().begin(), attr.floats().end());
      return Tensor::FromVector<float>({static_cast<int64_t>(v.size())}, v);
    }
    if (name == "value_int") {
      int64_t i = attr.i();
      return Tensor::FromVector<int64_t>({}, std::span<const int64_t>(&i, 1));
    }
    if (name == "value_ints") {
      std::vector<int64_t> v(attr.ints().begin(), attr.ints().end());
      return Tensor::FromVector<int64_t>({static_cast<int64_t>(v.size())}, v);
    }
    if (name == "sparse_value" || name == "value_string" || name == "value_strings") {
      return UnimplementedError(where + ": attribute " + Quote(name) + " is not supported");
    }
  }
  return InvalidArgumentError(where + ": has no value attribute");
}

}  // namespace

Result<Graph> ParseOnnxModel(std::string_view bytes) {
  if (bytes.empty()) return InvalidArgumentError("ONNX model: the input is empty");
  if (bytes.size() > kMaxModelBytes) {
    return InvalidArgumentError("ONNX model: " + std::to_string(bytes.size()) +
                                " bytes exceed the 2 GiB limit");
  }
  onnx::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgumentError("ONNX model: the bytes are not a valid ModelProto (truncated or "
                                "corrupt protobuf, " +
                                std::to_string(bytes.size()) + " bytes)");
  }
  if (!model.has_graph()) return InvalidArgumentError("ONNX model: it has no graph");

  Graph g;
  g.name = model.graph().name();
  bool found_opset = false;
  for (const auto& op : model.opset_import()) {
    if (op.domain().empty() || op.domain() == "ai.onnx") {
      g.opset = op.version();
      found_opset = true;
    }
  }
  if (!found_opset) {
    // IR version 3 and newer models always declare it; older ones mean opset 1.
    return UnimplementedError("ONNX model: no default-domain opset_import; opsets " +
                              std::to_string(kMinOpset) + "-" + std::to_string(kMaxOpset) +
                              " are supported");
  }
  if (g.opset < kMinOpset || g.opset > kMaxOpset) {
    return UnimplementedError("ONNX model: opset " + std::to_string(g.opset) +
                              " is outside the supported range " + std::to_string(kMinOpset) +
                              "-" + std::to_string(kMaxOpset));
  }

  const onnx::GraphProto& gp = model.graph();
  if (gp.sparse_initializer_size() > 0) {
    return UnimplementedError("ONNX model: sparse initializers are not supported");
  }
  for (const auto& init : gp.initializer()) {
    if (init.name().empty()) return InvalidArgumentError("ONNX model: an initializer has no name");
    if (g.FindValue(init.name()) != kNoValue) {
      return InvalidArgumentError("ONNX model: initializer " + Quote(init.name()) +
                                  " is defined twice");
    }
    HML_ASSIGN_OR_RETURN(Tensor t, TensorFromProto(init, "initializer"));
    g.AddConstant(init.name(), std::move(t));
  }
  for (const auto& input : gp.input()) {
    const ValueId existing = g.FindValue(input.name());
    if (existing != kNoValue) continue;  // an initializer also listed as an input (IR < 4)
    if (input.name().empty()) return InvalidArgumentError("ONNX model: a graph input has no name");
    Value v;
    v.name = input.name();
    HML_RETURN_IF_ERROR(ReadValueInfo(input, "graph input", v));
    g.inputs.push_back(g.AddValue(std::move(v)));
  }

  for (int i = 0; i < gp.node_size(); ++i) {
    const onnx::NodeProto& np = gp.node(i);
    const std::string where =
        np.op_type() + (np.name().empty() ? " #" + std::to_string(i) : " " + Quote(np.name()));
    if (np.op_type().empty()) {
      return InvalidArgumentError("ONNX model: node #" + std::to_string(i) + " has no op_type");
    }
    const bool default_domain = np.domain().empty() || np.domain() == "ai.onnx";
    if (default_domain && np.op_type() == "Constant") {
      if (np.output_size() != 1 || np.output(0).empty()) {
        return InvalidArgumentError(where + ": must have exactly one output");
      }
      if (g.FindValue(np.output(0)) != kNoValue) {
        return InvalidArgumentError(where + ": output " + Quote(np.output(0)) +
                                    " is already defined");
      }
      HML_ASSIGN_OR_RETURN(Tensor t, ConstantNodeValue(np, where));
      g.AddConstant(np.output(0), std::move(t));
      continue;
    }
    Node node;
    node.name = np.name();
    node.op_type = np.op_type();
    node.domain = default_domain ? "" : np.domain();
    for (const auto& attr : np.attribute()) {
      HML_ASSIGN_OR_RETURN(Attribute a, AttributeFromProto(attr, where));
      node.attrs.Set(attr.name(), std::move(a));
    }
    node.inputs.reserve(static_cast<size_t>(np.input_size()));
    for (const std::string& in : np.input()) {
      if (in.empty()) {
        node.inputs.push_back(kNoValue);
        continue;
      }
      ValueId id = g.FindValue(in);
      if (id == kNoValue) {
        // Produced by a later node (graphs need not be sorted): create it now.
        Value v;
        v.name = in;
        id = g.AddValue(std::move(v));
      }
      node.inputs.push_back(id);
    }
    for (const std::string& out : np.output()) {
      if (out.empty()) {
        node.outputs.push_back(kNoValue);
        continue;
      }
      ValueId id = g.FindValue(out);
      if (id == kNoValue) {
        Value v;
        v.name = out;
        id = g.AddValue(std::move(v));
      } else if (g.value(id).is_constant() ||
                 std::find(g.inputs.begin(), g.inputs.end(), id) != g.inputs.end()) {
        return InvalidArgumentError(where + ": output " + Quote(out) +
                                    " overwrites a graph input or initializer");
      }
      node.outputs.push_back(id);
    }
    g.nodes.push_back(std::move(node));
  }

  for (const auto& output : gp.output()) {
    const ValueId id = g.FindValue(output.name());
    if (id == kNoValue) {
      return InvalidArgumentError("ONNX model: graph output " + Quote(output.name()) +
                                  " is not produced by any node");
    }
    // The declared type, when there is one (exporters may leave it out): it is written back on
    // export, where OpenCV and the ONNX checker require it.
    if (output.type().has_tensor_type() && output.type().tensor_type().elem_type() != 0 &&
        !g.value(id).is_constant()) {
      HML_RETURN_IF_ERROR(ReadValueInfo(output, "graph output", g.value(id)));
    }
    g.outputs.push_back(id);
  }
  HML_RETURN_IF_ERROR(g.Validate().WithContext("ONNX model"));
  return g;
}

Result<Tensor> ParseOnnxTensor(std::string_view bytes) {
  if (bytes.size() > kMaxModelBytes) return InvalidArgumentError("ONNX tensor: too large");
  onnx::TensorProto proto;
  if (!proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgumentError("ONNX tensor: the bytes are not a valid TensorProto");
  }
  return TensorFromProto(proto, "tensor");
}

namespace {

void TensorToProto(const Tensor& t, std::string_view name, onnx::TensorProto& proto) {
  proto.set_name(std::string(name));
  proto.set_data_type(static_cast<int>(t.dtype()));
  for (int64_t d : t.shape()) proto.add_dims(d);
  proto.set_raw_data(t.raw_data(), t.byte_size());
}

void ValueInfoToProto(const Value& v, onnx::ValueInfoProto& info) {
  info.set_name(v.name);
  auto* tt = info.mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int>(v.dtype));
  if (!v.shape_known) return;
  auto* shape = tt->mutable_shape();
  for (size_t i = 0; i < v.shape.size(); ++i) {
    auto* dim = shape->add_dim();
    if (v.shape[i] >= 0) {
      dim->set_dim_value(v.shape[i]);
    } else {
      dim->set_dim_param(v.name + "_dim" + std::to_string(i));
    }
  }
}

}  // namespace

Result<std::string> SerializeOnnxModel(const Graph& graph) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("hybridml");
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(graph.opset);
  std::vector<std::string> domains;
  for (const Node& n : graph.nodes) {
    if (!n.domain.empty() && std::find(domains.begin(), domains.end(), n.domain) == domains.end()) {
      domains.push_back(n.domain);
      auto* extra = model.add_opset_import();
      extra->set_domain(n.domain);
      extra->set_version(1);
    }
  }
  onnx::GraphProto* gp = model.mutable_graph();
  gp->set_name(graph.name.empty() ? "hybridml" : graph.name);
  for (const Value& v : graph.values) {
    if (v.is_constant()) TensorToProto(*v.constant, v.name, *gp->add_initializer());
  }
  for (ValueId in : graph.inputs) ValueInfoToProto(graph.value(in), *gp->add_input());
  // Graph outputs must carry a type and shape (the ONNX checker and OpenCV insist).
  bool untyped = false;
  for (ValueId out : graph.outputs) {
    untyped |= graph.value(out).dtype == DType::kUndefined || !graph.value(out).shape_known;
  }
  Graph typed;
  if (untyped) {
    typed = graph;
    FillOutputTypes(typed);
  }
  const Graph& g = untyped ? typed : graph;
  for (ValueId out : g.outputs) ValueInfoToProto(g.value(out), *gp->add_output());
  for (const Node& n : graph.nodes) {
    onnx::NodeProto* np = gp->add_node();
    np->set_name(n.name);
    np->set_op_type(n.op_type);
    if (!n.domain.empty()) np->set_domain(n.domain);
    for (ValueId in : n.inputs) np->add_input(in == kNoValue ? "" : graph.value(in).name);
    for (ValueId out : n.outputs) np->add_output(out == kNoValue ? "" : graph.value(out).name);
    for (const auto& [name, a] : n.attrs.map()) {
      onnx::AttributeProto* ap = np->add_attribute();
      ap->set_name(name);
      switch (a.kind) {
        case Attribute::Kind::kInt:
          ap->set_type(onnx::AttributeProto::INT);
          ap->set_i(a.i);
          break;
        case Attribute::Kind::kFloat:
          ap->set_type(onnx::AttributeProto::FLOAT);
          ap->set_f(a.f);
          break;
        case Attribute::Kind::kString:
          ap->set_type(onnx::AttributeProto::STRING);
          ap->set_s(a.s);
          break;
        case Attribute::Kind::kInts:
          ap->set_type(onnx::AttributeProto::INTS);
          for (int64_t x : a.ints) ap->add_ints(x);
          break;
        case Attribute::Kind::kFloats:
          ap->set_type(onnx::AttributeProto::FLOATS);
          for (float x : a.floats) ap->add_floats(x);
          break;
        case Attribute::Kind::kStrings:
          ap->set_type(onnx::AttributeProto::STRINGS);
          for (const std::string& x : a.strings) ap->add_strings(x);
          break;
        case Attribute::Kind::kTensor:
          ap->set_type(onnx::AttributeProto::TENSOR);
          TensorToProto(*a.tensor, "", *ap->mutable_t());
          break;
      }
    }
  }
  std::string out;
  if (!model.SerializeToString(&out)) {
    return InternalError("ONNX export: serialization failed (model larger than 2 GiB?)");
  }
  return out;
}

Result<std::string> SerializeOnnxTensor(const Tensor& tensor, std::string_view name) {
  onnx::TensorProto proto;
  TensorToProto(tensor, name, proto);
  std::string out;
  if (!proto.SerializeToString(&out)) return InternalError("ONNX tensor: serialization failed");
  return out;
}

}  // namespace hml::runtime
