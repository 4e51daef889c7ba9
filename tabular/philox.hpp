// Counter-based Gaussian noise (Philox4x32-10, Salmon et al. SC 2011): every draw is a pure function
// of (seed, purpose, row, step, level/class, column), so any pass over any task replays exactly.
//
//   NoiseStream noise(seed, NoisePurpose::Train);
//   float z = noise.normal(row, epoch, NoiseStream::field(level, label), column);
#pragma once
#include <array>
#include <cstdint>

namespace onestep::tabular {

// One Philox4x32 block: 10 rounds on COUNTER under KEY.
std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// Distinct key spaces, so generation never reuses training noise.
enum class NoisePurpose : uint32_t { Train = 0, Valid = 1, Sample = 2, Impute = 3, ZeroShot = 4, Distill = 5 };

class NoiseStream {
  public:
    NoiseStream(uint64_t seed, NoisePurpose purpose);
    // The third counter word: level << 20 | class.
    static uint32_t field(uint32_t level, uint32_t label) { return (level << 20) | (label & 0xFFFFF); }
    // N(0, 1) for one cell: Box–Muller on the lane pairs (0, 1) and (2, 3) of block COLUMN / 4.
    float normal(uint64_t row, uint32_t step, uint32_t field, uint32_t column) const;
    // The four normals of block COLUMN_BLOCK (columns 4·block … 4·block + 3), in one Philox call.
    std::array<float, 4> normals4(uint64_t row, uint32_t step, uint32_t field, uint32_t column_block) const;
    // WIDTH normals of a row into OUT.
    void fill_row(uint64_t row, uint32_t step, uint32_t field, size_t width, float* out) const;

  private:
    std::array<uint32_t, 2> key_;
};

}  // namespace onestep::tabular
