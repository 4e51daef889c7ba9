// The GELU loops on Eigen arrays, built with -mavx2 -mfma (CMakeLists.txt): Eigen's rational tanh,
// its erf and exp then run 8 floats at a time. Nothing else in the program includes Eigen, so its
// inline templates are instantiated here only.
#include "models/gelu_kernels.hpp"

#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>

namespace onestep::gelu_kernels {
namespace {

using ConstArray = Eigen::Map<const Eigen::ArrayXf>;
using Array = Eigen::Map<Eigen::ArrayXf>;

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;
constexpr float kSqrtHalf = 0.7071067811865476f;        // 1 / sqrt(2)
constexpr float kInvSqrt2Pi = 0.3989422804014327f;      // 1 / sqrt(2 pi)
// Elements per pass: the temporaries stay in L1.
constexpr int64_t kChunk = 2048;
using ChunkArray = Eigen::Array<float, Eigen::Dynamic, 1, 0, kChunk, 1>;

int64_t chunk_at(int64_t begin, int64_t n) { return n - begin < kChunk ? n - begin : kChunk; }

}  // namespace

bool supported() {
#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;   // built without the AVX2 flags (another architecture): libtorch's kernel is used
#endif
}

void forward_tanh(const float* x, float* y, int64_t n) {
    for (int64_t begin = 0; begin < n; begin += kChunk) {
        int64_t size = chunk_at(begin, n);
        ConstArray input(x + begin, size);
        Array output(y + begin, size);
        // y = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) x (1 + 0.044715 x^2)
        output = 0.5f * input * (1.0f + (kSqrt2OverPi * input * (1.0f + kCubic * input.square())).tanh());
    }
}

void backward_tanh(const float* grad, const float* x, float* out, int64_t n) {
    for (int64_t begin = 0; begin < n; begin += kChunk) {
        int64_t size = chunk_at(begin, n);
        ConstArray input(x + begin, size), incoming(grad + begin, size);
        Array output(out + begin, size);
        // dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 0.044715 x^2), t = tanh(u)
        ChunkArray t = (kSqrt2OverPi * input * (1.0f + kCubic * input.square())).tanh();
        output = incoming * (0.5f * (1.0f + t) + (0.5f * kSqrt2OverPi) * input * (1.0f - t.square()) *
                                                     (1.0f + 3.0f * kCubic * input.square()));
    }
}

void forward_erf(const float* x, float* y, int64_t n) {
    for (int64_t begin = 0; begin < n; begin += kChunk) {
        int64_t size = chunk_at(begin, n);
        ConstArray input(x + begin, size);
        Array output(y + begin, size);
        output = 0.5f * input * (1.0f + (kSqrtHalf * input).erf());
    }
}

void backward_erf(const float* grad, const float* x, float* out, int64_t n) {
    for (int64_t begin = 0; begin < n; begin += kChunk) {
        int64_t size = chunk_at(begin, n);
        ConstArray input(x + begin, size), incoming(grad + begin, size);
        Array output(out + begin, size);
        // dy/dx = Phi(x) + x phi(x) = 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)
        output = incoming * (0.5f * (1.0f + (kSqrtHalf * input).erf()) +
                             kInvSqrt2Pi * input * (-0.5f * input.square()).exp());
    }
}

}  // namespace onestep::gelu_kernels
