// The DDPM++/ADM-style U-Net velocity network for images [N, C, H, W] (presets unet32, unet24,
// unet16 of spec/image-methods.md §2.4), configured by the "model.unet.*" keys.
//
//   auto net = make_unet(config, {{1, 32, 32}, 10, 0});   // class-conditional, 10 classes
//   at::Tensor v = net->forward(x_t, t, labels);          // shaped like x_t; zero at init
#pragma once
#include <memory>

#include "models/network.hpp"

namespace onestep {

// Throws UserError (naming the key) when the options do not fit SHAPE: an image side not
// divisible by 2^(levels-1), a GroupNorm group count that does not divide a channel count,
// channels not divisible by the attention heads, an attention resolution no level has.
std::shared_ptr<VelocityNet> make_unet(const Config& config, const NetworkShape& shape);

}  // namespace onestep
