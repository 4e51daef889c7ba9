// Philox4x32-10 and the Box–Muller transform on its lanes (tabular spec §7.3).
#include "tabular/philox.hpp"

#include <cmath>

namespace onestep::tabular {
namespace {

constexpr uint32_t kMultiplier0 = 0xD2511F53u, kMultiplier1 = 0xCD9E8D57u;
constexpr uint32_t kKeyStep0 = 0x9E3779B9u, kKeyStep1 = 0xBB67AE85u;
constexpr double kTwoPi = 6.283185307179586476925286766559;

// u = (x + 0.5)·2^−32 lies strictly inside (0, 1), so log(u) is finite.
double to_uniform(uint32_t bits) { return (static_cast<double>(bits) + 0.5) * (1.0 / 4294967296.0); }

}  // namespace

std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> c, std::array<uint32_t, 2> key) {
    for (int round = 0; round < 10; ++round) {
        uint64_t product0 = static_cast<uint64_t>(kMultiplier0) * c[0];
        uint64_t product1 = static_cast<uint64_t>(kMultiplier1) * c[2];
        uint32_t hi0 = static_cast<uint32_t>(product0 >> 32), lo0 = static_cast<uint32_t>(product0);
        uint32_t hi1 = static_cast<uint32_t>(product1 >> 32), lo1 = static_cast<uint32_t>(product1);
        c = {hi1 ^ c[1] ^ key[0], lo1, hi0 ^ c[3] ^ key[1], lo0};
        key[0] += kKeyStep0;
        key[1] += kKeyStep1;
    }
    return c;
}

// The seed's high half is folded into the purpose word so 64-bit seeds stay distinct.
NoiseStream::NoiseStream(uint64_t seed, NoisePurpose purpose)
    : key_{static_cast<uint32_t>(seed), static_cast<uint32_t>(purpose) ^ (static_cast<uint32_t>(seed >> 32) << 3)} {}

std::array<float, 4> NoiseStream::normals4(uint64_t row, uint32_t step, uint32_t field, uint32_t column_block) const {
    // Rows beyond 2^32 fold their high bits into the step word; tables that large are out of reach anyway.
    uint32_t row_low = static_cast<uint32_t>(row), row_high = static_cast<uint32_t>(row >> 32);
    std::array<uint32_t, 4> bits = philox4x32({row_low, step ^ (row_high << 24), field, column_block}, key_);
    std::array<float, 4> out;
    for (int pair = 0; pair < 2; ++pair) {
        double radius = std::sqrt(-2.0 * std::log(to_uniform(bits[2 * pair])));
        double angle = kTwoPi * to_uniform(bits[2 * pair + 1]);
        out[2 * pair] = static_cast<float>(radius * std::cos(angle));
        out[2 * pair + 1] = static_cast<float>(radius * std::sin(angle));
    }
    return out;
}

float NoiseStream::normal(uint64_t row, uint32_t step, uint32_t field, uint32_t column) const {
    return normals4(row, step, field, column >> 2)[column & 3];
}

void NoiseStream::fill_row(uint64_t row, uint32_t step, uint32_t field, size_t width, float* out) const {
    for (size_t block = 0; 4 * block < width; ++block) {
        std::array<float, 4> values = normals4(row, step, field, static_cast<uint32_t>(block));
        for (size_t lane = 0; lane < 4 && 4 * block + lane < width; ++lane) out[4 * block + lane] = values[lane];
    }
}

}  // namespace onestep::tabular
