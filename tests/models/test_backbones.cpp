// U-Net and DiT velocity networks: shapes, parameter counts, zero output at init, gradient flow,
// conditioning (labels, null label, levels), option errors, determinism and siblings.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/options.hpp"
#include "models/dit.hpp"
#include "models/network.hpp"
#include "models/unet.hpp"
#include "support.hpp"

using namespace onestep;
using Catch::Matchers::Contains;

namespace {

// The backbone keys with the unet32 preset and a 1-2 M parameter DiT as defaults, declared here
// so the tests do not depend on the defaults of network_options().
OptionTable backbone_table() {
    OptionTable table;
    table.add_int("model.unet.channels", 32, 1, 4096, "base channels")
        .add_int_list("model.unet.channel_mult", {1, 2, 2}, 1, 64, "channel multiplier per level")
        .add_int("model.unet.res_blocks", 1, 1, 16, "residual blocks per level")
        .add_int_list("model.unet.attention_resolutions", {8}, 1, 1024, "attention resolutions")
        .add_float("model.unet.dropout", 0.0, 0.0, 0.9, "dropout")
        .add_int("model.unet.groups", 8, 1, 256, "GroupNorm groups")
        .add_int("model.unet.heads", 1, 1, 64, "attention heads")
        .add_int("model.dit.patch", 4, 1, 64, "patch side")
        .add_int("model.dit.dim", 128, 4, 8192, "token width")
        .add_int("model.dit.depth", 6, 1, 128, "blocks")
        .add_int("model.dit.heads", 4, 1, 128, "attention heads")
        .add_float("model.dit.mlp_ratio", 4.0, 0.5, 16.0, "MLP width / token width");
    return table;
}

Config backbone_config(const std::vector<std::string>& overrides = {}) {
    return resolve_config(backbone_table(), "", overrides);
}

// A small DiT for the tests that do not need the default size.
const std::vector<std::string> kSmallDit = {"model.dit.dim=32", "model.dit.depth=2", "model.dit.heads=2"};

std::vector<std::string> with(std::vector<std::string> base, const std::vector<std::string>& extra) {
    base.insert(base.end(), extra.begin(), extra.end());
    return base;
}

using Factory = std::function<std::shared_ptr<VelocityNet>(const Config&, const NetworkShape&)>;

struct Backbone {
    std::string name;
    Factory factory;
    std::vector<std::string> overrides;
};

std::vector<Backbone> backbones() {
    return {{"unet", make_unet, {}}, {"dit", make_dit, kSmallDit}};
}

// Makes every zero-initialised layer non-zero, so every parameter influences the output.
void perturb(torch::nn::Module& net, double std = 0.05) {
    torch::NoGradGuard no_grad;
    for (auto& parameter : net.parameters()) parameter.add_(torch::randn_like(parameter) * std);
}

struct Inputs {
    at::Tensor x, t, labels, levels;
};

Inputs make_inputs(int64_t batch, const std::vector<int64_t>& sample_shape, int64_t num_classes,
                   int64_t level_count = 0) {
    std::vector<int64_t> sizes{batch};
    sizes.insert(sizes.end(), sample_shape.begin(), sample_shape.end());
    Inputs inputs;
    inputs.x = torch::randn(sizes);
    inputs.t = torch::rand({batch});
    if (num_classes > 0) inputs.labels = torch::arange(batch, torch::kLong) % num_classes;
    if (level_count > 0) inputs.levels = torch::arange(batch, torch::kLong) % level_count;
    return inputs;
}

at::Tensor run(VelocityNet& net, const Inputs& inputs) {
    return net.forward(inputs.x, inputs.t, inputs.labels, inputs.levels);
}

bool same_weights(torch::nn::Module& a, torch::nn::Module& b) {
    auto b_params = b.named_parameters();
    for (const auto& item : a.named_parameters()) {
        if (!torch::equal(item.value(), b_params[item.key()])) return false;
    }
    return true;
}

}  // namespace

TEST_CASE("backbones output tensors shaped like their input", "[unit]") {
    torch::manual_seed(1);
    struct Case {
        std::string name;
        Factory factory;
        std::vector<int64_t> sample_shape;
        std::vector<std::string> overrides;
    };
    std::vector<Case> cases = {
        {"unet32 1x32x32", make_unet, {1, 32, 32}, {}},
        {"unet32 3x32x32", make_unet, {3, 32, 32}, {}},
        {"2-level unet 1x16x16", make_unet, {1, 16, 16}, {"model.unet.channel_mult=[1,2]", "model.unet.channels=16"}},
        {"dit 1x32x32", make_dit, {1, 32, 32}, kSmallDit},
        {"dit 3x32x32", make_dit, {3, 32, 32}, kSmallDit},
        {"dit patch 2 1x16x16", make_dit, {1, 16, 16}, with(kSmallDit, {"model.dit.patch=2"})},
        {"dit 2x8x12", make_dit, {2, 8, 12}, kSmallDit},
    };
    for (const auto& test : cases) {
        INFO(test.name);
        auto net = test.factory(backbone_config(test.overrides), {test.sample_shape, 10, 0});
        perturb(*net);
        Inputs inputs = make_inputs(3, test.sample_shape, 10);
        at::Tensor v = run(*net, inputs);
        CHECK(v.sizes() == inputs.x.sizes());
        CHECK(torch::isfinite(v).all().item<bool>());
    }
}

TEST_CASE("DiT unpatchify puts each patch back where it came from", "[unit]") {
    // With the block's adaLN output at zero the block is the identity and no token sees another,
    // so changing one input patch must change exactly the same output patch.
    torch::manual_seed(2);
    auto net = make_dit(backbone_config(with(kSmallDit, {"model.dit.depth=1"})), {{2, 8, 12}, 0, 0});
    perturb(*net);
    {
        torch::NoGradGuard no_grad;
        for (auto& item : net->named_parameters()) {
            if (item.key().find("blocks.0.modulation") != std::string::npos) item.value().zero_();
        }
    }
    Inputs inputs = make_inputs(1, {2, 8, 12}, 0);
    at::Tensor before = run(*net, inputs);
    inputs.x.index_put_({0, torch::indexing::Slice(), torch::indexing::Slice(4, 8), torch::indexing::Slice(8, 12)},
                        torch::randn({2, 4, 4}));
    at::Tensor changed = (run(*net, inputs) - before).abs().sum(1)[0] > 0;   // [8, 12]
    at::Tensor expected = torch::zeros({8, 12}, torch::kBool);
    expected.index_put_({torch::indexing::Slice(4, 8), torch::indexing::Slice(8, 12)}, true);
    CHECK(torch::equal(changed, expected));
}

TEST_CASE("DiT positions are fixed 2-D sin-cos features, one per token", "[unit]") {
    auto net = make_dit(backbone_config(kSmallDit), {{1, 32, 32}, 10, 0});
    const at::Tensor* found = net->named_buffers().find("positions");
    REQUIRE(found != nullptr);
    at::Tensor positions = found->squeeze(0);   // [64 tokens, 32]
    REQUIRE(positions.sizes() == torch::IntArrayRef({64, 32}));
    CHECK(net->named_parameters().find("positions") == nullptr);
    // Token 0 sits at row 0, column 0: each quarter is sin(0) = 0 then cos(0) = 1.
    at::Tensor expected_origin = torch::cat({torch::zeros({8}), torch::ones({8}), torch::zeros({8}), torch::ones({8})});
    CHECK(torch::allclose(positions[0], expected_origin));
    // Token 1 (row 0, column 1): the column half holds sin(omega_k), cos(omega_k), omega_k = 10000^(-k/8).
    at::Tensor omega = torch::pow(10000.0, -torch::arange(8, torch::kDouble) / 8.0).to(torch::kFloat);
    CHECK(torch::allclose(positions[1].slice(0, 0, 8), torch::sin(omega)));
    CHECK(torch::allclose(positions[1].slice(0, 8, 16), torch::cos(omega)));
    CHECK(torch::allclose(positions[1].slice(0, 16, 32), expected_origin.slice(0, 16, 32)));
    // Token 8 starts row 1: the row half moves, the column half is the origin's.
    CHECK(torch::allclose(positions[8].slice(0, 0, 16), expected_origin.slice(0, 0, 16)));
    CHECK(torch::allclose(positions[8].slice(0, 16, 24), torch::sin(omega)));
    // Every token has its own position.
    at::Tensor distances = torch::cdist(positions, positions) + torch::eye(64) * 1e3;
    CHECK(distances.min().item<double>() > 0.1);
}

TEST_CASE("unet32 has about 1.2 M parameters and grows with its options", "[unit]") {
    NetworkShape shape{{1, 32, 32}, 10, 0};
    int64_t unet32 = count_parameters(*make_unet(backbone_config(), shape));
    // spec/image-methods.md §2.4: unet32 ~1.2 M, unet24 ~0.67 M, unet16 ~0.30 M.
    CHECK(unet32 > 1150000);
    CHECK(unet32 < 1250000);
    int64_t unet24 = count_parameters(*make_unet(backbone_config({"model.unet.channels=24"}), shape));
    CHECK(unet24 > 640000);
    CHECK(unet24 < 700000);
    int64_t unet16 = count_parameters(*make_unet(backbone_config({"model.unet.channels=16"}), shape));
    CHECK(unet16 > 280000);
    CHECK(unet16 < 320000);

    CHECK(count_parameters(*make_unet(backbone_config({"model.unet.channels=48"}), shape)) > unet32);
    CHECK(count_parameters(*make_unet(backbone_config({"model.unet.channel_mult=[1,2,3]"}), shape)) > unet32);
    CHECK(count_parameters(*make_unet(
              backbone_config({"model.unet.channel_mult=[1,2]", "model.unet.attention_resolutions=[16]"}), shape)) <
          unet32);
    CHECK(count_parameters(*make_unet(backbone_config({"model.unet.res_blocks=2"}), shape)) > unet32);
    CHECK(count_parameters(*make_unet(backbone_config({"model.unet.attention_resolutions=[]"}), shape)) < unet32);
    // Unconditional: the 11 x 128 label table is gone.
    CHECK(count_parameters(*make_unet(backbone_config(), {{1, 32, 32}, 0, 0})) == unet32 - 11 * 128);
}

TEST_CASE("the default DiT has 1-2 M parameters", "[unit]") {
    NetworkShape shape{{1, 32, 32}, 10, 0};
    int64_t dit = count_parameters(*make_dit(backbone_config(), shape));
    CHECK(dit > 1000000);
    CHECK(dit < 2000000);
    CHECK(count_parameters(*make_dit(backbone_config({"model.dit.depth=4"}), shape)) < dit);
    CHECK(count_parameters(*make_dit(backbone_config({"model.dit.mlp_ratio=2"}), shape)) < dit);
    // The head maps each token to patch^2 x C values; heads do not change the count.
    CHECK(count_parameters(*make_dit(backbone_config({"model.dit.patch=2"}), shape)) < dit);
    CHECK(count_parameters(*make_dit(backbone_config({"model.dit.heads=8"}), shape)) == dit);
}

TEST_CASE("backbones output exactly zero at init", "[unit]") {
    torch::manual_seed(3);
    for (const auto& backbone : backbones()) {
        INFO(backbone.name);
        for (int64_t channels : {1, 3}) {
            auto net = backbone.factory(backbone_config(backbone.overrides), {{channels, 32, 32}, 10, 4});
            Inputs inputs = make_inputs(4, {channels, 32, 32}, 10, 4);
            at::Tensor v = run(*net, inputs);
            CHECK(v.abs().max().item<double>() == 0.0);
        }
    }
}

TEST_CASE("gradients reach every parameter once the zero-initialised layers are perturbed", "[unit]") {
    torch::manual_seed(4);
    for (const auto& backbone : backbones()) {
        INFO(backbone.name);
        auto net = backbone.factory(backbone_config(backbone.overrides), {{1, 32, 32}, 10, 4});
        perturb(*net);
        Inputs inputs = make_inputs(4, {1, 32, 32}, 10, 4);
        at::Tensor loss = (run(*net, inputs) - torch::randn_like(inputs.x)).pow(2).mean();
        loss.backward();
        for (const auto& item : net->named_parameters()) {
            INFO(item.key());
            REQUIRE(item.value().grad().defined());
            CHECK(item.value().grad().abs().sum().item<double>() > 0.0);
        }
    }
}

TEST_CASE("one optimizer step from init makes the output non-zero", "[unit]") {
    torch::manual_seed(5);
    for (const auto& backbone : backbones()) {
        INFO(backbone.name);
        auto net = backbone.factory(backbone_config(backbone.overrides), {{1, 32, 32}, 10, 0});
        torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(1e-3));
        Inputs inputs = make_inputs(4, {1, 32, 32}, 10);
        at::Tensor target = torch::randn_like(inputs.x);
        at::Tensor loss = (run(*net, inputs) - target).pow(2).mean();
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        at::Tensor v = run(*net, inputs);
        CHECK(v.abs().max().item<double>() > 0.0);
        CHECK((v - target).pow(2).mean().item<double>() < loss.item<double>());
    }
}

TEST_CASE("labels, the null label and levels change the output", "[unit]") {
    torch::manual_seed(6);
    const int64_t num_classes = 10;
    for (const auto& backbone : backbones()) {
        INFO(backbone.name);
        auto net = backbone.factory(backbone_config(backbone.overrides), {{1, 32, 32}, num_classes, 4});
        perturb(*net);
        Inputs inputs = make_inputs(2, {1, 32, 32}, num_classes, 4);
        inputs.labels = torch::full({2}, 3, torch::kLong);
        inputs.levels = torch::full({2}, 1, torch::kLong);
        at::Tensor base = run(*net, inputs);

        Inputs other_label = inputs;
        other_label.labels = torch::full({2}, 7, torch::kLong);
        CHECK((run(*net, other_label) - base).abs().max().item<double>() > 1e-6);

        // Row num_classes is the null label: accepted, and it means something else than any class.
        Inputs null_label = inputs;
        null_label.labels = torch::full({2}, num_classes, torch::kLong);
        at::Tensor unconditional = run(*net, null_label);
        CHECK(torch::isfinite(unconditional).all().item<bool>());
        CHECK((unconditional - base).abs().max().item<double>() > 1e-6);
        Inputs beyond = inputs;
        beyond.labels = torch::full({2}, num_classes + 1, torch::kLong);
        CHECK_THROWS(run(*net, beyond));

        Inputs other_level = inputs;
        other_level.levels = torch::full({2}, 3, torch::kLong);
        CHECK((run(*net, other_level) - base).abs().max().item<double>() > 1e-6);
        Inputs missing_level = inputs;
        missing_level.levels = at::Tensor();
        CHECK_THROWS(run(*net, missing_level));
    }
}

TEST_CASE("an unconditional backbone ignores labels", "[unit]") {
    torch::manual_seed(7);
    for (const auto& backbone : backbones()) {
        INFO(backbone.name);
        auto net = backbone.factory(backbone_config(backbone.overrides), {{1, 16, 16}, 0, 0});
        perturb(*net);
        Inputs inputs = make_inputs(2, {1, 16, 16}, 0);
        at::Tensor without = run(*net, inputs);
        inputs.labels = torch::tensor({1, 2}, torch::kLong);
        CHECK(torch::equal(run(*net, inputs), without));
    }
}

TEST_CASE("dropout acts in training mode only", "[unit]") {
    torch::manual_seed(8);
    auto net = make_unet(backbone_config({"model.unet.dropout=0.5"}), {{1, 16, 16}, 10, 0});
    perturb(*net);
    Inputs inputs = make_inputs(2, {1, 16, 16}, 10);
    net->train();
    CHECK(!torch::equal(run(*net, inputs), run(*net, inputs)));
    net->eval();
    CHECK(torch::equal(run(*net, inputs), run(*net, inputs)));
}

TEST_CASE("bad DiT options are user errors naming the key and the values", "[unit]") {
    NetworkShape shape{{1, 32, 32}, 10, 0};
    std::string message = onestep::test::user_error_message([&] { make_dit(backbone_config({"model.dit.patch=5"}), shape); });
    CHECK_THAT(message, Contains("model.dit.patch=5") && Contains("32x32"));
    message = onestep::test::user_error_message([&] { make_dit(backbone_config({"model.dit.dim=96", "model.dit.heads=5"}), shape); });
    CHECK_THAT(message, Contains("model.dit.dim=96") && Contains("model.dit.heads=5"));
    message = onestep::test::user_error_message([&] { make_dit(backbone_config({"model.dit.dim=30", "model.dit.heads=2"}), shape); });
    CHECK_THAT(message, Contains("model.dit.dim=30"));
    message = onestep::test::user_error_message([&] { make_dit(backbone_config(), {{2}, 0, 0}); });
    CHECK_THAT(message, Contains("model.arch=dit"));
}

TEST_CASE("bad U-Net options are user errors naming the key", "[unit]") {
    NetworkShape shape{{1, 32, 32}, 10, 0};
    std::string message = onestep::test::user_error_message([&] { make_unet(backbone_config({"model.unet.groups=5"}), shape); });
    CHECK_THAT(message, Contains("model.unet.groups=5"));
    message = onestep::test::user_error_message([&] { make_unet(backbone_config({"model.unet.heads=3"}), shape); });
    CHECK_THAT(message, Contains("model.unet.heads=3") && Contains("64"));
    message = onestep::test::user_error_message([&] { make_unet(backbone_config({"model.unet.attention_resolutions=[4]"}), shape); });
    CHECK_THAT(message, Contains("model.unet.attention_resolutions") && Contains("32, 16, 8"));
    message = onestep::test::user_error_message([&] { make_unet(backbone_config(), {{1, 30, 30}, 10, 0}); });
    CHECK_THAT(message, Contains("model.unet.channel_mult") && Contains("30x30"));
    message = onestep::test::user_error_message([&] { make_unet(backbone_config(), {{2}, 0, 0}); });
    CHECK_THAT(message, Contains("model.arch=unet"));
}

TEST_CASE("the same seed gives the same weights and output", "[unit]") {
    for (const auto& backbone : backbones()) {
        INFO(backbone.name);
        Config config = backbone_config(backbone.overrides);
        NetworkShape shape{{1, 16, 16}, 10, 4};
        auto build_and_run = [&](uint64_t seed) {
            torch::manual_seed(seed);
            auto net = backbone.factory(config, shape);
            perturb(*net);
            return std::make_pair(net, run(*net, make_inputs(2, {1, 16, 16}, 10, 4)));
        };
        auto first = build_and_run(11);
        auto second = build_and_run(11);
        auto other = build_and_run(12);
        CHECK(same_weights(*first.first, *second.first));
        CHECK(torch::equal(first.second, second.second));
        CHECK(!same_weights(*first.first, *other.first));
    }
}

TEST_CASE("make_sibling gives the same architecture with fresh weights", "[unit]") {
    torch::manual_seed(9);
    for (const auto& backbone : backbones()) {
        INFO(backbone.name);
        auto net = backbone.factory(backbone_config(backbone.overrides), {{1, 16, 16}, 10, 4});
        auto sibling = net->make_sibling();
        auto sibling_params = sibling->named_parameters();
        REQUIRE(sibling_params.size() == net->named_parameters().size());
        for (const auto& item : net->named_parameters()) {
            INFO(item.key());
            REQUIRE(sibling_params.contains(item.key()));
            CHECK(sibling_params[item.key()].sizes() == item.value().sizes());
        }
        CHECK(sibling->named_buffers().size() == net->named_buffers().size());
        CHECK(!same_weights(*net, *sibling));
        Inputs inputs = make_inputs(2, {1, 16, 16}, 10, 4);
        CHECK(run(*sibling, inputs).sizes() == inputs.x.sizes());
    }
}

TEST_CASE("make_network builds both image backbones from network_options", "[unit]") {
    torch::manual_seed(10);
    for (const std::string arch : {"unet", "dit"}) {
        INFO(arch);
        Config config = resolve_config(network_options(arch), "", {});
        auto net = make_network(config, {{1, 32, 32}, 10, 0});
        int64_t parameters = count_parameters(*net);
        CHECK(parameters > 1000000);
        CHECK(parameters < 2000000);
        Inputs inputs = make_inputs(2, {1, 32, 32}, 10);
        at::Tensor v = run(*net, inputs);
        CHECK(v.sizes() == inputs.x.sizes());
        CHECK(v.abs().max().item<double>() == 0.0);
    }
}
