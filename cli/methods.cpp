// The methods shipped in the onestep binary.
#include "core/registry.hpp"

namespace onestep {

void register_builtin_methods() {}

}  // namespace onestep
