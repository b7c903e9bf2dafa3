// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/ops/broadcast.h"

#include <algorithm>
#include <string>

namespace hml::runtime {

Result<Shape> BroadcastShapes(const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    // Dim i counted from the right.
    const int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
    const int64_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
    int64_t d;
    if (da == db || db == 1) {
      d = da;
    } else if (da == 1) {
      d = db;
    } else {
      return InvalidArgumentError("shapes " + ShapeToString(a) + " and " + ShapeToString(b) +
                                  " are not broadcastable (dims " + std::to_string(da) + " and " +
                                  std::to_string(db) + ")");
    }
    out[rank - 1 - i] = d;
  }
  return out;
}

bool BroadcastsTo(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  for (size_t i = 0; i < from.size(); ++i) {
    const int64_t df = from[from.size() - 1 - i];
    const int64_t dt = to[to.size() - 1 - i];
    if (df != dt && df != 1) return false;
  }
  return true;
}

Result<Shape> LegacyBroadcastShape(const Node& node, const Shape& a, const Shape& b) {
  const std::string prefix = node.op_type + " '" + node.name + "': ";
  if (node.attrs.GetInt("broadcast", 0) == 0) {
    if (a != b) {
      return InvalidArgumentError(prefix + "shapes " + ShapeToString(a) + " and " +
                                  ShapeToString(b) +
                                  " differ and broadcast=1 is not set (opset < 7 semantics)");
    }
    return b;
  }
  if (b.size() > a.size()) {
    return InvalidArgumentError(prefix + "cannot broadcast " + ShapeToString(b) + " onto " +
                                ShapeToString(a) + ": B has the larger rank");
  }
  const int64_t rank_a = static_cast<int64_t>(a.size());
  const int64_t rank_b = static_cast<int64_t>(b.size());
  int64_t axis = node.attrs.GetInt("axis", rank_a - rank_b);
  if (axis < 0) axis += rank_a;
  if (axis < 0 || axis + rank_b > rank_a) {
    return InvalidArgumentError(prefix + "axis " + std::to_string(node.attrs.GetInt("axis", 0)) +
                                " does not place " + ShapeToString(b) + " inside " +
                                ShapeToString(a));
  }
  Shape padded(a.size(), 1);
  for (int64_t i = 0; i < rank_b; ++i) {
    padded[static_cast<size_t>(axis + i)] = b[static_cast<size_t>(i)];
  }
  if (!BroadcastsTo(padded, a)) {
    return InvalidArgumentError(prefix + "cannot broadcast " + ShapeToString(b) + " onto " +
                                ShapeToString(a) + " at axis " + std::to_string(axis));
  }
  return padded;
}

}  // namespace hml::runtime
