// The renderer's random numbers: splitmix64 seeds and a small portable generator, so that the
// same seed gives the same song on every standard library (std distributions are not portable).
//
//   onestep::render::Rng rng(onestep::render::splitmix64(42));
//   int tempo = rng.uniform_int(70, 170);                  // inclusive
//   if (rng.bernoulli(0.3)) { ... }
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "data/random_streams.hpp"

namespace onestep::render {

using data_sources::splitmix64;

// xoshiro256** seeded through splitmix64.
class Rng {
  public:
    explicit Rng(uint64_t seed) {
        for (uint64_t& word : state_) {
            seed += 0x9E3779B97F4A7C15ULL;
            word = splitmix64(seed);
        }
    }

    uint64_t next() {
        const uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }

    // [0, 1) with 53 random bits.
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    double uniform(double low, double high) { return low + (high - low) * uniform(); }
    // LOW..HIGH inclusive.
    int uniform_int(int low, int high) {
        return low + static_cast<int>(next() % static_cast<uint64_t>(high - low + 1));
    }
    bool bernoulli(double p) { return uniform() < p; }
    // Box-Muller; one draw per call keeps the stream easy to reason about.
    double normal(double mean, double stddev) {
        double u1 = 1.0 - uniform();
        double u2 = uniform();
        return mean + stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
    }
    // Index drawn with probability proportional to WEIGHTS.
    size_t weighted(const std::vector<double>& weights) {
        double total = 0;
        for (double w : weights) total += w;
        double r = uniform() * total;
        for (size_t i = 0; i < weights.size(); ++i) {
            if (r < weights[i]) return i;
            r -= weights[i];
        }
        return weights.size() - 1;
    }
    template <typename T>
    const T& pick(const std::vector<T>& items) {
        return items[next() % items.size()];
    }

  private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t state_[4];
};

}  // namespace onestep::render
