// Distribution Matching Distillation (Yin et al., DMD and DMD2; image-methods spec §7) and
// Multi-Student Distillation (Song et al., ICML 2025; spec §8).
//
// A one-step generator G(z, y) = z + (1 - t0) v_G(z, t0, y), initialised from a flow teacher,
// learns to match the teacher's distribution through the difference of two denoisers on its own
// noised samples: the frozen teacher ("real score") and a critic F trained online on G's detached
// samples with the flow objective ("fake score"). The generator steps every r-th iteration (TTUR),
// the critic every iteration; an optional regression onto teacher pairs adds DMD1's term.
//
// MSD splits the classes into K groups and trains one such student (G_k, F_k) per group, taking
// the students in turn, one per training step. Every student regresses on the SHARED pairs of all
// classes; sampling routes each label to its student.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace onestep {

class Denoiser;
class VelocityNet;
struct TimeDistribution;

struct DmdSettings {
    double guidance = 1.0;              // w_real: classifier-free guidance of the real score only
    double u_min = 0.02, u_max = 0.98;  // the DM noise: Karras index fraction u ~ U[u_min, u_max]
};

struct DistributionMatching {
    at::Tensor loss;        // 1/2 mean_e (x - sg(x - g))^2: its gradient in x is g / numel
    at::Tensor gradient;    // g = (x0_fake - x0_real) / mean_CHW |x - x0_real|, non-finite entries 0 (detached)
    at::Tensor real_gap;    // per-sample ||x0_real - x0_fake|| [N] (detached)
};

// One DM term for generated samples X (with their graph), labels LABELS: x_t = (1 - t) eps + t sg(x)
// at t = karras_time(u); both denoisers are run without gradient. Noise from libtorch's global
// generator.
DistributionMatching distribution_matching(Denoiser& real, Denoiser& fake, const at::Tensor& x, const at::Tensor& labels,
                                           const DmdSettings& settings);

// The fake-score critic's loss: the flow teacher's own objective on detached samples X,
// mean_e (v_F(x_t, t, y) - (x - eps))^2 with t drawn from the teacher's TIMES.
at::Tensor critic_flow_loss(VelocityNet& critic, const at::Tensor& x, const at::Tensor& labels, const TimeDistribution& times);

// N labels drawn uniformly from CLASSES (int64 [K] on the target device); zeros when CLASSES is
// empty (an unconditional teacher).
at::Tensor draw_labels(const at::Tensor& classes, int64_t n);

void register_dmd_methods();

}  // namespace onestep
