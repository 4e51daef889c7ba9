// toy:NAME: 2-D distributions for fast experiments, drawn from a generator seeded by (seed,
// split) alone, so the same spec gives the same points on every run, platform and libtorch.
#include <torch/torch.h>

#include <cmath>
#include <functional>

#include "core/error.hpp"
#include "data/dataset.hpp"
#include "data/dataset_sources.hpp"
#include "data/random_streams.hpp"

namespace onestep::data_sources {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Uniforms and normals computed here rather than by <random>'s distributions, whose output
// differs between standard libraries.
class ToyRandom {
  public:
    explicit ToyRandom(uint64_t seed) : engine_(seed) {}

    double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

    // Box-Muller; the second value of each pair is kept for the next call.
    double normal() {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        double u1 = uniform();
        while (u1 <= 0.0) u1 = uniform();
        const double radius = std::sqrt(-2.0 * std::log(u1));
        const double angle = 2.0 * kPi * uniform();
        spare_ = radius * std::sin(angle);
        has_spare_ = true;
        return radius * std::cos(angle);
    }

    int64_t choice(int64_t count) {
        return static_cast<int64_t>(uniform_below(engine_, static_cast<uint64_t>(count)));
    }

  private:
    std::mt19937_64 engine_;
    double spare_ = 0.0;
    bool has_spare_ = false;
};

struct Point {
    double x;
    double y;
    int64_t label;
};

struct Toy {
    std::string name;
    std::vector<std::string> class_names;
    std::function<Point(ToyRandom&)> draw;
};

// Modes 2(cos 2pi k/8, sin 2pi k/8), std 0.1; COARSE merges adjacent modes into 4 classes.
Point eight_gaussians(ToyRandom& random, bool coarse) {
    const int64_t mode = random.choice(8);
    const double angle = 2.0 * kPi * static_cast<double>(mode) / 8.0;
    const double x = 2.0 * std::cos(angle) + 0.1 * random.normal();
    const double y = 2.0 * std::sin(angle) + 0.1 * random.normal();
    return {x, y, coarse ? mode / 2 : mode};
}

// scikit-learn's two moons (noise 0.1), centred and doubled to span about [-3, 3] x [-1.5, 1.5].
Point moons(ToyRandom& random) {
    const int64_t moon = random.choice(2);
    const double angle = kPi * random.uniform();
    double x = moon == 0 ? std::cos(angle) : 1.0 - std::cos(angle);
    double y = moon == 0 ? std::sin(angle) : 0.5 - std::sin(angle);
    x += 0.1 * random.normal();
    y += 0.1 * random.normal();
    return {2.0 * (x - 0.5), 2.0 * (y - 0.25), moon};
}

// FFJORD's checkerboard: uniform on 8 of the 16 squares of side 2 tiling [-4, 4]^2.
Point checkerboard(ToyRandom& random) {
    const double x = 4.0 * random.uniform() - 2.0;
    const double row_shift = std::fmod(std::floor(x) + 4.0, 2.0);   // 0 or 1, also for x < 0
    const double y = random.uniform() - 2.0 * static_cast<double>(random.choice(2)) + row_shift;
    return {2.0 * x, 2.0 * y, 0};
}

// Two interleaved spirals of 1.5 turns, radius up to 3, noise std 0.1; one class each.
Point spirals(ToyRandom& random) {
    const int64_t arm = random.choice(2);
    const double turn = std::sqrt(random.uniform()) * 3.0 * kPi;
    const double sign = arm == 0 ? 1.0 : -1.0;
    const double x = sign * (-std::cos(turn) * turn) / kPi + 0.1 * random.normal();
    const double y = sign * (std::sin(turn) * turn) / kPi + 0.1 * random.normal();
    return {x, y, arm};
}

const std::vector<Toy>& toys() {
    static const std::vector<Toy> all = {
        {"8gaussians",
         {"mode 0", "mode 1", "mode 2", "mode 3", "mode 4", "mode 5", "mode 6", "mode 7"},
         [](ToyRandom& random) { return eight_gaussians(random, false); }},
        {"8gaussians-coarse",
         {"modes 0-1", "modes 2-3", "modes 4-5", "modes 6-7"},
         [](ToyRandom& random) { return eight_gaussians(random, true); }},
        {"moons", {"upper moon", "lower moon"}, moons},
        {"checkerboard", {"board"}, checkerboard},
        {"spirals", {"spiral 0", "spiral 1"}, spirals},
    };
    return all;
}

Dataset draw_split(const Toy& toy, const DataSpec& spec, uint64_t split_tag) {
    // Train and test streams differ by their tag; both depend only on the seed.
    ToyRandom random(splitmix64(splitmix64(spec.seed) ^ split_tag));
    auto points = torch::empty({spec.toy_size, 2}, torch::kFloat32);
    auto labels = torch::empty({spec.toy_size}, torch::kInt64);
    float* point = points.data_ptr<float>();
    int64_t* label = labels.data_ptr<int64_t>();
    for (int64_t row = 0; row < spec.toy_size; ++row) {
        const Point drawn = toy.draw(random);
        point[2 * row] = static_cast<float>(drawn.x);
        point[2 * row + 1] = static_cast<float>(drawn.y);
        label[row] = drawn.label;
    }
    Dataset data;
    data.name = "toy:" + toy.name;
    data.is_image = false;
    data.x = points;
    data.y = labels;
    data.num_classes = static_cast<int64_t>(toy.class_names.size());
    data.class_names = toy.class_names;
    return data;
}

}   // namespace

const std::vector<std::string>& toy_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> list;
        for (const auto& toy : toys()) list.push_back(toy.name);
        return list;
    }();
    return names;
}

Dataset load_toy(const std::string& toy_name, const DataSpec& spec) {
    const Toy* toy = nullptr;
    for (const auto& candidate : toys()) {
        if (candidate.name == toy_name) toy = &candidate;
    }
    if (toy == nullptr) {
        std::string accepted;
        for (const auto& name : toy_names())
            accepted += (accepted.empty() ? "toy:" : ", toy:") + name;
        throw UserError("unknown toy dataset 'toy:" + toy_name + "'; accepted: " + accepted);
    }
    if (spec.toy_size < 1) {
        throw UserError("dataset 'toy:" + toy_name + "': toy_size is " +
                        std::to_string(spec.toy_size) + "; it must be at least 1");
    }
    constexpr uint64_t kTrainTag = 0x7472616E;   // "tran"
    constexpr uint64_t kTestTag = 0x74657374;    // "test"
    if (spec.split == "train") return draw_split(*toy, spec, kTrainTag);
    if (spec.split == "test") return draw_split(*toy, spec, kTestTag);
    return concat_rows(draw_split(*toy, spec, kTrainTag), draw_split(*toy, spec, kTestTag));
}

}   // namespace onestep::data_sources
