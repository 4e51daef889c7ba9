// Test-only methods (see test_methods.hpp).
#include "tools/test_methods.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "core/registry.hpp"
#include "core/trainer.hpp"
#include "models/ema.hpp"

namespace onestep::test {
namespace {

struct TinyNetImpl : torch::nn::Module {
    explicit TinyNetImpl(double dropout_rate = 0.1) {
        first = register_module("first", torch::nn::Linear(2, 32));
        dropout = register_module("dropout", torch::nn::Dropout(dropout_rate));
        second = register_module("second", torch::nn::Linear(32, 2));
    }
    at::Tensor forward(const at::Tensor& x) { return second(dropout(torch::tanh(first(x)))); }
    torch::nn::Linear first{nullptr};
    torch::nn::Dropout dropout{nullptr};
    torch::nn::Linear second{nullptr};
};
TORCH_MODULE(TinyNet);

class TinySampler : public Sampler {
  public:
    explicit TinySampler(TinyNet net) : net_(std::move(net)) {}
    at::Tensor sample(const at::Tensor& noise, const at::Tensor&, const SampleOptions&) override {
        net_->eval();
        return net_->forward(noise);
    }
    std::vector<int64_t> sample_shape() const override { return {2}; }
    int64_t num_classes() const override { return 0; }
    int64_t nfe(const SampleOptions&) const override { return 1; }
    std::string describe(const SampleOptions&) const override { return "tiny net, 1 step"; }

  private:
    TinyNet net_;
};

class RegressMethod : public Method {
  public:
    // DETERMINISTIC: no dropout and no target noise, so a step depends on nothing but the
    // weights and the batch (one process with batch 2B and two with B must agree to rounding).
    explicit RegressMethod(bool deterministic = false)
        : deterministic_(deterministic), net_(deterministic ? 0.0 : 0.1), ema_net_(deterministic ? 0.0 : 0.1) {}
    void build(const Config& config, const DataShape&, const torch::Device& device) override {
        net_->to(device);
        ema_net_->to(device);
        ema_ = std::make_unique<Ema>(net_.ptr(), ema_net_.ptr(), config.get_float("ema.decay"), config.get_bool("ema.warmup"));
        optimizer_ = make_optimizer(net_->parameters(), config);
        base_lr_ = config.get_float("optim.lr");
        sleep_ms_ = config.get_int("test.sleep_ms");
        nan_from_ = config.get_int("test.nan_from_step");
        nan_count_ = config.get_int("test.nan_steps");
        // Launched ranks see RANK; a NaN on one rank alone must still skip the step everywhere.
        int64_t nan_rank = config.get_int("test.nan_rank");
        const char* rank = std::getenv("RANK");
        if (nan_rank >= 0 && (rank == nullptr ? 0 : std::atoi(rank)) != nan_rank) nan_count_ = 0;
    }
    std::map<std::string, double> train_step(const Batch& batch, StepContext& context) override {
        net_->train();
        at::Tensor target = batch.x.flip({1}) * 0.5;
        if (!deterministic_) target = target + 0.05 * torch::randn_like(batch.x);
        at::Tensor loss = (net_->forward(batch.x) - target).pow(2).mean();
        int64_t step = context.step();
        if (step >= nan_from_ && step < nan_from_ + nan_count_) loss = loss * std::numeric_limits<double>::quiet_NaN();
        double norm = context.optimize("net", loss);
        if (sleep_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
        return {{"loss", loss.item<double>()}, {"grad_norm", norm}};
    }
    std::vector<NamedModule> modules() override { return {{"net", net_.ptr()}, {"ema", ema_net_.ptr()}}; }
    std::vector<NamedOptimizer> optimizers() override { return {{"net", optimizer_.get(), base_lr_}}; }
    std::vector<Ema*> emas() override { return {ema_.get()}; }
    std::unique_ptr<Sampler> make_sampler() override { return std::make_unique<TinySampler>(ema_net_); }

  private:
    bool deterministic_;
    TinyNet net_;
    TinyNet ema_net_;
    std::unique_ptr<Ema> ema_;
    std::unique_ptr<torch::optim::Optimizer> optimizer_;
    double base_lr_ = 0;
    int64_t sleep_ms_ = 0;
    int64_t nan_from_ = -1;
    int64_t nan_count_ = 0;
};

OptionTable regress_options() {
    OptionTable table;
    table.add_int("test.sleep_ms", 0, 0, 100000, "sleep after each step")
        .add_int("test.nan_from_step", -1, -1, 1e9, "first step with a NaN loss (-1: none)")
        .add_int("test.nan_steps", 0, 0, 1e9, "consecutive NaN steps")
        .add_int("test.nan_rank", -1, -1, 1e6, "the only rank (RANK) with NaN losses (-1: all)");
    return table;
}

}  // namespace

void register_test_methods() {
    register_method({"test-regress", "test only: a tiny MLP regressing a linear map of toy points", regress_options,
                     [] { return std::make_unique<RegressMethod>(); }});
    register_method({"test-deterministic", "test only: test-regress without dropout and target noise",
                     regress_options, [] { return std::make_unique<RegressMethod>(true); }});
}

}  // namespace onestep::test
