// The pixel quantisation shared by every feature extractor (see features.hpp): metrics see the
// values a saved PNG would hold, not the generator's floats.
#include "metrics/features.hpp"

#include <torch/torch.h>

namespace onestep {

at::Tensor quantize_like_png(const at::Tensor& images) {
    // float64 so that 127.5 x + 128 lands on the right side of an integer for float32 inputs; a
    // NaN (a diverged sample) becomes black, as the suite's PNG writer stores it.
    at::Tensor x = torch::nan_to_num(images.to(torch::kDouble), -1.0, 1.0, -1.0);
    return (x * 127.5 + 128.0).floor_().clamp_(0.0, 255.0).to(torch::kFloat);
}

}  // namespace onestep
