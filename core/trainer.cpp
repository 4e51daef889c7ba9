// The training loop shared by every method, checkpoint assembly and restore, and export.
#include "core/trainer.hpp"

#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "core/distributed.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/runtime.hpp"
#include "core/tensor_file.hpp"
#include "data/dataset.hpp"
#include "data/image_io.hpp"
#include "data/loader.hpp"
#include "data/random_streams.hpp"
#include "models/ema.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace onestep {

OptionTable trainer_options() {
    OptionTable table;
    table.add_int("seed", 0, 0, 9.0e18, "seed for initialisation, data order and noise")
        .add_int("steps", 1000, 1, 1e12, "optimizer steps of the whole run")
        .add_int("batch_size", 64, 1, 1e7, "examples per step")
        .add_choice("optim.name", "adam", {"adam", "adamw", "sgd"}, "optimizer")
        .add_float("optim.lr", 2e-4, 0.0, 10.0,
                   "peak learning rate; with optim.base_batch, the base rate tuned at that global batch")
        .add_int("optim.base_batch", 0, 0, 1e9,
                 "global batch at which optim.lr was tuned; the rate follows optim.scale_lr (0: no scaling)")
        .add_choice("optim.scale_lr", "auto", {"auto", "linear", "sqrt", "none"},
                    "rate = optim.lr x (global batch / optim.base_batch), or its square root (Goyal et al.); "
                    "auto: linear for sgd, none for adam and adamw")
        .add_float("optim.momentum", 0.9, 0.0, 0.999999, "SGD momentum")
        .add_float("optim.beta1", 0.9, 0.0, 0.999999, "Adam beta1")
        .add_float("optim.beta2", 0.999, 0.0, 0.999999999, "Adam beta2")
        .add_float("optim.eps", 1e-8, 0.0, 1.0, "Adam epsilon")
        .add_float("optim.weight_decay", 0.0, 0.0, 10.0, "weight decay (decoupled for adamw)")
        .add_int("optim.warmup_steps", 0, 0, 1e12,
                 "steps of linear warmup: from optim.lr to the scaled rate when scaling raises it (gradual "
                 "warmup), otherwise from 0 to the peak rate")
        .add_choice("optim.schedule", "constant", {"constant", "cosine", "linear"},
                    "learning-rate decay after warmup")
        .add_float("optim.min_lr_ratio", 0.0, 0.0, 1.0, "final rate / peak rate for cosine and linear decay")
        .add_float("optim.grad_clip", 1.0, 0.0, 1e12, "clip the global gradient norm to this (0: no clipping)")
        .add_float("ema.decay", 0.999, 0.0, 1.0, "decay of the evaluation EMA copy")
        .add_bool("ema.warmup", true, "ramp the EMA decay as min(decay, (1+n)/(10+n)) over the first updates")
        .add_int("nan.max_in_a_row", 20, 1, 1e9,
                 "stop with an error after this many consecutive non-finite steps (each is skipped)")
        .add_int("log_every", 10, 1, 1e12, "steps between log.jsonl records")
        .add_int("ckpt_every", 500, 1, 1e12, "steps between checkpoints (one is always written at the end)")
        .add_int("keep_checkpoints", 3, 0, 1e9, "step-N.ckpt files to keep (0: keep all)")
        .add_int("sample_every", 0, 0, 1e12, "steps between preview grids in samples/ (0: with each checkpoint)")
        .add_int("sample.n", 64, 1, 4096, "samples in each preview grid")
        .add_string("data.name", "fashion-mnist",
                    "dataset: fashion-mnist, mnist, idx:DIR, folder:DIR, toy:8gaussians|8gaussians-coarse|moons|"
                    "checkerboard|spirals")
        .add_choice("data.split", "train", {"train", "test", "all"}, "which split to train on")
        .add_string("data.cache_dir", "", "dataset cache (empty: $ONESTEP_DATA or data/cache)")
        .add_int("data.image_size", 32, 8, 1024, "image side; 28x28 sets are padded to it")
        .add_int("data.channels", 1, 1, 3, "channels of folder images (1 grey, 3 colour)")
        .add_bool("data.conditional", true, "condition on the class labels (false: an unconditional model)")
        .add_int("data.toy_size", 100000, 16, 1e9, "points drawn for a toy distribution")
        .add_int("data.prefetch", 2, 0, 64, "batches prepared ahead on a background thread")
        .add_float("dist.timeout_s", 1800, 0.1, 1e6,
                   "several processes: seconds to wait for the others at start and in each collective")
        .add_float("dist.bucket_mb", 25, 0.001, 1e5,
                   "several processes: gradients are averaged in flat buckets of about this many MB");
    return table;
}

OptionTable training_options(const MethodInfo& method) {
    OptionTable table = trainer_options();
    table.merge(method.options());
    return table;
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
    for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

DataSpec data_spec(const Config& config) {
    DataSpec spec;
    spec.name = config.get_string("data.name");
    spec.split = config.get_string("data.split");
    spec.cache_dir = config.get_string("data.cache_dir");
    spec.image_size = config.get_int("data.image_size");
    spec.channels = config.get_int("data.channels");
    spec.toy_size = config.get_int("data.toy_size");
    spec.seed = static_cast<uint64_t>(config.get_int("seed"));
    return spec;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<at::Tensor>& parameters,
                                                        const Config& config) {
    double lr = config.get_float("optim.lr");
    if (config.get_string("optim.name") == "sgd") {
        torch::optim::SGDOptions options(lr);
        options.momentum(config.get_float("optim.momentum")).weight_decay(config.get_float("optim.weight_decay"));
        return std::make_unique<torch::optim::SGD>(parameters, options);
    }
    auto betas = std::make_tuple(config.get_float("optim.beta1"), config.get_float("optim.beta2"));
    if (config.get_string("optim.name") == "adamw") {
        torch::optim::AdamWOptions options(lr);
        options.betas(betas).eps(config.get_float("optim.eps")).weight_decay(config.get_float("optim.weight_decay"));
        return std::make_unique<torch::optim::AdamW>(parameters, options);
    }
    torch::optim::AdamOptions options(lr);
    options.betas(betas).eps(config.get_float("optim.eps")).weight_decay(config.get_float("optim.weight_decay"));
    return std::make_unique<torch::optim::Adam>(parameters, options);
}

namespace {

// ----- learning-rate schedule ------------------------------------------------------------

// The scaling rule of Goyal et al.: a k-fold global batch takes a k-fold (linear) or sqrt(k)-fold
// rate, relative to the batch at which optim.lr was tuned.
struct RateScaling {
    double factor = 1.0;
    std::string rule = "none";
    int64_t global_batch = 0;
    int64_t base_batch = 0;
};

RateScaling rate_scaling(const Config& config, int64_t global_batch) {
    RateScaling scaling;
    scaling.global_batch = global_batch;
    scaling.base_batch = config.get_int("optim.base_batch");
    scaling.rule = config.get_string("optim.scale_lr");
    if (scaling.rule == "auto") scaling.rule = config.get_string("optim.name") == "sgd" ? "linear" : "none";
    if (scaling.base_batch <= 0) return scaling;
    double ratio = static_cast<double>(global_batch) / static_cast<double>(scaling.base_batch);
    if (scaling.rule == "linear") scaling.factor = ratio;
    if (scaling.rule == "sqrt") scaling.factor = std::sqrt(ratio);
    return scaling;
}

// Multiplies every optimizer's base rate at STEP: warmup, decay and the batch scaling SCALE.
double lr_factor(const Config& config, int64_t step, double scale) {
    int64_t warmup = config.get_int("optim.warmup_steps");
    int64_t total = config.get_int("steps");
    if (warmup > 0 && step < warmup) {
        double progress = static_cast<double>(step + 1) / static_cast<double>(warmup);
        // Gradual warmup: from the small-batch rate to the scaled one, so early steps stay stable.
        if (scale > 1.0) return 1.0 + (scale - 1.0) * progress;
        return scale * progress;
    }
    std::string schedule = config.get_string("optim.schedule");
    if (schedule == "constant" || total <= warmup) return scale;
    double min_ratio = config.get_float("optim.min_lr_ratio");
    double progress = static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup));
    progress = std::clamp(progress, 0.0, 1.0);
    if (schedule == "cosine") return scale * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + std::cos(M_PI * progress)));
    return scale * (1.0 - (1.0 - min_ratio) * progress);   // linear
}

// ----- module and optimizer state <-> checkpoint tensors ----------------------------------

void collect_module_tensors(const NamedModule& named, std::map<std::string, at::Tensor>& out) {
    for (const auto& item : named.module->named_parameters(true))
        out["net/" + named.name + "/" + item.key()] = item.value().detach().cpu();
    for (const auto& item : named.module->named_buffers(true))
        out["net/" + named.name + "/" + item.key()] = item.value().detach().cpu();
}

void restore_module_tensors(const NamedModule& named, const std::map<std::string, at::Tensor>& tensors,
                            const std::string& source) {
    torch::NoGradGuard no_grad;
    auto restore = [&](const std::string& key, at::Tensor& target) {
        std::string name = "net/" + named.name + "/" + key;
        auto found = tensors.find(name);
        if (found == tensors.end())
            throw UserError(source + ": has no tensor '" + name + "'; was it written by another version of the method?");
        if (found->second.sizes() != target.sizes()) {
            std::ostringstream message;
            message << source << ": tensor '" << name << "' has shape " << found->second.sizes() << ", the model expects "
                    << target.sizes();
            throw UserError(message.str());
        }
        target.copy_(found->second);
    };
    for (auto& item : named.module->named_parameters(true)) restore(item.key(), item.value());
    for (auto& item : named.module->named_buffers(true)) restore(item.key(), item.value());
}

std::string optimizer_state_bytes(torch::optim::Optimizer& optimizer) {
    torch::serialize::OutputArchive archive;
    optimizer.save(archive);
    std::ostringstream stream;
    archive.save_to(stream);
    return stream.str();
}

void restore_optimizer_state(torch::optim::Optimizer& optimizer, const std::string& bytes, const std::string& source) {
    std::istringstream stream(bytes);
    torch::serialize::InputArchive archive;
    try {
        archive.load_from(stream);
        optimizer.load(archive);
    } catch (const c10::Error& error) {
        throw UserError(source + ": optimizer state does not load: " + error.what_without_backtrace());
    }
}

json data_shape_to_json(const DataShape& shape) {
    return json{{"sample_shape", shape.sample_shape},
                {"num_classes", shape.num_classes},
                {"class_names", shape.class_names},
                {"sample_rate", shape.sample_rate}};
}

DataShape data_shape_from_json(const json& value, const std::string& source) {
    try {
        DataShape shape;
        shape.sample_shape = value.at("sample_shape").get<std::vector<int64_t>>();
        shape.num_classes = value.at("num_classes").get<int64_t>();
        shape.class_names = value.at("class_names").get<std::vector<std::string>>();
        shape.sample_rate = value.value("sample_rate", int64_t{0});
        return shape;
    } catch (const json::exception& error) {
        throw UserError(source + ": data shape record is malformed: " + error.what());
    }
}

DataShape data_shape_of(const Dataset& dataset, int64_t image_size) {
    DataShape shape;
    if (dataset.is_image)
        shape.sample_shape = {dataset.x.size(1), image_size, image_size};
    else
        shape.sample_shape = {dataset.x.size(1)};
    shape.num_classes = dataset.num_classes;
    shape.class_names = dataset.class_names;
    return shape;
}

bool all_finite(Method& method) {
    torch::NoGradGuard no_grad;
    for (const auto& named : method.modules())
        for (const auto& parameter : named.module->parameters())
            if (!torch::isfinite(parameter).all().item<bool>()) return false;
    return true;
}

std::string format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    long total = static_cast<long>(seconds + 0.5);
    char buffer[32];
    if (total >= 3600)
        std::snprintf(buffer, sizeof buffer, "%ldh%02ldm", total / 3600, (total / 60) % 60);
    else if (total >= 60)
        std::snprintf(buffer, sizeof buffer, "%ldm%02lds", total / 60, total % 60);
    else
        std::snprintf(buffer, sizeof buffer, "%lds", total);
    return buffer;
}

// ----- the step context handed to methods ------------------------------------------------

class TrainerStepContext : public StepContext {
  public:
    // GROUP: null or a world of one for a single process; otherwise gradients are averaged over
    // its ranks in buckets of about BUCKET_BYTES before clipping and stepping.
    TrainerStepContext(std::vector<NamedOptimizer> optimizers, double grad_clip, c10::Device device,
                       ProcessGroup* group = nullptr, int64_t bucket_bytes = 0)
        : optimizers_(std::move(optimizers)), grad_clip_(grad_clip), device_(device),
          group_(group != nullptr && group->world_size() > 1 ? group : nullptr), bucket_bytes_(bucket_bytes) {}

    // Seconds spent averaging gradients since the last call.
    double take_sync_seconds() { return std::exchange(sync_seconds_, 0.0); }

    void begin(int64_t step) {
        step_ = step;
        skipped_ = false;
    }
    bool skipped() const { return skipped_; }
    int64_t step() const override { return step_; }
    const torch::Device& device() const override { return device_; }

    double optimize(const std::string& name, const at::Tensor& loss) override {
        torch::optim::Optimizer* optimizer = nullptr;
        for (auto& named : optimizers_)
            if (named.name == name) optimizer = named.optimizer;
        TORCH_CHECK(optimizer != nullptr, "method stepped an unknown optimizer '", name, "'");
        std::vector<at::Tensor> parameters;
        for (auto& group : optimizer->param_groups())
            for (auto& parameter : group.params()) parameters.push_back(parameter);
        optimizer->zero_grad();
        bool finite_loss = std::isfinite(loss.item<double>());
        if (group_ == nullptr) {
            if (!finite_loss) {
                skipped_ = true;
                return std::nan("");
            }
            loss.backward();
        } else {
            // Every rank takes part in the all-reduce even with a bad loss, and its flag makes
            // all of them skip together.
            if (finite_loss) loss.backward();
            if (!average_gradients(parameters, !finite_loss)) {
                optimizer->zero_grad();
                skipped_ = true;
                return std::nan("");
            }
        }
        // The norm of the averaged gradients is the same on every rank, so are clipping and the
        // non-finite check.
        double max_norm = grad_clip_ > 0 ? grad_clip_ : std::numeric_limits<double>::infinity();
        double norm = torch::nn::utils::clip_grad_norm_(parameters, max_norm);
        if (!std::isfinite(norm)) {
            optimizer->zero_grad();
            skipped_ = true;
            return std::nan("");
        }
        optimizer->step();
        return norm;
    }

  private:
    // Sums PARAMETERS' gradients over the ranks and divides by the world size, through flat
    // buckets (few large collectives instead of one per tensor). A flag rides in the last bucket:
    // returns false, touching no gradient, when any rank had a non-finite loss.
    bool average_gradients(const std::vector<at::Tensor>& parameters, bool local_bad) {
        auto started = std::chrono::steady_clock::now();
        torch::NoGradGuard no_grad;
        std::vector<std::vector<size_t>> members;
        std::vector<int64_t> bucket_bytes;
        for (size_t index = 0; index < parameters.size(); ++index) {
            const at::Tensor& parameter = parameters[index];
            int64_t bytes = parameter.numel() * static_cast<int64_t>(parameter.element_size());
            bool fits = !members.empty() && bucket_bytes.back() + bytes <= bucket_bytes_ &&
                        parameters[members.back().front()].scalar_type() == parameter.scalar_type() &&
                        parameters[members.back().front()].device() == parameter.device();
            if (!fits) {
                members.emplace_back();
                bucket_bytes.push_back(0);
            }
            members.back().push_back(index);
            bucket_bytes.back() += bytes;
        }
        std::vector<at::Tensor> buckets;
        for (size_t bucket = 0; bucket < members.size(); ++bucket) {
            std::vector<at::Tensor> pieces;
            for (size_t index : members[bucket]) {
                const at::Tensor& parameter = parameters[index];
                const at::Tensor& grad = parameter.grad();
                pieces.push_back(grad.defined() ? grad.reshape({-1}) : torch::zeros({parameter.numel()}, parameter.options()));
            }
            if (bucket + 1 == members.size())
                pieces.push_back(torch::full({1}, local_bad ? 1.0 : 0.0, parameters[members[bucket].front()].options()));
            buckets.push_back(torch::cat(pieces));
        }
        if (buckets.empty()) buckets.push_back(torch::full({1}, local_bad ? 1.0 : 0.0, torch::kFloat));
        group_->all_reduce_sum(buckets);
        bool any_bad = buckets.back()[-1].item<double>() > 0;
        if (!any_bad) {
            double world = static_cast<double>(group_->world_size());
            for (size_t bucket = 0; bucket < members.size(); ++bucket) {
                buckets[bucket].div_(world);
                int64_t offset = 0;
                for (size_t index : members[bucket]) {
                    const at::Tensor& parameter = parameters[index];
                    int64_t count = parameter.numel();
                    at::Tensor grad = parameter.grad();
                    if (grad.defined()) grad.copy_(buckets[bucket].slice(0, offset, offset + count).view_as(grad));
                    offset += count;
                }
            }
        }
        sync_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        return !any_bad;
    }

    std::vector<NamedOptimizer> optimizers_;
    double grad_clip_;
    c10::Device device_;
    ProcessGroup* group_ = nullptr;
    int64_t bucket_bytes_ = 0;
    double sync_seconds_ = 0;
    int64_t step_ = 0;
    bool skipped_ = false;
};

// ----- run directory ---------------------------------------------------------------------

struct RunPaths {
    fs::path root;
    fs::path checkpoints() const { return root / "checkpoints"; }
    fs::path samples() const { return root / "samples"; }
    fs::path log() const { return root / "log.jsonl"; }
    fs::path config() const { return root / "config.yaml"; }
};

void make_run_dirs(const RunPaths& paths) {
    std::error_code error;
    for (const auto& dir : {paths.root, paths.checkpoints(), paths.samples(), paths.root / "eval"}) {
        fs::create_directories(dir, error);
        if (error) throw UserError("cannot create run directory " + dir.string() + ": " + error.message());
        if (::access(dir.c_str(), W_OK) != 0) throw UserError("run directory " + dir.string() + " is not writable");
    }
}

// ----- the loop ----------------------------------------------------------------------------

class Trainer {
  public:
    explicit Trainer(const TrainRequest& request)
        : request_(request), config_(request.config), paths_{fs::path(request.run_dir)} {}

    void run();

  private:
    void restore(const Checkpoint& checkpoint, const std::string& source);
    void trim_log(int64_t last_step);
    void save_checkpoint_at(int64_t completed);
    void write_preview(int64_t completed);
    void log_record(int64_t completed, const std::map<std::string, double>& metrics);
    void print_progress(int64_t completed, int64_t total, const std::map<std::string, double>& metrics, bool final);

    const TrainRequest& request_;
    Config config_;
    RunPaths paths_;
    std::shared_ptr<Dataset> dataset_;
    DataShape data_shape_;
    std::unique_ptr<Method> method_;
    std::unique_ptr<Loader> loader_;
    std::unique_ptr<BatchSource> own_data_;
    int64_t nan_in_a_row_ = 0;
    int64_t nan_total_ = 0;
    double elapsed_before_ = 0;   // seconds trained before this process (resume)
    std::chrono::steady_clock::time_point started_;
    int64_t start_step_ = 0;
    std::chrono::steady_clock::time_point last_progress_;
    bool stderr_is_tty_ = ::isatty(2) != 0;
    std::unique_ptr<ProcessGroup> group_;   // world of one: every collective is a no-op
    int64_t global_batch_ = 0;
    bool is_main() const { return group_->is_main(); }
    bool distributed() const { return group_->world_size() > 1; }
    void broadcast_weights();
    bool any_rank(bool flag);
    std::map<std::string, double> averaged_over_ranks(std::map<std::string, double> sums, int64_t& counted);
};

void Trainer::broadcast_weights() {
    // Same seed, same initialisation on every rank; rank 0's copy is sent anyway, so nothing
    // nondeterministic (a threaded init, a restored file read differently) can split the ranks.
    std::vector<at::Tensor> tensors;
    for (const auto& named : method_->modules()) {
        for (const auto& parameter : named.module->parameters(true)) tensors.push_back(parameter);
        for (const auto& buffer : named.module->buffers(true)) tensors.push_back(buffer);
    }
    group_->broadcast(tensors, 0);
}

bool Trainer::any_rank(bool flag) {
    if (!distributed()) return flag;
    at::Tensor count = torch::full({1}, flag ? 1.0f : 0.0f, torch::TensorOptions().device(request_.device));
    group_->all_reduce_sum({count});
    return count.item<float>() > 0;
}

// The logged numbers are means over every rank's steps, as one process with the global batch
// would report them.
std::map<std::string, double> Trainer::averaged_over_ranks(std::map<std::string, double> sums, int64_t& counted) {
    if (!distributed()) return sums;
    std::vector<double> values{static_cast<double>(counted)};
    for (const auto& [key, value] : sums) values.push_back(value);
    at::Tensor packed = torch::tensor(values, torch::kDouble).to(request_.device);
    group_->all_reduce_sum({packed});
    packed = packed.cpu();
    double world = static_cast<double>(group_->world_size());
    counted = static_cast<int64_t>(std::llround(packed[0].item<double>() / world));
    size_t index = 1;
    for (auto& [key, value] : sums) value = packed[static_cast<int64_t>(index++)].item<double>() / world;
    return sums;
}

void Trainer::run() {
    // Initialisation is drawn from the global generator, seeded once; its state is checkpointed.
    // (Data loading draws from its own generators, so it may sit between creation and build.)
    torch::manual_seed(static_cast<uint64_t>(config_.get_int("seed")));
    method_ = request_.method->create();
    own_data_ = method_->open_data(config_);
    // Again: a method's data may include a teacher whose loading reseeds with the teacher's seed.
    torch::manual_seed(static_cast<uint64_t>(config_.get_int("seed")));
    int64_t image_size = config_.get_int("data.image_size");
    if (own_data_) {
        data_shape_ = own_data_->shape();
    } else {
        DataSpec spec = data_spec(config_);
        dataset_ = std::make_shared<Dataset>(load_dataset(spec));
        if (dataset_->size() < config_.get_int("batch_size"))
            throw UserError("dataset '" + spec.name + "' has " + std::to_string(dataset_->size()) +
                            " examples, fewer than batch_size " + std::to_string(config_.get_int("batch_size")));
        data_shape_ = data_shape_of(*dataset_, spec.image_size);
        if (!config_.get_bool("data.conditional")) {
            data_shape_.num_classes = 0;
            data_shape_.class_names.clear();
        }
    }
    method_->build(config_, data_shape_, request_.device);
    const DistributedEnv& env = request_.distributed;
    // Each rank reads its own slice of every global batch (Loader), so the global batch is
    // batch_size x world and its rows are those one process with that batch would read.
    if (!own_data_)
        loader_ = std::make_unique<Loader>(dataset_, config_.get_int("batch_size"),
                                           static_cast<uint64_t>(config_.get_int("seed")), image_size,
                                           static_cast<int>(config_.get_int("data.prefetch")), env.rank, env.world_size);
    global_batch_ = config_.get_int("batch_size") * env.world_size;
    // Only now that the data and the method are known to work: a bad config opens no sockets
    // and leaves no folders.
    group_ = ProcessGroup::create(env, request_.device,
                                  std::chrono::milliseconds(std::llround(config_.get_float("dist.timeout_s") * 1000.0)));
    if (is_main()) make_run_dirs(paths_);

    if (!request_.resume_from.empty()) {
        Checkpoint checkpoint = load_checkpoint(request_.resume_from);
        restore(checkpoint, request_.resume_from);
    }
    if (distributed()) broadcast_weights();
    if (is_main()) write_file_atomic(paths_.config().string(), config_.to_yaml());
    // Directories exist before any rank goes on (they may share a file system).
    group_->barrier();
    const RateScaling scaling = rate_scaling(config_, global_batch_);

    const int64_t total = config_.get_int("steps");
    int64_t stop_at = request_.stop_at_step > 0 ? std::min(request_.stop_at_step, total) : total;
    const int64_t log_every = config_.get_int("log_every");
    const int64_t ckpt_every = config_.get_int("ckpt_every");
    const int64_t sample_every = config_.get_int("sample_every");
    const int64_t max_nan = config_.get_int("nan.max_in_a_row");

    TrainerStepContext context(method_->optimizers(), config_.get_float("optim.grad_clip"), request_.device,
                               group_.get(),
                               static_cast<int64_t>(config_.get_float("dist.bucket_mb") * 1024.0 * 1024.0));
    if (is_main()) {
        if (distributed())
            std::fprintf(stderr, "training %s for %lld steps (batch %lld = %d processes x %lld, %s, %d threads each, "
                         "%s) into %s\n",
                         request_.method->name.c_str(), static_cast<long long>(total),
                         static_cast<long long>(global_batch_), group_->world_size(),
                         static_cast<long long>(config_.get_int("batch_size")), group_->backend_name().c_str(),
                         torch::get_num_threads(), request_.device.str().c_str(), paths_.root.c_str());
        else
            std::fprintf(stderr, "training %s for %lld steps (batch %lld, %d threads, %s) into %s\n",
                         request_.method->name.c_str(), static_cast<long long>(total),
                         static_cast<long long>(config_.get_int("batch_size")), torch::get_num_threads(),
                         request_.device.str().c_str(), paths_.root.c_str());
        double base_lr = config_.get_float("optim.lr");
        if (scaling.factor != 1.0)
            std::fprintf(stderr, "learning rate %g = optim.lr %g x %g (%s scaling: global batch %lld / optim.base_batch "
                         "%lld)%s\n",
                         base_lr * scaling.factor, base_lr, scaling.factor, scaling.rule.c_str(),
                         static_cast<long long>(scaling.global_batch), static_cast<long long>(scaling.base_batch),
                         config_.get_int("optim.warmup_steps") > 0 && scaling.factor > 1.0
                             ? (", reached from optim.lr over " + std::to_string(config_.get_int("optim.warmup_steps")) +
                                " warmup steps").c_str()
                             : "");
        else
            std::fprintf(stderr, "learning rate %g (optim.lr, not scaled with the batch)\n", base_lr);
        if (start_step_ > 0) std::fprintf(stderr, "resuming at step %lld\n", static_cast<long long>(start_step_));
    }

    StopSignalScope signals;
    started_ = std::chrono::steady_clock::now();
    last_progress_ = started_;
    std::map<std::string, double> metrics;
    std::map<std::string, double> sums;   // averaged over the steps since the last record
    int64_t counted = 0;
    int64_t completed = start_step_;
    bool interrupted = false;
    for (int64_t step = start_step_; step < stop_at; ++step) {
        double factor = lr_factor(config_, step, scaling.factor);
        for (auto& named : method_->optimizers()) set_learning_rate(*named.optimizer, named.base_lr * factor);
        const int rank = distributed() ? group_->rank() : 0, world = distributed() ? group_->world_size() : 1;
        Batch batch = own_data_ ? own_data_->batch(step, rank, world) : loader_->next();
        for (at::Tensor* part : {&batch.x, &batch.y, &batch.targets, &batch.noise})
            if (part->defined()) *part = part->to(request_.device);
        // Several processes: each rank's noise comes from (seed, rank, step), so ranks draw
        // different noise and a resumed run draws what an unbroken one would.
        if (distributed())
            torch::manual_seed(data_sources::splitmix64(
                data_sources::splitmix64(static_cast<uint64_t>(config_.get_int("seed")) ^
                                         (static_cast<uint64_t>(group_->rank()) << 40)) ^
                static_cast<uint64_t>(step)));
        context.begin(step);
        metrics = method_->train_step(batch, context);
        if (distributed()) metrics["allreduce_ms"] = 1000.0 * context.take_sync_seconds();
        completed = step + 1;
        if (context.skipped()) {
            ++nan_in_a_row_;
            ++nan_total_;
            if (is_main())
                std::fprintf(stderr, "\nstep %lld: non-finite loss or gradient, step skipped (%lld in a row)\n",
                             static_cast<long long>(completed), static_cast<long long>(nan_in_a_row_));
            if (nan_in_a_row_ >= max_nan)
                throw UserError("training diverged: " + std::to_string(nan_in_a_row_) +
                                " non-finite steps in a row up to step " + std::to_string(completed) +
                                "; the last checkpoint in " + paths_.checkpoints().string() +
                                " is intact; lower optim.lr or set optim.grad_clip");
        } else {
            nan_in_a_row_ = 0;
            for (Ema* ema : method_->emas()) ema->update(step);
            for (const auto& [key, value] : metrics) sums[key] += value;
            ++counted;
        }
        metrics["lr"] = config_.get_float("optim.lr") * factor;
        if (completed % log_every == 0 || completed == stop_at) {
            std::map<std::string, double> averaged = metrics;
            std::map<std::string, double> rank_sums = averaged_over_ranks(sums, counted);
            if (counted > 0)
                for (const auto& [key, value] : rank_sums) averaged[key] = value / static_cast<double>(counted);
            if (is_main()) log_record(completed, averaged);
            sums.clear();
            counted = 0;
        }
        if (is_main()) print_progress(completed, total, metrics, false);
        // A signal reaches the ranks at different moments; they agree to stop after the same step.
        interrupted = any_rank(stop_requested());
        bool stopping = interrupted || completed == stop_at;
        if (completed % ckpt_every == 0 || stopping) {
            if (is_main()) save_checkpoint_at(completed);
            // No rank runs ahead of a checkpoint that is not complete yet.
            group_->barrier();
        }
        bool sample_now = sample_every > 0 ? completed % sample_every == 0 : completed % ckpt_every == 0;
        if (is_main() && (sample_now || completed == stop_at)) write_preview(completed);
        if (interrupted) break;
    }
    if (!is_main()) {
        if (interrupted)
            throw Interrupted("rank " + std::to_string(group_->rank()) + ": stopped with the others after step " +
                              std::to_string(completed));
        return;
    }
    print_progress(completed, total, metrics, true);
    if (interrupted) {
        throw Interrupted((stop_requested() ? "stopped by signal " + std::to_string(stop_signal())
                                            : std::string("stopped by a signal to another process")) +
                          " after step " + std::to_string(completed) +
                          "; checkpoint saved. Resume with: onestep train " + request_.method->name + " --resume " +
                          paths_.root.string());
    }
    if (completed < total) {
        std::fprintf(stderr, "stopped at step %lld of %lld as asked; resume with: onestep train %s --resume %s\n",
                     static_cast<long long>(completed), static_cast<long long>(total),
                     request_.method->name.c_str(), paths_.root.c_str());
    } else {
        std::fprintf(stderr, "done: %s\n", (paths_.checkpoints() / "latest.ckpt").c_str());
    }
}

void Trainer::restore(const Checkpoint& checkpoint, const std::string& source) {
    if (checkpoint.method != request_.method->name)
        throw UserError(source + ": is a '" + checkpoint.method + "' checkpoint, not '" + request_.method->name + "'");
    for (const auto& named : method_->modules()) restore_module_tensors(named, checkpoint.tensors, source);
    for (const auto& named : method_->optimizers()) {
        auto found = checkpoint.tensors.find("optim/" + named.name);
        if (found == checkpoint.tensors.end()) throw UserError(source + ": has no state for optimizer '" + named.name + "'");
        restore_optimizer_state(*named.optimizer, tensor_to_bytes(found->second), source);
    }
    auto rng = checkpoint.tensors.find("rng/cpu");
    if (rng == checkpoint.tensors.end()) throw UserError(source + ": has no random-generator state");
    {
        auto generator = at::detail::getDefaultCPUGenerator();
        std::lock_guard<std::mutex> lock(generator.mutex());
        generator.set_state(rng->second);
    }
    json state;
    try {
        state = json::parse(checkpoint.state_json);
        LoaderPosition position{state.at("loader").at("epoch").get<int64_t>(),
                                state.at("loader").at("batch").get<int64_t>()};
        // Another world size or batch: start the saved epoch again where its examples ran out,
        // counted in rows of the permutation (a partial global batch is read again).
        int64_t saved_batch = state.value("global_batch", global_batch_);
        if (loader_ && saved_batch != global_batch_) {
            int64_t resharded = position.batch * saved_batch / global_batch_;
            if (is_main())
                std::fprintf(stderr, "resuming a run of %lld process(es), global batch %lld, with %d x %lld: epoch %lld "
                             "goes on at batch %lld (was %lld)\n",
                             static_cast<long long>(state.value("world_size", int64_t{1})),
                             static_cast<long long>(saved_batch), group_->world_size(),
                             static_cast<long long>(config_.get_int("batch_size")),
                             static_cast<long long>(position.epoch), static_cast<long long>(resharded),
                             static_cast<long long>(position.batch));
            position.batch = resharded;
        }
        if (loader_) loader_->seek(position);
        nan_in_a_row_ = state.at("nan_in_a_row").get<int64_t>();
        nan_total_ = state.at("nan_total").get<int64_t>();
        elapsed_before_ = state.value("elapsed_s", 0.0);
    } catch (const json::exception& error) {
        throw UserError(source + ": trainer state is malformed: " + error.what());
    }
    start_step_ = checkpoint.step;
    if (is_main()) trim_log(checkpoint.step);
}

void Trainer::trim_log(int64_t last_step) {
    // Records written after the checkpoint (by a process that was killed) would be repeated.
    std::ifstream in(paths_.log());
    if (!in) return;
    std::string kept, line;
    while (std::getline(in, line)) {
        json record = json::parse(line, nullptr, false);
        if (!record.is_discarded() && record.value("step", int64_t{0}) > last_step) continue;
        kept += line + "\n";
    }
    in.close();
    write_file_atomic(paths_.log().string(), kept);
}

void Trainer::save_checkpoint_at(int64_t completed) {
    if (!all_finite(*method_))
        throw UserError("refusing to save a checkpoint with non-finite weights at step " + std::to_string(completed) +
                        "; the last checkpoint in " + paths_.checkpoints().string() + " is intact");
    Checkpoint checkpoint;
    checkpoint.method = request_.method->name;
    checkpoint.config_yaml = config_.to_yaml();
    checkpoint.step = completed;
    double elapsed = elapsed_before_ +
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    LoaderPosition position = loader_ ? loader_->position() : LoaderPosition{};
    json state = {{"loader", {{"epoch", position.epoch}, {"batch", position.batch}}},
                  {"nan_in_a_row", nan_in_a_row_},
                  {"nan_total", nan_total_},
                  {"elapsed_s", elapsed},
                  {"world_size", group_->world_size()},
                  {"global_batch", global_batch_},
                  {"data_shape", data_shape_to_json(data_shape_)}};
    checkpoint.state_json = state.dump();
    for (const auto& named : method_->modules()) collect_module_tensors(named, checkpoint.tensors);
    for (const auto& named : method_->optimizers())
        checkpoint.tensors["optim/" + named.name] = bytes_to_tensor(optimizer_state_bytes(*named.optimizer));
    {
        auto generator = at::detail::getDefaultCPUGenerator();
        std::lock_guard<std::mutex> lock(generator.mutex());
        checkpoint.tensors["rng/cpu"] = generator.get_state();
    }
    char name[64];
    std::snprintf(name, sizeof name, "step-%08lld.ckpt", static_cast<long long>(completed));
    fs::path step_path = paths_.checkpoints() / name;
    save_checkpoint(step_path.string(), checkpoint);
    // latest.ckpt is a hard link to the newest step file, swapped in atomically.
    fs::path latest = paths_.checkpoints() / "latest.ckpt";
    fs::path latest_tmp = paths_.checkpoints() / "latest.ckpt.tmp";
    std::error_code error;
    fs::remove(latest_tmp, error);
    fs::create_hard_link(step_path, latest_tmp, error);
    if (error) fs::copy_file(step_path, latest_tmp, fs::copy_options::overwrite_existing);
    fs::rename(latest_tmp, latest);

    int64_t keep = config_.get_int("keep_checkpoints");
    if (keep > 0) {
        std::vector<fs::path> steps;   // list_directory sorts by name: the oldest first
        for (const DirectoryEntry& entry : list_directory(paths_.checkpoints().string())) {
            if (entry.name.rfind("step-", 0) == 0 && fs::path(entry.name).extension() == ".ckpt") steps.push_back(entry.path);
        }
        for (size_t i = 0; i + keep < steps.size(); ++i) fs::remove(steps[i], error);
    }
    std::map<std::string, double> evaluation = method_->evaluate();
    if (!evaluation.empty()) {
        json record = {{"step", completed}, {"eval", evaluation}};
        std::ofstream out(paths_.log(), std::ios::app);
        out << record.dump() << "\n";
        char eval_name[64];
        std::snprintf(eval_name, sizeof eval_name, "step-%08lld.json", static_cast<long long>(completed));
        write_file_atomic((paths_.root / "eval" / eval_name).string(), record.dump(2) + "\n");
        std::fprintf(stderr, "\nstep %lld eval:", static_cast<long long>(completed));
        for (const auto& [key, value] : evaluation) std::fprintf(stderr, " %s %.4f", key.c_str(), value);
        std::fprintf(stderr, "\n");
    }
    try {
        plot_log_curves(paths_.log().string(), (paths_.samples() / "loss.png").string());
    } catch (const std::exception& plot_error) {
        std::fprintf(stderr, "\nwarning: loss curve not drawn: %s\n", plot_error.what());
    }
}

void Trainer::write_preview(int64_t completed) {
    std::unique_ptr<Sampler> sampler = method_->make_sampler();
    if (!sampler) return;
    std::vector<std::pair<std::shared_ptr<torch::nn::Module>, bool>> modes;
    for (const auto& named : method_->modules()) modes.emplace_back(named.module, named.module->is_training());
    int64_t n = config_.get_int("sample.n");
    int64_t classes = sampler->num_classes();
    at::Tensor labels = default_labels(n, classes);
    // Its own seed: previews never move the training random stream.
    at::Tensor samples = draw_samples(*sampler, labels, SampleOptions{}, static_cast<uint64_t>(config_.get_int("seed")) + 7919,
                                      n, request_.device);
    for (auto& [module, training] : modes) module->train(training);
    char name[64];
    std::snprintf(name, sizeof name, "step-%08lld.png", static_cast<long long>(completed));
    std::string path = (paths_.samples() / name).string();
    try {
        if (samples.dim() == 4) {
            write_image_grid(path, samples, classes > 0 ? labels : at::Tensor(), sampler->class_names());
        } else if (samples.dim() == 2 && samples.size(1) == 2) {
            // The training data in grey behind the samples, when the trainer loaded it.
            at::Tensor reference = dataset_ ? dataset_->x.slice(0, 0, std::min<int64_t>(2000, dataset_->size())) : at::Tensor();
            write_scatter(path, samples, classes > 0 ? labels : at::Tensor(), reference,
                          request_.method->name + " step " + std::to_string(completed));
        }
    } catch (const UserError& error) {
        std::fprintf(stderr, "\nwarning: preview not written: %s\n", error.what());
    }
}

void Trainer::log_record(int64_t completed, const std::map<std::string, double>& metrics) {
    json record = {{"step", completed}};
    for (const auto& [key, value] : metrics) record[key] = std::isfinite(value) ? json(value) : json(nullptr);
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    record["time_s"] = elapsed_before_ + elapsed;
    record["skipped_total"] = nan_total_;
    std::ofstream out(paths_.log(), std::ios::app);
    out << record.dump() << "\n";
    if (!out) throw UserError("cannot append to " + paths_.log().string());
}

void Trainer::print_progress(int64_t completed, int64_t total, const std::map<std::string, double>& metrics,
                             bool final) {
    auto now = std::chrono::steady_clock::now();
    double since_print = std::chrono::duration<double>(now - last_progress_).count();
    double interval = stderr_is_tty_ ? 0.5 : 15.0;
    if (!final && since_print < interval && completed != 1 + start_step_) return;
    last_progress_ = now;
    double elapsed = std::chrono::duration<double>(now - started_).count();
    double rate = elapsed > 0 ? static_cast<double>(completed - start_step_) / elapsed : 0;
    double eta = rate > 0 ? static_cast<double>(total - completed) / rate : NAN;
    std::ostringstream line;
    line << "step " << completed << "/" << total;
    for (const auto& [key, value] : metrics)
        if (key.find("loss") != std::string::npos) line << " | " << key << " " << std::setprecision(4) << value;
    line << " | " << std::fixed << std::setprecision(2) << rate << " it/s | "
         << std::setprecision(0) << rate * static_cast<double>(global_batch_) << " ex/s | ETA "
         << format_duration(eta);
    if (stderr_is_tty_)
        std::fprintf(stderr, "\r%-100s%s", line.str().c_str(), final ? "\n" : "");
    else
        std::fprintf(stderr, "%s\n", line.str().c_str());
    std::fflush(stderr);
}

}  // namespace

void train(const TrainRequest& request) {
    TORCH_CHECK(request.method != nullptr, "train: no method");
    Trainer trainer(request);
    trainer.run();
}

std::string resolve_checkpoint_path(const std::string& path_or_run_dir) {
    fs::path path(path_or_run_dir);
    if (fs::is_directory(path)) {
        fs::path latest = path / "checkpoints" / "latest.ckpt";
        if (!fs::exists(latest)) throw UserError(path_or_run_dir + ": run directory has no checkpoints/latest.ckpt");
        return latest.string();
    }
    if (!fs::exists(path)) throw UserError(path_or_run_dir + ": no such checkpoint or run directory");
    return path.string();
}

TrainedMethod load_trained_method(const std::string& path, const c10::Device& device) {
    TrainedMethod trained;
    std::string source = resolve_checkpoint_path(path);
    std::string method_name, config_yaml, state_text;
    std::map<std::string, at::Tensor> tensors;
    if (fs::path(source).extension() == ".safetensors") {
        TensorFile file = read_safetensors(source);
        auto meta = [&](const std::string& key) {
            auto found = file.metadata.find(key);
            if (found == file.metadata.end())
                throw UserError(source + ": metadata has no '" + key + "'; not an onestep export");
            return found->second;
        };
        method_name = meta("method");
        config_yaml = meta("config");
        state_text = meta("state");
        trained.step = std::stoll(meta("step"));
        tensors = std::move(file.tensors);
    } else {
        Checkpoint checkpoint = load_checkpoint(source);
        method_name = checkpoint.method;
        config_yaml = checkpoint.config_yaml;
        state_text = checkpoint.state_json;
        trained.step = checkpoint.step;
        tensors = std::move(checkpoint.tensors);
    }
    trained.info = &find_method(method_name);
    trained.config = config_from_yaml_text(training_options(*trained.info), config_yaml, source + " (config)");
    json state;
    try {
        state = json::parse(state_text);
    } catch (const json::exception& error) {
        throw UserError(source + ": state record is malformed: " + error.what());
    }
    DataShape shape = data_shape_from_json(state.value("data_shape", json::object()), source);
    torch::manual_seed(static_cast<uint64_t>(trained.config.get_int("seed")));
    trained.method = trained.info->create();
    trained.method->build(trained.config, shape, device);
    for (const auto& named : trained.method->modules()) {
        restore_module_tensors(named, tensors, source);
        named.module->eval();
    }
    return trained;
}

void export_weights(const std::string& checkpoint_path, const std::string& out_path) {
    std::string source = resolve_checkpoint_path(checkpoint_path);
    Checkpoint checkpoint = load_checkpoint(source);
    std::map<std::string, at::Tensor> weights;
    for (const auto& [name, tensor] : checkpoint.tensors)
        if (name.rfind("net/", 0) == 0) weights[name] = tensor;
    json state = json::parse(checkpoint.state_json);
    json exported_state = {{"data_shape", state.value("data_shape", json::object())}};
    write_safetensors(out_path, weights,
                      {{"format", "onestep"},
                       {"format_version", std::to_string(checkpoint.format_version)},
                       {"method", checkpoint.method},
                       {"config", checkpoint.config_yaml},
                       {"state", exported_state.dump()},
                       {"step", std::to_string(checkpoint.step)}});
}

}  // namespace onestep
