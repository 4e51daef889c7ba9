// The band-split RoFormer: exact parameter counts of every preset, hand attention against a
// float64 reference, RoPE's relative-position property, feature layout round trips, shapes.
#if ONESTEP_WITH_AUDIO
#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "audio/separators/bs_roformer.hpp"
#include "audio/stft.hpp"
#include "support.hpp"

using Catch::Matchers::Contains;
using onestep::BandSplitRoformerConfig;
namespace test = onestep::test;

namespace {

int64_t count_parameters(torch::nn::Module& module) {
    int64_t total = 0;
    for (const auto& parameter : module.parameters()) total += parameter.numel();
    return total;
}

}  // namespace

TEST_CASE("band-split RoFormer presets have the spec's exact parameter counts", "[unit]") {
    CHECK(BandSplitRoformerConfig::preset("bsr-ci").parameter_count() == 479656);
    CHECK(BandSplitRoformerConfig::preset("bsr-small-22k").parameter_count() == 2615748);
    CHECK(BandSplitRoformerConfig::preset("bsr-small").parameter_count() == 3964164);
    CHECK(BandSplitRoformerConfig::preset("bsr-small-6").parameter_count() == 5546004);
    CHECK(BandSplitRoformerConfig::preset("bsr-large").parameter_count() == 131704100);
    CHECK(BandSplitRoformerConfig::preset("bsr-large-1stem").parameter_count() == 98194764);
    CHECK(BandSplitRoformerConfig::preset("bsr-small").band_widths.size() == 62);
    for (const char* name : {"bsr-ci", "bsr-small-22k", "bsr-small"}) {
        onestep::BandSplitRoformer net(BandSplitRoformerConfig::preset(name));
        INFO(name);
        CHECK(count_parameters(*net) == net->config().parameter_count());
    }
    CHECK_THAT(test::user_error_message([] { BandSplitRoformerConfig::preset("bsr-huge"); }), Contains("bsr-ci, bsr-small-22k"));
    auto bad = BandSplitRoformerConfig::preset("bsr-ci");
    bad.band_widths.pop_back();
    CHECK_THAT(test::user_error_message([&] { bad.validate(); }), Contains("cover 192 bins but n_fft 512 has 257"));
}

TEST_CASE("band magnitudes widen each band's input by one value per bin and channel", "[unit]") {
    auto config = BandSplitRoformerConfig::preset("bsr-ci");
    config.band_magnitude = true;
    // Each band embedding reads 6 F_b values instead of 4 F_b: 2 F_b more gains and 2 F_b D more weights.
    CHECK(config.parameter_count() == 479656 + 2 * 257 * (1 + 32));
    torch::manual_seed(2);
    onestep::BandSplitRoformer net(config);
    CHECK(count_parameters(*net) == config.parameter_count());
    auto bad = config;
    bad.magnitude_power = 0;
    CHECK_THAT(test::user_error_message([&] { bad.validate(); }), Contains("magnitude_power must lie in (0, 2]"));
    {
        // With the re/im columns of every band embedding zeroed, the masks see only magnitudes: rotating
        // each bin's phase leaves them unchanged, so each magnitude pairs a bin's own re and im.
        torch::NoGradGuard no_grad;
        for (auto& named : net->named_parameters())
            if (named.key().find("band_embeddings.") == 0 && named.key().find(".weight") != std::string::npos) {
                at::Tensor weight = named.value();
                weight.slice(1, 0, weight.size(1) / 3 * 2).zero_();
            }
        at::Generator phases = at::detail::createCPUGenerator(7);
        at::Tensor features = torch::randn({1, 5, 257 * 2 * 2}, phases);
        at::Tensor pairs = features.view({1, 5, -1, 2}), angle = torch::rand({1, 5, 257 * 2}, phases) * 6.28;
        at::Tensor re = pairs.select(-1, 0), im = pairs.select(-1, 1);
        at::Tensor rotated = torch::stack({re * torch::cos(angle) - im * torch::sin(angle),
                                           re * torch::sin(angle) + im * torch::cos(angle)}, -1).view({1, 5, -1});
        CHECK(torch::allclose(net->masks(features), net->masks(rotated), 1e-4, 1e-5));
        CHECK_FALSE(torch::allclose(net->masks(features), net->masks(features * features.abs()), 1e-3, 1e-3));
    }
    config.magnitude_power = 0.3;   // power-law compressed magnitudes: same shapes
    net = onestep::BandSplitRoformer(config);
    at::Generator generator = at::detail::createCPUGenerator(6);
    at::Tensor mixture = torch::randn({1, 2, 2048}, generator);
    at::Tensor stems = net->forward(mixture);
    CHECK(stems.sizes() == at::IntArrayRef({1, 4, 2, 2048}));
    CHECK(torch::isfinite(stems).all().item<bool>());
    // Silence keeps outputs and gradients finite, also the gradient with respect to the mixture:
    // without the floor inside the root, |X|^0.3 has an infinite derivative at X = 0.
    at::Tensor silence = torch::zeros({1, 2, 2048}).requires_grad_();
    at::Tensor silent = net->forward(silence);
    (silent.sum() + silent.pow(2).sum()).backward();
    CHECK(torch::isfinite(silent).all().item<bool>());
    CHECK(torch::isfinite(silence.grad()).all().item<bool>());
    for (const auto& parameter : net->parameters())
        if (parameter.grad().defined()) CHECK(torch::isfinite(parameter.grad()).all().item<bool>());
}

TEST_CASE("hand-written attention equals a float64 softmax reference", "[unit]") {
    at::Generator generator = at::detail::createCPUGenerator(3);
    at::Tensor q = torch::randn({3, 2, 7, 8}, generator) * 3, k = torch::randn({3, 2, 7, 8}, generator) * 3,
               v = torch::randn({3, 2, 7, 8}, generator);
    at::Tensor ours = onestep::attention(q, k, v).to(torch::kDouble);
    at::Tensor qd = q.to(torch::kDouble), kd = k.to(torch::kDouble), vd = v.to(torch::kDouble);
    at::Tensor weights = torch::exp(torch::matmul(qd, kd.transpose(-2, -1)) / std::sqrt(8.0));
    at::Tensor reference = torch::matmul(weights / weights.sum(-1, true), vd);
    CHECK((ours - reference).abs().max().item<double>() < 1e-6);
}

TEST_CASE("RoPE scores depend only on the distance between positions", "[unit]") {
    at::Generator generator = at::detail::createCPUGenerator(4);
    at::Tensor q = torch::randn({1, 1, 1, 16}, generator, torch::kDouble).expand({1, 1, 12, 16});
    at::Tensor k = torch::randn({1, 1, 1, 16}, generator, torch::kDouble).expand({1, 1, 12, 16});
    at::Tensor rq = onestep::apply_rope(q.contiguous()), rk = onestep::apply_rope(k.contiguous());
    at::Tensor scores = torch::matmul(rq, rk.transpose(-2, -1))[0][0];   // [12, 12]
    for (int64_t p = 0; p + 3 < 12; ++p) CHECK(scores[p][p + 3].item<double>() == Approx(scores[0][3].item<double>()).epsilon(1e-12));
    CHECK(scores[0][0].item<double>() == Approx(torch::dot(q[0][0][0], k[0][0][0]).item<double>()).epsilon(1e-12));
    CHECK(std::abs(scores[0][3].item<double>() - scores[0][0].item<double>()) > 1e-3);
}

TEST_CASE("RoFormer features are bin-major, then channel, then re/im, and invert", "[unit]") {
    at::Generator generator = at::detail::createCPUGenerator(5);
    at::Tensor spectrum = torch::complex(torch::randn({2, 2, 5, 3}, generator), torch::randn({2, 2, 5, 3}, generator));
    at::Tensor features = onestep::BandSplitRoformerImpl::spectrum_to_features(spectrum);
    REQUIRE(features.sizes() == at::IntArrayRef({2, 3, 20}));
    // Column (f * C + c) * 2 + part of frame s is X[c, f, s].
    CHECK(features[1][2][(4 * 2 + 1) * 2 + 1].item<float>() == torch::imag(spectrum[1][1][4][2]).item<float>());
    CHECK(torch::equal(onestep::BandSplitRoformerImpl::features_to_spectrum(features, 2), spectrum));
}

TEST_CASE("bsr-ci separates any length into K stems of the input's shape", "[unit]") {
    torch::manual_seed(0);
    onestep::BandSplitRoformer net(BandSplitRoformerConfig::preset("bsr-ci"));
    at::Tensor mixture = torch::randn({2, 2, 3001}) * 0.1;   // not a multiple of the hop
    torch::NoGradGuard no_grad;
    at::Tensor stems = net->forward(mixture);
    REQUIRE(stems.sizes() == at::IntArrayRef({2, 4, 2, 3001}));
    CHECK(torch::isfinite(stems).all().item<bool>());
    // The batch items are independent.
    at::Tensor single = net->forward(mixture.slice(0, 1, 2));
    CHECK((single[0] - stems[1]).abs().max().item<float>() < 1e-5f);
}
#endif
