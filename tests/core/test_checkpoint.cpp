// Checkpoints: bit-exact round trips, and a clear error for every kind of damage
// (truncation, flipped bytes, wrong magic, newer format), with failed saves leaving no trace.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <csignal>
#include <filesystem>
#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include "core/checkpoint.hpp"
#include "core/error.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using onestep::UserError;
using onestep::test::TempDir;
using onestep::test::user_error_message;

namespace {


onestep::Checkpoint sample_checkpoint() {
    torch::manual_seed(11);
    onestep::Checkpoint checkpoint;
    checkpoint.method = "shortcut";
    checkpoint.config_yaml = "seed: 7\nmodel:\n  channels: [32, 64]\nname: \"ünïcode ok\"\n";
    checkpoint.step = 123456789012;
    checkpoint.state_json = R"({"data_position":42,"epoch":3,"best":{"fid":12.5,"at":[1,2]}})";
    checkpoint.tensors = {
        {"net/unet/conv.weight", torch::randn({8, 3, 3, 3})},
        {"net/unet/conv.bias", torch::randn({8}, torch::kDouble)},
        {"ema/unet/conv.weight", torch::randn({8, 3, 3, 3}).to(torch::kHalf)},
        {"ema/unet/norm", torch::randn({4}).to(torch::kBFloat16)},
        {"optim/adam", onestep::bytes_to_tensor(std::string("\x00\x01serialised\xff", 13))},
        {"rng/cpu", torch::randint(0, 255, {5056}, torch::kByte)},
        {"counters", torch::tensor({int64_t{1} << 40, int64_t{-3}})},
        {"mask", torch::tensor({true, false, false})},
        {"scalar", torch::tensor(3.25f)},
        {"empty", torch::zeros({0, 4})},
        {"ints", torch::randint(-50, 50, {3, 2}, torch::kInt)},
        {"shorts", torch::randint(-50, 50, {3}, torch::kShort)},
        {"chars", torch::randint(-50, 50, {3}, torch::kChar)},
    };
    return checkpoint;
}

void check_same(const onestep::Checkpoint& loaded, const onestep::Checkpoint& saved) {
    CHECK(loaded.format_version == onestep::kCheckpointFormatVersion);
    CHECK(loaded.method == saved.method);
    CHECK(loaded.config_yaml == saved.config_yaml);
    CHECK(loaded.step == saved.step);
    CHECK(nlohmann::json::parse(loaded.state_json) == nlohmann::json::parse(saved.state_json));
}

void flip_byte(const std::string& path, size_t position) {
    std::string bytes = onestep::test::read_text(path);
    REQUIRE(position < bytes.size());
    bytes[position] = static_cast<char>(bytes[position] ^ 0x5a);
    onestep::test::write_text(path, bytes);
}

}  // namespace

TEST_CASE("checkpoint round-trips every field and tensor bit-exactly", "[unit]") {
    TempDir dir;
    const std::string path = dir / "run.ckpt";
    onestep::Checkpoint saved = sample_checkpoint();
    onestep::save_checkpoint(path, saved);
    CHECK_FALSE(fs::exists(path + ".tmp"));

    onestep::Checkpoint loaded = onestep::load_checkpoint(path);
    check_same(loaded, saved);
    REQUIRE(loaded.tensors.size() == saved.tensors.size());
    for (const auto& [name, tensor] : saved.tensors) {
        INFO(name);
        REQUIRE(loaded.tensors.count(name) == 1);
        CHECK(loaded.tensors.at(name).scalar_type() == tensor.scalar_type());
        CHECK(loaded.tensors.at(name).sizes() == tensor.sizes());
        CHECK(torch::equal(loaded.tensors.at(name), tensor));
    }
    CHECK(onestep::tensor_to_bytes(loaded.tensors.at("optim/adam")) == std::string("\x00\x01serialised\xff", 13));
}

TEST_CASE("checkpoint state defaults to an empty object and tensors may be absent", "[unit]") {
    TempDir dir;
    const std::string path = dir / "bare.ckpt";
    onestep::Checkpoint saved;
    saved.method = "flow";
    saved.state_json = "";
    onestep::save_checkpoint(path, saved);
    onestep::Checkpoint loaded = onestep::load_checkpoint(path);
    CHECK(loaded.method == "flow");
    CHECK(loaded.state_json == "{}");
    CHECK(loaded.tensors.empty());
}

TEST_CASE("byte blobs travel as 1-D uint8 tensors", "[unit]") {
    const std::string bytes("a\0b\xff", 4);
    at::Tensor tensor = onestep::bytes_to_tensor(bytes);
    CHECK(tensor.scalar_type() == torch::kUInt8);
    CHECK(tensor.dim() == 1);
    CHECK(tensor.numel() == 4);
    CHECK(onestep::tensor_to_bytes(tensor) == bytes);
    CHECK(onestep::tensor_to_bytes(onestep::bytes_to_tensor("")).empty());
    CHECK_THROWS(onestep::tensor_to_bytes(torch::ones({2})));
}

TEST_CASE("peek_checkpoint reads the header without the tensors", "[unit]") {
    TempDir dir;
    const std::string path = dir / "run.ckpt";
    onestep::Checkpoint saved = sample_checkpoint();
    onestep::save_checkpoint(path, saved);
    onestep::Checkpoint header = onestep::peek_checkpoint(path);
    check_same(header, saved);
    CHECK(header.tensors.empty());

    // The checksum is not peek's business: a flipped payload byte still peeks fine.
    const size_t size = fs::file_size(path);
    flip_byte(path, size - 100);
    CHECK(onestep::peek_checkpoint(path).method == "shortcut");
    CHECK_THROWS_AS(onestep::load_checkpoint(path), UserError);
}

TEST_CASE("checkpoint truncated anywhere is reported, naming the file", "[unit]") {
    TempDir dir;
    const std::string good = dir / "good.ckpt";
    onestep::save_checkpoint(good, sample_checkpoint());
    const std::string bytes = onestep::test::read_text(good);
    const size_t size = bytes.size();
    for (size_t keep : {size_t{0}, size_t{3}, size_t{8}, size_t{12}, size_t{19}, size_t{20}, size_t{60}, size_t{400},
                        size / 2, size - 13, size - 12, size - 5, size - 1}) {
        INFO("kept " << keep << " of " << size << " bytes");
        const std::string path = dir / "cut.ckpt";
        onestep::test::write_text(path, bytes.substr(0, keep));
        for (bool peek : {false, true}) {
            std::string message = user_error_message([&] {
                if (peek) {
                    onestep::peek_checkpoint(path);
                } else {
                    onestep::load_checkpoint(path);
                }
            });
            CHECK_THAT(message, Catch::Contains(path));
            CHECK_THAT(message, Catch::Contains("truncated") || Catch::Contains("corrupt"));
        }
    }
}

TEST_CASE("checkpoint with a flipped byte fails its checksum", "[unit]") {
    TempDir dir;
    const std::string path = dir / "flip.ckpt";
    onestep::save_checkpoint(path, sample_checkpoint());
    const size_t size = fs::file_size(path);
    SECTION("in the payload") {
        flip_byte(path, size - 2000);
        std::string message = user_error_message([&] { onestep::load_checkpoint(path); });
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("corrupted: checksum mismatch"));
    }
    SECTION("in the stored checksum") {
        flip_byte(path, size - 10);
        std::string message = user_error_message([&] { onestep::load_checkpoint(path); });
        CHECK_THAT(message, Catch::Contains("checksum mismatch"));
    }
    SECTION("in the JSON header") {
        // Byte 30 is the quote opening the "method" value: the header no longer parses.
        flip_byte(path, 30);
        std::string message = user_error_message([&] { onestep::load_checkpoint(path); });
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("corrupt"));
    }
}

TEST_CASE("checkpoint with wrong magic, newer version or appended bytes is refused", "[unit]") {
    TempDir dir;
    const std::string path = dir / "x.ckpt";
    onestep::save_checkpoint(path, sample_checkpoint());
    std::string bytes = onestep::test::read_text(path);

    SECTION("wrong magic") {
        onestep::test::write_text(path, "PK\x03\x04" + bytes.substr(4));
        std::string message = user_error_message([&] { onestep::load_checkpoint(path); });
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("not an onestep checkpoint"));
        CHECK_THAT(user_error_message([&] { onestep::peek_checkpoint(path); }),
                   Catch::Contains("not an onestep checkpoint"));
    }
    SECTION("short file with the wrong start") {
        onestep::test::write_text(path, "hello");
        CHECK_THAT(user_error_message([&] { onestep::load_checkpoint(path); }),
                   Catch::Contains("not an onestep checkpoint"));
    }
    SECTION("newer format") {
        bytes[8] = static_cast<char>(onestep::kCheckpointFormatVersion + 1);
        onestep::test::write_text(path, bytes);
        const uint32_t current = onestep::kCheckpointFormatVersion;
        std::string expected = "written by a newer onestep (format " + std::to_string(current + 1) +
                               ", this build reads <= " + std::to_string(current) + ")";
        CHECK_THAT(user_error_message([&] { onestep::load_checkpoint(path); }), Catch::Contains(expected));
        CHECK_THAT(user_error_message([&] { onestep::peek_checkpoint(path); }), Catch::Contains(expected));
    }
    SECTION("bytes appended") {
        onestep::test::write_text(path, bytes + "more");
        std::string message = user_error_message([&] { onestep::load_checkpoint(path); });
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("corrupted"));
    }
    SECTION("missing file") {
        const std::string missing = dir / "nope.ckpt";
        std::string message = user_error_message([&] { onestep::load_checkpoint(missing); });
        CHECK_THAT(message, Catch::Contains(missing));
        CHECK_THAT(message, Catch::Contains("No such file"));
    }
    SECTION("a folder") {
        std::string message = user_error_message([&] { onestep::load_checkpoint(dir.path()); });
        CHECK_THAT(message, Catch::Contains(dir.path()));
    }
}

TEST_CASE("a failed checkpoint save keeps the previous file and leaves no temporary file", "[unit]") {
    TempDir dir;
    const std::string path = dir / "latest.ckpt";
    onestep::Checkpoint previous;
    previous.method = "flow";
    previous.step = 1;
    previous.tensors = {{"w", torch::ones({4})}};
    onestep::save_checkpoint(path, previous);
    const std::string previous_bytes = onestep::test::read_text(path);

    onestep::Checkpoint next = sample_checkpoint();
    SECTION("the disk refuses the data midway") {
        // A file-size limit makes write() fail with EFBIG after the temporary file exists,
        // the same path a full disk takes.
        next.tensors["big"] = torch::zeros({1 << 16});
        struct rlimit original {};
        REQUIRE(::getrlimit(RLIMIT_FSIZE, &original) == 0);
        auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);
        struct rlimit limited = original;
        limited.rlim_cur = 4096;
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &limited) == 0);
        std::string message;
        try {
            onestep::save_checkpoint(path, next);
        } catch (const UserError& error) {
            message = error.what();
        }
        ::setrlimit(RLIMIT_FSIZE, &original);
        std::signal(SIGXFSZ, previous_handler);
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("too large"));
    }
    SECTION("a tensor cannot be stored") {
        next.tensors["complex"] = torch::ones({2}, torch::kComplexDouble);
        std::string message = user_error_message([&] { onestep::save_checkpoint(path, next); });
        CHECK_THAT(message, Catch::Contains(path));
        CHECK_THAT(message, Catch::Contains("'complex'"));
    }
    CHECK(onestep::test::read_text(path) == previous_bytes);
    CHECK_FALSE(fs::exists(path + ".tmp"));
    CHECK(onestep::load_checkpoint(path).step == 1);
}

TEST_CASE("a checkpoint save over a folder fails at the rename and cleans up", "[unit]") {
    TempDir dir;
    const std::string path = dir / "latest.ckpt";
    fs::create_directory(path);
    std::string message = user_error_message([&] { onestep::save_checkpoint(path, sample_checkpoint()); });
    CHECK_THAT(message, Catch::Contains(path));
    CHECK(fs::is_directory(path));
    CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("checkpoint save to an unwritable path names it", "[unit]") {
    TempDir dir;
    const std::string blocker = dir / "file";
    onestep::test::write_text(blocker, "x");
    const std::string path = blocker + "/latest.ckpt";
    std::string message = user_error_message([&] { onestep::save_checkpoint(path, sample_checkpoint()); });
    CHECK_THAT(message, Catch::Contains(path));
    CHECK_THAT(message, Catch::Contains("Not a directory"));
}
