// Training-step time of the band-split RoFormer (forward, the separation loss, backward, AdamW) on
// a fixed random batch, with onestep's fused GELU and with libtorch's, alternating in one process
// so both see the same machine state. Prints one JSON line per variant and round, then a summary
// line with the median ratio library / fused.
//
//   onestep_bench_separator_step --preset bsr-small-22k --band-magnitude --batch 4 --samples 32768 --stft-hop 256 --threads 1
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "audio/separation_loss.hpp"
#include "audio/separators/bs_roformer.hpp"
#include "core/error.hpp"
#include "core/runtime.hpp"
#include "models/gelu.hpp"

namespace {

struct Settings {
    std::string preset = "bsr-small-22k";
    bool band_magnitude = false;
    int64_t batch = 4;
    int64_t samples = 32768;
    int threads = 1;
    int64_t warmup = 2;
    int64_t steps = 5;
    int64_t rounds = 3;
    int64_t stft_hop = 0;   // the loss STFTs' hop (0: the spec's, scaled to the rate)
};

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    size_t middle = values.size() / 2;
    return values.size() % 2 ? values[middle] : 0.5 * (values[middle - 1] + values[middle]);
}

int run(const Settings& settings) {
    onestep::keep_freed_memory();
    torch::set_num_threads(settings.threads);
    torch::manual_seed(0);
    onestep::BandSplitRoformerConfig config = onestep::BandSplitRoformerConfig::preset(settings.preset);
    config.band_magnitude = settings.band_magnitude;
    onestep::BandSplitRoformer net(config);
    torch::optim::AdamW optimizer(net->parameters(), torch::optim::AdamWOptions(1e-4));
    onestep::SeparationLossSettings loss_settings = onestep::SeparationLossSettings::for_rate(config.sample_rate);
    if (settings.stft_hop > 0) loss_settings.hop = settings.stft_hop;
    at::Tensor target = torch::randn({settings.batch, config.stems, config.channels, settings.samples}) * 0.1;
    at::Tensor mixture = target.sum(1);

    auto step = [&]() {
        optimizer.zero_grad();
        onestep::SeparationLoss loss = onestep::separation_loss(net->forward(mixture), target, loss_settings);
        loss.total.backward();
        optimizer.step();
        return loss.total.item<double>();
    };
    // Seconds per step over STEPS steps after WARMUP, with the fused GELU on or off.
    auto time_variant = [&](bool fused) {
        onestep::set_fused_gelu_enabled(fused);
        for (int64_t i = 0; i < settings.warmup; ++i) step();
        auto started = std::chrono::steady_clock::now();
        for (int64_t i = 0; i < settings.steps; ++i) step();
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() / settings.steps;
    };

    nlohmann::json common = {{"bench", "separator_step"},  {"preset", settings.preset},
                             {"band_magnitude", settings.band_magnitude}, {"batch", settings.batch},
                             {"samples", settings.samples}, {"threads", settings.threads},
                             {"params", config.parameter_count()}, {"loss_stft_hop", loss_settings.hop}};
    // The GELU alone, forward and backward, on one feed-forward layer's hidden activations of this
    // batch: [batch x frames x bands, ffn_mult x dim].
    const int64_t frames = settings.samples / config.hop + 1;
    const int64_t tokens = settings.batch * frames * static_cast<int64_t>(config.band_widths.size());
    at::Tensor hidden = torch::randn({tokens, config.ffn_mult * config.dim});
    at::Tensor incoming = torch::randn_like(hidden);
    auto time_gelu = [&](bool fused) {
        onestep::set_fused_gelu_enabled(fused);
        auto once = [&]() {
            at::Tensor leaf = hidden.detach().requires_grad_(true);
            onestep::gelu_erf(leaf).backward(incoming);
        };
        once();
        auto started = std::chrono::steady_clock::now();
        for (int i = 0; i < 10; ++i) once();
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() / 10;
    };
    for (bool fused : {true, false, true, false}) {
        nlohmann::json line = common;
        line["bench"] = "gelu_erf_forward_backward";
        line["gelu"] = fused ? "fused" : "library";
        line["elements"] = hidden.numel();
        line["ms"] = 1e3 * time_gelu(fused);
        // Per step the model runs it in each layer's time and band transformer.
        line["calls_per_step"] = 2 * config.layers;
        std::cout << line.dump() << std::endl;
    }

    std::vector<double> ratios;
    for (int64_t round = 0; round < settings.rounds; ++round) {
        // Alternate which variant runs first, so neither always inherits the other's warm caches.
        bool fused_first = round % 2 == 0;
        double first = time_variant(fused_first), second = time_variant(!fused_first);
        double fused = fused_first ? first : second, library = fused_first ? second : first;
        ratios.push_back(library / fused);
        for (bool is_fused : {true, false}) {
            nlohmann::json line = common;
            line["round"] = round;
            line["gelu"] = is_fused ? "fused" : "library";
            line["ms_per_step"] = 1e3 * (is_fused ? fused : library);
            std::cout << line.dump() << std::endl;
        }
    }
    nlohmann::json summary = common;
    summary["bench"] = "separator_step_summary";
    summary["library_over_fused"] = ratios;
    summary["median_library_over_fused"] = median(ratios);
    std::cout << summary.dump() << std::endl;
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Settings settings;
    CLI::App app{"RoFormer training-step time, fused GELU against libtorch's, alternating rounds"};
    app.add_option("--preset", settings.preset, "RoFormer preset")->capture_default_str();
    app.add_flag("--band-magnitude", settings.band_magnitude, "bands also read their bins' magnitudes");
    app.add_option("--batch", settings.batch, "chunks per step")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--samples", settings.samples, "samples per chunk")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--threads", settings.threads, "intra-op threads")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--warmup", settings.warmup, "untimed steps per variant and round")->capture_default_str();
    app.add_option("--steps", settings.steps, "timed steps per variant and round")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--stft-hop", settings.stft_hop, "hop of the loss STFTs, as loss.stft_hop (0: the spec's)")
        ->capture_default_str();
    app.add_option("--rounds", settings.rounds, "rounds (each times both variants)")->capture_default_str()->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);
    try {
        return run(settings);
    } catch (const onestep::UserError& error) {
        std::cerr << "error: " << error.what() << "\n";
        return 2;
    }
}
