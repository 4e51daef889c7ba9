// Method: anything trainable, found by name in the registry. It declares its options once,
// owns its networks and optimizers, implements one training step, and hands out a Sampler.
// The one training loop that drives every method is the Trainer (core/trainer.hpp).
#pragma once
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/options.hpp"
#include "data/loader.hpp"
#include "samplers/sampler.hpp"

namespace onestep {

class Ema;
class StepContext;

struct NamedModule {
    std::string name;
    std::shared_ptr<torch::nn::Module> module;
};

struct NamedOptimizer {
    std::string name;
    torch::optim::Optimizer* optimizer;   // owned by the method
    double base_lr;                       // the schedule scales this
};

// What the method's data looks like, known before any data is loaded.
struct DataShape {
    std::vector<int64_t> sample_shape;   // {1, 32, 32} or {2}
    int64_t num_classes = 0;
    std::vector<std::string> class_names;   // separators: the stem names
    int64_t sample_rate = 0;                // audio: Hz (0 for images and points)
};

// Data a method reads itself (audio stems) instead of the trainer's image/toy datasets. Each
// batch is a pure function of (step, rank, world), so a resumed run needs no loader position;
// with several processes each rank gets its own examples.
class BatchSource {
  public:
    virtual ~BatchSource() = default;
    virtual DataShape shape() const = 0;
    virtual Batch batch(int64_t step, int rank, int world) = 0;
};

class Method {
  public:
    virtual ~Method() = default;
    // Methods with their own data return it here (called before build); the default null means
    // the trainer loads "data.name" itself.
    virtual std::unique_ptr<BatchSource> open_data(const Config& config) { return nullptr; }
    // Builds networks and optimizers from the resolved config on DEVICE.
    virtual void build(const Config& config, const DataShape& data, const torch::Device& device) = 0;
    // One optimisation step on BATCH; calls context.optimize(...) for each optimizer it steps.
    // Returns the numbers to log (losses named "*loss*" are plotted).
    virtual std::map<std::string, double> train_step(const Batch& batch, StepContext& context) = 0;
    // Every module whose weights belong in the checkpoint (EMA copies included).
    virtual std::vector<NamedModule> modules() = 0;
    virtual std::vector<NamedOptimizer> optimizers() = 0;
    // EMA copies the trainer updates after every step that was not skipped.
    virtual std::vector<Ema*> emas() { return {}; }
    // The sampler of the trained model (the EMA weights where the method keeps them); null for
    // methods that do not generate (a classifier).
    virtual std::unique_ptr<Sampler> make_sampler() = 0;
    // Held-out measurements the trainer records with each checkpoint ("eval" records in
    // log.jsonl and eval/step-N.json), e.g. a classifier's test accuracy.
    virtual std::map<std::string, double> evaluate() { return {}; }
};

// Handed to Method::train_step by the Trainer.
class StepContext {
  public:
    virtual ~StepContext() = default;
    // Zeroes the gradients of OPTIMIZER's parameters, back-propagates LOSS, and — unless the loss
    // or a gradient is not finite, in which case the step is skipped — clips the gradient norm
    // and steps. Returns the gradient norm before clipping (NaN when skipped).
    virtual double optimize(const std::string& optimizer, const at::Tensor& loss) = 0;
    virtual int64_t step() const = 0;            // 0-based index of the step being taken
    virtual const torch::Device& device() const = 0;
};

}  // namespace onestep
