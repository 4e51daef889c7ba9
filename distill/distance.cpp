// Per-sample distances.
#include "distill/distance.hpp"

#include <torch/torch.h>

#include <cmath>

namespace onestep {

at::Tensor sample_distance(const at::Tensor& a, const at::Tensor& b, const std::string& kind, double huber_c) {
    at::Tensor squared = (a - b).pow(2).flatten(1);
    if (kind == "l2") return squared.mean(1);
    if (kind == "elementwise-huber") {
        double c = huber_c > 0 ? huber_c : 0.001;
        return (torch::sqrt(squared + c * c) - c).mean(1);
    }
    TORCH_CHECK(kind == "pseudo-huber", "unknown distance '", kind, "'");
    double c = huber_c > 0 ? huber_c : 0.00054 * std::sqrt(static_cast<double>(squared.size(1)));
    return torch::sqrt(squared.sum(1) + c * c) - c;   // sqrt(||a - b||^2 + c^2) - c
}

}  // namespace onestep
