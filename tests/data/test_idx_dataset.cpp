// idx:DIR datasets: IDX files written here (plain and gzipped) read back exactly, and broken
// files (wrong magic, truncated, extra bytes, count mismatch, missing) name the file at fault.
#include <torch/torch.h>
#include <zlib.h>
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "data/dataset.hpp"
#include "data_test_helpers.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using onestep::DataSpec;
using onestep::data_test::user_error_message;
using onestep::test::TempDir;

namespace {

std::string idx_bytes(uint8_t rank, const std::vector<uint32_t>& dims,
                      const std::vector<uint8_t>& data) {
    std::string bytes = {0, 0, 0x08, static_cast<char>(rank)};
    for (uint32_t dim : dims) {
        for (int shift = 24; shift >= 0; shift -= 8)
            bytes += static_cast<char>((dim >> shift) & 0xFF);
    }
    bytes.append(data.begin(), data.end());
    return bytes;
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
    REQUIRE(out.good());
}

void write_gzip(const std::string& path, const std::string& bytes) {
    gzFile file = gzopen(path.c_str(), "wb");
    REQUIRE(file != nullptr);
    REQUIRE(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) ==
            static_cast<int>(bytes.size()));
    REQUIRE(gzclose(file) == Z_OK);
}

// COUNT images of 4x5 pixels: image I, pixel P = 10*I + P; labels I % 3 (plus OFFSET).
std::vector<uint8_t> image_pixels(int count, int first) {
    std::vector<uint8_t> pixels;
    for (int image = first; image < first + count; ++image) {
        for (int pixel = 0; pixel < 20; ++pixel)
            pixels.push_back(static_cast<uint8_t>(10 * image + pixel));
    }
    return pixels;
}

std::vector<uint8_t> labels_for(int count, int first) {
    std::vector<uint8_t> labels;
    for (int image = first; image < first + count; ++image)
        labels.push_back(static_cast<uint8_t>(image % 3));
    return labels;
}

// Train: 5 plain images; test: 3 gzipped images whose labels reach 3 (so 4 classes overall).
void write_idx_folder(const TempDir& dir) {
    write_file(dir / "train-images-idx3-ubyte", idx_bytes(3, {5, 4, 5}, image_pixels(5, 0)));
    write_file(dir / "train-labels-idx1-ubyte", idx_bytes(1, {5}, labels_for(5, 0)));
    write_gzip(dir / "t10k-images-idx3-ubyte.gz", idx_bytes(3, {3, 4, 5}, image_pixels(3, 5)));
    write_gzip(dir / "t10k-labels-idx1-ubyte.gz", idx_bytes(1, {3}, {0, 3, 1}));
}

DataSpec idx_spec(const TempDir& dir, const std::string& split) {
    DataSpec spec;
    spec.name = "idx:" + dir.path();
    spec.split = split;
    return spec;
}

}   // namespace

TEST_CASE("IDX files, plain and gzipped, load exactly", "[unit]") {
    TempDir dir;
    write_idx_folder(dir);

    auto train = onestep::load_dataset(idx_spec(dir, "train"));
    REQUIRE(train.x.sizes() == torch::IntArrayRef({5, 1, 4, 5}));
    CHECK(train.x.scalar_type() == torch::kUInt8);
    CHECK(train.name == "idx:" + dir.path());
    CHECK(train.num_classes == 4);   // the test labels reach 3
    CHECK(train.class_names == std::vector<std::string>{"0", "1", "2", "3"});
    auto flat = train.x.reshape({-1});
    auto expected = image_pixels(5, 0);
    for (size_t index = 0; index < expected.size(); ++index) {
        REQUIRE(flat[index].item<int64_t>() == expected[index]);
    }
    CHECK(torch::equal(train.y, torch::tensor({0, 1, 2, 0, 1}, torch::kInt64)));

    auto test = onestep::load_dataset(idx_spec(dir, "test"));
    REQUIRE(test.size() == 3);
    CHECK(test.x[1][0][0][0].item<int64_t>() == 60);
    CHECK(torch::equal(test.y, torch::tensor({0, 3, 1}, torch::kInt64)));
    CHECK(test.num_classes == 4);

    auto all = onestep::load_dataset(idx_spec(dir, "all"));
    CHECK(all.size() == 8);
    CHECK(torch::equal(all.x.slice(0, 5), test.x));

    const std::string report = onestep::describe_dataset(idx_spec(dir, "train"));
    CHECK_THAT(report, Catch::Contains("8 images (5 train / 3 test)"));
    CHECK_THAT(report, Catch::Contains("1x4x5"));
}

TEST_CASE("broken IDX files are reported with the file and what was expected", "[unit]") {
    TempDir dir;
    write_idx_folder(dir);
    const std::string images = dir / "train-images-idx3-ubyte";
    auto load_train = [&] { onestep::load_dataset(idx_spec(dir, "train")); };

    SECTION("wrong magic number") {
        std::string bytes = idx_bytes(3, {5, 4, 5}, image_pixels(5, 0));
        bytes[2] = 0x0D;   // float data
        write_file(images, bytes);
        const std::string message = user_error_message(load_train);
        CHECK_THAT(message, Catch::Contains(images));
        CHECK_THAT(message, Catch::Contains("magic number is 0x00000D03, expected 0x00000803"));
    }
    SECTION("labels file given as images") {
        write_file(images, idx_bytes(1, {5}, labels_for(5, 0)));
        CHECK_THAT(user_error_message(load_train), Catch::Contains("expected 0x00000803"));
    }
    SECTION("truncated data") {
        std::string bytes = idx_bytes(3, {5, 4, 5}, image_pixels(5, 0));
        write_file(images, bytes.substr(0, bytes.size() - 7));
        const std::string message = user_error_message(load_train);
        CHECK_THAT(message, Catch::Contains(images + " is truncated"));
        CHECK_THAT(message, Catch::Contains("5x4x5 (100 bytes of data)"));
        CHECK_THAT(message, Catch::Contains("only 93 bytes"));
    }
    SECTION("truncated gzipped data") {
        fs::remove(images);
        std::string bytes = idx_bytes(3, {5, 4, 5}, image_pixels(5, 0));
        write_gzip(images + ".gz", bytes.substr(0, 50));
        CHECK_THAT(user_error_message(load_train), Catch::Contains(images + ".gz is truncated"));
    }
    SECTION("extra bytes") {
        write_file(images, idx_bytes(3, {5, 4, 5}, image_pixels(6, 0)));
        const std::string message = user_error_message(load_train);
        CHECK_THAT(message, Catch::Contains(images));
        CHECK_THAT(message, Catch::Contains("does not match its header"));
    }
    SECTION("images and labels disagree") {
        write_file(dir / "train-labels-idx1-ubyte", idx_bytes(1, {4}, labels_for(4, 0)));
        const std::string message = user_error_message(load_train);
        CHECK_THAT(message, Catch::Contains("holds 5 images but"));
        CHECK_THAT(message, Catch::Contains("train-labels-idx1-ubyte holds 4 labels"));
    }
    SECTION("a missing file") {
        fs::remove(dir / "train-labels-idx1-ubyte");
        const std::string message = user_error_message(load_train);
        CHECK_THAT(message, Catch::Contains("train-labels-idx1-ubyte"));
        CHECK_THAT(message, Catch::Contains("t10k-images-idx3-ubyte"));   // the layout it expects
    }
    SECTION("a missing folder") {
        DataSpec spec = idx_spec(dir, "train");
        spec.name += "/nowhere";
        CHECK_THAT(user_error_message([&] { onestep::load_dataset(spec); }),
                   Catch::Contains("/nowhere: the folder does not exist"));
    }
}

TEST_CASE("IDX images of another size are padded or refused by to_model_input", "[unit]") {
    TempDir dir;
    write_file(dir / "train-images-idx3-ubyte",
               idx_bytes(3, {2, 4, 4}, std::vector<uint8_t>(32, 255)));
    write_file(dir / "train-labels-idx1-ubyte", idx_bytes(1, {2}, {0, 1}));
    auto data = onestep::load_dataset(idx_spec(dir, "train"));
    auto padded = onestep::to_model_input(data, data.x, 8);
    REQUIRE(padded.sizes() == torch::IntArrayRef({2, 1, 8, 8}));
    CHECK(padded.sum().item<double>() == Approx(2 * (16.0 - 48.0)));   // 16 ones, 48 minus ones
    CHECK_THAT(user_error_message([&] { onestep::to_model_input(data, data.x, 3); }),
               Catch::Contains("4x4 images, which do not fit image_size 3"));
}
