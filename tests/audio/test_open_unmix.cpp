// Open-Unmix: the reference implementation's parameter count per target, shapes, and the soft
// mask that makes the stems sum to the mixture.
#if ONESTEP_WITH_AUDIO
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include "audio/separators/open_unmix.hpp"
#include "support.hpp"

using Catch::Matchers::Contains;
namespace test = onestep::test;

TEST_CASE("Open-Unmix has 8 893 348 parameters per target at the published size", "[unit]") {
    onestep::OpenUnmixConfig config;
    CHECK(config.parameter_count_per_target() == 8893348);
    onestep::OpenUnmix target(config);
    int64_t counted = 0;
    for (const auto& parameter : target->parameters()) counted += parameter.numel();
    CHECK(counted == 8893348);
    config.unidirectional = true;
    onestep::OpenUnmix streaming(config);
    counted = 0;
    for (const auto& parameter : streaming->parameters()) counted += parameter.numel();
    CHECK(counted == config.parameter_count_per_target());
    config.max_bin = 5000;
    CHECK_THAT(test::user_error_message([&] { config.validate(); }), Contains("max_bin must be in 1..2049"));
}

TEST_CASE("a small Open-Unmix separator returns K stems that sum to the mixture", "[unit]") {
    torch::manual_seed(1);
    onestep::OpenUnmixConfig config;
    config.n_fft = 512;
    config.hop = 128;
    config.max_bin = 200;
    config.hidden = 32;
    config.stems = 3;
    onestep::OpenUnmixSeparator umx(config);
    umx->eval();
    torch::NoGradGuard no_grad;
    at::Tensor mixture = torch::randn({2, 2, 4000}) * 0.1;
    at::Tensor stems = umx->forward(mixture);
    REQUIRE(stems.sizes() == at::IntArrayRef({2, 3, 2, 4000}));
    // The soft masks sum to one in every bin, so the stems add up to the mixture.
    CHECK((stems.sum(1) - mixture).abs().max().item<float>() < 1e-4f);
}
#endif
