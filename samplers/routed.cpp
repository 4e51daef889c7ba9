// Partitions, route tables and the routed sampler.
#include "samplers/routed.hpp"

#include <torch/torch.h>

#include <stdexcept>

#include "core/error.hpp"

namespace onestep {

std::vector<std::vector<int64_t>> contiguous_partition(int64_t num_classes, int64_t groups) {
    if (num_classes < 1) throw UserError("a partition of classes needs a class-conditional teacher (it has no classes)");
    if (groups < 1 || groups > num_classes)
        throw UserError(std::to_string(groups) + " students for " + std::to_string(num_classes) +
                        " classes: each student needs at least one class");
    std::vector<std::vector<int64_t>> partition(static_cast<size_t>(groups));
    for (int64_t c = 0; c < num_classes; ++c) partition[static_cast<size_t>(c * groups / num_classes)].push_back(c);
    return partition;
}

std::vector<int64_t> route_table(const std::vector<std::vector<int64_t>>& groups, int64_t num_classes) {
    std::vector<int64_t> route(static_cast<size_t>(num_classes), -1);
    for (size_t k = 0; k < groups.size(); ++k)
        for (int64_t c : groups[k]) {
            if (c < 0 || c >= num_classes || route[static_cast<size_t>(c)] != -1)
                throw std::logic_error("route_table: class " + std::to_string(c) + " is out of range or in two groups");
            route[static_cast<size_t>(c)] = static_cast<int64_t>(k);
        }
    for (int64_t c = 0; c < num_classes; ++c)
        if (route[static_cast<size_t>(c)] == -1) throw std::logic_error("route_table: class " + std::to_string(c) + " has no group");
    return route;
}

RoutedSampler::RoutedSampler(std::vector<std::unique_ptr<Sampler>> students, std::vector<int64_t> route)
    : students_(std::move(students)), route_(std::move(route)) {
    if (students_.empty()) throw std::logic_error("RoutedSampler: no students");
}

at::Tensor RoutedSampler::sample(const at::Tensor& noise, const at::Tensor& labels, const SampleOptions& options) {
    const int64_t classes = static_cast<int64_t>(route_.size());
    if (!labels.defined() || labels.numel() != noise.size(0))
        throw UserError("a multi-student model needs one class label per sample");
    at::Tensor cpu_labels = labels.to(torch::kCPU, torch::kLong);
    if (cpu_labels.numel() > 0 && (cpu_labels.min().item<int64_t>() < 0 || cpu_labels.max().item<int64_t>() >= classes))
        throw UserError("class labels must lie in 0.." + std::to_string(classes - 1) + " (the students' classes)");
    at::Tensor student_of = torch::tensor(route_, torch::kLong).index_select(0, cpu_labels);
    at::Tensor out;
    for (size_t k = 0; k < students_.size(); ++k) {
        at::Tensor rows = torch::nonzero(student_of == static_cast<int64_t>(k)).flatten();
        if (rows.numel() == 0) continue;
        at::Tensor device_rows = rows.to(noise.device());
        at::Tensor drawn = students_[k]->sample(noise.index_select(0, device_rows),
                                                labels.to(noise.device()).index_select(0, device_rows), options);
        if (!out.defined()) out = torch::empty(noise.sizes(), drawn.options());
        out.index_copy_(0, device_rows.to(drawn.device()), drawn);
    }
    return out.defined() ? out : torch::empty(noise.sizes(), noise.options());
}

std::string RoutedSampler::describe(const SampleOptions& options) const {
    return students_.front()->describe(options) + ", routed over " + std::to_string(students_.size()) + " students";
}

}  // namespace onestep
