// The separation loss: zero for a perfect estimate, the waveform term equals mean |e|, the
// spectral term equals a direct computation of every resolution, and gradients flow.
#if ONESTEP_WITH_AUDIO
#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "audio/separation_loss.hpp"
#include "audio/stft.hpp"

TEST_CASE("separation loss: L1 plus multi-resolution STFT L1", "[unit]") {
    at::Generator generator = at::detail::createCPUGenerator(2);
    at::Tensor target = torch::randn({2, 3, 2, 6000}, generator, torch::kDouble);
    at::Tensor estimate = target + 0.1 * torch::randn({2, 3, 2, 6000}, generator, torch::kDouble);
    auto settings = onestep::SeparationLossSettings::for_rate(22050);
    CHECK(settings.hop == 74);
    onestep::SeparationLoss perfect = onestep::separation_loss(target, target, settings);
    CHECK(perfect.total.item<double>() == 0);

    onestep::SeparationLoss loss = onestep::separation_loss(estimate, target, settings);
    CHECK(loss.waveform.item<double>() == Approx((estimate - target).abs().mean().item<double>()).epsilon(1e-12));
    double spectral = 0;
    for (int64_t window : {4096, 2048, 1024, 512, 256}) {
        onestep::StftConfig config{std::max<int64_t>(window, 2048), 74, window};
        at::Tensor a = onestep::stft(estimate, config), b = onestep::stft(target, config);
        spectral += (torch::view_as_real(a) - torch::view_as_real(b)).abs().mean().item<double>();
    }
    CHECK(loss.spectral.item<double>() == Approx(spectral).epsilon(1e-9));
    CHECK(loss.total.item<double>() == Approx(loss.waveform.item<double>() + spectral).epsilon(1e-9));

    at::Tensor trainable = estimate.clone().requires_grad_(true);
    onestep::separation_loss(trainable, target, settings).total.backward();
    CHECK(trainable.grad().abs().sum().item<double>() > 0);
}
#endif
