// The methods shipped in the onestep binary.
#include "core/registry.hpp"
#include "models/teacher.hpp"

namespace onestep {

void register_builtin_methods() { register_teacher_methods(); }

}  // namespace onestep
