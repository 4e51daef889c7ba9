// Opening a generator: a checkpoint's method and sampler, or the analytic teacher.
#include "samplers/generator.hpp"

#include "core/error.hpp"
#include "core/trainer.hpp"
#include "models/analytic_mixture.hpp"
#include "models/denoiser.hpp"
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
    generator.config = trained.config;
    return generator;
}

TeacherDenoiser open_teacher_denoiser(const std::string& source, const std::string& key, const c10::Device& device) {
    Generator generator = open_generator(source, device);
    auto* ode = dynamic_cast<OdeSampler*>(generator.sampler.get());
    if (ode == nullptr)
        throw UserError(key + " = " + source + ": method '" + generator.method +
                        "' is not a multi-step teacher (expected a flow or vp run, or analytic:8gaussians...)");
    TeacherDenoiser teacher;
    teacher.denoiser = ode->denoiser();
    teacher.sample_shape = ode->sample_shape();
    teacher.class_names = ode->class_names();
    teacher.method = generator.method;
    teacher.path = generator.path;
    teacher.step = generator.step;
    teacher.times = TimeDistribution::of_flow_config(generator.config);
    if (auto* network = dynamic_cast<NetworkDenoiser*>(teacher.denoiser.get())) {
        // Frozen: a distillation loss never trains the teacher.
        network->net()->eval();
        for (auto& parameter : network->net()->parameters()) parameter.set_requires_grad(false);
        if (network->parameterisation() == Parameterisation::Velocity) teacher.velocity_net = network->net();
    }
    return teacher;
}

}  // namespace onestep
