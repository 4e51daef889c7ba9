// The separator method: stem data through the chunk sampler, one network (RoFormer or UMX) plus
// its EMA copy, L1 + MR-STFT loss, and whole-song validation with the overlap-add path.
#include "audio/separator_method.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string_view>

#include "audio/separation_loss.hpp"
#include "audio/separators/bs_roformer.hpp"
#include "audio/separators/flow_roformer.hpp"
#include "audio/separators/open_unmix.hpp"
#include "audio/stem_dataset.hpp"
#include "core/error.hpp"
#include "core/registry.hpp"
#include "core/trainer.hpp"
#include "distill/shortcut/shortcut.hpp"
#include "metrics/audio_sdr.hpp"
#include "models/ema.hpp"
#include "samplers/ode.hpp"
#include "samplers/shortcut.hpp"

namespace fs = std::filesystem;

namespace onestep {
namespace {

constexpr const char* kStemsPrefix = "stems:";

OptionTable separator_options() {
    OptionTable table;
    table.add_choice("separator.model", "roformer", {"roformer", "umx"}, "network: band-split RoFormer or Open-Unmix")
        .add_bool("separator.band_magnitude", false,
                  "RoFormer: each band also takes every bin's magnitude besides re/im (off: the spec's model)")
        .add_float("separator.magnitude_power", 1.0, 0.05, 2.0,
                   "RoFormer with band_magnitude: the magnitudes enter as |X|^power (0.3: power-law compression)")
        .add_string("separator.preset", "bsr-ci",
                    "RoFormer size: bsr-ci, bsr-small-22k, bsr-small, bsr-large (stems and channels come from the data)")
        .add_int("separator.umx.n_fft", 4096, 16, 65536, "Open-Unmix STFT size")
        .add_int("separator.umx.hop", 1024, 1, 65536, "Open-Unmix STFT hop")
        .add_int("separator.umx.max_bin", 1487, 1, 32769, "Open-Unmix input bins kept")
        .add_int("separator.umx.hidden", 512, 2, 8192, "Open-Unmix hidden size")
        .add_int("separator.umx.layers", 3, 1, 16, "Open-Unmix LSTM layers")
        .add_int("stems.chunk", 65536, 256, 1 << 24, "training chunk in frames (also the inference chunk)")
        .add_float("stems.p_remix", 1.0, 0.0, 1.0, "probability that each stem comes from its own song and offset")
        .add_float("stems.gain_min", 0.25, 0.0, 10.0, "smallest random stem gain")
        .add_float("stems.gain_max", 1.25, 0.0, 10.0, "largest random stem gain")
        .add_float("stems.p_channel_swap", 0.5, 0.0, 1.0, "probability of swapping a stem's channels")
        .add_float("stems.p_polarity_flip", 0.5, 0.0, 1.0, "probability of flipping a stem's polarity")
        .add_bool("stems.mono_to_stereo", false, "duplicate mono files into stereo")
        .add_string("stems.valid_split", "test", "split validated on whole songs with each checkpoint (empty: none)")
        .add_int("stems.valid_songs", 4, 0, 100000, "songs of the validation split scored (0: all)")
        .add_float("stems.valid_overlap", 0.25, 0.0, 0.9, "overlap of the validation chunks")
        .add_float("loss.stft_weight", 1.0, 0.0, 1000.0, "lambda of the multi-resolution STFT term")
        .add_int("loss.stft_hop", 0, 0, 65536,
                 "hop of the loss STFTs (0: 147 at 44.1 kHz, scaled with the rate; larger is cheaper on CPU)");
    return table;
}

// The root folder named by data.name = stems:DIR.
std::string stems_root(const Config& config) {
    std::string name = config.get_string("data.name");
    if (name.rfind(kStemsPrefix, 0) != 0)
        throw UserError("the separator trains on stem folders: set data.name to stems:DIR (got '" + name + "')");
    return name.substr(std::string(kStemsPrefix).size());
}

// One network: its module (for checkpoints and the EMA) and its forward.
struct SeparatorNet {
    std::shared_ptr<torch::nn::Module> module;
    std::function<at::Tensor(const at::Tensor&)> forward;
};

// separator.preset sized for the data: its stems and channels, checked against its rate.
BandSplitRoformerConfig roformer_config(const Config& config, const DataShape& shape) {
    BandSplitRoformerConfig roformer = BandSplitRoformerConfig::preset(config.get_string("separator.preset"));
    if (shape.sample_rate != 0 && roformer.sample_rate != shape.sample_rate)
        throw UserError("separator.preset " + config.get_string("separator.preset") + " is made for " +
                        std::to_string(roformer.sample_rate) + " Hz but the stems are at " +
                        std::to_string(shape.sample_rate) + " Hz");
    roformer.stems = shape.num_classes;
    roformer.channels = shape.sample_shape.at(0);
    roformer.band_magnitude = config.get_bool("separator.band_magnitude");
    roformer.magnitude_power = config.get_float("separator.magnitude_power");
    return roformer;
}

SeparatorNet make_separator_net(const Config& config, const DataShape& shape) {
    const int64_t stems = shape.num_classes, channels = shape.sample_shape.at(0);
    if (config.get_string("separator.model") == "umx") {
        OpenUnmixConfig umx;
        umx.sample_rate = shape.sample_rate;
        umx.n_fft = config.get_int("separator.umx.n_fft");
        umx.hop = config.get_int("separator.umx.hop");
        umx.max_bin = config.get_int("separator.umx.max_bin");
        umx.hidden = config.get_int("separator.umx.hidden");
        umx.lstm_layers = config.get_int("separator.umx.layers");
        umx.channels = channels;
        umx.stems = stems;
        OpenUnmixSeparator net(umx);
        return {net.ptr(), [net](const at::Tensor& x) mutable { return net->forward(x); }};
    }
    BandSplitRoformer net(roformer_config(config, shape));
    return {net.ptr(), [net](const at::Tensor& x) mutable { return net->forward(x); }};
}

class StemBatchSource : public BatchSource {
  public:
    StemBatchSource(StemDataset dataset, const Config& config) : dataset_(std::move(dataset)) {
        StemSamplerOptions options;
        options.chunk_frames = config.get_int("stems.chunk");
        options.batch = config.get_int("batch_size");
        options.p_remix = config.get_float("stems.p_remix");
        options.gain_min = config.get_float("stems.gain_min");
        options.gain_max = config.get_float("stems.gain_max");
        options.p_channel_swap = config.get_float("stems.p_channel_swap");
        options.p_polarity_flip = config.get_float("stems.p_polarity_flip");
        options.seed = static_cast<uint64_t>(config.get_int("seed"));
        sampler_ = std::make_unique<StemChunkSampler>(dataset_, options);
    }
    DataShape shape() const override {
        DataShape shape;
        shape.sample_shape = {dataset_.channels(), sampler_->options().chunk_frames};
        shape.num_classes = static_cast<int64_t>(dataset_.stems().size());
        shape.class_names = dataset_.stems();
        shape.sample_rate = dataset_.sample_rate();
        return shape;
    }
    Batch batch(int64_t step, int rank, int world) override {
        StemBatch stems = sampler_->batch(step * world + rank);   // one draw per (step, rank)
        Batch batch;
        batch.x = stems.mixture;
        batch.targets = stems.stems;
        return batch;
    }

  private:
    StemDataset dataset_;
    std::unique_ptr<StemChunkSampler> sampler_;
};

class SeparatorMethod : public Method {
  public:
    std::unique_ptr<BatchSource> open_data(const Config& config) override {
        StemDatasetOptions options;
        options.mono_to_stereo = config.get_bool("stems.mono_to_stereo");
        std::string split = config.get_string("data.split");
        StemDataset train = StemDataset::open(stems_root(config), split == "all" ? "train" : split, options);
        return std::make_unique<StemBatchSource>(std::move(train), config);
    }

    void build(const Config& config, const DataShape& shape, const torch::Device& device) override {
        keep_setting(config, shape, device, "the separator");
        net_ = make_separator_net(config, shape);
        ema_net_ = make_separator_net(config, shape);
        set_up_training(net_.module, ema_net_.module);
    }

    std::map<std::string, double> train_step(const Batch& batch, StepContext& context) override {
        net_.module->train();
        SeparationLoss loss = separation_loss(net_.forward(batch.x), batch.targets, loss_settings_);
        context.optimize("net", loss.total);
        return {{"loss", loss.total.item<double>()},
                {"loss_waveform", loss.waveform.item<double>()},
                {"loss_stft", loss.spectral.item<double>()}};
    }

    std::vector<NamedModule> modules() override { return {{"net", net_.module}, {"ema", ema_net_.module}}; }
    std::vector<NamedOptimizer> optimizers() override { return {{"net", optimizer_.get(), base_lr_}}; }
    std::vector<Ema*> emas() override { return {ema_.get()}; }
    std::unique_ptr<Sampler> make_sampler() override { return nullptr; }

    // Whole songs of the validation split through the inference path; uSDR per stem and its mean,
    // beside the mixture/K baseline.
    std::map<std::string, double> evaluate() override {
        std::string split = config_.get_string("stems.valid_split");
        if (split.empty()) return {};
        std::string root = stems_root(config_);
        std::error_code error;
        if (!fs::is_directory(fs::path(root) / split, error)) return {};
        if (!valid_) {
            StemDatasetOptions options;
            options.mono_to_stereo = config_.get_bool("stems.mono_to_stereo");
            options.stems = shape_.class_names;
            valid_ = std::make_unique<StemDataset>(StemDataset::open(root, split, options));
        }
        OverlapAddSettings settings;
        settings.chunk = shape_.sample_shape[1];
        settings.overlap = config_.get_float("stems.valid_overlap");
        SeparatorFn separate = inference();
        const size_t stems = shape_.class_names.size();
        size_t songs = valid_->songs().size();
        if (config_.get_int("stems.valid_songs") > 0) songs = std::min<size_t>(songs, config_.get_int("stems.valid_songs"));
        std::vector<double> total(stems, 0), baseline(stems, 0);
        std::vector<int> counted(stems, 0);
        for (size_t i = 0; i < songs; ++i) {
            const int64_t frames = valid_->song(i).frames;
            at::Tensor mixture = valid_->read_mixture(i, 0, frames);
            at::Tensor estimate = separate_tensor(mixture, separate, static_cast<int64_t>(stems), settings);
            for (size_t k = 0; k < stems; ++k) {
                at::Tensor reference = valid_->read_stem(i, k, 0, frames);
                SdrAccumulator scored(mixture.size(0)), floor(mixture.size(0));
                scored.add(reference, estimate[k]);
                floor.add(reference, mixture / static_cast<double>(stems));
                if (scored.silent_reference()) continue;
                total[k] += scored.usdr();
                baseline[k] += floor.usdr();
                ++counted[k];
            }
        }
        std::map<std::string, double> out;
        double mean = 0, mean_baseline = 0;
        int scored_stems = 0;
        for (size_t k = 0; k < stems; ++k) {
            if (counted[k] == 0) continue;
            out["usdr/" + shape_.class_names[k]] = total[k] / counted[k];
            mean += total[k] / counted[k];
            mean_baseline += baseline[k] / counted[k];
            ++scored_stems;
        }
        if (scored_stems > 0) {
            out["usdr_mean"] = mean / scored_stems;
            out["usdr_mean_mix_k"] = mean_baseline / scored_stems;
        }
        return out;
    }

    // The EMA network in eval mode without autograd, as a chunk function. STEPS is for
    // generative separators; a discriminative one refuses any other value than 0.
    virtual SeparatorFn inference(int64_t steps = 0) {
        passes_ = 1;
        if (steps != 0)
            throw UserError("--steps " + std::to_string(steps) + ": this is a one-pass separator ('" + config_.get_string("separator.model") +
                            "'); sampling steps apply to flow separators");
        ema_net_.module->eval();
        auto forward = ema_net_.forward;
        torch::Device device = device_;
        return [forward, device](const at::Tensor& chunks) {
            torch::NoGradGuard no_grad;
            return forward(chunks.to(device)).to(torch::kCPU);
        };
    }
    const DataShape& shape() const { return shape_; }
    // Network evaluations per chunk of the last inference() made.
    int64_t passes() const { return passes_; }

  protected:
    // The data check and what every build keeps; WHAT names the method in the error.
    void keep_setting(const Config& config, const DataShape& shape, const torch::Device& device, const std::string& what) {
        if (shape.num_classes < 1 || shape.sample_shape.size() != 2)
            throw UserError(what + " needs stem data (data.name: stems:DIR)");
        config_ = config;
        shape_ = shape;
        device_ = device;
    }
    // Both networks on the device, the EMA, the optimizer and the separation loss's settings.
    void set_up_training(const std::shared_ptr<torch::nn::Module>& online, const std::shared_ptr<torch::nn::Module>& shadow) {
        online->to(device_);
        shadow->to(device_);
        ema_ = std::make_unique<Ema>(online, shadow, config_.get_float("ema.decay"), config_.get_bool("ema.warmup"));
        optimizer_ = make_optimizer(online->parameters(), config_);
        base_lr_ = config_.get_float("optim.lr");
        loss_settings_ = SeparationLossSettings::for_rate(shape_.sample_rate);
        loss_settings_.stft_weight = config_.get_float("loss.stft_weight");
        if (config_.get_int("loss.stft_hop") > 0) loss_settings_.hop = config_.get_int("loss.stft_hop");
    }

    int64_t passes_ = 1;
    Config config_;
    DataShape shape_;
    torch::Device device_{torch::kCPU};
    SeparatorNet net_, ema_net_;
    std::unique_ptr<Ema> ema_;
    std::unique_ptr<torch::optim::Optimizer> optimizer_;
    double base_lr_ = 0;
    SeparationLossSettings loss_settings_;
    std::unique_ptr<StemDataset> valid_;
};

constexpr int64_t kMaxFlowSteps = 1024;

OptionTable flow_separator_options() {
    OptionTable table = separator_options();
    table.add_int("flow.max_steps", 8, 2, kMaxFlowSteps,
                  "M: the finest shortcut step 1/M (a power of two); separation takes 1..M steps")
        .add_float("flow.bootstrap_fraction", 0.5, 0.0, 1.0,
                   "share of each batch trained by self-consistency (at least one item per level)")
        .add_float("flow.target_clip", 4.0, 0.1, 1e6, "clip the self-consistency midpoints and targets to +-this")
        .add_float("flow.prior_std", 0.0, 0.0, 100.0,
                   "sigma_p of the prior Pi_x(sigma_p eps) (0: the RMS of a stem in the first batch)")
        .add_float("flow.estimate_weight", 0.02, 0.0, 1000.0,
                   "weight of L1 + MR-STFT (over sigma_p) on the flow items' estimate s_t + (1 - t) v, beside the "
                   "shortcut MSE (over sigma_p^2); 0.02 makes the two about equal at the start")
        .add_int("flow.seed", 0, 0, 1LL << 62, "inference: the prior noise of a chunk is seeded by this and the chunk's samples")
        .add_int("sampler.steps", 1, 1, kMaxFlowSteps, "default separation steps (a power of two up to flow.max_steps)");
    return table;
}

// Separation as generation on the mixture's constraint set (audio spec §5.2, variant 1): the
// flow RoFormer trained with the shortcut objective from the prior Π_x(σ_p ε) to the stems, and
// separation in 1..M shortcut jumps, each exactly mixture-consistent.
class FlowSeparatorMethod : public SeparatorMethod {
  public:
    void build(const Config& config, const DataShape& shape, const torch::Device& device) override {
        keep_setting(config, shape, device, "the flow separator");
        settings_.max_steps = config.get_int("flow.max_steps");
        shortcut_level(settings_.max_steps, kMaxFlowSteps, "flow.max_steps");   // a power of two
        settings_.bootstrap_fraction = config.get_float("flow.bootstrap_fraction");
        settings_.p_uncond = 0;
        settings_.target_clip = config.get_float("flow.target_clip");
        settings_.option_prefix = "flow";
        shortcut_bootstrap_count(config.get_int("batch_size"), settings_);   // every level in every batch
        shortcut_level(config.get_int("sampler.steps"), settings_.max_steps, "sampler.steps");
        BandSplitRoformerConfig roformer = roformer_config(config, shape);
        net_ = std::make_shared<FlowRoformerImpl>(roformer, settings_.flow_level() + 1);
        ema_net_ = std::make_shared<FlowRoformerImpl>(roformer, settings_.flow_level() + 1);
        net_->set_prior_std(config.get_float("flow.prior_std"));
        estimate_weight_ = config.get_float("flow.estimate_weight");
        set_up_training(net_, ema_net_);
    }

    std::map<std::string, double> train_step(const Batch& batch, StepContext& context) override {
        const at::Tensor& stems = batch.targets;   // [B, K, C, T]
        const at::Tensor& mixture = batch.x;       // [B, C, T]
        if (net_->prior_std() == 0) {
            double measured = std::sqrt(stems.pow(2).mean().item<double>());
            if (!(measured > 0)) throw UserError("the first batch of stems is silent: set flow.prior_std");
            net_->set_prior_std(measured);
            ema_net_->set_prior_std(measured);
        }
        net_->train();
        ema_net_->eval();
        FlowSeparationLoss loss = flow_separation_loss(*net_, *ema_net_, stems, mixture, settings_, loss_settings_, estimate_weight_);
        context.optimize("net", loss.total);
        return {{"loss", loss.total.item<double>()},
                {"loss_shortcut", loss.shortcut.item<double>()},
                {"loss_waveform", loss.separation.waveform.item<double>()},
                {"loss_stft", loss.separation.spectral.item<double>()}};
    }

    std::vector<NamedModule> modules() override { return {{"net", net_}, {"ema", ema_net_}}; }
    std::vector<NamedOptimizer> optimizers() override { return {{"net", optimizer_.get(), base_lr_}}; }
    std::vector<Ema*> emas() override { return {ema_.get()}; }

    // Shortcut jumps of 1/k from the chunk's own prior sample, whose noise is seeded by flow.seed
    // and the chunk's samples: the same chunk separates the same way in any batch.
    SeparatorFn inference(int64_t steps = 0) override {
        if (steps == 0) steps = config_.get_int("sampler.steps");
        const int64_t level = shortcut_level(steps, settings_.max_steps, "--steps");
        passes_ = steps;
        ema_net_->eval();
        auto denoiser = std::make_shared<LevelDenoiser>(ema_net_, level, 0, false);
        torch::Device device = device_;
        const int64_t stems = shape_.num_classes;
        const double sigma = ema_net_->prior_std();
        if (!(sigma > 0))
            throw UserError("this flow separator has no prior scale yet: flow.prior_std is 0 and it has taken no training step");
        const auto seed = static_cast<uint64_t>(config_.get_int("flow.seed"));
        at::Tensor grid = time_grid("uniform", steps);
        return [denoiser, device, stems, sigma, seed, grid](const at::Tensor& chunks) {
            torch::NoGradGuard no_grad;
            at::Tensor mixture = chunks.to(torch::kCPU, torch::kFloat).contiguous();
            std::vector<at::Tensor> priors;
            for (int64_t n = 0; n < mixture.size(0); ++n) {
                at::Tensor chunk = mixture[n];
                std::string_view bytes(static_cast<const char*>(chunk.data_ptr()), chunk.numel() * sizeof(float));
                at::Generator generator = at::detail::createCPUGenerator(seed ^ std::hash<std::string_view>{}(bytes));
                priors.push_back(mixture_prior(chunk.unsqueeze(0), stems, sigma, generator));
            }
            at::Tensor on_device = mixture.to(device);
            at::Tensor separated = euler_sample(*denoiser, torch::cat(priors).to(device), at::Tensor(), grid, 1.0);
            return project_to_mixture(separated, on_device).to(torch::kCPU);
        };
    }

  private:
    ShortcutSettings settings_;
    double estimate_weight_ = 0;
    std::shared_ptr<FlowRoformerImpl> net_, ema_net_;
};

}  // namespace

void register_separator_method() {
    register_method({"separator",
                     "source separation: band-split RoFormer or Open-Unmix on stem folders, L1 + multi-resolution "
                     "STFT loss, whole-song uSDR validation",
                     separator_options, [] { return std::make_unique<SeparatorMethod>(); }});
    register_method({"flow-separator",
                     "generative separation in 1..M steps: a mixture-conditioned flow RoFormer on the constraint set "
                     "sum(stems) = mixture, trained with the shortcut objective",
                     flow_separator_options, [] { return std::make_unique<FlowSeparatorMethod>(); }});
}

LoadedSeparator load_separator(const std::string& path, const c10::Device& device, int64_t steps) {
    TrainedMethod trained = load_trained_method(resolve_checkpoint_path(path), device);
    auto* separator = dynamic_cast<SeparatorMethod*>(trained.method.get());
    if (!separator)
        throw UserError(path + " is a '" + trained.info->name + "' checkpoint, not a separator");
    LoadedSeparator loaded;
    loaded.path = path;
    loaded.separate = separator->inference(steps);
    loaded.stems = separator->shape().class_names;
    loaded.sample_rate = separator->shape().sample_rate;
    loaded.channels = separator->shape().sample_shape[0];
    loaded.chunk = separator->shape().sample_shape[1];
    loaded.passes = separator->passes();
    // The method object owns the networks; keep it alive with the function.
    std::shared_ptr<Method> owner(std::move(trained.method));
    SeparatorFn separate = loaded.separate;
    loaded.separate = [owner, separate](const at::Tensor& chunks) { return separate(chunks); };
    return loaded;
}

}  // namespace onestep
