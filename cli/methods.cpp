// The methods shipped in the onestep binary.
#include "core/registry.hpp"
#include "distill/shortcut/shortcut.hpp"
#include "metrics/classifier.hpp"
#include "models/teacher.hpp"

namespace onestep {

void register_builtin_methods() {
    static bool registered = false;   // tests call this from several places
    if (registered) return;
    registered = true;
    register_teacher_methods();
    register_classifier_method();
    register_shortcut_method();
}

}  // namespace onestep
