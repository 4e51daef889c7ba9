// Batched sampling shared by `sample`, `eval` and the trainer's previews.
#include "samplers/sampler.hpp"

#include <torch/torch.h>

namespace onestep {

at::Tensor draw_samples(Sampler& sampler, const at::Tensor& labels, const SampleOptions& options, uint64_t seed,
                        int64_t batch, const c10::Device& device) {
    torch::NoGradGuard no_grad;
    int64_t n = labels.size(0);
    std::vector<int64_t> shape = {n};
    for (int64_t size : sampler.noise_shape()) shape.push_back(size);
    auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
    at::Tensor noise = at::randn(shape, generator, at::TensorOptions().dtype(at::kFloat));
    std::vector<at::Tensor> outputs;
    for (int64_t begin = 0; begin < n; begin += batch) {
        int64_t end = std::min(n, begin + batch);
        outputs.push_back(
            sampler.sample(noise.slice(0, begin, end).to(device), labels.slice(0, begin, end).to(device), options).cpu());
    }
    return torch::cat(outputs, 0).contiguous();
}

uint64_t fresh_noise_seed(uint64_t seed) {
    // splitmix64 of the seed offset by a constant: a well-mixed, distinct stream.
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL * 2;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

at::Tensor default_labels(int64_t n, int64_t num_classes, int64_t class_id) {
    if (class_id >= 0) return torch::full({n}, class_id, torch::kLong);
    if (num_classes > 0) return torch::arange(n, torch::kLong).remainder(num_classes);
    return torch::zeros({n}, torch::kLong);
}

}  // namespace onestep
