// The DiT velocity network (patch embedding, adaLN-Zero transformer blocks, unpatchify) for
// images [N, C, H, W], configured by the "model.dit.*" keys.
//
//   auto net = make_dit(config, {{1, 32, 32}, 10, 0});    // patch 4 on 32x32: 64 tokens
//   at::Tensor v = net->forward(x_t, t, labels);          // shaped like x_t; zero at init
#pragma once
#include <memory>

#include "models/network.hpp"

namespace onestep {

// Throws UserError (naming the key and the values) when model.dit.patch does not divide the
// image sides or model.dit.dim is not divisible by model.dit.heads (or by 4, for the 2-D
// sin-cos positions).
std::shared_ptr<VelocityNet> make_dit(const Config& config, const NetworkShape& shape);

}  // namespace onestep
