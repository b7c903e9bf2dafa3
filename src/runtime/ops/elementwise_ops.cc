#include "src/runtime/op_registry.h"
namespace hml::runtime {
void AddElementwiseOps(OpRegistry&) {}
}
