// SlimFlow (Zhu, Liu, Liu, ECCV 2024; image-methods spec §6): a small one-step student from a
// teacher's pairs (z0, x1, y), in one run of two stages.
//   Stage 1, Annealing Reflow (steps 0..K1-1): flow matching on the pairs with the noise blended
//   towards fresh noise, z0' = sqrt(1 - beta^2) z0 + beta eps, beta = max(0, 1 - k/K_anneal).
//   Stage 2, Flow-Guided Distillation (steps K1..): G(z) = z + (1 - t_eps) v(z, t_eps) regresses
//   the pairs, and its jump from fresh noise matches a "2-step" target made by G2, the frozen
//   stage-1 EMA: x1* = x_t' + (1 - t') v_G2(x_t', t'), x_t' = z + t' sg(u).
// The teacher itself is never queried here: it made the pairs file (`onestep sample --pairs`).
// Both stages share one optimizer and one learning-rate schedule (the paper's second run would
// restart them); on the CPU the run resumes exactly on either side of the switch.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "distill/distance.hpp"

namespace onestep {

class VelocityNet;

struct SlimFlowSettings {
    int64_t reflow_steps = 5000;    // K1: steps of stage 1; stage 2 takes the rest of `steps`
    int64_t anneal_steps = 2000;    // K_anneal: beta falls linearly from 1 to 0 over these steps
    double t_eps = 1e-3;            // t ~ U[t_eps, 1] in stage 1; the generator's t0
    bool flip = false;              // flip z0' and x1 horizontally together (images from flip-equivariant teachers)
    std::string distance = "pseudo-huber";   // stage 2's dist: "pseudo-huber" or "l2"
    double huber_c = 0;             // pseudo-Huber c (0: 0.00054 sqrt(D))
    double t_prime_min = 0.2, t_prime_max = 0.8;   // t' ~ U[min, max]
    double regression_weight = 1, guided_weight = 1;
    int64_t num_classes = 0;        // C of the pairs (0: unconditional)
};

// beta_k = max(0, 1 - k / K_anneal); 0 for every k when K_anneal is 0 (plain reflow).
double annealing_beta(int64_t step, int64_t anneal_steps);

// Stage 1's regression problem for one batch of pairs.
struct ReflowBatch {
    at::Tensor x_t;      // (1 - t) z0' + t x1
    at::Tensor t;        // [N] in [t_eps, 1]
    at::Tensor target;   // x1 - z0'
};

// z0' = sqrt(1 - beta^2) z0 + beta eps, t ~ U[t_eps, 1], with eps, t (and the flips) drawn from
// libtorch's global generator.
ReflowBatch annealing_reflow_batch(const at::Tensor& z0, const at::Tensor& x1, double beta, const SlimFlowSettings& settings);

struct DistillationLosses {
    at::Tensor regression;   // mean dist(G(z0, y), x1): L1 of the spec
    at::Tensor guided;       // mean dist(z + (1 - t_eps) u, x1*): L2 of the spec
};

// Stage 2's two terms. One forward of STUDENT over the pairs and the fresh noise together; G2
// (frozen, no gradient) takes the single Euler step from x_t' to t = 1. Fresh noise, labels and t'
// come from libtorch's global generator.
DistillationLosses flow_guided_losses(VelocityNet& student, VelocityNet& g2, const at::Tensor& z0, const at::Tensor& x1,
                                      const at::Tensor& labels, const SlimFlowSettings& settings);

void register_slimflow_method();

}  // namespace onestep
