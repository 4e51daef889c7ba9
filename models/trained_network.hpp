// A velocity network trained by one optimizer, with its EMA copy: what the teachers and most
// one-step methods own. build() makes both copies from the "model.*" keys, moves them to the
// device and makes the optimizer from "optim.*"; the three lists are what a Method hands the
// Trainer.
//
//   TrainedNetwork model;
//   model.build(config, NetworkShape{...}, device);
//   std::vector<NamedModule> modules() override { return model.modules(); }
#pragma once
#include <c10/core/Device.h>

#include <memory>
#include <vector>

#include "core/method.hpp"
#include "models/ema.hpp"
#include "models/network.hpp"

namespace onestep {

struct TrainedNetwork {
    std::shared_ptr<VelocityNet> net;       // trained online weights
    std::shared_ptr<VelocityNet> ema_net;   // its EMA copy (samples, targets)
    std::unique_ptr<Ema> ema;
    std::unique_ptr<torch::optim::Optimizer> optimizer;
    double base_lr = 0;

    void build(const Config& config, const NetworkShape& shape, const torch::Device& device);
    std::vector<NamedModule> modules() const { return {{"net", net}, {"ema", ema_net}}; }
    std::vector<NamedOptimizer> optimizers() const { return {{"net", optimizer.get(), base_lr}}; }
    std::vector<Ema*> emas() const { return {ema.get()}; }
};

}  // namespace onestep
