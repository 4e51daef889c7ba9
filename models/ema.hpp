// Exponential moving average of a network's weights, kept in a separate module of the same
// architecture (a real copy: a module-holder copy would alias the weights).
//   theta_ema <- mu * theta_ema + (1 - mu) * theta;  buffers copied.
// With warmup, mu = min(decay, (1 + n) / (10 + n)) after n updates, so early previews are not
// dominated by the initial weights (at decay 0.999 they still weigh 61% after 500 steps).
#pragma once
#include <torch/nn/module.h>

#include <memory>
#include <string>

namespace onestep {

class Ema {
  public:
    // SHADOW must have the same parameter names and shapes as ONLINE; it starts as a copy.
    Ema(std::shared_ptr<torch::nn::Module> online, std::shared_ptr<torch::nn::Module> shadow, double decay,
        bool warmup = true);
    // STEP: 0-based index of the optimizer step just taken (drives the warmup).
    void update(int64_t step);
    // Copies ONLINE into SHADOW (used at start and by methods that reset their target).
    void copy_from_online();
    const std::shared_ptr<torch::nn::Module>& shadow() const { return shadow_; }
    double decay() const { return decay_; }

  private:
    std::shared_ptr<torch::nn::Module> online_;
    std::shared_ptr<torch::nn::Module> shadow_;
    double decay_;
    bool warmup_;
};

// Copies every parameter and buffer of SOURCE into TARGET (same names and shapes) without
// recording gradients; TARGET's parameters are frozen when FREEZE.
void copy_weights(torch::nn::Module& target, const torch::nn::Module& source, bool freeze = false);

// UserError unless TARGET (built from this config's model.*) has SOURCE's parameter names and
// shapes; the message names WHAT (e.g. "dmd.init runs/flow") and ends with ADVICE.
void check_same_architecture(const torch::nn::Module& target, const torch::nn::Module& source, const std::string& what,
                             const std::string& advice);

}  // namespace onestep
