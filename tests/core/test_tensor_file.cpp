// Safetensors files: round trips for every dtype, the exact byte layout of the reference
// format, and clear errors for damaged files and unwritable paths.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "core/tensor_file.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using onestep::UserError;
using onestep::test::TempDir;
using onestep::test::user_error_message;

namespace {


std::string little_endian_u64(uint64_t value) {
    std::string bytes;
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
    return bytes;
}

// A hand-made safetensors file: length prefix, the given header text, then DATA.
void write_raw(const std::string& path, const std::string& header, const std::string& data) {
    onestep::test::write_text(path, little_endian_u64(header.size()) + header + data);
}

}  // namespace

TEST_CASE("safetensors round-trips every dtype, scalars, empty tensors and metadata", "[unit]") {
    TempDir dir;
    torch::manual_seed(3);
    std::map<std::string, at::Tensor> tensors = {
        {"f64", torch::randn({3, 2}, torch::kDouble)},
        {"f32", torch::randn({4, 1, 2})},
        {"f16", torch::randn({5}).to(torch::kHalf)},
        {"bf16", torch::randn({2, 3}).to(torch::kBFloat16)},
        {"i64", torch::tensor({int64_t{-9000000000}, int64_t{1}, int64_t{7}})},
        {"i32", torch::randint(-1000, 1000, {6}, torch::kInt)},
        {"i16", torch::randint(-300, 300, {2, 2}, torch::kShort)},
        {"i8", torch::randint(-128, 127, {7}, torch::kChar)},
        {"u8", torch::randint(0, 255, {3, 3}, torch::kByte)},
        {"bool", torch::tensor({true, false, true})},
        {"scalar", torch::tensor(2.5)},
        {"scalar_i64", torch::tensor(int64_t{42})},
        {"empty", torch::zeros({0, 3})},
        {"empty_u8", torch::zeros({0}, torch::kByte)},
        {"strided", torch::arange(12, torch::kFloat).reshape({3, 4}).t()},
    };
    std::map<std::string, std::string> metadata = {{"config", "lr: 0.001\nbatch: 64\n"}, {"format", "pt"}};
    const std::string path = dir / "all.safetensors";
    onestep::write_safetensors(path, tensors, metadata);
    CHECK_FALSE(fs::exists(path + ".tmp"));

    onestep::TensorFile file = onestep::read_safetensors(path);
    CHECK(file.metadata == metadata);
    REQUIRE(file.tensors.size() == tensors.size());
    for (const auto& [name, original] : tensors) {
        INFO(name);
        REQUIRE(file.tensors.count(name) == 1);
        const at::Tensor& loaded = file.tensors.at(name);
        CHECK(loaded.scalar_type() == original.scalar_type());
        CHECK(loaded.sizes() == original.sizes());
        CHECK(loaded.is_contiguous());
        CHECK(torch::equal(loaded, original));
    }
    CHECK(file.tensors.at("scalar").dim() == 0);
    CHECK(file.tensors.at("scalar").item<double>() == 2.5);
}

TEST_CASE("safetensors without metadata omits __metadata__ and reads back empty", "[unit]") {
    TempDir dir;
    const std::string path = dir / "plain.safetensors";
    onestep::write_safetensors(path, {{"w", torch::ones({2})}});
    std::string bytes = onestep::test::read_text(path);
    CHECK(bytes.find("__metadata__") == std::string::npos);
    onestep::TensorFile file = onestep::read_safetensors(path);
    CHECK(file.metadata.empty());
    CHECK(torch::equal(file.tensors.at("w"), torch::ones({2})));
}

TEST_CASE("safetensors header matches the reference byte layout", "[unit]") {
    TempDir dir;
    const std::string path = dir / "tiny.safetensors";
    onestep::write_safetensors(
        path, {{"b", torch::tensor({int16_t{1}, int16_t{-2}})}, {"a", torch::tensor({1.0f, 2.0f})}}, {{"k", "v"}});
    const std::string bytes = onestep::test::read_text(path);
    // Compact JSON, metadata first, tensors in name order, offsets consecutive from 0.
    const std::string json =
        R"({"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
        R"("b":{"dtype":"I16","shape":[2],"data_offsets":[8,12]}})";
    const size_t padded = (json.size() + 7) / 8 * 8;
    REQUIRE(bytes.size() == 8 + padded + 12);
    CHECK(bytes.substr(0, 8) == little_endian_u64(padded));
    CHECK(bytes.substr(8, json.size()) == json);
    // The reference pads the header with spaces to a multiple of 8 bytes.
    CHECK(bytes.substr(8 + json.size(), padded - json.size()) == std::string(padded - json.size(), ' '));
    float floats[2];
    std::memcpy(floats, bytes.data() + 8 + padded, 8);
    CHECK(floats[0] == 1.0f);
    CHECK(floats[1] == 2.0f);
    int16_t shorts[2];
    std::memcpy(shorts, bytes.data() + 8 + padded + 8, 4);
    CHECK(shorts[0] == 1);
    CHECK(shorts[1] == -2);
}

TEST_CASE("safetensors reads a file written by hand in the reference format", "[unit]") {
    TempDir dir;
    const std::string path = dir / "hand.safetensors";
    // Tensors listed out of offset order, header unpadded: both are valid.
    int32_t values[3] = {5, -6, 7};
    std::string data(reinterpret_cast<const char*>(values), sizeof values);
    data += std::string("\x01\x00", 2);
    write_raw(path,
              R"({"mask":{"dtype":"BOOL","shape":[2],"data_offsets":[12,14]},)"
              R"("ids":{"dtype":"I32","shape":[3,1],"data_offsets":[0,12]}})",
              data);
    onestep::TensorFile file = onestep::read_safetensors(path);
    CHECK(torch::equal(file.tensors.at("ids"), torch::tensor({5, -6, 7}, torch::kInt).reshape({3, 1})));
    CHECK(torch::equal(file.tensors.at("mask"), torch::tensor({true, false})));
}

TEST_CASE("safetensors reports damaged files with the path", "[unit]") {
    TempDir dir;
    const std::string good = dir / "good.safetensors";
    onestep::write_safetensors(good, {{"w", torch::arange(100, torch::kFloat)}});
    const std::string bytes = onestep::test::read_text(good);

    SECTION("missing file") {
        const std::string path = dir / "missing.safetensors";
        std::string message = user_error_message([&] { onestep::read_safetensors(path); });
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("No such file"));
    }
    SECTION("truncated data") {
        const std::string path = dir / "cut.safetensors";
        onestep::test::write_text(path, bytes.substr(0, bytes.size() - 10));
        std::string message = user_error_message([&] { onestep::read_safetensors(path); });
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("truncated: header says 400 bytes of data, file has 390"));
    }
    SECTION("truncated header and length field") {
        for (size_t keep : {size_t{0}, size_t{5}, size_t{8}, size_t{20}}) {
            const std::string path = dir / ("cut" + std::to_string(keep) + ".safetensors");
            onestep::test::write_text(path, bytes.substr(0, keep));
            std::string message = user_error_message([&] { onestep::read_safetensors(path); });
            CHECK_THAT(message, Catch::Contains(path));
            CHECK_THAT(message, Catch::Contains("truncated"));
        }
    }
    SECTION("garbage") {
        const std::string path = dir / "garbage.safetensors";
        onestep::test::write_text(path, "this is certainly not a tensor file, just some text");
        std::string message = user_error_message([&] { onestep::read_safetensors(path); });
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("not a safetensors file"));
    }
    SECTION("header that is not JSON") {
        const std::string path = dir / "badjson.safetensors";
        write_raw(path, "{\"w\": [1, 2", "");
        std::string message = user_error_message([&] { onestep::read_safetensors(path); });
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("not valid JSON"));
    }
    SECTION("unknown dtype") {
        const std::string path = dir / "dtype.safetensors";
        write_raw(path, R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "ab");
        std::string message = user_error_message([&] { onestep::read_safetensors(path); });
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("'w'"));
        CHECK_THAT(message, Catch::Contains("F8_E4M3"));
    }
    SECTION("offsets out of range") {
        const std::string path = dir / "range.safetensors";
        write_raw(path, R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}})", std::string(16, '\0'));
        std::string message = user_error_message([&] { onestep::read_safetensors(path); });
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("truncated"));
    }
    SECTION("offsets inconsistent with the shape") {
        const std::string path = dir / "span.safetensors";
        write_raw(path, R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}})", std::string(12, '\0'));
        std::string message = user_error_message([&] { onestep::read_safetensors(path); });
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("need 16"));
    }
    SECTION("overlapping tensors") {
        const std::string path = dir / "overlap.safetensors";
        write_raw(path,
                  R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                  std::string(12, '\0'));
        std::string message = user_error_message([&] { onestep::read_safetensors(path); });
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("overlaps"));
    }
    SECTION("gap between tensors") {
        const std::string path = dir / "gap.safetensors";
        write_raw(path,
                  R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
                  std::string(20, '\0'));
        std::string message = user_error_message([&] { onestep::read_safetensors(path); });
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("gap"));
    }
    SECTION("bytes after the last tensor") {
        const std::string path = dir / "tail.safetensors";
        onestep::test::write_text(path, bytes + "extra");
        std::string message = user_error_message([&] { onestep::read_safetensors(path); });
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("after the last tensor"));
    }
    SECTION("metadata value that is not a string") {
        const std::string path = dir / "meta.safetensors";
        write_raw(path, R"({"__metadata__":{"epochs":3}})", "");
        std::string message = user_error_message([&] { onestep::read_safetensors(path); });
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("epochs"));
    }
}

TEST_CASE("safetensors refuses unwritable paths and unsupported tensors without leaving files", "[unit]") {
    TempDir dir;
    const std::string blocker = dir / "a_file";
    onestep::test::write_text(blocker, "not a folder");
    const std::string path = blocker + "/w.safetensors";
    std::string message = user_error_message([&] { onestep::write_safetensors(path, {{"w", torch::ones({2})}}); });
    CHECK_THAT(message, Catch::Contains(path));
    CHECK_THAT(message, Catch::Contains("Not a directory"));
    CHECK(onestep::test::read_text(blocker) == "not a folder");

    const std::string complex_path = dir / "complex.safetensors";
    message = user_error_message([&] {
        onestep::write_safetensors(complex_path, {{"z", torch::ones({2}, torch::kComplexFloat)}});
    });
    CHECK_THAT(message, Catch::Contains(complex_path));
    CHECK_THAT(message, Catch::Contains("'z'"));
    CHECK_FALSE(fs::exists(complex_path));
    CHECK_FALSE(fs::exists(complex_path + ".tmp"));
}

TEST_CASE("safetensors overwrites an existing file atomically", "[unit]") {
    TempDir dir;
    const std::string path = dir / "w.safetensors";
    onestep::write_safetensors(path, {{"w", torch::zeros({3})}});
    onestep::write_safetensors(path, {{"w", torch::ones({5})}, {"v", torch::ones({1})}});
    onestep::TensorFile file = onestep::read_safetensors(path);
    CHECK(file.tensors.size() == 2);
    CHECK(torch::equal(file.tensors.at("w"), torch::ones({5})));
    CHECK_FALSE(fs::exists(path + ".tmp"));
}
