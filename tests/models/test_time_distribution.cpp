// Training-time distributions: read from a flow run's config, uniform otherwise, and the
// logit-normal's moments.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "core/options.hpp"
#include "core/registry.hpp"
#include "core/trainer.hpp"
#include "models/time_distribution.hpp"

using namespace onestep;

TEST_CASE("training times follow a flow run's teacher.t_dist and are uniform for other configs", "[unit]") {
    register_builtin_methods();
    Config flow = resolve_config(training_options(find_method("flow")), "",
                                 {"teacher.t_dist=logit-normal", "teacher.logit_mean=1.2", "teacher.logit_std=0.5"});
    TimeDistribution times = TimeDistribution::of_flow_config(flow);
    CHECK(times.kind == "logit-normal");
    CHECK(times.describe() == "logit-normal(1.2, 0.5)");
    torch::manual_seed(1);
    at::Tensor t = times.sample(20000, torch::dtype(torch::kDouble));
    at::Tensor logit = torch::log(t / (1 - t));
    CHECK(logit.mean().item<double>() == Approx(1.2).margin(0.02));
    CHECK(logit.std().item<double>() == Approx(0.5).margin(0.02));

    Config dmd = resolve_config(training_options(find_method("dmd")), "", {});
    TimeDistribution uniform = TimeDistribution::of_flow_config(dmd);
    CHECK(uniform.kind == "uniform");
    at::Tensor u = uniform.sample(20000, torch::dtype(torch::kDouble));
    CHECK(u.min().item<double>() >= 0.0);
    CHECK(u.max().item<double>() < 1.0);
    CHECK(u.mean().item<double>() == Approx(0.5).margin(0.01));
}
