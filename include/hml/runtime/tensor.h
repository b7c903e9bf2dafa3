// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Tensors: a dtype, a shape and a buffer. A Tensor either owns its buffer (Allocate) or views
// memory owned by someone else (View); views must not outlive that memory.
#ifndef HML_RUNTIME_TENSOR_H_
#define HML_RUNTIME_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hml/status.h"

namespace hml {

// Element types. The numeric values equal ONNX's TensorProto.DataType.
enum class DType : uint8_t {
  kUndefined = 0,
  kFloat32 = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kInt32 = 6,
  kInt64 = 7,
};

// Bytes per element; 0 for kUndefined.
size_t DTypeSize(DType dtype);
// "float32", "int8", ...
std::string_view DTypeName(DType dtype);
// Maps an ONNX TensorProto.DataType value; kUnimplemented for types hybridml does not support.
Result<DType> DTypeFromOnnx(int onnx_type);

template <typename T>
constexpr DType DTypeOf();
template <>
constexpr DType DTypeOf<float>() { return DType::kFloat32; }
template <>
constexpr DType DTypeOf<uint8_t>() { return DType::kUInt8; }
template <>
constexpr DType DTypeOf<int8_t>() { return DType::kInt8; }
template <>
constexpr DType DTypeOf<int32_t>() { return DType::kInt32; }
template <>
constexpr DType DTypeOf<int64_t>() { return DType::kInt64; }

// Dimensions, outermost first. A negative dimension means "not known yet" (dynamic).
using Shape = std::vector<int64_t>;

// Largest tensor hybridml will allocate or accept from outside: 2 GiB, the protobuf limit.
inline constexpr int64_t kMaxTensorBytes = int64_t{1} << 31;
// Largest rank accepted.
inline constexpr int kMaxRank = 8;

// Number of elements of a static shape; kInvalidArgument for negative dims, ranks above kMaxRank,
// or products that overflow or exceed kMaxTensorBytes for `dtype`.
Result<int64_t> CheckedNumElements(const Shape& shape, DType dtype = DType::kUInt8);
// "[1,3,224,224]"; dynamic dims print as "?".
std::string ShapeToString(const Shape& shape);
bool IsStaticShape(const Shape& shape);

class Tensor {
 public:
  // An empty tensor: no dtype, no data. Stands for an absent optional input.
  Tensor() = default;

  // Allocates a zero-filled, 64-byte aligned buffer. kInvalidArgument for a dynamic shape or a
  // size beyond kMaxTensorBytes; checked before allocating.
  static Result<Tensor> Allocate(DType dtype, Shape shape);
  // A non-owning view. REQUIRES: `data` holds num_elements * DTypeSize(dtype) bytes and
  // outlives the view.
  static Tensor View(DType dtype, Shape shape, void* data);
  // A tensor holding `values` with the given shape. REQUIRES: product(shape) == values.size().
  template <typename T>
  static Result<Tensor> FromVector(Shape shape, std::span<const T> values);

  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;

  // A deep copy that owns its buffer.
  Result<Tensor> Clone() const;
  // A view of this tensor's buffer with another shape of the same element count.
  Tensor Reshaped(Shape shape) const;

  bool empty() const { return dtype_ == DType::kUndefined; }
  bool owns_data() const { return owned_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[static_cast<size_t>(i)]; }
  int64_t num_elements() const { return num_elements_; }
  size_t byte_size() const { return static_cast<size_t>(num_elements_) * DTypeSize(dtype_); }

  void* raw_data() { return data_; }
  const void* raw_data() const { return data_; }
  // REQUIRES: DTypeOf<T>() == dtype() (checked in debug builds).
  template <typename T>
  T* data() {
    return static_cast<T*>(data_);
  }
  template <typename T>
  const T* data() const {
    return static_cast<const T*>(data_);
  }
  template <typename T>
  std::span<T> values() {
    return {data<T>(), static_cast<size_t>(num_elements_)};
  }
  template <typename T>
  std::span<const T> values() const {
    return {data<T>(), static_cast<size_t>(num_elements_)};
  }

 private:
  struct FreeDeleter {
    void operator()(void* p) const;
  };

  DType dtype_ = DType::kUndefined;
  Shape shape_;
  int64_t num_elements_ = 0;
  void* data_ = nullptr;
  std::unique_ptr<void, FreeDeleter> owned_;
};

template <typename T>
Result<Tensor> Tensor::FromVector(Shape shape, std::span<const T> values) {
  HML_ASSIGN_OR_RETURN(Tensor t, Allocate(DTypeOf<T>(), std::move(shape)));
  if (static_cast<size_t>(t.num_elements()) != values.size()) {
    return InvalidArgumentError("Tensor::FromVector: shape " + ShapeToString(t.shape()) + " has " +
                                std::to_string(t.num_elements()) + " elements but " +
                                std::to_string(values.size()) + " values were given");
  }
  for (size_t i = 0; i < values.size(); ++i) t.data<T>()[i] = values[i];
  return t;
}

}  // namespace hml

#endif  // HML_RUNTIME_TENSOR_H_
