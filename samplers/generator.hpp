// What the commands that draw from a model open: a trained checkpoint or run directory, or the
// analytic eight-Gaussians teacher by name, each as a Sampler.
//
//   Generator teacher = open_generator("analytic:8gaussians", device);   // or "runs/toy-flow"
//   at::Tensor x = teacher.sampler->sample(noise, labels, options);
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/options.hpp"
#include "models/time_distribution.hpp"
#include "samplers/sampler.hpp"

namespace onestep {

struct Generator {
    std::unique_ptr<Sampler> sampler;
    std::string method;     // the trained method ("flow", "slimflow", ...) or "analytic"
    std::string path;       // the checkpoint file, or the analytic teacher's name
    int64_t step = -1;      // the checkpoint's training step (-1 for an analytic teacher)
    bool analytic = false;
    Config config;          // the run's resolved config (empty for an analytic teacher)
};

// "analytic:8gaussians[-fine|-coarse]" (Euler 100 by default), or a checkpoint / run directory.
// UserError naming SOURCE when it is neither or its method has no sampler.
Generator open_generator(const std::string& source, const c10::Device& device);

class Denoiser;
class VelocityNet;

// A multi-step teacher seen as the denoiser its ODE sampler integrates: what distillation
// methods query as the "real score".
struct TeacherDenoiser {
    std::shared_ptr<Denoiser> denoiser;
    std::vector<int64_t> sample_shape;
    std::vector<std::string> class_names;
    std::string method;   // "flow", "vp" or "analytic"
    std::string path;
    int64_t step = -1;
    TimeDistribution times;   // the teacher's training times (uniform for the analytic teacher)
    // The velocity network behind it (its EMA weights) when it is one, else null (analytic, VP).
    std::shared_ptr<VelocityNet> velocity_net;
};

// SOURCE as for open_generator; UserError naming the key KEY when it is not a multi-step teacher
// (a one-step student, a classifier).
TeacherDenoiser open_teacher_denoiser(const std::string& source, const std::string& key, const c10::Device& device);

}  // namespace onestep
