// The distribution of training times t of a flow objective (image-methods spec §3.4): uniform on
// [0, 1], or logit-normal. A flow teacher trains with the one its "teacher.*" keys name; the
// objectives that reuse the teacher's loss (DMD's critic, MSD's Teacher Score Matching) draw
// from the same.
//
//   TimeDistribution times = TimeDistribution::of_flow_config(config);
//   at::Tensor t = times.sample(n, x.options());
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "core/options.hpp"

namespace onestep {

struct TimeDistribution {
    std::string kind = "uniform";   // "uniform" or "logit-normal"
    double logit_mean = 0.0, logit_std = 1.0;

    // teacher.t_dist, teacher.logit_mean and teacher.logit_std of a flow run's config; uniform when
    // CONFIG has no such keys (methods other than the flow teacher).
    static TimeDistribution of_flow_config(const Config& config);
    // N times from libtorch's global generator.
    at::Tensor sample(int64_t n, const at::TensorOptions& options) const;
    std::string describe() const;
};

}  // namespace onestep
