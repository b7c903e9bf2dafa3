#include "src/runtime/backends/reference/reference_backend.h"
namespace hml::runtime {
void AddNnKernels(KernelRegistry&) {}
}
