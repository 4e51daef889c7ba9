// The spec's capacity check for the band-split RoFormer: bsr-ci overfits one chunk of four
// synthetic stems (tones, a chord, vibrato and noise bursts) to a mean uSDR above 20 dB within
// 500 Adam steps of the separation loss. The flow RoFormer separates the same chunk in one step
// from its mixture prior, well above mixture/K, after a short shortcut training.
#if ONESTEP_WITH_AUDIO
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include "audio/separation_loss.hpp"
#include "audio/separators/bs_roformer.hpp"
#include "audio/separators/flow_roformer.hpp"
#include "distill/shortcut/shortcut.hpp"
#include "metrics/audio_sdr.hpp"
#include "synthetic_stems.hpp"

TEST_CASE("bsr-ci overfits one chunk to a mean uSDR above 20 dB within 500 steps", "[slow]") {
    torch::manual_seed(0);
    const int64_t rate = 22050;
    at::Tensor stems = onestep::test::synthetic_stems();   // [4, 2, T]
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

TEST_CASE("the flow RoFormer learns one chunk: one-step separation 6 dB above mixture/K", "[slow]") {
    torch::manual_seed(0);
    at::Tensor stems = onestep::test::synthetic_stems(11025).unsqueeze(0).repeat({4, 1, 1, 1});   // half a second, four copies
    at::Tensor mixture = stems.sum(1);
    const double sigma = std::sqrt(stems.pow(2).mean().item<double>());
    auto config = onestep::BandSplitRoformerConfig::preset("bsr-ci");
    config.band_magnitude = true;
    auto net = std::make_shared<onestep::FlowRoformerImpl>(config, 3);   // levels 0..2: M = 4
    net->set_prior_std(sigma);
    torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(2e-3));
    onestep::ShortcutSettings settings;
    settings.max_steps = 4;
    settings.bootstrap_fraction = 0.5;
    settings.p_uncond = 0;
    auto loss_settings = onestep::SeparationLossSettings::for_rate(22050);
    loss_settings.hop = 256;
    // One fixed prior sample to separate from, and the mixture/K floor.
    at::Tensor z = onestep::mixture_prior(mixture.slice(0, 0, 1), 4, sigma, at::detail::createCPUGenerator(9));
    auto mean_usdr = [&](const at::Tensor& estimate) {
        double mean = 0;
        for (int64_t k = 0; k < 4; ++k) mean += onestep::usdr(stems[0][k], estimate[k]) / 4;
        return mean;
    };
    const double floor = mean_usdr((mixture[0] / 4).unsqueeze(0).expand({4, 2, mixture.size(-1)}));
    double best = -1e9;
    int best_step = 0;
    for (int step = 0; step < 400 && best < floor + 6; ++step) {
        // The method's own training loss, the network as its own self-consistency target.
        at::Tensor loss = onestep::flow_separation_loss(*net, *net, stems, mixture, settings, loss_settings, 0.02).total;
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        if (step % 25 == 24) {
            torch::NoGradGuard no_grad;
            at::Tensor one_step = z + net->forward(z, torch::zeros({1}), at::Tensor(), torch::zeros({1}, torch::kLong));
            if (mean_usdr(one_step[0]) > best) best = mean_usdr(one_step[0]), best_step = step + 1;
        }
    }
    INFO("mixture/K " << floor << " dB; best one-step mean uSDR " << best << " dB at step " << best_step);
    CHECK(best > floor + 6);
}
#endif
