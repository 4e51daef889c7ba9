// The one training loop (DESIGN §3): data, learning-rate schedule, gradient clipping, EMA,
// NaN/inf guard, log.jsonl and a progress line, periodic checkpoints and preview grids, exact
// resume. Methods implement one step; they never write their own loop.
//
//   TrainRequest request{&find_method("flow"), config, "runs/flow-1"};
//   train(request);
#pragma once
#include <c10/core/Device.h>
#include <torch/optim/optimizer.h>

#include <memory>
#include <string>
#include <vector>

#include "core/checkpoint.hpp"
#include "core/distributed.hpp"
#include "core/options.hpp"
#include "core/registry.hpp"

namespace onestep {

struct DataSpec;

// The options every training run has (seed, steps, batch, optim.*, ema.*, data.*, cadence).
OptionTable trainer_options();
// trainer_options() merged with METHOD's own options: what `train METHOD --help` lists.
OptionTable training_options(const MethodInfo& method);

struct TrainRequest {
    const MethodInfo* method = nullptr;
    Config config;
    std::string run_dir;                 // created if missing
    std::string resume_from;             // a checkpoint path; empty for a fresh run
    c10::Device device = c10::Device(c10::kCPU);
    int64_t stop_at_step = -1;           // stop (with a checkpoint) once this many steps are done
    DistributedEnv distributed;          // world size 1: one process, no process group
};

// Runs training to config "steps" (or stop_at_step). Throws UserError on bad input or
// divergence, Interrupted after saving when SIGINT/SIGTERM arrived. With several processes
// (request.distributed) every rank calls it: data-parallel SGD, rank 0 alone writes the run.
void train(const TrainRequest& request);

// Sets the rate of every parameter group of OPTIMIZER (the trainer does so before each step).
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

// The dataset the "data.*" options name (what the trainer loads for methods without their own data).
DataSpec data_spec(const Config& config);

// The optimizer named by the "optim.*" options (adam or adamw) over PARAMETERS.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<at::Tensor>& parameters,
                                                        const Config& config);

// A trained method rebuilt from a checkpoint (.ckpt) or an export (.safetensors), weights
// loaded, ready for make_sampler(). Optimizer states are not loaded.
struct TrainedMethod {
    const MethodInfo* info = nullptr;
    Config config;
    int64_t step = 0;
    std::unique_ptr<Method> method;
};
TrainedMethod load_trained_method(const std::string& path, const c10::Device& device);

// The checkpoint path a user means: a .ckpt file, or a run directory (its checkpoints/latest.ckpt).
std::string resolve_checkpoint_path(const std::string& path_or_run_dir);

// `onestep export`: the method's weights as safetensors, the resolved config in the metadata.
void export_weights(const std::string& checkpoint_path, const std::string& out_path);

}  // namespace onestep
