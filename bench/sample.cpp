// Sampling throughput of one network through the real sampler (the flow method's OdeSampler over
// its NetworkDenoiser): images/s of 1-step against many-step Euler, as JSON lines.
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "bench/bench_support.hpp"
#include "core/error.hpp"
#include "core/method.hpp"
#include "core/registry.hpp"
#include "core/runtime.hpp"

namespace onestep::bench {
namespace {

struct Settings {
    std::string model = "unet";
    std::string config_path;
    std::vector<std::string> overrides;
    int64_t batch = 64;
    int threads = 2;
    std::vector<int64_t> step_counts{1, 100};
    double seconds = 20;   // time budget per step count (at least one timed batch each)
};

int run(const Settings& settings) {
    torch::set_num_threads(settings.threads);
    register_builtin_methods();
    std::string config_path;
    Config config = flow_config(settings.model, settings.config_path, settings.overrides, &config_path);
    torch::manual_seed(static_cast<uint64_t>(config.get_int("seed")));
    const NetworkShape& shape = fmnist_shape();
    DataShape data{shape.sample_shape, shape.num_classes, {}};
    for (int64_t i = 0; i < shape.num_classes; ++i) data.class_names.push_back("class" + std::to_string(i));
    std::unique_ptr<Method> method = find_method("flow").create();
    method->build(config, data, torch::Device(torch::kCPU));
    {
        // Random weights: the zero-initialised output layers get small values too, so every
        // step's velocity is a real function of its input.
        torch::NoGradGuard no_grad;
        for (auto& named : method->modules())
            for (auto& parameter : named.module->parameters()) parameter.add_(torch::randn_like(parameter), 0.02);
    }
    std::unique_ptr<Sampler> sampler = method->make_sampler();   // puts the sampling net in eval mode

    std::vector<int64_t> sizes{settings.batch};
    sizes.insert(sizes.end(), shape.sample_shape.begin(), shape.sample_shape.end());
    at::Tensor noise = torch::randn(sizes);
    at::Tensor labels = default_labels(settings.batch, shape.num_classes);

    torch::NoGradGuard no_grad;
    std::map<int64_t, double> images_per_s;
    for (int64_t steps : settings.step_counts) {
        SampleOptions options;
        options.sampler = "euler";
        options.steps = steps;
        SampleOptions warmup = options;
        warmup.steps = 1;
        sampler->sample(noise, labels, warmup);   // untimed: one network evaluation warms the allocator
        std::vector<double> batch_seconds;
        auto started = std::chrono::steady_clock::now();
        do {
            auto batch_started = std::chrono::steady_clock::now();
            at::Tensor images = sampler->sample(noise, labels, options);
            batch_seconds.push_back(seconds_since(batch_started));
            TORCH_CHECK(torch::isfinite(images).all().item<bool>(), "the benchmark's samples are not finite");
        } while (seconds_since(started) < settings.seconds);
        double total = 0;
        for (double seconds : batch_seconds) total += seconds;
        double rate = static_cast<double>(settings.batch * batch_seconds.size()) / total;
        images_per_s[steps] = rate;
        nlohmann::json line = {{"bench", "sample"},
                               {"impl", "cpp"},
                               {"model", settings.model},
                               {"config", config_path},
                               {"params", count_parameters(*method->modules().at(0).module)},
                               {"sampler", sampler->describe(options)},
                               {"steps", steps},
                               {"nfe", sampler->nfe(options)},
                               {"batch", settings.batch},
                               {"threads", settings.threads},
                               {"batches", batch_seconds.size()},
                               {"images_per_s", rate},
                               {"ms_per_batch", 1e3 * total / static_cast<double>(batch_seconds.size())},
                               {"median_ms_per_batch", 1e3 * median(batch_seconds)},
                               {"ms_per_network_evaluation",
                                1e3 * total / static_cast<double>(batch_seconds.size() * sampler->nfe(options))}};
        std::cout << line.dump() << std::endl;
    }
    if (settings.step_counts.size() >= 2) {
        int64_t few = settings.step_counts.front();
        int64_t many = settings.step_counts.back();
        nlohmann::json line = {{"bench", "sample_ratio"},
                               {"impl", "cpp"},
                               {"model", settings.model},
                               {"few_steps", few},
                               {"many_steps", many},
                               {"speedup", images_per_s[few] / images_per_s[many]}};
        std::cout << line.dump() << std::endl;
    }
    return 0;
}

}  // namespace
}  // namespace onestep::bench

int main(int argc, char** argv) {
    onestep::reexec_with_passive_openmp(argv);
    onestep::bench::Settings settings;
    CLI::App app{"Sampling throughput of 1-step against many-step Euler with the same network; prints JSON lines."};
    app.add_option("--model", settings.model, "velocity network: unet or dit")
        ->check(CLI::IsMember({"unet", "dit"}))
        ->capture_default_str();
    app.add_option("--config", settings.config_path,
                   "flow config (default: configs/fmnist/flow-MODEL.yaml if present, else flow.yaml with "
                   "model.arch=MODEL)");
    app.add_option("--set", settings.overrides, "config override key=value (repeatable)");
    app.add_option("--batch", settings.batch, "images per batch")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--threads", settings.threads, "libtorch intra-op threads")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--steps", settings.step_counts, "Euler step counts to time, fewest first")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--seconds", settings.seconds, "time budget per step count (at least one batch is timed)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
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
