// Consistency distillation with reward feedback (image-methods spec §10): Consistency Models
// (Song et al., ICML 2023), the guidance of Latent Consistency Models, and T2V-Turbo's rewards
// on the same one-step prediction.
//
// A student f(x_t, t, y) = x_t + (1 - t) v(x_t, t, y), initialised from the teacher, learns to
// agree with itself one teacher solver step apart: on a grid 0 = t_0 < ... < t_N = 1,
//   x_a = (1 - t_n) z + t_n x,  x_b = one Euler or Heun step of the teacher's ODE to t_{n+1},
//   L_CD = d(f_θ(x_a, t_n), sg f_θ⁻(x_b, t_{n+1})),
// with θ⁻ an EMA of θ (μ = 0.95). The step that ends at t_N = 1 anchors the chain, since f(x, 1) = x.
// Rewards (a frozen classifier's log p(y | x), any TorchScript module) act on the prediction f_θ(x_a)
// itself: L = L_CD - β_cls mean R_cls - β_user mean R_user. Without a teacher (solver "none") the
// same loss with x_b = (1 - t_{n+1}) z + t_{n+1} x is consistency training.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace onestep {

class Denoiser;
class VelocityNet;

struct ConsistencySettings {
    std::string solver = "heun";   // the teacher's step: "euler", "heun", or "none" (consistency training)
    double guidance = 1.0;         // w of the teacher's classifier-free guidance (1: plain conditional)
    std::string distance = "elementwise-huber";   // sample_distance kind
    double huber_c = 0;            // 0: the distance's default c
};

// Step 5: one solver step of the teacher's ODE from X_A at T_A to T_B (per-sample times [N]),
// without gradient. Heun skips its correction where t_b = 1 and the teacher is singular there.
at::Tensor teacher_solver_step(Denoiser& teacher, const at::Tensor& x_a, const at::Tensor& t_a, const at::Tensor& t_b,
                               const at::Tensor& labels, const ConsistencySettings& settings);

struct ConsistencyPair {
    at::Tensor pred;     // f_θ(x_a, t_a, y), with its graph
    at::Tensor target;   // sg f_θ⁻(x_b, t_b, y)
};

// Steps 3 and 5-7 at given times T_A < T_B: x_a = (1 - t_a) z + t_a x, x_b from the TEACHER's
// solver step (or, with solver "none", x_b = (1 - t_b) z + t_b x; TEACHER may then be null).
ConsistencyPair consistency_pair(VelocityNet& student, VelocityNet& target, Denoiser* teacher, const at::Tensor& x,
                                 const at::Tensor& z, const at::Tensor& labels, const at::Tensor& t_a, const at::Tensor& t_b,
                                 const ConsistencySettings& settings);

void register_consistency_method();

}  // namespace onestep
