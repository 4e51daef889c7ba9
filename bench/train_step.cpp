// Training throughput of `onestep train flow` (U-Net or DiT on Fashion-MNIST-sized images): the
// real flow method's train_step, the trainer's optimize sequence and EMA update on a fixed batch,
// as JSON lines; also this machine's GEMM peak and the fraction of it the step reaches. With
// --device cuda the step runs on the GPU (timed up to a device synchronize) and the GEMM peak is
// the GPU's float32 matrix product.
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <CLI/CLI.hpp>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/version.h>


#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>

#include "bench/bench_support.hpp"
#include "core/error.hpp"
#include "core/method.hpp"
#include "core/registry.hpp"
#include "core/runtime.hpp"
#include "models/ema.hpp"
#include "models/gelu.hpp"

namespace onestep::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Settings {
    std::string mode = "train";   // train | gemm | describe
    std::string model = "unet";
    std::string device = "cpu";    // cpu or cuda[:N]
    std::string config_path;
    std::vector<std::string> overrides;
    int64_t batch = 128;
    int64_t warmup = 5;
    int64_t steps = 30;
    int threads = 2;
    int interop_threads = 0;       // 0: libtorch's default
    int64_t gemm_size = 2048;
    int64_t gemm_iterations = 20;
    bool gemm = true;              // measure the GEMM peak after training
    bool phases = false;           // time forward, backward, clipping, optimizer, EMA apart
    // Variants that are not what the trainer does today; each one is reported in the output.
    bool channels_last = false;    // 4-D weights and the batch in channels-last memory format
    bool bf16_autocast = false;    // forward under CPU autocast to bfloat16
    bool grads_to_none = false;    // drop gradients instead of zeroing them before backward
    bool glibc_malloc_defaults = false;   // measure without onestep's keep_freed_memory()
    bool library_gelu = false;     // libtorch's GELU kernels instead of the fused ones (models/gelu)
    std::string profile_path;      // chrome-trace JSON of the timed steps' operators (legacy profiler)
};

// Seconds spent in each part of the step, summed over the timed steps.
struct PhaseTimes {
    double forward = 0;     // train_step up to optimize(): label dropout, x_t, forward, loss
    double zero_grad = 0;   // optimizer zero_grad and the loss finiteness check
    double backward = 0;
    double clip = 0;
    double optimizer = 0;
    double ema = 0;
};

// CPU autocast on or off (libtorch 2.4 replaced the per-backend calls with per-device ones).
void set_cpu_autocast(bool enabled) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    if (enabled) at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCPU, enabled);
#else
    if (enabled) at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(enabled);
#endif
}

// The trainer's StepContext::optimize (core/trainer.cpp) with timestamps between its parts.
class BenchStepContext : public StepContext {
  public:
    BenchStepContext(std::vector<NamedOptimizer> optimizers, double grad_clip, const Settings& settings,
                     torch::Device device)
        : optimizers_(std::move(optimizers)), grad_clip_(grad_clip), settings_(settings), device_(device) {}

    void begin(int64_t step, PhaseTimes* times) {
        step_ = step;
        times_ = times;
        step_started_ = Clock::now();
    }
    int64_t step() const override { return step_; }
    const torch::Device& device() const override { return device_; }

    double optimize(const std::string& name, const at::Tensor& loss) override {
        auto mark = Clock::now();
        add(times_ ? &times_->forward : nullptr, step_started_, mark);
        // Backward and the update run outside autocast, as torch.autocast recommends.
        bool autocast = settings_.bf16_autocast;
        if (autocast) set_cpu_autocast(false);

        torch::optim::Optimizer* optimizer = nullptr;
        for (auto& named : optimizers_)
            if (named.name == name) optimizer = named.optimizer;
        TORCH_CHECK(optimizer != nullptr, "method stepped an unknown optimizer '", name, "'");
        std::vector<at::Tensor> parameters;
        for (auto& group : optimizer->param_groups())
            for (auto& parameter : group.params()) parameters.push_back(parameter);
        if (settings_.grads_to_none) {
            for (auto& parameter : parameters) parameter.mutable_grad().reset();
        } else {
            optimizer->zero_grad();
        }
        double loss_value = loss.item<double>();
        mark = add(times_ ? &times_->zero_grad : nullptr, mark, Clock::now());
        TORCH_CHECK(std::isfinite(loss_value), "the benchmark's loss is not finite");
        loss.backward();
        mark = add(times_ ? &times_->backward : nullptr, mark, Clock::now());
        double max_norm = grad_clip_ > 0 ? grad_clip_ : std::numeric_limits<double>::infinity();
        double norm = torch::nn::utils::clip_grad_norm_(parameters, max_norm);
        mark = add(times_ ? &times_->clip : nullptr, mark, Clock::now());
        TORCH_CHECK(std::isfinite(norm), "the benchmark's gradient norm is not finite");
        optimizer->step();
        add(times_ ? &times_->optimizer : nullptr, mark, Clock::now());

        if (autocast) set_cpu_autocast(true);
        return norm;
    }

  private:
    static Clock::time_point add(double* total, Clock::time_point from, Clock::time_point to) {
        if (total != nullptr) *total += std::chrono::duration<double>(to - from).count();
        return to;
    }

    std::vector<NamedOptimizer> optimizers_;
    double grad_clip_;
    const Settings& settings_;
    torch::Device device_;
    int64_t step_ = 0;
    PhaseTimes* times_ = nullptr;
    Clock::time_point step_started_;
};

void to_channels_last(Method& method) {
    torch::NoGradGuard no_grad;
    for (auto& named : method.modules())
        for (auto& parameter : named.module->parameters())
            if (parameter.dim() == 4) parameter.set_data(parameter.data().contiguous(at::MemoryFormat::ChannelsLast));
}

// Waits for the work queued on DEVICE (nothing to wait for on the CPU).
nlohmann::json gemm_json(const GemmPeak& peak, int threads) {
    return {{"bench", "gemm_peak"},      {"impl", "cpp"},           {"size", peak.size},
            {"threads", threads},        {"iterations", peak.iterations}, {"gflops", peak.best_gflops},
            {"median_gflops", peak.median_gflops}};
}

int run(const Settings& settings) {
    // As the onestep binary does at start (see core/runtime.hpp).
    if (!settings.glibc_malloc_defaults) onestep::keep_freed_memory();
    if (settings.library_gelu) set_fused_gelu_enabled(false);
    torch::set_num_threads(settings.threads);
    if (settings.interop_threads > 0) at::set_num_interop_threads(settings.interop_threads);
    const torch::Device device = parse_device(settings.device);
    if (device.is_cuda() && settings.bf16_autocast)
        throw UserError("--bf16-autocast is the CPU autocast; it is not available with --device " + settings.device);
    if (settings.mode == "gemm") {
        nlohmann::json line = gemm_json(measure_gemm_peak(settings.gemm_size, settings.gemm_iterations, device), settings.threads);
        if (device.is_cuda()) line["device"] = device.str();
        std::cout << line.dump() << std::endl;
        return 0;
    }

    register_builtin_methods();
    std::string config_path;
    Config config = flow_config(settings.model, settings.config_path, settings.overrides, &config_path);
    torch::manual_seed(static_cast<uint64_t>(config.get_int("seed")));
    const NetworkShape& shape = fmnist_shape();
    DataShape data{shape.sample_shape, shape.num_classes, {}};
    for (int64_t i = 0; i < shape.num_classes; ++i) data.class_names.push_back("class" + std::to_string(i));
    std::unique_ptr<Method> method = find_method("flow").create();
    method->build(config, data, torch::Device(torch::kCPU));
    auto net = std::dynamic_pointer_cast<VelocityNet>(method->modules().at(0).module);
    TORCH_CHECK(net != nullptr, "the flow method's first module is not a velocity network");
    int64_t params = count_parameters(*net);
    // Counted on the CPU (the FLOP counter and its random batch are CPU-side).
    double forward_flops = forward_flops_per_image(*net, shape, 4);
    if (!device.is_cpu() && settings.mode != "describe") {
        // The timed method is built again, from the same seed, on the device.
        net.reset();
        method = find_method("flow").create();
        torch::manual_seed(static_cast<uint64_t>(config.get_int("seed")));
        method->build(config, data, device);
    }

    nlohmann::json line = {{"bench", "train_step"},
                           {"impl", "cpp"},
                           {"model", settings.model},
                           {"config", config_path},
                           {"params", params},
                           {"batch", settings.batch},
                           {"threads", settings.threads},
                           {"forward_gflop_per_image", forward_flops / 1e9},
                           {"train_gflop_per_image", 3 * forward_flops / 1e9}};
    if (!device.is_cpu()) line["device"] = device.str();
    if (settings.mode == "describe") {
        line["bench"] = "describe";
        line["reference_config"] = reference_keys(config);
        std::cout << line.dump() << std::endl;
        return 0;
    }

    if (settings.channels_last) to_channels_last(*method);
    // A fixed batch of images in [-1, 1] with random labels stands in for the data loader.
    std::vector<int64_t> sizes{settings.batch};
    sizes.insert(sizes.end(), shape.sample_shape.begin(), shape.sample_shape.end());
    Batch batch;
    batch.x = torch::rand(sizes) * 2 - 1;
    batch.y = torch::randint(0, shape.num_classes, {settings.batch}, torch::kLong);
    if (!device.is_cpu()) {
        batch.x = batch.x.to(device);
        batch.y = batch.y.to(device);
    }
    if (settings.channels_last) batch.x = batch.x.contiguous(at::MemoryFormat::ChannelsLast);

    if (settings.bf16_autocast) set_cpu_autocast(true);
    BenchStepContext context(method->optimizers(), config.get_float("optim.grad_clip"), settings, device);
    PhaseTimes times;
    std::vector<double> step_seconds;
    std::vector<double> losses;
    double timed_seconds = 0;
    std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
    for (int64_t step = 0; step < settings.warmup + settings.steps; ++step) {
        bool timed = step >= settings.warmup;
        if (timed && !settings.profile_path.empty() && !profile)
            profile = std::make_unique<torch::autograd::profiler::RecordProfile>(settings.profile_path);
        auto started = Clock::now();
        // The trainer sets each optimizer's rate from the schedule before every step.
        for (auto& named : method->optimizers())
            for (auto& group : named.optimizer->param_groups()) group.options().set_lr(named.base_lr);
        context.begin(step, timed && settings.phases ? &times : nullptr);
        std::map<std::string, double> metrics = method->train_step(batch, context);
        auto ema_started = Clock::now();
        for (Ema* ema : method->emas()) ema->update(step);
        if (settings.bf16_autocast) at::autocast::clear_cache();
        synchronize(device);
        if (timed) {
            if (settings.phases) times.ema += seconds_since(ema_started);
            double seconds = seconds_since(started);
            step_seconds.push_back(seconds);
            timed_seconds += seconds;
            losses.push_back(metrics["loss"]);
        }
    }
    profile.reset();   // writes the trace
    if (settings.bf16_autocast) set_cpu_autocast(false);

    double images = static_cast<double>(settings.batch * settings.steps);
    double median_seconds = median(step_seconds);
    double train_flops = 3 * forward_flops;
    line["warmup"] = settings.warmup;
    line["steps"] = settings.steps;
    line["variant"] = {{"channels_last", settings.channels_last},
                       {"bf16_autocast", settings.bf16_autocast},
                       {"grads_to_none", settings.grads_to_none},
                       {"keep_freed_memory", !settings.glibc_malloc_defaults},
                       {"library_gelu", settings.library_gelu},
                       {"interop_threads", at::get_num_interop_threads()},
                       {"omp_wait_policy", std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : ""}};
    line["images_per_s"] = images / timed_seconds;
    line["ms_per_step"] = 1e3 * timed_seconds / static_cast<double>(settings.steps);
    line["median_ms_per_step"] = 1e3 * median_seconds;
    line["median_images_per_s"] = static_cast<double>(settings.batch) / median_seconds;
    line["achieved_gflops"] = train_flops * images / timed_seconds / 1e9;
    line["loss_first"] = losses.front();
    line["loss_last"] = losses.back();
    double loss_sum = 0;
    for (double loss : losses) loss_sum += loss;
    line["loss_mean"] = loss_sum / static_cast<double>(losses.size());
    if (settings.phases) {
        double per_step = 1e3 / static_cast<double>(settings.steps);
        line["phase_ms"] = {{"forward", times.forward * per_step},     {"zero_grad", times.zero_grad * per_step},
                            {"backward", times.backward * per_step},   {"clip", times.clip * per_step},
                            {"optimizer", times.optimizer * per_step}, {"ema", times.ema * per_step}};
    }
    if (settings.gemm) {
        GemmPeak peak = measure_gemm_peak(settings.gemm_size, settings.gemm_iterations, device);
        line["gemm_gflops"] = peak.best_gflops;
        line["fraction_of_gemm_peak"] = line["achieved_gflops"].get<double>() / peak.best_gflops;
    }
    std::cout << line.dump() << std::endl;
    return 0;
}

}  // namespace
}  // namespace onestep::bench

int main(int argc, char** argv) {
    onestep::reexec_with_passive_openmp(argv);
    onestep::bench::Settings settings;
    CLI::App app{"Training-step throughput of `onestep train flow` on a fixed Fashion-MNIST-sized batch; "
                 "prints one JSON line."};
    app.add_option("--mode", settings.mode, "train, gemm (the GEMM peak alone) or describe (model and FLOPs only)")
        ->check(CLI::IsMember({"train", "gemm", "describe"}))
        ->capture_default_str();
    app.add_option("--model", settings.model, "velocity network: unet or dit")
        ->check(CLI::IsMember({"unet", "dit"}))
        ->capture_default_str();
    app.add_option("--config", settings.config_path,
                   "flow config (default: configs/fmnist/flow-MODEL.yaml if present, else flow.yaml with "
                   "model.arch=MODEL)");
    app.add_option("--set", settings.overrides, "config override key=value (repeatable)");
    app.add_option("--device", settings.device, "cpu or cuda[:N]")->capture_default_str();
    app.add_option("--batch", settings.batch, "images per step")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--warmup", settings.warmup, "untimed steps first")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_option("--steps", settings.steps, "timed steps")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--threads", settings.threads, "libtorch intra-op threads")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--interop-threads", settings.interop_threads, "libtorch inter-op threads (0: default)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_option("--gemm-size", settings.gemm_size, "side of the GEMM-peak matrices")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--gemm-iterations", settings.gemm_iterations, "timed GEMM-peak products")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_flag("!--no-gemm", settings.gemm, "skip the GEMM peak after training");
    app.add_option("--profile", settings.profile_path,
                   "write a chrome-trace JSON of the operators in the timed steps (times include the profiler's cost)");
    app.add_flag("--phases", settings.phases, "also time forward, backward, clipping, optimizer and EMA apart");
    app.add_flag("--channels-last", settings.channels_last, "variant: channels-last weights and batch");
    app.add_flag("--bf16-autocast", settings.bf16_autocast, "variant: forward under CPU autocast to bfloat16");
    app.add_flag("--grads-to-none", settings.grads_to_none, "variant: reset gradients instead of zeroing them");
    app.add_flag("--library-gelu", settings.library_gelu, "variant: libtorch's GELU kernels instead of the fused ones");
    app.add_flag("--glibc-malloc-defaults", settings.glibc_malloc_defaults,
                 "leave glibc malloc as it is (the onestep binary keeps freed memory)");
    CLI11_PARSE(app, argc, argv);
    try {
        return onestep::bench::run(settings);
    } catch (const onestep::UserError& error) {
        std::cerr << "error: " << error.what() << std::endl;
        return 2;
    } catch (const c10::Error& error) {
        std::cerr << "error: " << error.what_without_backtrace() << std::endl;
        return 1;
    }
}
