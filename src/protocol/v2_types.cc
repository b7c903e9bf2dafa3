// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/protocol/v2_types.h"

#include <string>

namespace hml::protocol {

std::string_view V2DataTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "FP32";
    case DType::kUInt8:
      return "UINT8";
    case DType::kInt8:
      return "INT8";
    case DType::kInt32:
      return "INT32";
    case DType::kInt64:
      return "INT64";
    case DType::kUndefined:
      break;
  }
  return "";
}

Result<DType> DTypeFromV2DataType(std::string_view datatype, std::string_view what) {
  for (DType dtype : {DType::kFloat32, DType::kUInt8, DType::kInt8, DType::kInt32, DType::kInt64}) {
    if (datatype == V2DataTypeName(dtype)) return dtype;
  }
  // The rest of the protocol's types: valid requests that hybridml tensors cannot hold yet.
  for (std::string_view known :
       {"BOOL", "UINT16", "UINT32", "UINT64", "INT16", "FP16", "BF16", "FP64", "BYTES"}) {
    if (datatype == known) {
      return UnimplementedError(std::string(what) + ": datatype " + std::string(datatype) +
                                " is not supported (supported: FP32, UINT8, INT8, INT32, INT64)");
    }
  }
  return InvalidArgumentError(std::string(what) + ": unknown datatype '" + std::string(datatype) +
                              "'");
}

}  // namespace hml::protocol
