// The methods shipped in the onestep binary.
#include "core/registry.hpp"
#if ONESTEP_WITH_AUDIO
#include "audio/separator_method.hpp"
#endif
#include "distill/consistency/consistency.hpp"
#include "distill/dmd/dmd.hpp"
#include "distill/score_mismatch/score_mismatch.hpp"
#include "distill/shortcut/shortcut.hpp"
#include "distill/slimflow/slimflow.hpp"
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
    register_slimflow_method();
    register_dmd_methods();
    register_score_mismatch_method();
    register_consistency_method();
#if ONESTEP_WITH_AUDIO
    register_separator_method();
#endif
}

}  // namespace onestep
