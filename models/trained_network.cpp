// A velocity network with its EMA copy and optimizer.
#include "models/trained_network.hpp"

#include <torch/torch.h>

#include "core/trainer.hpp"

namespace onestep {

void TrainedNetwork::build(const Config& config, const NetworkShape& shape, const torch::Device& device) {
    net = make_network(config, shape);
    ema_net = net->make_sibling();
    net->to(device);
    ema_net->to(device);
    ema = std::make_unique<Ema>(net, ema_net, config.get_float("ema.decay"), config.get_bool("ema.warmup"));
    optimizer = make_optimizer(net->parameters(), config);
    base_lr = config.get_float("optim.lr");
}

}  // namespace onestep
