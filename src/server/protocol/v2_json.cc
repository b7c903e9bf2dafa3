// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/protocol/v2_json.h"

#include <charconv>
#include <cmath>
#include <exception>
#include <limits>
#include <new>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

namespace hml::server {
namespace {

using Json = nlohmann::json;

// Root object, "inputs" array, tensor object, then one level per dimension of `data`.
constexpr int kMinDepth = 3 + 1 + kMaxRank;

// ---------------------------------------------------------------------------------------------
// Reading.

// Rejects bodies whose arrays/objects nest deeper than `max_depth`, in one pass that skips
// string contents (brackets inside strings do not nest).
Status CheckDepth(std::string_view body, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        return ResourceExhaustedError("JSON body nests deeper than " + std::to_string(max_depth) +
                                      " levels");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return Status::Ok();
}

// A SAX consumer that accepts everything and keeps the parser's error text. Used only after a
// failed parse, to tell the client where and why, without enabling exceptions.
class ParseErrorRecorder : public nlohmann::json_sax<Json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& error) override {
    message_ = error.what();
    // Drop the library's "[json.exception.parse_error.101] " prefix: it means nothing to clients.
    if (size_t end = message_.find("] ");
        !message_.empty() && message_[0] == '[' && end != std::string::npos) {
      message_.erase(0, end + 2);
    }
    return false;
  }
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

Result<Json> ParseBody(std::string_view body, const V2JsonOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  if (body.size() > options.max_body_bytes) {
    return ResourceExhaustedError("JSON body of " + std::to_string(body.size()) +
                                  " bytes exceeds the limit of " +
                                  std::to_string(options.max_body_bytes) + " bytes");
  }
  HML_RETURN_IF_ERROR(CheckDepth(body, options.max_depth));
  Json json = Json::parse(body.begin(), body.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    ParseErrorRecorder recorder;
    Json::sax_parse(body.begin(), body.end(), &recorder);
    return InvalidArgumentError("malformed JSON: " + recorder.message());
  }
  if (!json.is_object()) return InvalidArgumentError("JSON body must be an object");
  return json;
}

// The member `key` of object `object`, or nullptr. Never inserts, never throws.
const Json* Member(const Json& object, std::string_view key) {
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// An optional string member; "" when absent.
Result<std::string> OptionalString(const Json& object, std::string_view key,
                                   std::string_view what) {
  const Json* value = Member(object, key);
  if (value == nullptr) return std::string();
  if (!value->is_string()) {
    return InvalidArgumentError(std::string(what) + ": " + Quoted(key) + " must be a string");
  }
  return value->get_ref<const std::string&>();
}

Result<V2Parameters> ParametersFromJson(const Json* object, std::string_view what) {
  V2Parameters parameters;
  if (object == nullptr) return parameters;
  if (!object->is_object()) {
    return InvalidArgumentError(std::string(what) + ": 'parameters' must be an object");
  }
  for (auto it = object->begin(); it != object->end(); ++it) {
    const Json& v = it.value();
    V2Parameter parameter;
    if (v.is_boolean()) {
      parameter = v.get<bool>();
    } else if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        parameter = static_cast<int64_t>(u);
      } else {
        parameter = u;
      }
    } else if (v.is_number_integer()) {
      parameter = v.get<int64_t>();
    } else if (v.is_number_float()) {
      parameter = v.get<double>();
    } else if (v.is_string()) {
      parameter = v.get<std::string>();
    } else {
      return InvalidArgumentError(std::string(what) + ": parameter " + Quoted(it.key()) +
                                  " must be a bool, number or string");
    }
    parameters.emplace(it.key(), std::move(parameter));
  }
  return parameters;
}

Result<Shape> ShapeFromJson(const Json* shape_json, std::string_view what) {
  if (shape_json == nullptr) return InvalidArgumentError(std::string(what) + ": missing 'shape'");
  if (!shape_json->is_array()) {
    return InvalidArgumentError(std::string(what) + ": 'shape' must be an array of integers");
  }
  if (shape_json->size() > static_cast<size_t>(kMaxRank)) {
    return InvalidArgumentError(std::string(what) + ": rank " + std::to_string(shape_json->size()) +
                                " exceeds the maximum of " + std::to_string(kMaxRank));
  }
  Shape shape;
  for (const Json& d : *shape_json) {
    if (d.is_number_unsigned()) {
      uint64_t u = d.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return InvalidArgumentError(std::string(what) + ": shape dimension " + std::to_string(u) +
                                    " is too large");
      }
      shape.push_back(static_cast<int64_t>(u));
    } else if (d.is_number_integer()) {
      int64_t v = d.get<int64_t>();
      if (v < 0) {
        return InvalidArgumentError(std::string(what) + ": shape dimension " + std::to_string(v) +
                                    " is negative");
      }
      shape.push_back(v);
    } else {
      return InvalidArgumentError(std::string(what) + ": 'shape' must be an array of integers");
    }
  }
  return shape;
}

// Checks that `node` (at nesting level `level`) is nested exactly along `shape`.
Status CheckNesting(const Json& node, const Shape& shape, size_t level, std::string_view what) {
  if (level == shape.size()) {
    if (node.is_array()) {
      return InvalidArgumentError(std::string(what) + ": data nests deeper than shape " +
                                  ShapeToString(shape));
    }
    return Status::Ok();
  }
  const std::string want = std::to_string(shape[level]);
  if (!node.is_array()) {
    return InvalidArgumentError(std::string(what) + ": data nesting does not match shape " +
                                ShapeToString(shape) + ": level " + std::to_string(level) +
                                " holds a scalar where an array of " + want + " is needed");
  }
  if (node.size() != static_cast<size_t>(shape[level])) {
    return InvalidArgumentError(std::string(what) + ": data nesting does not match shape " +
                                ShapeToString(shape) + ": level " + std::to_string(level) +
                                " has " + std::to_string(node.size()) + " entries, not " + want);
  }
  for (const Json& child : node) HML_RETURN_IF_ERROR(CheckNesting(child, shape, level + 1, what));
  return Status::Ok();
}

// Converts one JSON element (flat index `index`) to T, exactly or not at all.
template <typename T>
Status ElementFromJson(const Json& v, int64_t index, std::string_view what, T* out) {
  auto fail = [&](std::string_view problem) {
    return InvalidArgumentError(std::string(what) + ": data element " + std::to_string(index) +
                                " " + std::string(problem));
  };
  if (v.is_array()) return fail("is an array: nest data along the whole shape or not at all");
  if (!v.is_number()) return fail("is not a number");
  if constexpr (std::is_floating_point_v<T>) {
    static_assert(std::is_same_v<T, float>);
    // The largest magnitudes that still round to FLT_MAX (not to infinity) lie below
    // FLT_MAX + half an ulp = 0x1.ffffffp127; the shortest text of FLT_MAX reads back above
    // FLT_MAX.
    double d = v.get<double>();
    if (!std::isfinite(d) || std::fabs(d) >= 0x1.ffffffp127) {
      return fail("is out of range for " + std::string(V2DataTypeName(DTypeOf<T>())));
    }
    *out = static_cast<T>(d);
  } else {
    if (v.is_number_float()) return fail("is not an integer");
    bool in_range;
    if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      in_range = u <= static_cast<uint64_t>(std::numeric_limits<T>::max());
      if (in_range) *out = static_cast<T>(u);
    } else {
      int64_t s = v.get<int64_t>();
      in_range = s >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
                 s <= static_cast<int64_t>(std::numeric_limits<T>::max());
      if (in_range) *out = static_cast<T>(s);
    }
    if (!in_range) return fail("is out of range for " + std::string(V2DataTypeName(DTypeOf<T>())));
  }
  return Status::Ok();
}

// Writes the leaves under `node` in row-major order. `levels` is how many array levels remain
// above the leaves (the shape's rank for nested data, 1 for flat data). Structure and count were
// checked before the tensor was allocated.
template <typename T>
Status FillFromJson(const Json& node, size_t levels, std::string_view what, T* out, int64_t* next) {
  if (levels == 0) {
    HML_RETURN_IF_ERROR(ElementFromJson(node, *next, what, out + *next));
    ++*next;
    return Status::Ok();
  }
  for (const Json& child : node)
    HML_RETURN_IF_ERROR(FillFromJson(child, levels - 1, what, out, next));
  return Status::Ok();
}

template <typename T>
Status FillTensor(const Json& data, size_t levels, std::string_view what, Tensor* tensor) {
  int64_t next = 0;
  return FillFromJson(data, levels, what, tensor->data<T>(), &next);
}

Status FillTensorOfType(const Json& data, size_t levels, std::string_view what, Tensor* tensor) {
  switch (tensor->dtype()) {
    case DType::kFloat32:
      return FillTensor<float>(data, levels, what, tensor);
    case DType::kUInt8:
      return FillTensor<uint8_t>(data, levels, what, tensor);
    case DType::kInt8:
      return FillTensor<int8_t>(data, levels, what, tensor);
    case DType::kInt32:
      return FillTensor<int32_t>(data, levels, what, tensor);
    case DType::kInt64:
      return FillTensor<int64_t>(data, levels, what, tensor);
    case DType::kUndefined:
      break;
  }
  return InternalError(std::string(what) + ": no element type");
}

// One tensor object of "inputs" or "outputs"; `role` is "input" or "output".
Result<NamedTensor> TensorFromJson(const Json& j, size_t index, std::string_view role) {
  std::string what = std::string(role) + " " + std::to_string(index);
  if (!j.is_object()) return InvalidArgumentError(what + ": must be an object");
  const Json* name = Member(j, "name");
  if (name == nullptr) return InvalidArgumentError(what + ": missing 'name'");
  if (!name->is_string() || name->get_ref<const std::string&>().empty()) {
    return InvalidArgumentError(what + ": 'name' must be a non-empty string");
  }
  NamedTensor result;
  result.name = name->get<std::string>();
  what = std::string(role) + " " + Quoted(result.name);

  const Json* datatype = Member(j, "datatype");
  if (datatype == nullptr) return InvalidArgumentError(what + ": missing 'datatype'");
  if (!datatype->is_string()) return InvalidArgumentError(what + ": 'datatype' must be a string");
  HML_ASSIGN_OR_RETURN(DType dtype,
                       DTypeFromV2DataType(datatype->get_ref<const std::string&>(), what));
  HML_ASSIGN_OR_RETURN(Shape shape, ShapeFromJson(Member(j, "shape"), what));
  HML_ASSIGN_OR_RETURN(result.parameters, ParametersFromJson(Member(j, "parameters"), what));
  if (result.parameters.count("binary_data_size") != 0) {
    return UnimplementedError(what +
                              ": the binary tensor data extension is not supported; send "
                              "the tensor as JSON 'data'");
  }

  const Json* data = Member(j, "data");
  if (data == nullptr) return InvalidArgumentError(what + ": missing 'data'");
  if (!data->is_array()) return InvalidArgumentError(what + ": 'data' must be an array");
  Result<int64_t> count = CheckedNumElements(shape, dtype);
  if (!count.ok()) return InvalidArgumentError(what + ": " + std::string(count.status().message()));

  // Structure and element count are settled before allocating, so a small body cannot make the
  // server allocate a large tensor.
  size_t levels = 1;
  if (!data->empty() && (*data)[0].is_array()) {
    HML_RETURN_IF_ERROR(CheckNesting(*data, shape, 0, what));
    levels = shape.size();
  } else if (data->size() != static_cast<size_t>(*count)) {
    return InvalidArgumentError(what + ": shape " + ShapeToString(shape) + " needs " +
                                std::to_string(*count) + " elements but data has " +
                                std::to_string(data->size()));
  }
  HML_ASSIGN_OR_RETURN(result.tensor, Tensor::Allocate(dtype, std::move(shape)));
  HML_RETURN_IF_ERROR(FillTensorOfType(*data, levels, what, &result.tensor));
  return result;
}

Result<std::vector<NamedTensor>> TensorsFromJson(const Json* list, std::string_view role,
                                                 std::string_view key, bool allow_empty) {
  if (list == nullptr) return InvalidArgumentError("missing " + Quoted(key));
  if (!list->is_array() || (!allow_empty && list->empty())) {
    return InvalidArgumentError(Quoted(key) +
                                (allow_empty ? " must be an array" : " must be a non-empty array"));
  }
  std::vector<NamedTensor> tensors;
  std::set<std::string, std::less<>> names;
  for (size_t i = 0; i < list->size(); ++i) {
    HML_ASSIGN_OR_RETURN(NamedTensor t, TensorFromJson((*list)[i], i, role));
    if (!names.insert(t.name).second) {
      return InvalidArgumentError(std::string(role) + " " + Quoted(t.name) + " appears twice");
    }
    tensors.push_back(std::move(t));
  }
  return tensors;
}

Result<std::vector<V2RequestedOutput>> RequestedOutputsFromJson(const Json* list) {
  std::vector<V2RequestedOutput> outputs;
  if (list == nullptr) return outputs;
  if (!list->is_array()) return InvalidArgumentError("'outputs' must be an array");
  std::set<std::string, std::less<>> names;
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& j = (*list)[i];
    std::string what = "requested output " + std::to_string(i);
    if (!j.is_object()) return InvalidArgumentError(what + ": must be an object");
    const Json* name = Member(j, "name");
    if (name == nullptr) return InvalidArgumentError(what + ": missing 'name'");
    if (!name->is_string() || name->get_ref<const std::string&>().empty()) {
      return InvalidArgumentError(what + ": 'name' must be a non-empty string");
    }
    V2RequestedOutput output;
    output.name = name->get<std::string>();
    what = "requested output " + Quoted(output.name);
    HML_ASSIGN_OR_RETURN(output.parameters, ParametersFromJson(Member(j, "parameters"), what));
    if (!names.insert(output.name).second) return InvalidArgumentError(what + " appears twice");
    outputs.push_back(std::move(output));
  }
  return outputs;
}

// Adapter boundary: nlohmann is used without exceptions, but an allocation failure (or a misuse
// we did not foresee) would still throw; it stops here as a Status.
template <typename F>
auto CatchJsonExceptions(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("out of memory while handling a JSON body");
  } catch (const std::exception& e) {
    return InternalError(std::string("JSON library error: ") + e.what());
  }
}

// ---------------------------------------------------------------------------------------------
// Writing. Bodies are assembled as text so that floats print in their shortest exact form (the
// library would widen them to double first and print 0.1f as 0.10000000149011612).

void AppendString(std::string* out, std::string_view s) {
  // The library's escaping, told to replace invalid UTF-8 rather than throw.
  *out += Json(std::string(s)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

template <typename T>
void AppendNumber(std::string* out, T v) {
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(v)) {
      *out += "null";
      return;
    }
  }
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), v);
  out->append(buffer, ec == std::errc() ? end : buffer);
}

void AppendParameters(std::string* out, const V2Parameters& parameters) {
  *out += '{';
  bool first = true;
  for (const auto& [key, value] : parameters) {
    if (!first) *out += ',';
    first = false;
    AppendString(out, key);
    *out += ':';
    std::visit(
        [out](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, bool>) {
            *out += v ? "true" : "false";
          } else if constexpr (std::is_same_v<V, std::string>) {
            AppendString(out, v);
          } else {
            AppendNumber(out, v);
          }
        },
        value);
  }
  *out += '}';
}

void AppendShape(std::string* out, const Shape& shape) {
  *out += '[';
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) *out += ',';
    AppendNumber(out, shape[i] < 0 ? int64_t{-1} : shape[i]);
  }
  *out += ']';
}

template <typename T>
void AppendData(std::string* out, const Tensor& tensor) {
  *out += '[';
  bool first = true;
  for (T v : tensor.values<T>()) {
    if (!first) *out += ',';
    first = false;
    AppendNumber(out, v);
  }
  *out += ']';
}

Status AppendTensor(std::string* out, std::string_view name, const Tensor& tensor,
                    const V2Parameters& parameters, std::string_view role) {
  std::string_view datatype = V2DataTypeName(tensor.dtype());
  if (datatype.empty()) {
    return InvalidArgumentError(std::string(role) + " " + Quoted(name) + " has no element type");
  }
  *out += "{\"name\":";
  AppendString(out, name);
  *out += ",\"datatype\":\"";
  *out += datatype;
  *out += "\",\"shape\":";
  AppendShape(out, tensor.shape());
  if (!parameters.empty()) {
    *out += ",\"parameters\":";
    AppendParameters(out, parameters);
  }
  *out += ",\"data\":";
  switch (tensor.dtype()) {
    case DType::kFloat32:
      AppendData<float>(out, tensor);
      break;
    case DType::kUInt8:
      AppendData<uint8_t>(out, tensor);
      break;
    case DType::kInt8:
      AppendData<int8_t>(out, tensor);
      break;
    case DType::kInt32:
      AppendData<int32_t>(out, tensor);
      break;
    case DType::kInt64:
      AppendData<int64_t>(out, tensor);
      break;
    case DType::kUndefined:
      break;
  }
  *out += '}';
  return Status::Ok();
}

Status AppendTensors(std::string* out, std::span<const NamedTensor> tensors,
                     std::string_view role) {
  *out += '[';
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (i > 0) *out += ',';
    HML_RETURN_IF_ERROR(AppendTensor(out, tensors[i].name, tensors[i].tensor, tensors[i].parameters, role));
  }
  *out += ']';
  return Status::Ok();
}

void AppendTensorSpecs(std::string* out, const std::vector<TensorSpec>& specs) {
  *out += '[';
  for (size_t i = 0; i < specs.size(); ++i) {
    if (i > 0) *out += ',';
    *out += "{\"name\":";
    AppendString(out, specs[i].name);
    *out += ",\"datatype\":\"";
    *out += V2DataTypeName(specs[i].dtype);
    *out += "\",\"shape\":";
    AppendShape(out, specs[i].shape);
    *out += '}';
  }
  *out += ']';
}

}  // namespace

Status V2JsonOptions::Validate() const {
  if (max_body_bytes == 0) return InvalidArgumentError("V2JsonOptions: max_body_bytes is 0");
  if (max_depth < kMinDepth) {
    return InvalidArgumentError("V2JsonOptions: max_depth " + std::to_string(max_depth) +
                                " is below the " + std::to_string(kMinDepth) + " levels a rank-" +
                                std::to_string(kMaxRank) + " request needs");
  }
  return Status::Ok();
}

Result<V2InferRequest> ParseV2InferRequestJson(std::string_view body,
                                               const V2JsonOptions& options) {
  return CatchJsonExceptions([&]() -> Result<V2InferRequest> {
    HML_ASSIGN_OR_RETURN(Json json, ParseBody(body, options));
    V2InferRequest request;
    HML_ASSIGN_OR_RETURN(request.id, OptionalString(json, "id", "request"));
    HML_ASSIGN_OR_RETURN(request.parameters,
                         ParametersFromJson(Member(json, "parameters"), "request"));
    HML_ASSIGN_OR_RETURN(request.inputs,
                         TensorsFromJson(Member(json, "inputs"), "input", "inputs", false));
    HML_ASSIGN_OR_RETURN(request.outputs, RequestedOutputsFromJson(Member(json, "outputs")));
    return request;
  });
}

Result<std::string> SerializeV2InferRequestJson(const V2InferRequest& request) {
  return CatchJsonExceptions([&]() -> Result<std::string> {
    std::string out = "{";
    if (!request.id.empty()) {
      out += "\"id\":";
      AppendString(&out, request.id);
      out += ',';
    }
    if (!request.parameters.empty()) {
      out += "\"parameters\":";
      AppendParameters(&out, request.parameters);
      out += ',';
    }
    out += "\"inputs\":";
    HML_RETURN_IF_ERROR(AppendTensors(&out, request.inputs, "input"));
    if (!request.outputs.empty()) {
      out += ",\"outputs\":[";
      for (size_t i = 0; i < request.outputs.size(); ++i) {
        if (i > 0) out += ',';
        out += "{\"name\":";
        AppendString(&out, request.outputs[i].name);
        if (!request.outputs[i].parameters.empty()) {
          out += ",\"parameters\":";
          AppendParameters(&out, request.outputs[i].parameters);
        }
        out += '}';
      }
      out += ']';
    }
    out += '}';
    return out;
  });
}

Result<std::string> SerializeV2InferResponseJson(std::string_view model_name,
                                                 std::string_view model_version,
                                                 std::string_view id,
                                                 std::span<const NamedTensor> outputs,
                                                 const V2Parameters& parameters) {
  return CatchJsonExceptions([&]() -> Result<std::string> {
    std::string out = "{\"model_name\":";
    AppendString(&out, model_name);
    out += ",\"model_version\":";
    AppendString(&out, model_version);
    if (!id.empty()) {
      out += ",\"id\":";
      AppendString(&out, id);
    }
    if (!parameters.empty()) {
      out += ",\"parameters\":";
      AppendParameters(&out, parameters);
    }
    out += ",\"outputs\":";
    HML_RETURN_IF_ERROR(AppendTensors(&out, outputs, "output"));
    out += '}';
    return out;
  });
}

Result<V2InferResponse> ParseV2InferResponseJson(std::string_view body,
                                                 const V2JsonOptions& options) {
  return CatchJsonExceptions([&]() -> Result<V2InferResponse> {
    HML_ASSIGN_OR_RETURN(Json json, ParseBody(body, options));
    V2InferResponse response;
    const Json* model_name = Member(json, "model_name");
    if (model_name == nullptr) return InvalidArgumentError("response: missing 'model_name'");
    HML_ASSIGN_OR_RETURN(response.model_name, OptionalString(json, "model_name", "response"));
    HML_ASSIGN_OR_RETURN(response.model_version, OptionalString(json, "model_version", "response"));
    HML_ASSIGN_OR_RETURN(response.id, OptionalString(json, "id", "response"));
    HML_ASSIGN_OR_RETURN(response.parameters,
                         ParametersFromJson(Member(json, "parameters"), "response"));
    HML_ASSIGN_OR_RETURN(response.outputs,
                         TensorsFromJson(Member(json, "outputs"), "output", "outputs", true));
    return response;
  });
}

Result<std::string> SerializeV2ModelMetadataJson(const V2ModelMetadata& metadata) {
  for (const std::vector<TensorSpec>* specs : {&metadata.inputs, &metadata.outputs}) {
    for (const TensorSpec& spec : *specs) {
      if (V2DataTypeName(spec.dtype).empty()) {
        return InvalidArgumentError("model " + Quoted(metadata.name) + ": tensor " +
                                    Quoted(spec.name) + " has no element type");
      }
    }
  }
  return CatchJsonExceptions([&]() -> Result<std::string> {
    std::string out = "{\"name\":";
    AppendString(&out, metadata.name);
    out += ",\"versions\":[";
    for (size_t i = 0; i < metadata.versions.size(); ++i) {
      if (i > 0) out += ',';
      AppendString(&out, metadata.versions[i]);
    }
    out += "],\"platform\":";
    AppendString(&out, metadata.platform);
    out += ",\"inputs\":";
    AppendTensorSpecs(&out, metadata.inputs);
    out += ",\"outputs\":";
    AppendTensorSpecs(&out, metadata.outputs);
    out += '}';
    return out;
  });
}

std::string SerializeV2ErrorJson(std::string_view message) {
  std::string out = "{\"error\":";
  AppendString(&out, message);
  out += '}';
  return out;
}

}  // namespace hml::server
