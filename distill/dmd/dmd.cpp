// DMD and MSD: the distribution-matching step, the critic's loss, and the `dmd` and `msd` methods.
#include "distill/dmd/dmd.hpp"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "core/error.hpp"
#include "core/registry.hpp"
#include "core/text.hpp"
#include "core/trainer.hpp"
#include "data/dataset.hpp"
#include "distill/distance.hpp"
#include "distill/pairs_source.hpp"
#include "models/conversions.hpp"
#include "models/denoiser.hpp"
#include "models/ema.hpp"
#include "models/network.hpp"
#include "models/time_distribution.hpp"
#include "models/trained_network.hpp"
#include "samplers/generator.hpp"
#include "samplers/one_step.hpp"
#include "samplers/routed.hpp"

namespace onestep {

DistributionMatching distribution_matching(Denoiser& real, Denoiser& fake, const at::Tensor& x, const at::Tensor& labels,
                                           const DmdSettings& settings) {
    const int64_t n = x.size(0);
    DistributionMatching result;
    {
        torch::NoGradGuard no_grad;
        at::Tensor sample = x.detach();
        at::Tensor u = settings.u_min + (settings.u_max - settings.u_min) * torch::rand({n}, sample.options());
        at::Tensor t = karras_time(u);
        at::Tensor tb = broadcast_time(t, sample);
        at::Tensor x_t = (1 - tb) * torch::randn_like(sample) + tb * sample;   // x_t = (1 - t) eps + t sg(x)
        at::Tensor x0_real = x0_from_velocity(x_t, t, guided_velocity(real, x_t, t, labels, settings.guidance));
        at::Tensor x0_fake = x0_from_velocity(x_t, t, fake.velocity(x_t, t, labels));
        // Per sample: the mean over C, H, W of |x - x0_real| (not a batch mean, not squared).
        at::Tensor normaliser = (sample - x0_real).abs().flatten(1).mean(1);
        at::Tensor g = (x0_fake - x0_real) / broadcast_time(normaliser, sample);
        result.gradient = torch::where(torch::isfinite(g), g, torch::zeros_like(g));
        result.real_gap = (x0_real - x0_fake).flatten(1).norm(2, 1);
    }
    // d/dx of 1/2 mean_e (x - sg(x - g))^2 = g / numel: descent moves x towards the real denoiser.
    result.loss = 0.5 * (x - (x.detach() - result.gradient)).pow(2).mean();
    return result;
}

at::Tensor critic_flow_loss(VelocityNet& critic, const at::Tensor& x, const at::Tensor& labels, const TimeDistribution& times) {
    at::Tensor sample = x.detach();
    at::Tensor epsilon = torch::randn_like(sample);
    at::Tensor t = times.sample(sample.size(0), sample.options());
    at::Tensor tb = broadcast_time(t, sample);
    at::Tensor x_t = (1 - tb) * epsilon + tb * sample;
    return (critic.forward(x_t, t, labels) - (sample - epsilon)).pow(2).mean();   // target v = x - eps
}

at::Tensor draw_labels(const at::Tensor& classes, int64_t n) {
    if (!classes.defined() || classes.numel() == 0) return torch::zeros({n}, classes.options().dtype(torch::kLong));
    at::Tensor pick = torch::randint(0, classes.numel(), {n}, classes.options().dtype(torch::kLong));
    return classes.index_select(0, pick);
}

namespace {

// A teacher's shape and nothing else: DMD without a regression set draws its own noise and labels.
class TeacherShapeSource : public BatchSource {
  public:
    explicit TeacherShapeSource(DataShape shape) : shape_(std::move(shape)) {}
    DataShape shape() const override { return shape_; }
    Batch batch(int64_t, int, int) override { return {}; }

  private:
    DataShape shape_;
};

// One DMD student: generator G (with its EMA) and fake-score critic F, each with its optimizer,
// drawing generator labels from CLASSES.
struct Student {
    std::string suffix;   // "" for DMD, the student's index for MSD
    TrainedNetwork generator;
    std::shared_ptr<VelocityNet> critic;
    std::unique_ptr<torch::optim::Optimizer> critic_optimizer;
    std::shared_ptr<NetworkDenoiser> fake;
    at::Tensor classes;   // int64 [|V_k|] on the device; empty when unconditional
    at::Tensor data_rows; // TSM: rows of the real data whose label is in V_k (CPU)
    std::map<std::string, double> held;   // the generator's numbers at its last update
};

struct RunSettings {
    DmdSettings dm;
    int64_t ttur = 5;
    double t0 = 0;
    double regression_weight = 0;
    std::string distance = "l2";
    double huber_c = 0;
    int64_t batch_size = 0;
    int64_t tsm_steps = 0;   // each student's TSM iterations before DM (0: none)
    double tsm_lr = 0;
};

OptionTable dmd_options(bool multi) {
    OptionTable table = network_options("unet");
    table.add_string("dmd.teacher", "", "the real score: a flow or vp run (or checkpoint), or analytic:8gaussians[-fine|-coarse]")
        .add_string("dmd.init", "",
                    "a flow run whose velocity network initialises the generator and the critic (empty: the teacher); "
                    "its architecture must be this config's model.*")
        .add_float("dmd.guidance", 1.0, 0.0, 50.0, "w_real: classifier-free guidance of the real score only")
        .add_int("dmd.ttur", 5, 1, 1000, "r: the generator steps every r-th iteration, the critic every iteration")
        .add_float("dmd.u_min", 0.02, 0.0, 1.0, "DM noise: Karras index fraction u ~ U[u_min, u_max] (sigma 80 at 0)")
        .add_float("dmd.u_max", 0.98, 0.0, 1.0, "upper end of u")
        .add_float("dmd.t0", 0.0, 0.0, 0.5, "the generator's time: G(z, y) = z + (1 - t0) v(z, t0, y)")
        .add_string("dmd.pairs", "", "teacher pairs for the regression term (`onestep sample --pairs`); empty: none")
        .add_float("dmd.regression_weight", 0.0, 0.0, 1e6, "lambda_reg of dist(G(z_r, y_r), x_r) on the pairs (needs dmd.pairs)")
        .add_choice("dmd.distance", "l2", {"l2", "pseudo-huber"}, "the regression's distance")
        .add_float("dmd.huber_c", 0.0, 0.0, 1e6, "pseudo-Huber c (0: 0.00054 sqrt(D))")
        .add_choice("sampler.name", "one-step", {"one-step", "euler", "heun", "ddim"},
                    "default sampler: the one-step generator, or an ODE solver over it")
        .add_int("sampler.steps", 1, 1, 100000, "default sampling steps");
    if (multi)
        table.add_int("msd.students", 2, 1, 1000, "K: students, each owning a contiguous group of classes")
            .add_choice("msd.partition", "contiguous", {"contiguous"}, "how classes are split: V_k = {c : floor(cK/C) = k}")
            .add_choice("msd.init", "teacher", {"teacher", "tsm", "random"},
                        "how students start: the teacher's weights (dmd.init; same size only), Teacher Score Matching "
                        "on real data of their classes (any size), or fresh weights (an ablation)")
            .add_int("msd.tsm_steps", 2000, 1, 100000000,
                     "msd.init=tsm: each student's iterations of v_S(x_t) -> v_T(x_t) on data.name before DM")
            .add_float("msd.tsm_lr", 1e-3, 0.0, 10.0, "msd.init=tsm: the learning rate of the TSM iterations");
    return table;
}

class DistributionMatchingMethod : public Method {
  public:
    explicit DistributionMatchingMethod(bool multi) : multi_(multi) {}

    // Training only: the teacher, the initial weights and the optional pairs.
    std::unique_ptr<BatchSource> open_data(const Config& config) override {
        const std::string teacher_source = config.get_string("dmd.teacher");
        if (teacher_source.empty())
            throw UserError("dmd.teacher is not set: name the teacher run, e.g. --set dmd.teacher=runs/fmnist-flow");
        const c10::Device cpu(c10::kCPU);
        teacher_ = std::make_unique<TeacherDenoiser>(open_teacher_denoiser(teacher_source, "dmd.teacher", cpu));
        DataShape shape;
        shape.sample_shape = teacher_->sample_shape;
        shape.num_classes = teacher_->denoiser->num_classes();
        shape.class_names = teacher_->class_names;

        const std::string student_init = multi_ ? config.get_string("msd.init") : "teacher";
        if (student_init == "tsm") {
            // Real data of the teacher's classes, for Teacher Score Matching.
            dataset_ = std::make_unique<Dataset>(load_dataset(data_spec(config)));
            at::Tensor first = to_model_input(*dataset_, dataset_->x.slice(0, 0, 1), config.get_int("data.image_size"));
            std::vector<int64_t> data_shape(first.sizes().begin() + 1, first.sizes().end());
            if (data_shape != shape.sample_shape || dataset_->num_classes != shape.num_classes)
                throw UserError("msd.init = tsm: data.name = " + config.get_string("data.name") + " holds samples shaped " +
                                shape_text(data_shape) + " with " + std::to_string(dataset_->num_classes) +
                                " classes; the teacher's are " + shape_text(shape.sample_shape) + " with " +
                                std::to_string(shape.num_classes));
        }
        const std::string init_source = config.get_string("dmd.init");
        if (student_init != "teacher") {
            // TSM or fresh weights: the students need not have the teacher's architecture.
            critic_times_ = teacher_->times;
            if (!init_source.empty())
                std::fprintf(stderr, "note: dmd.init is not used with msd.init = %s\n", student_init.c_str());
        } else if (init_source.empty()) {
            if (!teacher_->velocity_net)
                throw UserError("dmd.init is not set and the teacher " + teacher_source +
                                " has no velocity network to start from; name a flow run with --set dmd.init=RUN");
            init_ = teacher_->velocity_net;
            init_name_ = "dmd.teacher " + teacher_source;
            critic_times_ = teacher_->times;
        } else {
            TeacherDenoiser init = open_teacher_denoiser(init_source, "dmd.init", cpu);
            if (!init.velocity_net)
                throw UserError("dmd.init = " + init_source + ": a '" + init.method +
                                "' run has no velocity network; name a flow run");
            if (init.sample_shape != shape.sample_shape || init.denoiser->num_classes() != shape.num_classes)
                throw UserError("dmd.init = " + init_source + " draws samples shaped " + shape_text(init.sample_shape) +
                                " with " + std::to_string(init.denoiser->num_classes()) + " classes, the teacher " +
                                shape_text(shape.sample_shape) + " with " + std::to_string(shape.num_classes));
            init_ = init.velocity_net;
            init_name_ = "dmd.init " + init_source;
            critic_times_ = init.times;   // the critic continues the objective its weights were trained with
        }
        const double guidance = config.get_float("dmd.guidance");
        if (guidance != 1.0 && shape.num_classes == 0)
            throw UserError("dmd.guidance = " + number_text(guidance) + ": the teacher " + teacher_source +
                            " is unconditional, so there is nothing to guide; use 1");
        if (guidance != 1.0 && !teacher_->denoiser->has_null_label())
            throw UserError("dmd.guidance = " + number_text(guidance) + ": the teacher " + teacher_source +
                            " was trained without label dropout, so it cannot be guided; use 1");

        const std::string pairs_path = config.get_string("dmd.pairs");
        const double weight = config.get_float("dmd.regression_weight");
        if (pairs_path.empty()) {
            if (weight > 0) throw UserError("dmd.regression_weight > 0 needs dmd.pairs (`onestep sample --pairs`)");
            return std::make_unique<TeacherShapeSource>(shape);
        }
        if (weight == 0)
            throw UserError("dmd.pairs is set but dmd.regression_weight is 0: give the regression a weight (MSD uses 0.25) "
                            "or drop the pairs");
        auto pairs = std::make_unique<PairsSource>(
            read_training_pairs(pairs_path, "dmd.pairs", config.get_int("batch_size")), config.get_int("batch_size"),
            static_cast<uint64_t>(config.get_int("seed")));
        DataShape pairs_shape = pairs->shape();
        if (pairs_shape.sample_shape != shape.sample_shape || pairs_shape.num_classes != shape.num_classes)
            throw UserError("dmd.pairs = " + pairs_path + " holds samples shaped " + shape_text(pairs_shape.sample_shape) +
                            " with " + std::to_string(pairs_shape.num_classes) + " classes; the teacher's are " +
                            shape_text(shape.sample_shape) + " with " + std::to_string(shape.num_classes));
        return pairs;
    }

    void build(const Config& config, const DataShape& data, const torch::Device& device) override {
        config_ = config;
        data_ = data;
        settings_.dm.guidance = config.get_float("dmd.guidance");
        settings_.dm.u_min = config.get_float("dmd.u_min");
        settings_.dm.u_max = config.get_float("dmd.u_max");
        if (settings_.dm.u_min > settings_.dm.u_max)
            throw UserError("dmd.u_min " + number_text(settings_.dm.u_min) + " is above dmd.u_max " +
                            number_text(settings_.dm.u_max));
        settings_.ttur = config.get_int("dmd.ttur");
        settings_.t0 = config.get_float("dmd.t0");
        settings_.regression_weight = config.get_float("dmd.regression_weight");
        settings_.distance = config.get_string("dmd.distance");
        settings_.huber_c = config.get_float("dmd.huber_c");
        settings_.batch_size = config.get_int("batch_size");
        if (multi_ && config.get_string("msd.init") == "tsm") {
            settings_.tsm_steps = config.get_int("msd.tsm_steps");
            settings_.tsm_lr = config.get_float("msd.tsm_lr");
        }

        std::vector<std::vector<int64_t>> groups;
        if (multi_) {
            const int64_t students = config.get_int("msd.students");
            if (data.num_classes == 0)
                throw UserError("msd splits classes between students, and the teacher (dmd.teacher = " +
                                config.get_string("dmd.teacher") + ") is unconditional; use dmd");
            if (students > data.num_classes)
                throw UserError("msd.students = " + std::to_string(students) + " but the teacher has " +
                                std::to_string(data.num_classes) + " classes: each student needs at least one");
            if (settings_.tsm_steps > 0 && config.get_int("steps") <= students * settings_.tsm_steps)
                throw UserError("steps = " + std::to_string(config.get_int("steps")) + " leaves no DM iterations: TSM "
                                "takes msd.tsm_steps x msd.students = " + std::to_string(students * settings_.tsm_steps) +
                                " of them first");
            groups = contiguous_partition(data.num_classes, students);
            route_ = route_table(groups, data.num_classes);
        } else {
            groups.emplace_back();
            for (int64_t c = 0; c < data.num_classes; ++c) groups[0].push_back(c);
        }
        const NetworkShape shape{data.sample_shape, data.num_classes, 0};
        for (size_t k = 0; k < groups.size(); ++k) {
            auto student = std::make_unique<Student>();
            student->suffix = multi_ ? std::to_string(k) : "";
            student->generator.build(config, shape, device);
            student->critic = student->generator.net->make_sibling();
            student->critic->to(device);
            student->critic_optimizer = make_optimizer(student->critic->parameters(), config);
            student->fake = std::make_shared<NetworkDenoiser>(student->critic, Parameterisation::Velocity, data.num_classes, false);
            student->classes = torch::tensor(groups[k], torch::kLong).to(device);
            if (dataset_) {
                at::Tensor own = torch::zeros({dataset_->y.size(0)}, torch::kBool);
                for (int64_t c : groups[k]) own |= dataset_->y == c;
                student->data_rows = torch::nonzero(own).flatten();
                if (student->data_rows.numel() == 0)
                    throw UserError("msd.init = tsm: data.name = " + config.get_string("data.name") +
                                    " has no examples of student " + std::to_string(k) + "'s classes");
            }
            if (init_) {
                // G, its EMA and F all start as the teacher (at t0 = 0, G is the teacher's x0 guess).
                check_same_architecture(*student->generator.net, *init_, init_name_,
                                        "students of another size: msd with msd.init=tsm");
                copy_weights(*student->generator.net, *init_);
                student->generator.ema->copy_from_online();
                copy_weights(*student->critic, *init_);
            }
            students_.push_back(std::move(student));
        }
        if (teacher_) {
            if (auto* network = dynamic_cast<NetworkDenoiser*>(teacher_->denoiser.get())) network->net()->to(device);
            init_.reset();   // copied; the teacher's own weights stay for the real score
        }
    }

    std::map<std::string, double> train_step(const Batch& batch, StepContext& context) override {
        if (!teacher_) throw std::logic_error("DMD: train_step on a model loaded for sampling");
        const int64_t count = static_cast<int64_t>(students_.size());
        Student& student = *students_[static_cast<size_t>(context.step() % count)];
        const int64_t own_step = context.step() / count;   // this student's iteration
        const torch::Device& device = context.device();
        if (own_step < settings_.tsm_steps) return teacher_score_matching(student, context);
        const int64_t dm_step = own_step - settings_.tsm_steps;
        if (settings_.tsm_steps > 0 && dm_step == 0) {
            // G_k <- S_k and F_k <- S_k; the generator's optimizer forgets the TSM moments.
            copy_weights(*student.critic, *student.generator.net);
            student.generator.ema->copy_from_online();
            student.generator.optimizer->state().clear();
        }
        std::vector<int64_t> noise_shape{settings_.batch_size};
        noise_shape.insert(noise_shape.end(), data_.sample_shape.begin(), data_.sample_shape.end());
        at::Tensor z = torch::randn(noise_shape, torch::TensorOptions().device(device));
        at::Tensor labels = draw_labels(student.classes, settings_.batch_size);
        VelocityNet& generator = *student.generator.net;
        generator.train();

        at::Tensor fake_samples;
        if (dm_step % settings_.ttur == 0) {
            // Generator update; the teacher and the critic are only evaluated (no parameter gradients).
            at::Tensor inputs = z, input_labels = labels;
            const bool regress = settings_.regression_weight > 0;
            if (regress) {   // one forward over the fresh noise and the SHARED pairs of every class
                inputs = torch::cat({z, batch.noise});
                input_labels = torch::cat({labels, batch.y});
            }
            at::Tensor generated = one_step_generate(generator, inputs, input_labels, settings_.t0);
            at::Tensor x = generated.slice(0, 0, settings_.batch_size);
            student.critic->eval();
            DistributionMatching dm = distribution_matching(*teacher_->denoiser, *student.fake, x, labels, settings_.dm);
            at::Tensor loss = dm.loss;
            student.held.clear();
            if (regress) {
                at::Tensor regression = sample_distance(generated.slice(0, settings_.batch_size), batch.x,
                                                        settings_.distance, settings_.huber_c)
                                            .mean();
                loss = loss + settings_.regression_weight * regression;
                student.held["loss_regression"] = regression.item<double>();
                if (multi_)   // MSD regresses on every class's pairs, not only its own
                    student.held["regression_outside_share"] =
                        1.0 - torch::isin(batch.y, student.classes).to(torch::kDouble).mean().item<double>();
            }
            double grad_norm = context.optimize("net" + student.suffix, loss);
            if (std::isfinite(grad_norm)) {   // a skipped update neither moves the EMA nor enters the log
                student.generator.ema->update(dm_step / settings_.ttur);
                student.held["grad_norm_generator"] = grad_norm;
            }
            student.held["loss_dm"] = dm.loss.item<double>();
            student.held["g_norm"] = dm.gradient.flatten(1).norm(2, 1).mean().item<double>();
            student.held["real_fake_gap"] = dm.real_gap.mean().item<double>();
            fake_samples = x.detach();
        } else {
            torch::NoGradGuard no_grad;
            fake_samples = one_step_generate(generator, z, labels, settings_.t0);
        }
        // Critic update on the generator's detached samples only (never real data).
        student.critic->train();
        at::Tensor critic_loss = critic_flow_loss(*student.critic, fake_samples, labels, critic_times_);
        double critic_norm = context.optimize("critic" + student.suffix, critic_loss);
        std::map<std::string, double> metrics = student.held;
        metrics["loss_critic"] = critic_loss.item<double>();
        metrics["grad_norm_critic"] = critic_norm;
        return metrics;
    }

    std::vector<NamedModule> modules() override {
        std::vector<NamedModule> modules;
        for (auto& student : students_) {
            modules.push_back({"net" + student->suffix, student->generator.net});
            modules.push_back({"ema" + student->suffix, student->generator.ema_net});
            modules.push_back({"critic" + student->suffix, student->critic});
        }
        return modules;
    }

    std::vector<NamedOptimizer> optimizers() override {
        std::vector<NamedOptimizer> optimizers;
        for (auto& student : students_) {
            optimizers.push_back({"net" + student->suffix, student->generator.optimizer.get(), student->generator.base_lr});
            optimizers.push_back({"critic" + student->suffix, student->critic_optimizer.get(), student->generator.base_lr});
        }
        return optimizers;
    }

    // The EMAs step with their generators (every r-th iteration), not with the trainer.
    std::vector<Ema*> emas() override { return {}; }

    std::unique_ptr<Sampler> make_sampler() override {
        std::vector<std::unique_ptr<Sampler>> samplers;
        for (auto& student : students_) {
            student->generator.ema_net->eval();
            samplers.push_back(std::make_unique<OneStepSampler>(
                student->generator.ema_net, settings_.t0, data_.sample_shape, data_.class_names, data_.num_classes,
                config_.get_string("sampler.name"), config_.get_int("sampler.steps")));
        }
        if (!multi_) return std::move(samplers.front());
        return std::make_unique<RoutedSampler>(std::move(samplers), route_);
    }

  private:
    // Stage 0 of MSD: x ~ data with y in V_k, x_t = (1 - t) z + t x,
    // L_TSM = mean_e (v_S(x_t, t, y) - sg(v_T(x_t, t, y)))^2, at the rate msd.tsm_lr.
    std::map<std::string, double> teacher_score_matching(Student& student, StepContext& context) {
        const torch::Device& device = context.device();
        at::Tensor pick = torch::randint(0, student.data_rows.numel(), {settings_.batch_size}, torch::kLong);
        at::Tensor rows = student.data_rows.index_select(0, pick);
        at::Tensor x = to_model_input(*dataset_, dataset_->x.index_select(0, rows), config_.get_int("data.image_size")).to(device);
        at::Tensor labels = dataset_->y.index_select(0, rows).to(device);
        at::Tensor z = torch::randn_like(x);
        at::Tensor t = teacher_->times.sample(x.size(0), x.options());
        at::Tensor tb = broadcast_time(t, x);
        at::Tensor x_t = (1 - tb) * z + tb * x;
        at::Tensor target;
        {
            torch::NoGradGuard no_grad;
            target = teacher_->denoiser->velocity(x_t, t, labels);
        }
        student.generator.net->train();
        at::Tensor loss = (student.generator.net->forward(x_t, t, labels) - target).pow(2).mean();
        // The schedule sets every rate each step; TSM runs at its own.
        set_learning_rate(*student.generator.optimizer, settings_.tsm_lr);
        double grad_norm = context.optimize("net" + student.suffix, loss);
        return {{"loss_tsm", loss.item<double>()}, {"grad_norm_generator", grad_norm}};
    }

    bool multi_;
    Config config_;
    DataShape data_;
    RunSettings settings_;
    std::vector<std::unique_ptr<Student>> students_;
    std::vector<int64_t> route_;
    std::unique_ptr<TeacherDenoiser> teacher_;   // training only
    std::unique_ptr<Dataset> dataset_;           // training with msd.init = tsm only
    std::shared_ptr<VelocityNet> init_;          // until build has copied it
    std::string init_name_;
    TimeDistribution critic_times_;              // the critic's training times (training only)
};

}  // namespace

void register_dmd_methods() {
    register_method({"dmd",
                     "DMD/DMD2: a one-step generator matched to the teacher's distribution by the difference of the "
                     "teacher's and an online critic's denoisers (optional regression on teacher pairs)",
                     [] { return dmd_options(false); }, [] { return std::make_unique<DistributionMatchingMethod>(false); }});
    register_method({"msd",
                     "Multi-Student Distillation: one DMD student per group of classes, trained in turn on shared "
                     "teacher pairs; sampling routes each class to its student",
                     [] { return dmd_options(true); }, [] { return std::make_unique<DistributionMatchingMethod>(true); }});
}

}  // namespace onestep
