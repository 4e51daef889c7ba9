// Four synthetic stereo stems for the separators' capacity checks: a modulated bass, noise
// bursts, a chord and a vibrato voice, one second at 22.05 kHz.
#pragma once
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

namespace onestep::test {

// [4, 2, FRAMES] (bass, bursts, chord, voice); the right channel is 0.8 of the left.
inline at::Tensor synthetic_stems(int64_t frames = 22050, int64_t rate = 22050, uint64_t seed = 1) {
    at::Tensor t = torch::arange(frames, torch::kFloat) / static_cast<double>(rate);
    at::Generator generator = at::detail::createCPUGenerator(seed);
    at::Tensor bass = 0.3f * torch::sin(2 * M_PI * 55 * t) * (0.6f + 0.4f * torch::sin(2 * M_PI * 2 * t));
    at::Tensor chord = 0.1f * (torch::sin(2 * M_PI * 262 * t) + torch::sin(2 * M_PI * 330 * t) + torch::sin(2 * M_PI * 392 * t));
    at::Tensor voice = 0.2f * torch::sin(2 * M_PI * 440 * t + 3 * torch::sin(2 * M_PI * 5.5 * t));
    at::Tensor bursts = 0.3f * torch::randn({frames}, generator) * torch::exp(-30 * torch::fmod(t, 0.25));
    at::Tensor stems = torch::stack({bass, bursts, chord, voice}).unsqueeze(1).repeat({1, 2, 1});
    stems.select(1, 1).mul_(0.8f);   // a little stereo
    return stems;
}

}  // namespace onestep::test
