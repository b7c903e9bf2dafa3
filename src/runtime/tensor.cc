// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "hml/runtime/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>

namespace hml {

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
    case DType::kUInt8:
    case DType::kInt8:
      return 1;
    case DType::kInt64:
      return 8;
    case DType::kUndefined:
      return 0;
  }
  return 0;
}

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kUInt8:
      return "uint8";
    case DType::kInt8:
      return "int8";
    case DType::kInt32:
      return "int32";
    case DType::kInt64:
      return "int64";
    case DType::kUndefined:
      return "undefined";
  }
  return "undefined";
}

Result<DType> DTypeFromOnnx(int onnx_type) {
  switch (onnx_type) {
    case 1:
      return DType::kFloat32;
    case 2:
      return DType::kUInt8;
    case 3:
      return DType::kInt8;
    case 6:
      return DType::kInt32;
    case 7:
      return DType::kInt64;
    default:
      break;
  }
  static constexpr const char* kOnnxNames[] = {
      "UNDEFINED", "FLOAT",  "UINT8",  "INT8",      "UINT16",     "INT16",   "INT32",
      "INT64",     "STRING", "BOOL",   "FLOAT16",   "DOUBLE",     "UINT32",  "UINT64",
      "COMPLEX64", "COMPLEX128", "BFLOAT16"};
  std::string name = onnx_type >= 0 && onnx_type < 17 ? kOnnxNames[onnx_type]
                                                      : "type " + std::to_string(onnx_type);
  return UnimplementedError("element type " + name +
                              " is not supported (supported: float32, uint8, int8, int32, int64)");
}

Result<int64_t> CheckedNumElements(const Shape& shape, DType dtype) {
  if (shape.size() > static_cast<size_t>(kMaxRank)) {
    return InvalidArgumentError("rank " + std::to_string(shape.size()) + " exceeds the limit " +
                                std::to_string(kMaxRank));
  }
  const int64_t elem = std::max<int64_t>(1, static_cast<int64_t>(DTypeSize(dtype)));
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return InvalidArgumentError("shape " + ShapeToString(shape) + " is not static");
    if (d != 0 && n > kMaxTensorBytes / elem / d) {
      return InvalidArgumentError("shape " + ShapeToString(shape) + " exceeds the " +
                                  std::to_string(kMaxTensorBytes) + "-byte tensor limit");
    }
    n *= d;
  }
  return n;
}

std::string ShapeToString(const Shape& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ',';
    out += shape[i] < 0 ? std::string("?") : std::to_string(shape[i]);
  }
  out += ']';
  return out;
}

bool IsStaticShape(const Shape& shape) {
  for (int64_t d : shape) {
    if (d < 0) return false;
  }
  return true;
}

void Tensor::FreeDeleter::operator()(void* p) const { std::free(p); }

Result<Tensor> Tensor::Allocate(DType dtype, Shape shape) {
  if (dtype == DType::kUndefined) return InvalidArgumentError("cannot allocate an undefined dtype");
  HML_ASSIGN_OR_RETURN(int64_t n, CheckedNumElements(shape, dtype));
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.num_elements_ = n;
  size_t bytes = static_cast<size_t>(n) * DTypeSize(dtype);
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  void* p = std::aligned_alloc(64, rounded);
  if (p == nullptr) {
    return ResourceExhaustedError("out of memory allocating " + std::to_string(rounded) +
                                  " bytes for a tensor of shape " + ShapeToString(t.shape_));
  }
  std::memset(p, 0, rounded);
  t.owned_.reset(p);
  t.data_ = p;
  return t;
}

Tensor Tensor::View(DType dtype, Shape shape, void* data) {
  Tensor t;
  t.dtype_ = dtype;
  int64_t n = 1;
  for (int64_t d : shape) n *= d < 0 ? 0 : d;
  t.shape_ = std::move(shape);
  t.num_elements_ = n;
  t.data_ = data;
  return t;
}

Result<Tensor> Tensor::Clone() const {
  if (empty()) return Tensor();
  HML_ASSIGN_OR_RETURN(Tensor t, Allocate(dtype_, shape_));
  if (byte_size() > 0) std::memcpy(t.data_, data_, byte_size());
  return t;
}

Tensor Tensor::Reshaped(Shape shape) const { return View(dtype_, std::move(shape), data_); }

}  // namespace hml
