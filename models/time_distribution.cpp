// Training-time distributions of the flow objective.
#include "models/time_distribution.hpp"

#include <torch/torch.h>

#include <sstream>

namespace onestep {

TimeDistribution TimeDistribution::of_flow_config(const Config& config) {
    TimeDistribution times;
    if (!config.has("teacher.t_dist")) return times;
    times.kind = config.get_string("teacher.t_dist");
    times.logit_mean = config.get_float("teacher.logit_mean");
    times.logit_std = config.get_float("teacher.logit_std");
    return times;
}

at::Tensor TimeDistribution::sample(int64_t n, const at::TensorOptions& options) const {
    if (kind == "logit-normal") return torch::sigmoid(logit_mean + logit_std * torch::randn({n}, options));
    return torch::rand({n}, options);
}

std::string TimeDistribution::describe() const {
    if (kind != "logit-normal") return "uniform";
    std::ostringstream text;
    text << "logit-normal(" << logit_mean << ", " << logit_std << ")";
    return text.str();
}

}  // namespace onestep
