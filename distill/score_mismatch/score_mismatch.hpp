// Score Mismatching (Ye and Liu, Neural Networks 2024; image-methods spec §9): a teacher-free
// one-step generator trained against a denoiser critic.
//
// The score net S learns ordinary denoising score matching on real data at T small noise levels,
// and is taught that the generator's samples carry no denoising direction: its target there is a
// noise drawn independently of the one added (optimum S = 0). The generator G(z) is then trained
// so that the frozen S denoises its samples as if they were real. Noising is variance-exploding,
// x_i = x + sigma_i eps; S sees x_{t_i} = t_i x_i at t_i = 1 / (1 + sigma_i) (the project's time)
// and predicts eps directly.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace onestep {

class VelocityNet;

// The T fixed levels: beta_i = linspace(beta_min, beta_max, T), alpha_bar_i = prod_{j<=i} (1 - beta_j),
// sigma_i = sqrt(1 - alpha_bar_i), t_i = 1 / (1 + sigma_i).
struct NoiseLevels {
    at::Tensor sigma;   // float [T]
    at::Tensor t;       // float [T]
    static NoiseLevels ddpm(int64_t count, double beta_min, double beta_max);
};

// S(x + sigma_i eps, i): the score net's noise prediction for NOISY = x + sigma_i eps at level
// indices LEVEL (int64 [N]); the net is unconditional.
at::Tensor predict_noise(VelocityNet& score, const at::Tensor& noisy, const at::Tensor& level, const NoiseLevels& levels);

// L_match = mean_e (S(x + sigma_i eps, i) - eps)^2 with i ~ U{0..T-1}: ordinary DSM on real data.
at::Tensor denoising_loss(VelocityNet& score, const at::Tensor& x, const NoiseLevels& levels);

// L_G: the same loss on generated samples X (with their graph) through a frozen S, so that its
// backward reaches the generator only and leaves no gradient in S.
at::Tensor generator_loss(VelocityNet& score, const at::Tensor& x_generated, const NoiseLevels& levels);

// L_mis = mean_e (S(x_g + sigma_i eps1, i) - target)^2 on detached generator samples, the target an
// independent eps2 (ZERO_TARGET: 0, the same expected gradient with less variance).
at::Tensor mismatch_loss(VelocityNet& score, const at::Tensor& x_generated, const NoiseLevels& levels, bool zero_target);

// The lazy R1 penalty on real inputs: mean_b ||grad_x sum S(x + sigma_i eps, i)||^2 (with its graph).
at::Tensor r1_penalty(VelocityNet& score, const at::Tensor& x, const NoiseLevels& levels);

void register_score_mismatch_method();

}  // namespace onestep
