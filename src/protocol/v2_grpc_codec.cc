// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/protocol/v2_grpc_codec.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <type_traits>
#include <utility>

namespace hml::protocol {
namespace {

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// Copies `n` little-endian elements from `src` into `dst` (host order).
template <typename T>
void FromLittleEndian(const char* src, T* dst, int64_t n) {
  if constexpr (std::endian::native == std::endian::little || sizeof(T) == 1) {
    if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(T));
  } else {
    for (int64_t i = 0; i < n; ++i) {
      char bytes[sizeof(T)];
      std::reverse_copy(src + i * sizeof(T), src + (i + 1) * sizeof(T), bytes);
      std::memcpy(dst + i, bytes, sizeof(T));
    }
  }
}

// Appends `n` host-order elements as little-endian bytes to `out`.
template <typename T>
void AppendLittleEndian(const T* src, int64_t n, std::string* out) {
  const char* bytes = reinterpret_cast<const char*>(src);
  if constexpr (std::endian::native == std::endian::little || sizeof(T) == 1) {
    out->append(bytes, static_cast<size_t>(n) * sizeof(T));
  } else {
    for (int64_t i = 0; i < n; ++i) {
      char swapped[sizeof(T)];
      std::reverse_copy(bytes + i * sizeof(T), bytes + (i + 1) * sizeof(T), swapped);
      out->append(swapped, sizeof(T));
    }
  }
}

// Calls `f(T{})` with the element type of `dtype`. REQUIRES: dtype is not kUndefined.
template <typename F>
auto VisitDType(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kUInt8:
      return f(uint8_t{});
    case DType::kInt8:
      return f(int8_t{});
    case DType::kInt32:
      return f(int32_t{});
    case DType::kInt64:
      return f(int64_t{});
    case DType::kFloat32:
    case DType::kUndefined:
      break;
  }
  return f(float{});
}

// Names and sizes of the typed content fields, to find which ones are filled.
struct ContentField {
  std::string_view name;
  int size;
};

std::vector<ContentField> ContentFields(const inference::InferTensorContents& c) {
  return {
      {"bool_contents", c.bool_contents_size()},     {"int_contents", c.int_contents_size()},
      {"int64_contents", c.int64_contents_size()},   {"uint_contents", c.uint_contents_size()},
      {"uint64_contents", c.uint64_contents_size()}, {"fp32_contents", c.fp32_contents_size()},
      {"fp64_contents", c.fp64_contents_size()},     {"bytes_contents", c.bytes_contents_size()}};
}

// The typed field that carries `dtype`.
std::string_view ContentFieldFor(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "fp32_contents";
    case DType::kInt64:
      return "int64_contents";
    case DType::kInt8:
    case DType::kInt32:
      return "int_contents";
    case DType::kUInt8:
      return "uint_contents";
    case DType::kUndefined:
      break;
  }
  return "";
}

// Copies the repeated field `values` into `out`, checking that each value fits T (INT8 and UINT8
// travel widened to 32 bits).
template <typename T, typename Repeated>
Status CopyTyped(const Repeated& values, std::string_view what, T* out) {
  for (int i = 0; i < values.size(); ++i) {
    auto v = values.Get(i);
    using V = decltype(v);
    if constexpr (!std::is_floating_point_v<T> && sizeof(T) < sizeof(V)) {
      bool in_range = v <= static_cast<V>(std::numeric_limits<T>::max());
      if constexpr (std::is_signed_v<V>)
        in_range &= v >= static_cast<V>(std::numeric_limits<T>::min());
      if (!in_range) {
        return InvalidArgumentError(std::string(what) + ": element " + std::to_string(i) + " (" +
                                    std::to_string(v) + ") is out of range for " +
                                    std::string(V2DataTypeName(DTypeOf<T>())));
      }
    }
    out[i] = static_cast<T>(v);
  }
  return Status::Ok();
}

Status CopyTypedContents(const inference::InferTensorContents& c, std::string_view what,
                         Tensor* tensor) {
  switch (tensor->dtype()) {
    case DType::kFloat32:
      return CopyTyped(c.fp32_contents(), what, tensor->data<float>());
    case DType::kInt64:
      return CopyTyped(c.int64_contents(), what, tensor->data<int64_t>());
    case DType::kInt32:
      return CopyTyped(c.int_contents(), what, tensor->data<int32_t>());
    case DType::kInt8:
      return CopyTyped(c.int_contents(), what, tensor->data<int8_t>());
    case DType::kUInt8:
      return CopyTyped(c.uint_contents(), what, tensor->data<uint8_t>());
    case DType::kUndefined:
      break;
  }
  return InternalError(std::string(what) + ": no element type");
}

Result<V2Parameters> DecodeParameters(
    const google::protobuf::Map<std::string, inference::InferParameter>& map,
    std::string_view owner) {
  V2Parameters parameters;
  for (const auto& [key, value] : map) {
    HML_ASSIGN_OR_RETURN(
        V2Parameter p, ParameterFromProto(value, std::string(owner) + " parameter " + Quoted(key)));
    parameters.emplace(key, std::move(p));
  }
  return parameters;
}

// Decodes one InferInputTensor or InferOutputTensor. `raw` is its raw contents entry, or nullptr
// when the message carries typed contents; `raw_field` names that entry's field in messages.
template <typename TensorProto>
Result<NamedTensor> DecodeTensor(const TensorProto& proto, int index, std::string_view role,
                                 const std::string* raw, std::string_view raw_field) {
  std::string what = std::string(role) + " " + std::to_string(index);
  if (proto.name().empty()) return InvalidArgumentError(what + ": missing 'name'");
  NamedTensor result;
  result.name = proto.name();
  what = std::string(role) + " " + Quoted(result.name);
  if (proto.datatype().empty()) return InvalidArgumentError(what + ": missing 'datatype'");
  HML_ASSIGN_OR_RETURN(result.parameters, DecodeParameters(proto.parameters(), what));
  HML_ASSIGN_OR_RETURN(DType dtype, DTypeFromV2DataType(proto.datatype(), what));

  if (proto.shape_size() > kMaxRank) {
    return InvalidArgumentError(what + ": rank " + std::to_string(proto.shape_size()) +
                                " exceeds the maximum of " + std::to_string(kMaxRank));
  }
  Shape shape(proto.shape().begin(), proto.shape().end());
  for (int64_t d : shape) {
    if (d < 0) {
      return InvalidArgumentError(what + ": shape dimension " + std::to_string(d) + " is negative");
    }
  }
  Result<int64_t> count = CheckedNumElements(shape, dtype);
  if (!count.ok()) return InvalidArgumentError(what + ": " + std::string(count.status().message()));

  // Every size is checked against the message before allocating.
  const std::vector<ContentField> fields = ContentFields(proto.contents());
  if (raw != nullptr) {
    for (const ContentField& field : fields) {
      if (field.size != 0) {
        return InvalidArgumentError(what + ": has both " + std::string(field.name) + " and a " +
                                    std::string(raw_field) + " entry; use one or the other");
      }
    }
    const size_t need = static_cast<size_t>(*count) * DTypeSize(dtype);
    if (raw->size() != need) {
      return InvalidArgumentError(what + ": " + std::string(raw_field) + " entry holds " +
                                  std::to_string(raw->size()) + " bytes but shape " +
                                  ShapeToString(shape) + " of " + proto.datatype() + " needs " +
                                  std::to_string(need));
    }
    HML_ASSIGN_OR_RETURN(result.tensor, Tensor::Allocate(dtype, std::move(shape)));
    VisitDType(dtype, [&](auto zero) {
      using T = decltype(zero);
      FromLittleEndian(raw->data(), result.tensor.data<T>(), *count);
    });
    return result;
  }

  const std::string_view expected = ContentFieldFor(dtype);
  int have = 0;
  for (const ContentField& field : fields) {
    if (field.name == expected) {
      have = field.size;
    } else if (field.size != 0) {
      return InvalidArgumentError(what + ": datatype " + proto.datatype() + " expects " +
                                  std::string(expected) + " but " + std::string(field.name) +
                                  " holds " + std::to_string(field.size) + " values");
    }
  }
  if (have == 0 && *count != 0) {
    return InvalidArgumentError(what + ": no data (contents are empty and there is no " +
                                std::string(raw_field) + ")");
  }
  if (have != *count) {
    return InvalidArgumentError(what + ": shape " + ShapeToString(shape) + " needs " +
                                std::to_string(*count) + " elements but " + std::string(expected) +
                                " holds " + std::to_string(have));
  }
  HML_ASSIGN_OR_RETURN(result.tensor, Tensor::Allocate(dtype, std::move(shape)));
  HML_RETURN_IF_ERROR(CopyTypedContents(proto.contents(), what, &result.tensor));
  return result;
}

// Decodes the tensors of a request or response, pairing them with their raw entries.
template <typename TensorList>
Result<std::vector<NamedTensor>> DecodeTensors(
    const TensorList& list, const google::protobuf::RepeatedPtrField<std::string>& raw,
    std::string_view role, std::string_view raw_field) {
  if (!raw.empty() && raw.size() != list.size()) {
    return InvalidArgumentError(std::string(raw_field) + " has " + std::to_string(raw.size()) +
                                " entries for " + std::to_string(list.size()) + " " +
                                std::string(role) + "s; it needs one per " + std::string(role));
  }
  std::vector<NamedTensor> tensors;
  std::set<std::string, std::less<>> names;
  for (int i = 0; i < list.size(); ++i) {
    const std::string* entry = raw.empty() ? nullptr : &raw.Get(i);
    HML_ASSIGN_OR_RETURN(NamedTensor t, DecodeTensor(list.Get(i), i, role, entry, raw_field));
    if (!names.insert(t.name).second) {
      return InvalidArgumentError(std::string(role) + " " + Quoted(t.name) + " appears twice");
    }
    tensors.push_back(std::move(t));
  }
  return tensors;
}

void EncodeParameters(const V2Parameters& parameters,
                      google::protobuf::Map<std::string, inference::InferParameter>* map) {
  for (const auto& [key, value] : parameters) ParameterToProto(value, &(*map)[key]);
}

// Fills the name, datatype and shape of an InferInputTensor or InferOutputTensor.
template <typename TensorProto>
Status EncodeHeader(const NamedTensor& t, std::string_view role, TensorProto* proto) {
  std::string_view datatype = V2DataTypeName(t.tensor.dtype());
  if (datatype.empty()) {
    return InvalidArgumentError(std::string(role) + " " + Quoted(t.name) + " has no element type");
  }
  proto->set_name(t.name);
  proto->set_datatype(std::string(datatype));
  for (int64_t d : t.tensor.shape()) proto->add_shape(d);
  EncodeParameters(t.parameters, proto->mutable_parameters());
  return Status::Ok();
}

std::string RawBytes(const Tensor& tensor) {
  std::string bytes;
  bytes.reserve(tensor.byte_size());
  VisitDType(tensor.dtype(), [&](auto zero) {
    using T = decltype(zero);
    AppendLittleEndian(tensor.data<T>(), tensor.num_elements(), &bytes);
  });
  return bytes;
}

void EncodeTyped(const Tensor& tensor, inference::InferTensorContents* c) {
  switch (tensor.dtype()) {
    case DType::kFloat32:
      c->mutable_fp32_contents()->Add(tensor.values<float>().begin(), tensor.values<float>().end());
      break;
    case DType::kInt64:
      c->mutable_int64_contents()->Add(tensor.values<int64_t>().begin(),
                                       tensor.values<int64_t>().end());
      break;
    case DType::kInt32:
      c->mutable_int_contents()->Add(tensor.values<int32_t>().begin(),
                                     tensor.values<int32_t>().end());
      break;
    case DType::kInt8:
      for (int8_t v : tensor.values<int8_t>()) c->add_int_contents(v);
      break;
    case DType::kUInt8:
      for (uint8_t v : tensor.values<uint8_t>()) c->add_uint_contents(v);
      break;
    case DType::kUndefined:
      break;
  }
}

}  // namespace

Result<V2Parameter> ParameterFromProto(const inference::InferParameter& parameter,
                                       std::string_view what) {
  using P = inference::InferParameter;
  switch (parameter.parameter_choice_case()) {
    case P::kBoolParam:
      return V2Parameter(parameter.bool_param());
    case P::kInt64Param:
      return V2Parameter(parameter.int64_param());
    case P::kStringParam:
      return V2Parameter(parameter.string_param());
    case P::kDoubleParam:
      return V2Parameter(parameter.double_param());
    case P::kUint64Param: {
      // Same convention as JSON: values that fit int64 are int64.
      uint64_t u = parameter.uint64_param();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return V2Parameter(static_cast<int64_t>(u));
      }
      return V2Parameter(u);
    }
    case P::PARAMETER_CHOICE_NOT_SET:
      break;
  }
  return InvalidArgumentError(std::string(what) + " has no value");
}

void ParameterToProto(const V2Parameter& parameter, inference::InferParameter* out) {
  std::visit(
      [out](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, bool>) {
          out->set_bool_param(v);
        } else if constexpr (std::is_same_v<V, int64_t>) {
          out->set_int64_param(v);
        } else if constexpr (std::is_same_v<V, uint64_t>) {
          out->set_uint64_param(v);
        } else if constexpr (std::is_same_v<V, double>) {
          out->set_double_param(v);
        } else {
          out->set_string_param(v);
        }
      },
      parameter);
}

Result<V2InferRequest> DecodeModelInferRequest(const inference::ModelInferRequest& message) {
  V2InferRequest request;
  request.model_name = message.model_name();
  request.model_version = message.model_version();
  request.id = message.id();
  HML_ASSIGN_OR_RETURN(request.parameters, DecodeParameters(message.parameters(), "request"));
  if (message.inputs().empty()) return InvalidArgumentError("request has no inputs");
  HML_ASSIGN_OR_RETURN(request.inputs, DecodeTensors(message.inputs(), message.raw_input_contents(),
                                                     "input", "raw_input_contents"));
  std::set<std::string, std::less<>> names;
  for (int i = 0; i < message.outputs_size(); ++i) {
    const auto& proto = message.outputs(i);
    if (proto.name().empty()) {
      return InvalidArgumentError("requested output " + std::to_string(i) + ": missing 'name'");
    }
    V2RequestedOutput output;
    output.name = proto.name();
    const std::string what = "requested output " + Quoted(output.name);
    if (!names.insert(output.name).second) return InvalidArgumentError(what + " appears twice");
    HML_ASSIGN_OR_RETURN(output.parameters, DecodeParameters(proto.parameters(), what));
    request.outputs.push_back(std::move(output));
  }
  return request;
}

Status EncodeModelInferRequest(const V2InferRequest& request, V2TensorEncoding encoding,
                               inference::ModelInferRequest* message) {
  message->Clear();
  message->set_model_name(request.model_name);
  message->set_model_version(request.model_version);
  message->set_id(request.id);
  EncodeParameters(request.parameters, message->mutable_parameters());
  for (const NamedTensor& t : request.inputs) {
    auto* proto = message->add_inputs();
    HML_RETURN_IF_ERROR(EncodeHeader(t, "input", proto));
    if (encoding == V2TensorEncoding::kRaw) {
      message->add_raw_input_contents(RawBytes(t.tensor));
    } else {
      EncodeTyped(t.tensor, proto->mutable_contents());
    }
  }
  for (const V2RequestedOutput& output : request.outputs) {
    auto* proto = message->add_outputs();
    proto->set_name(output.name);
    EncodeParameters(output.parameters, proto->mutable_parameters());
  }
  return Status::Ok();
}

Status EncodeModelInferResponse(std::string_view model_name, std::string_view model_version,
                                std::string_view id, std::span<const NamedTensor> outputs,
                                inference::ModelInferResponse* message,
                                const V2Parameters& parameters) {
  message->Clear();
  message->set_model_name(std::string(model_name));
  message->set_model_version(std::string(model_version));
  message->set_id(std::string(id));
  EncodeParameters(parameters, message->mutable_parameters());
  for (const NamedTensor& t : outputs) {
    HML_RETURN_IF_ERROR(EncodeHeader(t, "output", message->add_outputs()));
    message->add_raw_output_contents(RawBytes(t.tensor));
  }
  return Status::Ok();
}

Result<V2InferResponse> DecodeModelInferResponse(const inference::ModelInferResponse& message) {
  V2InferResponse response;
  response.model_name = message.model_name();
  response.model_version = message.model_version();
  response.id = message.id();
  HML_ASSIGN_OR_RETURN(response.parameters, DecodeParameters(message.parameters(), "response"));
  HML_ASSIGN_OR_RETURN(response.outputs,
                       DecodeTensors(message.outputs(), message.raw_output_contents(), "output",
                                     "raw_output_contents"));
  return response;
}

}  // namespace hml::protocol
