// Opening a generator: a checkpoint's method and sampler, or the analytic teacher.
#include "samplers/generator.hpp"

#include "core/error.hpp"
#include "core/trainer.hpp"
#include "models/analytic_mixture.hpp"
#include "samplers/ode.hpp"

namespace onestep {

Generator open_generator(const std::string& source, const c10::Device& device) {
    Generator generator;
    if (source.rfind("analytic:", 0) == 0) {
        auto teacher = std::make_shared<GaussianMixtureDenoiser>(parse_analytic_teacher(source));
        std::vector<std::string> names = teacher->class_names();
        generator.sampler = std::make_unique<OdeSampler>(teacher, std::vector<int64_t>{2}, names, "euler", 100);
        generator.method = "analytic";
        generator.path = source;
        generator.analytic = true;
        return generator;
    }
    generator.path = resolve_checkpoint_path(source);
    TrainedMethod trained = load_trained_method(generator.path, device);
    generator.sampler = trained.method->make_sampler();
    if (!generator.sampler) throw UserError(source + ": method '" + trained.info->name + "' has no sampler");
    generator.method = trained.info->name;
    generator.step = trained.step;
    return generator;
}

}  // namespace onestep
