// Random streams for data/ that depend on nothing but their seed: not on torch's global
// generator, the libtorch version or the standard library's distributions.
#pragma once
#include <cstdint>
#include <random>

namespace onestep::data_sources {

// Mixes a seed into a well-spread 64-bit value (Steele et al.'s SplitMix64 finaliser), so
// nearby seeds and tags give unrelated mt19937_64 streams.
inline uint64_t splitmix64(uint64_t value) {
    value += 0x9E3779B97F4A7C15ull;
    value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9ull;
    value = (value ^ (value >> 27)) * 0x94D049BB133111EBull;
    return value ^ (value >> 31);
}

// Uniform in 0..bound-1 by rejection, written out because std::uniform_int_distribution's
// output differs between standard libraries.
inline uint64_t uniform_below(std::mt19937_64& engine, uint64_t bound) {
    const uint64_t limit = ~uint64_t{0} - (~uint64_t{0} % bound);
    uint64_t draw = engine();
    while (draw >= limit) draw = engine();
    return draw % bound;
}

}   // namespace onestep::data_sources
