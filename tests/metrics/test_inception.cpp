// The FID InceptionV3 without downloaded weights (image-metrics spec §11, items 11–13): layout and
// names, loading by name from safetensors / plain-dict zip / TorchScript files, pools, preprocessing.
#include <caffe2/serialize/inline_container.h>
#include <catch2/catch.hpp>
#include <torch/script.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/tensor_file.hpp"
#include "data/data_test_helpers.hpp"
#include "metrics/inception.hpp"
#include "support.hpp"

using onestep::FidInceptionV3;
using onestep::InceptionResize;
using onestep::UserError;
using onestep::data_test::user_error_message;
using onestep::test::TempDir;

namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
    return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Default initialisation shrinks activations through 94 layers towards denormals; He-scaled
// convolutions and BatchNorm statistics near identity keep every layer O(1) and every key distinct.
FidInceptionV3 seeded_inception(uint64_t seed) {
    torch::manual_seed(seed);
    FidInceptionV3 net;
    torch::NoGradGuard no_grad;
    for (auto& item : net->named_parameters(true)) {
        const std::string& key = item.key();
        at::Tensor value = item.value();
        if (ends_with(key, "conv.weight")) {
            value.normal_(0.0, std::sqrt(2.0 / static_cast<double>(value[0].numel())));
        } else if (ends_with(key, "bn.weight")) {
            value.uniform_(0.5, 1.5);
        } else if (key == "fc.weight") {
            value.normal_(0.0, std::sqrt(1.0 / static_cast<double>(onestep::kInceptionFeatures)));
        } else {
            value.normal_(0.0, 0.1);
        }
    }
    for (auto& item : net->named_buffers(true)) {
        if (ends_with(item.key(), "running_mean")) item.value().normal_(0.0, 0.1);
        if (ends_with(item.key(), "running_var")) item.value().uniform_(0.5, 1.5);
    }
    net->eval();
    return net;
}

// Every state-dict key the spec's tables imply, built independently of the module code.
std::set<std::string> spec_state_dict_names() {
    const std::map<char, std::vector<std::string>> block_convs = {
        {'A', {"branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3",
               "branch_pool"}},
        {'B', {"branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"}},
        {'C', {"branch1x1", "branch7x7_1", "branch7x7_2", "branch7x7_3", "branch7x7dbl_1", "branch7x7dbl_2",
               "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5", "branch_pool"}},
        {'D', {"branch3x3_1", "branch3x3_2", "branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4"}},
        {'E', {"branch1x1", "branch3x3_1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_1", "branch3x3dbl_2",
               "branch3x3dbl_3a", "branch3x3dbl_3b", "branch_pool"}},
    };
    const std::vector<std::pair<std::string, char>> blocks = {
        {"Mixed_5b", 'A'}, {"Mixed_5c", 'A'}, {"Mixed_5d", 'A'}, {"Mixed_6a", 'B'}, {"Mixed_6b", 'C'},
        {"Mixed_6c", 'C'}, {"Mixed_6d", 'C'}, {"Mixed_6e", 'C'}, {"Mixed_7a", 'D'}, {"Mixed_7b", 'E'},
        {"Mixed_7c", 'E'}};
    std::vector<std::string> convs = {"Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1",
                                      "Conv2d_4a_3x3"};
    for (const auto& [block, kind] : blocks) {
        for (const std::string& branch : block_convs.at(kind)) convs.push_back(block + "." + branch);
    }
    REQUIRE(convs.size() == 94);
    std::set<std::string> names = {"fc.weight", "fc.bias"};
    for (const std::string& conv : convs) {
        for (const char* leaf : {".conv.weight", ".bn.weight", ".bn.bias", ".bn.running_mean", ".bn.running_var"})
            names.insert(conv + leaf);
    }
    return names;
}

// Images in [-1, 1] that hit every pixel level and both ends.
at::Tensor test_images(int64_t count, int64_t channels, int64_t side, uint64_t seed) {
    torch::manual_seed(seed);
    return torch::rand({count, channels, side, side}) * 2.0 - 1.0;
}

}  // namespace

TEST_CASE("FID Inception has the spec's children, names, counts and BatchNorm eps", "[unit]") {
    FidInceptionV3 net;
    std::vector<std::string> children;
    for (const auto& item : net->named_children()) children.push_back(item.key());
    CHECK(children == std::vector<std::string>{"Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1",
                                               "Conv2d_4a_3x3", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
                                               "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a",
                                               "Mixed_7b", "Mixed_7c", "fc"});

    int64_t basic_convs = 0, batch_norms = 0;
    for (const auto& module : net->modules(false)) {
        if (module->as<onestep::BasicConv2dImpl>()) ++basic_convs;
        if (auto* bn = module->as<torch::nn::BatchNorm2dImpl>()) {
            ++batch_norms;
            CHECK(bn->options.eps() == 1e-3);
        }
    }
    CHECK(basic_convs == 94);
    CHECK(batch_norms == 94);

    int64_t parameters = 0, without_fc = 0;
    for (const auto& item : net->named_parameters(true)) {
        parameters += item.value().numel();
        if (item.key().rfind("fc.", 0) != 0) without_fc += item.value().numel();
    }
    CHECK(parameters == 23850960);
    CHECK(without_fc == 21785568);

    std::set<std::string> keys;
    for (const auto& item : onestep::inception_state_dict(net)) keys.insert(item.first);
    CHECK(keys.size() == 472);
    CHECK(keys == spec_state_dict_names());
    CHECK(keys.count("Mixed_6b.branch7x7dbl_3.bn.running_var") == 1);
    CHECK(keys.count("Mixed_7c.branch3x3dbl_3b.bn.bias") == 1);

    CHECK_FALSE(net->Mixed_7b->max_pool);
    CHECK(net->Mixed_7c->max_pool);
}

TEST_CASE("FID Inception forward gives pool3, the four taps and bias-free logits, deterministically", "[unit]") {
    torch::NoGradGuard no_grad;
    FidInceptionV3 net = seeded_inception(11);
    torch::manual_seed(5);
    at::Tensor input = torch::randn({2, 3, 299, 299});
    onestep::InceptionOutputs out = net->forward_all(input, true, true);

    CHECK(out.pool3.sizes() == at::IntArrayRef({2, 2048}));
    CHECK(out.taps.at(64).sizes() == at::IntArrayRef({2, 64, 73, 73}));
    CHECK(out.taps.at(192).sizes() == at::IntArrayRef({2, 192, 35, 35}));
    CHECK(out.taps.at(768).sizes() == at::IntArrayRef({2, 768, 17, 17}));
    CHECK(out.taps.at(2048).sizes() == at::IntArrayRef({2, 2048, 8, 8}));
    CHECK(out.logits.sizes() == at::IntArrayRef({2, 1008}));
    CHECK(torch::isfinite(out.pool3).all().item<bool>());
    CHECK(out.pool3.std().item<double>() > 1e-3);
    CHECK(torch::allclose(out.pool3, out.taps.at(2048).mean({2, 3})));
    // The logits omit the fc bias: fc(pool3) - bias.
    CHECK(torch::allclose(out.logits, net->fc(out.pool3) - net->fc->bias, 1e-5, 1e-5));
    CHECK(torch::equal(net->forward(input), out.pool3));

    // Same seed, same weights, same numbers (at a smaller input to save time).
    at::Tensor small = input.slice(2, 0, 139).slice(3, 0, 139);
    at::Tensor first = seeded_inception(11)->forward(small);
    at::Tensor again = seeded_inception(11)->forward(small);
    CHECK(first.sizes() == at::IntArrayRef({2, 2048}));
    CHECK(torch::equal(first, again));
    CHECK_FALSE(torch::equal(first, seeded_inception(12)->forward(small)));
}

TEST_CASE("Inception weights saved as safetensors load by name and give identical features", "[unit]") {
    TempDir dir;
    FidInceptionV3 original = seeded_inception(21);
    const std::string path = dir / "inception.safetensors";
    onestep::write_safetensors(path, onestep::inception_state_dict(original));

    auto loaded = onestep::make_inception_extractor(path, "tf1-bilinear", torch::kCPU);
    const std::string sha = onestep::sha256_file(path);
    CHECK(loaded->sha256() == sha);
    CHECK(loaded->id() == "inception-pool3@" + sha.substr(0, 8));
    CHECK(loaded->mode() == "quantized, tf1-bilinear 299");
    CHECK(loaded->feature_dim() == 2048);

    onestep::InceptionExtractor reference(original, sha, InceptionResize::Tf1Bilinear, torch::kCPU);
    at::Tensor images = test_images(3, 1, 20, 4);
    at::Tensor features = loaded->features(images);
    CHECK(features.sizes() == at::IntArrayRef({3, 2048}));
    CHECK(features.scalar_type() == torch::kFloat);
    CHECK(torch::equal(features, reference.features(images)));
    // Batches of two: the last partial batch is kept (equal up to the kernels' batch-size rounding).
    onestep::InceptionExtractor pairs(original, sha, InceptionResize::Tf1Bilinear, torch::kCPU, 2048, 2);
    CHECK(torch::allclose(pairs.features(images), features, 1e-5, 1e-6));
    CHECK(loaded->features(images.slice(0, 0, 0)).sizes() == at::IntArrayRef({0, 2048}));

    at::Tensor logits = loaded->logits(images.slice(0, 0, 1));
    CHECK(logits.sizes() == at::IntArrayRef({1, 1008}));
    CHECK(torch::allclose(logits, torch::matmul(features.slice(0, 0, 1), original->fc->weight.t()), 1e-4, 1e-4));

    // A lower tap is the spatial mean of that block's output, under its own id.
    auto tap768 = onestep::make_inception_extractor(path, "pt-bilinear", torch::kCPU, 768);
    CHECK(tap768->id() == "inception-tap768@" + sha.substr(0, 8));
    CHECK(tap768->mode() == "quantized, pt-bilinear 299");
    at::Tensor tap_features = tap768->features(images.slice(0, 0, 1));
    torch::NoGradGuard no_grad;
    at::Tensor input = onestep::inception_input(images.slice(0, 0, 1), InceptionResize::PtBilinear);
    CHECK(torch::allclose(tap_features, original->forward_all(input, true, false).taps.at(768).mean({2, 3}), 1e-5,
                          1e-6));
}

TEST_CASE("a plain-dict zip checkpoint written by torch::pickle_save loads by name", "[unit]") {
    TempDir dir;
    FidInceptionV3 original = seeded_inception(31);
    c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
    for (const auto& [key, value] : onestep::inception_state_dict(original)) dict.insert(key, value);
    // Files saved by PyTorch carry the batch counters (566 keys); they are accepted and ignored.
    for (const auto& item : original->named_buffers(true)) {
        if (ends_with(item.key(), "num_batches_tracked")) dict.insert(item.key(), item.value());
    }
    CHECK(dict.size() == 566);
    const std::string path = dir / "pt_inception.pth";
    {
        std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
        std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }

    FidInceptionV3 loaded;
    onestep::load_inception_weights(loaded, path);
    CHECK_FALSE(loaded->is_training());
    auto expected = onestep::inception_state_dict(original);
    auto actual = onestep::inception_state_dict(loaded);
    REQUIRE(actual.size() == expected.size());
    for (const auto& [key, value] : expected) {
        INFO(key);
        CHECK(torch::equal(actual.at(key), value));
    }

    // The factory takes such a zip for the native network (it has no TorchScript code).
    auto extractor = onestep::make_inception_extractor(path, "", torch::kCPU);
    CHECK(extractor->mode() == "quantized, pt-bilinear 299");
    CHECK(extractor->sha256() == onestep::sha256_file(path));

    SECTION("a zip holding something other than a dict of tensors is refused with the conversion to use") {
        const std::string list_path = dir / "list.pth";
        std::vector<char> bytes = torch::pickle_save(c10::IValue(std::vector<at::Tensor>{torch::ones({2})}));
        std::ofstream(list_path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        std::string message = user_error_message([&] { onestep::load_inception_weights(loaded, list_path); });
        CHECK_THAT(message, Catch::Contains(list_path));
        CHECK_THAT(message, Catch::Contains("torch.save(dict(torch.load(f)), out)"));

        // What torch.save(model.state_dict()) writes: the pickle of an OrderedDict.
        const std::string ordered_path = dir / "ordered.pth";
        {
            caffe2::serialize::PyTorchStreamWriter writer(ordered_path);
            const std::string pickle("\x80\x02" "ccollections\nOrderedDict\nq\x00)Rq\x01.", 34);
            writer.writeRecord("data.pkl", pickle.data(), pickle.size());
            writer.writeRecord("version", "3\n", 2);
            writer.writeEndOfFile();
        }
        message = user_error_message([&] { onestep::load_inception_weights(loaded, ordered_path); });
        CHECK_THAT(message, Catch::Contains(ordered_path + ": holds an OrderedDict"));
        CHECK_THAT(message, Catch::Contains("torch.save(dict(torch.load(f)), out)"));
        CHECK_THAT(message, !Catch::Contains("INTERNAL ASSERT"));

        c10::impl::GenericDict nested(c10::StringType::get(), c10::AnyType::get());
        nested.insert("epoch", c10::IValue(int64_t{3}));
        const std::string nested_path = dir / "nested.pth";
        bytes = torch::pickle_save(c10::IValue(nested));
        std::ofstream(nested_path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        CHECK_THAT(user_error_message([&] { onestep::load_inception_weights(loaded, nested_path); }),
                   Catch::Contains("'epoch'"));
    }
}

TEST_CASE("a state dict with a missing, mis-shaped or unexpected key fails and names it", "[unit]") {
    TempDir dir;
    FidInceptionV3 net;
    auto good = onestep::inception_state_dict(net);

    SECTION("missing") {
        auto tensors = good;
        tensors.erase("Mixed_6b.branch7x7dbl_3.bn.running_var");
        const std::string path = dir / "missing.safetensors";
        onestep::write_safetensors(path, tensors);
        FidInceptionV3 target;
        std::string message = user_error_message([&] { onestep::load_inception_weights(target, path); });
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("missing 1: Mixed_6b.branch7x7dbl_3.bn.running_var"));
        CHECK_THAT(message, !Catch::Contains("unexpected"));
    }
    SECTION("mis-shaped") {
        auto tensors = good;
        tensors["fc.weight"] = torch::zeros({1000, 2048});
        const std::string path = dir / "misshaped.safetensors";
        onestep::write_safetensors(path, tensors);
        FidInceptionV3 target;
        std::string message = user_error_message([&] { onestep::load_inception_weights(target, path); });
        CHECK_THAT(message, Catch::Contains("mis-shaped 1: fc.weight [1000, 2048] (expected [1008, 2048])"));
    }
    SECTION("unexpected, and the batch counters ignored") {
        auto tensors = good;
        tensors["AuxLogits.fc.weight"] = torch::zeros({1000, 768});
        tensors["Conv2d_1a_3x3.bn.num_batches_tracked"] = torch::zeros({}, torch::kLong);
        FidInceptionV3 target;
        std::string message =
            user_error_message([&] { onestep::load_inception_state_dict(target, tensors, "aux.pth"); });
        CHECK_THAT(message, Catch::Contains("aux.pth"));
        CHECK_THAT(message, Catch::Contains("unexpected 1: AuxLogits.fc.weight"));
        CHECK_THAT(message, !Catch::Contains("num_batches_tracked"));
    }
    SECTION("a wrong file lists a few names and counts the rest") {
        std::map<std::string, at::Tensor> tensors = {{"weight", torch::zeros({3})}};
        FidInceptionV3 target;
        std::string message =
            user_error_message([&] { onestep::load_inception_state_dict(target, tensors, "other.pth"); });
        CHECK_THAT(message, Catch::Contains("missing 472: "));
        CHECK_THAT(message, Catch::Contains(" and 464 more"));
        CHECK_THAT(message, Catch::Contains("unexpected 1: weight"));
    }
}

TEST_CASE("Inception weight files and modes that cannot work give one clear error", "[unit]") {
    TempDir dir;
    FidInceptionV3 net;
    const std::string weights = dir / "inception.safetensors";
    onestep::write_safetensors(weights, onestep::inception_state_dict(net));

    CHECK_THAT(user_error_message([&] { onestep::make_inception_extractor(dir / "absent.pth", "", torch::kCPU); }),
               Catch::Contains("absent.pth"));
    // A legacy (pre-zip) torch.save file starts with a pickle protocol byte.
    const std::string legacy = dir / "legacy.pth";
    onestep::test::write_text(legacy, std::string("\x80\x02\x8a\x0a", 4) + "lots of pickle");
    std::string message = user_error_message([&] { onestep::make_inception_extractor(legacy, "", torch::kCPU); });
    CHECK_THAT(message, Catch::Contains(legacy));
    CHECK_THAT(message, Catch::Contains(".safetensors"));
    CHECK_THAT(user_error_message([&] { onestep::make_inception_extractor(weights, "bicubic", torch::kCPU); }),
               Catch::Contains("accepted: pt-bilinear, tf1-bilinear, ts"));
    CHECK_THAT(user_error_message([&] { onestep::make_inception_extractor(weights, "ts", torch::kCPU); }),
               Catch::Contains("TorchScript"));
    CHECK_THAT(user_error_message([&] { onestep::make_inception_extractor(weights, "", torch::kCPU, 100); }),
               Catch::Contains("tap 100"));
    auto extractor = onestep::make_inception_extractor(weights, "", torch::kCPU);
    CHECK_THAT(user_error_message([&] { extractor->features(torch::zeros({1, 4, 8, 8})); }),
               Catch::Contains("[1, 4, 8, 8]"));
}

TEST_CASE("Inception pools: padding excluded from averages, a max in Mixed_7c", "[unit]") {
    torch::NoGradGuard no_grad;
    // Pass-through 1x1 branch_pool convolutions expose each block's pool in its last channels.
    auto pass_through = [](onestep::BasicConv2d& conv) {
        conv->conv->weight.fill_(1.0);
        conv->bn->weight.fill_(1.0);
        conv->bn->bias.fill_(0.0);
        conv->bn->running_mean.fill_(0.0);
        conv->bn->running_var.fill_(1.0 - onestep::kInceptionBatchNormEps);
    };
    at::Tensor ones = torch::ones({1, 1, 5, 5});

    onestep::InceptionA block_a(1, 1);
    pass_through(block_a->branch_pool);
    block_a->eval();
    at::Tensor pooled_a = block_a->forward(ones).select(1, 224);
    CHECK(pooled_a[0][0][0].item<float>() == Approx(1.0).epsilon(1e-6));   // 4/9 if padding counted
    CHECK(pooled_a[0][0][2].item<float>() == Approx(1.0).epsilon(1e-6));
    CHECK(pooled_a[0][2][2].item<float>() == Approx(1.0).epsilon(1e-6));

    onestep::InceptionC block_c(1, 1);
    pass_through(block_c->branch_pool);
    block_c->eval();
    CHECK(block_c->forward(ones).select(1, 576)[0][4][4].item<float>() == Approx(1.0).epsilon(1e-6));

    at::Tensor spike = torch::zeros({1, 1, 5, 5});
    spike[0][0][2][2] = 9.0;
    onestep::InceptionE block_7c(1, true);
    pass_through(block_7c->branch_pool);
    block_7c->eval();
    at::Tensor maxed = block_7c->forward(spike).select(1, 1856)[0];
    at::Tensor expected = torch::zeros({5, 5});
    expected.slice(0, 1, 4).slice(1, 1, 4).fill_(9.0);
    CHECK(torch::allclose(maxed, expected, 1e-5, 1e-5));

    onestep::InceptionE block_7b(1, false);
    pass_through(block_7b->branch_pool);
    block_7b->eval();
    at::Tensor averaged = block_7b->forward(spike).select(1, 1856)[0];
    CHECK(averaged[2][2].item<float>() == Approx(1.0).epsilon(1e-6));
    CHECK(averaged[1][1].item<float>() == Approx(1.0).epsilon(1e-6));
    CHECK(averaged[0][0].item<float>() == Approx(0.0).margin(1e-7));
}

TEST_CASE("quantisation matches a PNG writer", "[unit]") {
    at::Tensor x = torch::tensor({-1.0f, 1.0f, 0.0f, -1.5f, 2.0f, 0.999f, -0.004f, -0.2196f,
                                  std::nanf("")});
    at::Tensor u = onestep::quantize_like_png(x);
    CHECK(u.scalar_type() == torch::kFloat);
    std::vector<float> expected = {0, 255, 128, 0, 255, 255, 127, 100, 0};
    for (size_t i = 0; i < expected.size(); ++i) {
        INFO(i);
        CHECK(u[static_cast<int64_t>(i)].item<float>() == expected[i]);
    }
    // Every level k survives the round trip from k/127.5 - 1 in float32.
    at::Tensor levels = torch::arange(256, torch::kFloat);
    CHECK(torch::equal(onestep::quantize_like_png(levels / 127.5 - 1.0), levels));
}

TEST_CASE("Inception preprocessing: constants, the TF1 grid and both normalisations", "[unit]") {
    SECTION("tf1-bilinear of a 2x2 image to 4x4 is the hand-computed grid") {
        // Source coordinates 0, 0.5, 1, 1.5: indices (0,1), (0,1), (1,1), (1,1) with weights 0, .5, 0, .5.
        at::Tensor image = torch::tensor({0.0f, 100.0f, 200.0f, 40.0f}).view({1, 1, 2, 2});
        at::Tensor expected = torch::tensor({0.0f, 50.0f, 100.0f, 100.0f, 100.0f, 85.0f, 70.0f, 70.0f, 200.0f, 120.0f,
                                             40.0f, 40.0f, 200.0f, 120.0f, 40.0f, 40.0f})
                                  .view({1, 1, 4, 4});
        CHECK(torch::allclose(onestep::tf1_bilinear_resize(image, 4, 4), expected, 0.0, 1e-5));
    }
    SECTION("tf1-bilinear at a fractional scale and when shrinking") {
        at::Tensor row = torch::tensor({10.0f, 20.0f, 60.0f}).view({1, 1, 1, 3});
        // 3 -> 4: s = 0, 0.75, 1.5, 2.25; the last clamps to index 2.
        at::Tensor widened = onestep::tf1_bilinear_resize(row, 1, 4).flatten();
        CHECK(torch::allclose(widened, torch::tensor({10.0f, 17.5f, 40.0f, 60.0f}), 0.0, 1e-5));
        at::Tensor six = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f}).view({1, 1, 1, 6});
        CHECK(torch::allclose(onestep::tf1_bilinear_resize(six, 1, 3).flatten(), torch::tensor({1.0f, 3.0f, 5.0f})));
    }
    SECTION("constant images stay constant in every mode and size; 255 maps to 1 and 0.9921875") {
        for (int64_t side : {28, 32, 299, 400}) {
            for (double level : {-1.0, 0.0, 1.0}) {
                INFO("side " << side << ", x " << level);
                at::Tensor image = torch::full({1, 1, side, side}, level);
                const double u = std::min(255.0, std::floor(127.5 * level + 128.0));
                at::Tensor pt = onestep::inception_input(image, InceptionResize::PtBilinear);
                at::Tensor tf1 = onestep::inception_input(image, InceptionResize::Tf1Bilinear);
                CHECK(pt.sizes() == at::IntArrayRef({1, 3, 299, 299}));
                CHECK(tf1.sizes() == at::IntArrayRef({1, 3, 299, 299}));
                CHECK(pt.min().item<double>() == Approx(2.0 * u / 255.0 - 1.0).margin(1e-6));
                CHECK(pt.max().item<double>() == Approx(2.0 * u / 255.0 - 1.0).margin(1e-6));
                CHECK(tf1.min().item<double>() == (u - 128.0) / 128.0);
                CHECK(tf1.max().item<double>() == (u - 128.0) / 128.0);
            }
        }
        at::Tensor white = torch::ones({1, 3, 8, 8});
        CHECK(onestep::inception_input(white, InceptionResize::Tf1Bilinear).max().item<double>() == 0.9921875);
        CHECK(onestep::inception_input(white, InceptionResize::PtBilinear).max().item<double>() ==
              Approx(1.0).margin(1e-6));
    }
    SECTION("grey is repeated to RGB after quantisation") {
        at::Tensor grey = test_images(2, 1, 12, 8);
        for (InceptionResize resize : {InceptionResize::PtBilinear, InceptionResize::Tf1Bilinear}) {
            at::Tensor from_grey = onestep::inception_input(grey, resize);
            at::Tensor from_rgb = onestep::inception_input(grey.repeat({1, 3, 1, 1}), resize);
            CHECK(torch::equal(from_grey, from_rgb));
            CHECK(torch::equal(from_grey.select(1, 0), from_grey.select(1, 2)));
        }
    }
    SECTION("pt-bilinear at 299 is the identity resize; ts is not a native mode") {
        at::Tensor image = test_images(1, 3, 299, 9);
        at::Tensor u = onestep::quantize_like_png(image);
        CHECK(torch::allclose(onestep::inception_input(image, InceptionResize::PtBilinear), u / 255.0 * 2.0 - 1.0,
                              0.0, 1e-6));
        CHECK_THROWS_AS(onestep::inception_input(image, InceptionResize::TorchScript), UserError);
        CHECK(onestep::parse_resize("tf1-bilinear") == InceptionResize::Tf1Bilinear);
        CHECK(onestep::resize_name(InceptionResize::PtBilinear) == "pt-bilinear");
    }
}

TEST_CASE("a TorchScript Inception file is detected and called with [0, 255] RGB and keyword flags", "[unit]") {
    TempDir dir;
    // Stands in for NVIDIA's module: same signature; features reveal the input range and layout.
    torch::jit::Module module("FakeInception");
    module.define(R"(
def forward(self, img, return_features: bool = False, use_fp16: bool = False, no_output_bias: bool = False):
    assert img.size(1) == 3
    x = img.flatten(1)
    if return_features:
        return torch.cat([x.amin(1, keepdim=True), x.amax(1, keepdim=True), x.mean(1, keepdim=True).repeat(1, 2046)], 1)
    if no_output_bias:
        return torch.softmax(x[:, :1008] / 64.0, 1)
    return torch.zeros([img.size(0), 1008])
)");
    const std::string path = dir / "inception-2015-12-05.pt";
    module.save(path);

    auto extractor = onestep::make_inception_extractor(path, "", torch::kCPU);
    const std::string sha = onestep::sha256_file(path);
    CHECK(extractor->id() == "inception-pool3@" + sha.substr(0, 8));
    CHECK(extractor->sha256() == sha);
    CHECK(extractor->mode() == "quantized, ts");
    CHECK(extractor->feature_dim() == 2048);

    at::Tensor grey = test_images(3, 1, 32, 13);
    grey[0][0][0][0] = -1.0;
    grey[0][0][0][1] = 1.0;
    at::Tensor features = extractor->features(grey);
    REQUIRE(features.sizes() == at::IntArrayRef({3, 2048}));
    CHECK(features[0][0].item<float>() == 0.0f);
    CHECK(features[0][1].item<float>() == 255.0f);
    at::Tensor u = onestep::quantize_like_png(grey);
    CHECK(torch::allclose(features.select(1, 2), u.flatten(1).mean(1)));

    at::Tensor logits = extractor->logits(grey);
    REQUIRE(logits.sizes() == at::IntArrayRef({3, 1008}));
    at::Tensor probabilities = torch::softmax(u.repeat({1, 3, 1, 1}).flatten(1).slice(1, 0, 1008) / 64.0, 1);
    CHECK(torch::allclose(torch::softmax(logits, 1), probabilities, 1e-4, 1e-7));

    CHECK_THAT(user_error_message([&] { onestep::make_inception_extractor(path, "pt-bilinear", torch::kCPU); }),
               Catch::Contains("mode 'ts' only"));
    CHECK_THAT(user_error_message([&] { onestep::make_inception_extractor(path, "ts", torch::kCPU, 768); }),
               Catch::Contains("tap 768"));
}

TEST_CASE("real Inception weights: native tf1-bilinear agrees with NVIDIA's TorchScript", "[slow]") {
    const char* native_path = std::getenv("ONESTEP_INCEPTION_PTH");
    const char* script_path = std::getenv("ONESTEP_INCEPTION_TS");
    if (!native_path && !script_path) {
        WARN("skipped: set ONESTEP_INCEPTION_PTH (state dict) and/or ONESTEP_INCEPTION_TS (TorchScript .pt)");
        return;
    }
    // 16 fixed synthetic images: smooth ramps and checkerboards at 32x32, grey and colour.
    torch::manual_seed(2024);
    at::Tensor ramp = torch::linspace(-1.0, 1.0, 32).view({1, 1, 1, 32}).expand({8, 3, 32, 32});
    at::Tensor images = torch::cat({ramp * torch::rand({8, 3, 1, 1}), torch::rand({8, 3, 32, 32}) * 2.0 - 1.0}, 0);

    std::map<std::string, at::Tensor> features;
    if (native_path) {
        auto native = onestep::make_inception_extractor(native_path, "tf1-bilinear", torch::kCPU);
        features["native"] = native->features(images);
        CHECK(features["native"].sizes() == at::IntArrayRef({16, 2048}));
        // The golden features live beside the weights; the first run writes them.
        const std::string golden = std::string(native_path) + ".onestep-golden.safetensors";
        if (!std::filesystem::exists(golden)) {
            onestep::write_safetensors(golden, {{"features", features["native"]}}, {{"sha256", native->sha256()}});
            WARN("wrote golden features to " << golden);
        } else {
            onestep::TensorFile stored = onestep::read_safetensors(golden);
            REQUIRE(stored.metadata.at("sha256") == native->sha256());
            CHECK(torch::allclose(features["native"], stored.tensors.at("features"), 1e-4, 1e-4));
        }
    }
    if (script_path) {
        auto script = onestep::make_inception_extractor(script_path, "ts", torch::kCPU);
        features["ts"] = script->features(images);
        CHECK(features["ts"].sizes() == at::IntArrayRef({16, 2048}));
    }
    if (features.count("native") && features.count("ts")) {
        double gap = (features["native"] - features["ts"]).abs().max().item<double>();
        INFO("max-abs gap between native tf1-bilinear and TorchScript pool3: " << gap);
        CHECK(gap <= 1e-3);
    }
}
