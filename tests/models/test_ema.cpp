// EMA copies: a real deep copy, the update rule, the warmup ramp and buffer copying.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "models/ema.hpp"

using namespace onestep;

TEST_CASE("EMA is a separate copy updated as mu * ema + (1 - mu) * online", "[unit]") {
    auto online = std::make_shared<torch::nn::LinearImpl>(2, 2);
    auto shadow = std::make_shared<torch::nn::LinearImpl>(2, 2);
    auto norm_online = std::make_shared<torch::nn::BatchNorm1dImpl>(2);
    {
        torch::NoGradGuard no_grad;
        online->weight.fill_(0.0);
        online->bias.fill_(0.0);
    }
    Ema plain(online, shadow, 0.9, false);
    CHECK(torch::equal(shadow->weight, online->weight));
    {
        torch::NoGradGuard no_grad;
        online->weight.fill_(1.0);
    }
    CHECK(shadow->weight.sum().item<double>() == 0.0);   // not aliased
    plain.update(0);
    CHECK(shadow->weight[0][0].item<double>() == Approx(0.1));
    plain.update(1);
    CHECK(shadow->weight[0][0].item<double>() == Approx(0.19));
    CHECK_FALSE(shadow->weight.requires_grad());

    auto warm_shadow = std::make_shared<torch::nn::LinearImpl>(2, 2);
    {
        torch::NoGradGuard no_grad;
        online->weight.fill_(0.0);
    }
    Ema warm(online, warm_shadow, 0.999, true);
    {
        torch::NoGradGuard no_grad;
        online->weight.fill_(1.0);
    }
    warm.update(0);   // mu = min(0.999, 1/10)
    CHECK(warm_shadow->weight[0][0].item<double>() == Approx(0.9));
    warm.update(10000);   // mu = 0.999
    CHECK(warm_shadow->weight[0][0].item<double>() == Approx(0.9 + 0.1 * 0.001));

    auto norm_shadow = std::make_shared<torch::nn::BatchNorm1dImpl>(2);
    Ema buffers(norm_online, norm_shadow, 0.5, false);
    norm_online->train();
    norm_online->forward(torch::randn({8, 2}) + 3.0);
    buffers.update(0);
    CHECK(torch::equal(norm_shadow->running_mean, norm_online->running_mean));
}
