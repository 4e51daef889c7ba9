// Multi-student routing (image-methods spec §3.12 and §8): C classes split into K disjoint groups,
// a table sending each class to its group's student, and the Sampler that draws every sample from
// the student its label routes to (one network evaluation of one student per sample).
//
//   auto groups = contiguous_partition(10, 2);          // {0..4}, {5..9}
//   RoutedSampler sampler(std::move(students), route_table(groups, 10));
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <vector>

#include "samplers/sampler.hpp"

namespace onestep {

// V_k = {c : floor(c K / C) = k}: K groups of consecutive classes, sizes ceil(C/K) or floor(C/K).
// UserError unless 1 <= K <= C.
std::vector<std::vector<int64_t>> contiguous_partition(int64_t num_classes, int64_t groups);

// route[c] = the group holding class c; logic_error when GROUPS do not cover 0..C-1 exactly once.
std::vector<int64_t> route_table(const std::vector<std::vector<int64_t>>& groups, int64_t num_classes);

class RoutedSampler : public Sampler {
  public:
    // STUDENTS[k] serves the classes routed to k; all share one sample shape and class list.
    RoutedSampler(std::vector<std::unique_ptr<Sampler>> students, std::vector<int64_t> route);
    at::Tensor sample(const at::Tensor& noise, const at::Tensor& labels, const SampleOptions& options) override;
    std::vector<int64_t> sample_shape() const override { return students_.front()->sample_shape(); }
    std::vector<int64_t> noise_shape() const override { return students_.front()->noise_shape(); }
    int64_t num_classes() const override { return students_.front()->num_classes(); }
    std::vector<std::string> class_names() const override { return students_.front()->class_names(); }
    int64_t nfe(const SampleOptions& options) const override { return students_.front()->nfe(options); }
    std::string describe(const SampleOptions& options) const override;

  private:
    std::vector<std::unique_ptr<Sampler>> students_;
    std::vector<int64_t> route_;
};

}  // namespace onestep
