// Teacher pairs: the same pairs however the work is chunked or interrupted, labels i mod C,
// metadata naming the teacher, and refusal of a partial folder made with other settings.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <filesystem>

#include "core/hash.hpp"
#include "samplers/teacher_pairs.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using namespace onestep;
using Catch::Matchers::Contains;

namespace {

const std::string kOnestep = ONESTEP_BINARY;

std::string pairs_command(const std::string& run, const std::string& out, int chunk) {
    return kOnestep + " sample --ckpt " + run + " --pairs 10 --steps 4 --seed 3 --batch " + std::to_string(chunk) +
           " --out " + out;
}

// A generator that returns z + shift (in float32), whatever the labels.
class ShiftSampler : public Sampler {
  public:
    explicit ShiftSampler(double shift, int64_t classes = 0) : shift_(shift), classes_(classes) {}
    at::Tensor sample(const at::Tensor& noise, const at::Tensor&, const SampleOptions&) override {
        CHECK(noise.scalar_type() == torch::kFloat);
        return noise + shift_;
    }
    std::vector<int64_t> sample_shape() const override { return {2}; }
    int64_t num_classes() const override { return classes_; }
    int64_t nfe(const SampleOptions&) const override { return 1; }
    std::string describe(const SampleOptions&) const override { return "shift"; }

  private:
    double shift_;
    int64_t classes_;
};

}  // namespace

TEST_CASE("paired error is the mean distance from each pair's own noise, over the first N pairs", "[unit]") {
    TeacherPairs pairs;
    pairs.z = torch::randn({5, 2}).to(torch::kHalf);   // float16 pairs are read as float32
    pairs.x = pairs.z.to(torch::kFloat) + 1.0;         // the teacher's map: z + 1
    pairs.y = torch::zeros({5}, torch::kLong);
    pairs.x[4] += 3.0;                                 // the last pair is off by 3 per coordinate
    const c10::Device cpu(c10::kCPU);
    ShiftSampler exact(1.0), off(0.0);
    CHECK(paired_error(exact, pairs, "p", 4, {}, cpu) == Approx(0.0).margin(1e-6));
    CHECK(paired_error(off, pairs, "p", 4, {}, cpu) == Approx(std::sqrt(2.0)));    // |(1, 1)|
    CHECK(paired_error(exact, pairs, "p", 100, {}, cpu) == Approx(std::sqrt(18.0) / 5));   // all five pairs
    ShiftSampler conditional(1.0, 3);
    CHECK_THAT(test::user_error_message([&] { paired_error(conditional, pairs, "p.bin", 5, {}, cpu); }),
               Contains("made with 0 classes, the generator has 3"));
}

TEST_CASE("pair noise depends only on seed and index", "[unit]") {
    CHECK(torch::equal(pair_noise(5, 7, {1, 4, 4}), pair_noise(5, 7, {1, 4, 4})));
    CHECK_FALSE(torch::equal(pair_noise(5, 7, {1, 4, 4}), pair_noise(5, 8, {1, 4, 4})));
    CHECK_FALSE(torch::equal(pair_noise(5, 7, {1, 4, 4}), pair_noise(6, 7, {1, 4, 4})));
}

TEST_CASE("teacher pairs resume exactly after an interruption and agree across chunk sizes", "[integration]") {
    test::TempDir dir;
    auto train = test::run_command(kOnestep + " train flow --config " + ONESTEP_SOURCE_DIR +
                                   "/configs/toy2d/flow.yaml --threads 2 --run-dir " + (dir / "teacher") +
                                   " --set steps=20 --set data.toy_size=2000 --set data.conditional=true");
    INFO(train.output);
    REQUIRE(train.exit_code == 0);

    auto whole = test::run_command(pairs_command(dir / "teacher", dir / "a.bin", 3));
    INFO(whole.output);
    REQUIRE(whole.exit_code == 0);
    TeacherPairs a = read_teacher_pairs(dir / "a.bin");
    CHECK(a.z.sizes() == std::vector<int64_t>{10, 2});
    CHECK(torch::equal(a.y, torch::arange(10, torch::kLong).remainder(8)));
    CHECK(a.metadata.at("teacher_sha256") == sha256_file(dir / "teacher/checkpoints/latest.ckpt"));
    CHECK(a.metadata.at("n") == "10");
    CHECK(a.num_classes == 8);   // recorded from the teacher, not inferred from the labels
    CHECK(a.metadata.at("num_classes") == "8");
    CHECK(torch::equal(a.z[3], pair_noise(3, 3, {2})));
    CHECK_FALSE(fs::exists(dir / "a.bin.partial"));

    // The final write fails (the output path is a folder): the chunks stay for the next run.
    fs::create_directories(dir / "b.bin");
    auto blocked = test::run_command(pairs_command(dir / "teacher", dir / "b.bin", 3));
    CHECK(blocked.exit_code != 0);
    REQUIRE(fs::exists(dir / "b.bin.partial/chunk-000001.safetensors"));
    fs::remove(dir / "b.bin.partial/chunk-000001.safetensors");
    fs::remove(dir / "b.bin");
    auto resumed = test::run_command(pairs_command(dir / "teacher", dir / "b.bin", 3));
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    CHECK_THAT(resumed.output, Contains("resuming pairs"));
    CHECK_THAT(resumed.output, Contains("pairs 6/10"));
    CHECK_THAT(resumed.output, !Contains("pairs 3/10"));
    TeacherPairs b = read_teacher_pairs(dir / "b.bin");
    CHECK(torch::equal(a.z, b.z));
    CHECK(torch::equal(a.x, b.x));
    CHECK(torch::equal(a.y, b.y));

    // Another chunk size: the same noise and labels; outputs equal up to the float rounding of
    // matrix products at another batch size.
    auto rechunked = test::run_command(pairs_command(dir / "teacher", dir / "d.bin", 4));
    REQUIRE(rechunked.exit_code == 0);
    TeacherPairs d = read_teacher_pairs(dir / "d.bin");
    CHECK(torch::equal(a.z, d.z));
    CHECK(torch::equal(a.y, d.y));
    CHECK(torch::allclose(a.x, d.x, 1e-5, 1e-5));

    // A partial folder from other settings is refused rather than mixed in.
    fs::create_directories(dir / "c.bin");
    test::run_command(pairs_command(dir / "teacher", dir / "c.bin", 4));
    fs::remove(dir / "c.bin");
    auto mismatch = test::run_command(kOnestep + " sample --ckpt " + (dir / "teacher") +
                                      " --pairs 10 --steps 8 --seed 3 --batch 4 --out " + (dir / "c.bin"));
    CHECK(mismatch.exit_code == 2);
    CHECK_THAT(mismatch.output, Contains("other settings"));
}
