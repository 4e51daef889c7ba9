// The spec's capacity check for the band-split RoFormer: bsr-ci overfits one chunk of four
// synthetic stems (tones, a chord, vibrato and noise bursts) to a mean uSDR above 20 dB within
// 500 Adam steps of the separation loss.
#if ONESTEP_WITH_AUDIO
#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "audio/separation_loss.hpp"
#include "audio/separators/bs_roformer.hpp"
#include "metrics/audio_sdr.hpp"

TEST_CASE("bsr-ci overfits one chunk to a mean uSDR above 20 dB within 500 steps", "[slow]") {
    torch::manual_seed(0);
    const int64_t rate = 22050, frames = 22050;
    at::Tensor t = torch::arange(frames, torch::kFloat) / rate;
    at::Generator generator = at::detail::createCPUGenerator(1);
    at::Tensor bass = 0.3f * torch::sin(2 * M_PI * 55 * t) * (0.6f + 0.4f * torch::sin(2 * M_PI * 2 * t));
    at::Tensor chord = 0.1f * (torch::sin(2 * M_PI * 262 * t) + torch::sin(2 * M_PI * 330 * t) + torch::sin(2 * M_PI * 392 * t));
    at::Tensor voice = 0.2f * torch::sin(2 * M_PI * 440 * t + 3 * torch::sin(2 * M_PI * 5.5 * t));
    at::Tensor bursts = 0.3f * torch::randn({frames}, generator) * torch::exp(-30 * torch::fmod(t, 0.25));
    at::Tensor stems = torch::stack({bass, bursts, chord, voice}).unsqueeze(1).repeat({1, 2, 1});   // [4, 2, T]
    stems.select(1, 1).mul_(0.8f);   // a little stereo
    at::Tensor mixture = stems.sum(0).unsqueeze(0);                                                 // [1, 2, T]

    onestep::BandSplitRoformer net(onestep::BandSplitRoformerConfig::preset("bsr-ci"));
    torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(2e-3));
    auto settings = onestep::SeparationLossSettings::for_rate(rate);
    settings.hop = 256;
    double best = -1e9;
    int best_step = 0;
    for (int step = 0; step < 500 && best < 20; ++step) {
        optimizer.zero_grad();
        at::Tensor estimate = net->forward(mixture);
        onestep::separation_loss(estimate, stems.unsqueeze(0), settings).total.backward();
        optimizer.step();
        if (step % 25 == 24) {
            torch::NoGradGuard no_grad;
            at::Tensor out = net->forward(mixture)[0];
            double mean = 0;
            for (int64_t k = 0; k < 4; ++k) mean += onestep::usdr(stems[k], out[k]) / 4;
            if (mean > best) best = mean, best_step = step + 1;
        }
    }
    INFO("best mean uSDR " << best << " dB at step " << best_step);
    CHECK(best > 20);
}
#endif
