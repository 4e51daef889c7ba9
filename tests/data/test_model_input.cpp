// to_model_input: uint8 images to [-1, 1], 28x28 padded to 32 with the background value, exact
// sizes unchanged, other sizes refused.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include "data/dataset.hpp"
#include "data_test_helpers.hpp"

using onestep::data_test::user_error_message;

namespace {

onestep::Dataset image_set(const torch::Tensor& images) {
    onestep::Dataset data;
    data.name = "test-images";
    data.x = images;
    data.y = torch::zeros({images.size(0)}, torch::kInt64);
    data.num_classes = 1;
    data.class_names = {"only"};
    return data;
}

}   // namespace

TEST_CASE("images become floats in [-1, 1] and 28x28 is padded to 32 with -1", "[unit]") {
    auto images = torch::full({2, 1, 28, 28}, 255, torch::kUInt8);
    images[1].fill_(0);
    images[0][0][5][7] = 51;
    auto data = image_set(images);

    auto same = onestep::to_model_input(data, images, 28);
    REQUIRE(same.sizes() == torch::IntArrayRef({2, 1, 28, 28}));
    CHECK(same.scalar_type() == torch::kFloat32);
    CHECK(same.max().item<float>() == 1.0f);
    CHECK(same.min().item<float>() == -1.0f);
    CHECK(same[0][0][5][7].item<float>() == Approx(51 / 127.5 - 1));

    auto padded = onestep::to_model_input(data, images, 32);
    REQUIRE(padded.sizes() == torch::IntArrayRef({2, 1, 32, 32}));
    CHECK(torch::equal(padded.slice(2, 2, 30).slice(3, 2, 30), same));
    // The 2-pixel border is background (-1) everywhere.
    auto border = torch::ones({32, 32}, torch::kBool);
    border.slice(0, 2, 30).slice(1, 2, 30).fill_(false);
    CHECK(torch::all(padded[0][0].index({border}) == -1).item<bool>());
    CHECK(torch::all(padded[1] == -1).item<bool>());
    CHECK(padded.min().item<float>() >= -1.0f);
    CHECK(padded.max().item<float>() <= 1.0f);

    auto wide = onestep::to_model_input(data, images, 30);
    CHECK(wide.sizes() == torch::IntArrayRef({2, 1, 30, 30}));
}

TEST_CASE("image sizes that cannot be padded evenly are refused", "[unit]") {
    auto images = torch::zeros({1, 1, 28, 28}, torch::kUInt8);
    auto data = image_set(images);
    for (int64_t size : {16, 27, 31}) {
        INFO(size);
        const std::string message =
            user_error_message([&] { onestep::to_model_input(data, images, size); });
        CHECK_THAT(message, Catch::Contains("dataset 'test-images' has 28x28 images"));
        CHECK_THAT(message, Catch::Contains("image_size " + std::to_string(size)));
    }
}
