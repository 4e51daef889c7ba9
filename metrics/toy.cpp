// Toy-distribution metrics (see toy.hpp).
#include "metrics/toy.hpp"

#include <torch/torch.h>

#include <cmath>

namespace onestep {

double sliced_wasserstein1(const at::Tensor& a, const at::Tensor& b, int64_t directions) {
    TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == 2 && b.size(1) == 2, "sliced W1 expects [N,2] sets");
    at::Tensor angles = torch::arange(directions, torch::kDouble) * (M_PI / static_cast<double>(directions));
    at::Tensor basis = torch::stack({torch::cos(angles), torch::sin(angles)}, 0);   // [2, P]
    at::Tensor pa = std::get<0>(torch::sort(a.to(torch::kDouble).cpu().matmul(basis), 0));
    at::Tensor pb = std::get<0>(torch::sort(b.to(torch::kDouble).cpu().matmul(basis), 0));
    int64_t n = std::min(pa.size(0), pb.size(0));
    auto quantiles = [n](const at::Tensor& sorted) {
        if (sorted.size(0) == n) return sorted;
        at::Tensor index = ((torch::arange(n, torch::kDouble) + 0.5) * (static_cast<double>(sorted.size(0)) / n)).floor();
        return sorted.index_select(0, index.to(torch::kLong).clamp_max(sorted.size(0) - 1));
    };
    return (quantiles(pa) - quantiles(pb)).abs().mean().item<double>();
}

double mmd2_unbiased(const at::Tensor& a, const at::Tensor& b) {
    at::Tensor x = a.to(torch::kDouble).cpu();
    at::Tensor y = b.to(torch::kDouble).cpu();
    auto kernel = [](const at::Tensor& p, const at::Tensor& q) {
        at::Tensor distance = torch::cdist(p, q).pow(2);
        at::Tensor sum = torch::zeros_like(distance);
        for (double h : {0.1, 0.2, 0.5, 1.0}) sum += torch::exp(-distance / (2 * h * h));
        return sum;
    };
    int64_t m = x.size(0), n = y.size(0);
    at::Tensor kxx = kernel(x, x), kyy = kernel(y, y), kxy = kernel(x, y);
    double xx = (kxx.sum().item<double>() - kxx.diagonal().sum().item<double>()) / static_cast<double>(m * (m - 1));
    double yy = (kyy.sum().item<double>() - kyy.diagonal().sum().item<double>()) / static_cast<double>(n * (n - 1));
    double xy = kxy.mean().item<double>();
    return xx + yy - 2 * xy;
}

ModeReport eight_gaussians_modes(const at::Tensor& samples, const at::Tensor& labels, int64_t num_classes) {
    at::Tensor angles = torch::arange(8, torch::kDouble) * (2 * M_PI / 8);
    at::Tensor modes = 2.0 * torch::stack({torch::cos(angles), torch::sin(angles)}, 1);
    at::Tensor distance = torch::cdist(samples.to(torch::kDouble).cpu(), modes);
    auto [nearest_distance, nearest] = torch::min(distance, 1);
    ModeReport report;
    report.high_quality = (nearest_distance <= 0.3).to(torch::kDouble).mean().item<double>();
    at::Tensor counts = torch::bincount(nearest, {}, 8).to(torch::kDouble) / static_cast<double>(samples.size(0));
    for (int64_t k = 0; k < 8; ++k) {
        report.mode_share.push_back(counts[k].item<double>());
        if (report.mode_share.back() >= 0.02) ++report.modes_covered;
    }
    if (labels.defined() && (num_classes == 8 || num_classes == 4)) {
        TORCH_CHECK(labels.numel() == samples.size(0), "eight_gaussians_modes: one label per sample");
        at::Tensor class_of_mode = num_classes == 8 ? nearest : torch::div(nearest, 2, "floor");
        report.conditional_accuracy = (class_of_mode == labels.cpu().to(torch::kLong)).to(torch::kDouble).mean().item<double>();
    }
    return report;
}

}  // namespace onestep
