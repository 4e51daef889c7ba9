// `onestep eval`: quality metrics of a checkpoint's samples against real data, always printed
// beside the same metric between two disjoint real sets (the floor).
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/runtime.hpp"
#include "core/trainer.hpp"
#include "data/dataset.hpp"
#include "metrics/image_eval.hpp"
#include "metrics/toy.hpp"
#include "models/analytic_mixture.hpp"
#include "samplers/generator.hpp"
#include "samplers/teacher_pairs.hpp"
#if ONESTEP_WITH_AUDIO
#include "audio/oracle.hpp"
#include "audio/separation_eval.hpp"
#endif

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace onestep::cli {
namespace {

struct ToyEvalArgs {
    std::string fake;
    std::string real = "toy:8gaussians";
    std::string out;
    int64_t n = 2000;
    int64_t steps = 0;
    std::string sampler;
    std::string grid = "uniform";
    double guidance = 1.0;
    uint64_t seed = 1;
    std::string device = "cpu";
    int threads = 0;
    std::string pairs;   // teacher pairs: paired error of the generator's map from the same noise
};

at::Tensor real_points(const std::string& name, int64_t n, uint64_t seed) {
    DataSpec spec;
    spec.name = name;
    spec.split = "test";
    spec.toy_size = n;
    spec.seed = seed;
    Dataset data = load_dataset(spec);
    if (data.is_image) throw UserError("eval toy: --real " + name + " is an image dataset; expected toy:NAME");
    return data.x;
}

void run_toy_eval(const ToyEvalArgs& args) {
    set_thread_count(args.threads);
    c10::Device device = parse_device(args.device);
    std::string checkpoint;
    if (args.fake.rfind("ckpt:", 0) == 0) checkpoint = args.fake.substr(5);
    else if (args.fake.rfind("analytic:", 0) == 0) checkpoint = args.fake;
    else throw UserError("--fake " + args.fake + ": expected ckpt:PATH or analytic:8gaussians");
    Generator generator = open_generator(checkpoint, device);
    Sampler* sampler = generator.sampler.get();
    SampleOptions options;
    options.steps = args.steps;
    options.sampler = args.sampler;
    options.grid = args.grid;
    options.guidance = args.guidance;
    options.seed = args.seed;
    at::Tensor labels = default_labels(args.n, sampler->num_classes());
    at::Tensor fake = draw_samples(*sampler, labels, options, args.seed, 4096, device);
    if (fake.dim() != 2 || fake.size(1) != 2) throw UserError("eval toy: the checkpoint does not produce 2-D points");

    at::Tensor real = real_points(args.real, args.n, args.seed + 1000);
    at::Tensor other_real = real_points(args.real, args.n, args.seed + 2000);
    json result = {{"checkpoint", checkpoint},
                   {"method", generator.method},
                   {"step", generator.step},
                   {"sampler", sampler->describe(options)},
                   {"nfe", sampler->nfe(options)},
                   {"n", args.n},
                   {"real", args.real},
                   {"sw1", sliced_wasserstein1(fake, real)},
                   {"sw1_floor", sliced_wasserstein1(other_real, real)},
                   {"mmd2", mmd2_unbiased(fake.slice(0, 0, 1000), real.slice(0, 0, 1000))},
                   {"mmd2_floor", mmd2_unbiased(other_real.slice(0, 0, 1000), real.slice(0, 0, 1000))}};
    if (args.real.rfind("toy:8gaussians", 0) == 0) {
        ModeReport modes = eight_gaussians_modes(fake, labels, sampler->num_classes());
        result["hq"] = modes.high_quality;
        if (modes.conditional_accuracy >= 0) result["cacc"] = modes.conditional_accuracy;
        result["modes_covered"] = modes.modes_covered;
        result["mode_share"] = modes.mode_share;
        result["hq_floor"] = eight_gaussians_modes(other_real).high_quality;
        const int64_t classes = sampler->num_classes();
        if (classes == 4 || classes == 8) {
            // The exact log p(y | x) of the labelled mixture: the toy's classifier reward.
            GaussianMixtureDenoiser mixture(classes == 4 ? MixtureLabels::Coarse : MixtureLabels::Fine);
            result["log_p_y_given_x"] = mixture.log_posterior(fake.to(torch::kDouble), labels).mean().item<double>();
        }
    }
    if (!args.pairs.empty()) {
        result["paired_error"] = paired_error(*sampler, read_teacher_pairs(args.pairs), args.pairs, args.n, options, device);
        result["pairs"] = args.pairs;
    }
    std::printf("%-28s %10s %10s\n", "metric", "samples", "real/real");
    std::printf("%-28s %10.4f %10.4f\n", "sliced W1", result["sw1"].get<double>(), result["sw1_floor"].get<double>());
    std::printf("%-28s %10.4f %10.4f\n", "MMD^2", result["mmd2"].get<double>(), result["mmd2_floor"].get<double>());
    if (result.contains("hq")) {
        std::printf("%-28s %10.4f %10.4f\n", "high-quality share", result["hq"].get<double>(),
                    result["hq_floor"].get<double>());
        std::printf("%-28s %10lld %10d\n", "modes covered", static_cast<long long>(result["modes_covered"].get<int64_t>()), 8);
        if (result.contains("cacc"))
            std::printf("%-28s %10.4f %10s\n", "conditional accuracy", result["cacc"].get<double>(), "-");
    }
    if (result.contains("paired_error"))
        std::printf("%-28s %10.4f %10s\n", "paired error (to --pairs)", result["paired_error"].get<double>(), "-");
    std::printf("(%s, %lld NFE, N = %lld)\n", sampler->describe(options).c_str(),
                static_cast<long long>(sampler->nfe(options)), static_cast<long long>(args.n));

    std::string out = args.out;
    if (out.empty() && !generator.analytic) {
        fs::path checkpoint_path = generator.path;
        fs::path eval_dir = checkpoint_path.parent_path().parent_path() / "eval";
        if (fs::is_directory(eval_dir)) {
            std::string sampler_name = args.sampler.empty() ? "default" : args.sampler;
            out = (eval_dir / ("toy-" + sampler_name + "-" + std::to_string(sampler->nfe(options)) + "nfe.json")).string();
        }
    }
    if (!out.empty()) {
        write_file_atomic(out, result.dump(2) + "\n");
        std::fprintf(stderr, "wrote %s\n", out.c_str());
    }
}

}  // namespace

void add_eval_command(CLI::App& app) {
    CLI::App* eval = app.add_subcommand("eval", "measure sample quality against real data");
    eval->require_subcommand(1);
    auto args = std::make_shared<ToyEvalArgs>();
    CLI::App* toy = eval->add_subcommand("toy", "sliced W1, MMD^2, high-quality share and modes on a 2-D toy");
    toy->add_option("--fake", args->fake,
                    "ckpt:PATH (checkpoint, run directory or export), or analytic:8gaussians[-fine|-coarse], the exact "
                    "flow of the mixture")
        ->required();
    toy->add_option("--real", args->real, "toy distribution to compare with")->capture_default_str();
    toy->add_option("--n", args->n, "samples on each side")->capture_default_str()->check(CLI::Range(10, 10000000));
    toy->add_option("--steps", args->steps, "sampling steps (0: the method's default)")->capture_default_str();
    toy->add_option("--sampler", args->sampler, "sampler (empty: the method's default)");
    toy->add_option("--grid", args->grid, "time grid")->capture_default_str();
    toy->add_option("--pairs", args->pairs,
                    "teacher pairs: also the paired error, mean ||G(z) - x|| from each pair's own noise (first N pairs)");
    toy->add_option("--cfg", args->guidance, "guidance weight")->capture_default_str();
    toy->add_option("--seed", args->seed, "seed of the noise and of the real draws")->capture_default_str();
    toy->add_option("--out", args->out, "JSON result (default: the run's eval/ folder)");
    toy->add_option("--device", args->device, "cpu or cuda")->capture_default_str();
    toy->add_option("--threads", args->threads, "intra-op threads (0: all cores)")->capture_default_str();
    toy->callback([args]() { run_toy_eval(*args); });

#if ONESTEP_WITH_AUDIO
    auto sdr_args = std::make_shared<SeparationEvalRequest>();
    auto sdr_metrics = std::make_shared<std::string>("usdr,sisdr");
    auto sdr_threads = std::make_shared<int>(0);
    auto sdr_bsseval = std::make_shared<std::string>("off");
    CLI::App* sdr = eval->add_subcommand("sdr", "uSDR, SI-SDR, SDRi, SI-SDRi and museval BSSEval v4 (cSDR, SIR, ISR, SAR) "
                                                "of separated stems (MUSDB-style folders)");
    sdr->add_option("--ref", sdr_args->reference_dir, "references: <track>/{mixture,<stem>}.wav (or <split>/<track>/...)")
        ->required();
    sdr->add_option("--est", sdr_args->estimate_dir, "estimates: <track>/<stem>.wav, mirroring --ref")->required();
    sdr->add_option("--metrics", *sdr_metrics,
                    "comma-separated: usdr (uSDR, SDRi), sisdr (SI-SDR, SI-SDRi), csdr (museval v4 cSDR: median over "
                    "1 s frames of the frame SDR, which equals the frame SNR; one cheap pass, no filters)")
        ->capture_default_str();
    sdr->add_option("--bsseval", *sdr_bsseval,
                    "full: museval v4 images mode SDR, SIR, ISR, SAR per 1 s frame from 512-tap filters fitted once "
                    "per track (implies csdr; needs >= 2 stems; one more pass over the files and a Gram solve per "
                    "track); off: none")
        ->capture_default_str();
    sdr->add_option("--museval-json", sdr_args->museval_json_dir,
                    "also write museval's own per-track JSON here (<split>/<track>.json; needs --bsseval full)");
    sdr->add_option("--usdr-eps", sdr_args->usdr_eps, "epsilon of uSDR (MDX 1e-7; MSST 1e-8)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    sdr->add_option("--out", sdr_args->out_dir, "write <track>.json, summary.json and summary.csv here");
    sdr->add_flag("--crop", sdr_args->crop, "score files of unequal length over the shortest instead of refusing");
    sdr->add_option("--block", sdr_args->block_frames, "frames read per block")
        ->capture_default_str()
        ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
    sdr->add_option("--threads", *sdr_threads, "intra-op threads (0: all cores)")->capture_default_str();
    sdr->callback([sdr_args, sdr_metrics, sdr_threads, sdr_bsseval]() {
        set_thread_count(*sdr_threads);
        set_sdr_metrics(*sdr_metrics, sdr_args.get());
        set_bsseval_mode(*sdr_bsseval, sdr_args.get());
        run_separation_eval(*sdr_args);
    });
#endif

    const std::vector<std::pair<std::string, std::string>> image_metrics = {
        {"fid", "Frechet distance of features (fd_classifier, or fid_inception with Inception weights)"},
        {"kid", "kernel distance (cubic kernel, unbiased, 100 subsets of up to 1000)"},
        {"prdc", "k-NN precision and recall (k = 3)"},
        {"is", "Inception-style score from the extractor's class probabilities"},
        {"cacc", "conditional accuracy: does a sample asked for class c classify as c"},
        {"classes", "the classifier's class histogram of the samples (any generator, unconditional ones too) and "
                    "per-class diversity"}};
    for (const auto& [name, help] : image_metrics) {
        auto image_args = std::make_shared<ImageEvalRequest>();
        image_args->metric = name;
        auto device = std::make_shared<std::string>("cpu");
        auto threads = std::make_shared<int>(0);
        CLI::App* command = eval->add_subcommand(name, help);
        command->add_option("--features", image_args->features, "classifier:CKPT or inception:PATH[@tf1-bilinear]")
            ->required();
        command->add_option("--fake", image_args->fake, "ckpt:PATH (samples drawn now) or a folder of images")->required();
        command->add_option("--real", image_args->real, "NAME:SPLIT, a folder of images, or reference statistics "
                                                        "(.safetensors, pytorch-fid .npz; fid only)")
            ->capture_default_str();
        command->add_option("--n", image_args->n, "images on each side")->capture_default_str()->check(CLI::Range(2, 10000000));
        command->add_option("--steps", image_args->options.steps, "sampling steps for ckpt: (0: the method's default)");
        command->add_option("--sampler", image_args->options.sampler, "sampler for ckpt: (empty: the method's default)");
        command->add_option("--grid", image_args->options.grid, "time grid")->capture_default_str();
        command->add_option("--cfg", image_args->options.guidance, "guidance weight")->capture_default_str();
        command->add_option("--seed", image_args->seed, "seed of the noise and of the real subsets")->capture_default_str();
        command->add_option("--out", image_args->out, "JSON record (default: the run's eval/ folder for ckpt:)");
        command->add_option("--cache", image_args->cache_dir, "where reference statistics are cached (default: data cache)");
        command->add_option("--save-stats", image_args->save_stats,
                            "also write the real side's feature statistics (.safetensors, or pytorch-fid .npz)");
        command->add_flag("!--no-baseline", image_args->baseline, "skip the real-vs-real baseline");
        command->add_option("--device", *device, "cpu or cuda")->capture_default_str();
        command->add_option("--threads", *threads, "intra-op threads (0: all cores)")->capture_default_str();
        command->callback([image_args, device, threads]() {
            set_thread_count(*threads);
            image_args->device = parse_device(*device);
            run_image_eval(*image_args);
        });
    }

#if ONESTEP_WITH_AUDIO
    auto oracle_args = std::make_shared<OracleRequest>();
    auto oracle_methods = std::make_shared<std::string>("mix,mix-k,irm");
    auto oracle_metrics = std::make_shared<std::string>("usdr,sisdr");
    CLI::App* oracle = eval->add_subcommand(
        "oracle", "oracle baselines of a stem test set: mixture, mixture/K, ideal ratio mask, fixed equaliser, scored like a model");
    oracle->add_option("--ref", oracle_args->reference_dir, "songs: <song>/{mixture,<stem>}.wav")->required();
    oracle->add_option("--out", oracle_args->out_dir, "write <method>/<song>/<stem>.wav and scores/<method>/ here")
        ->required();
    oracle->add_option("--methods", *oracle_methods, "comma-separated: mix, mix-k, irm, eq")->capture_default_str();
    oracle->add_option("--fit", oracle_args->fit_dir,
                       "songs (e.g. the training split) the eq method's per-bin gains are fitted on");
    oracle->add_option("--metrics", *oracle_metrics, "metrics of the evaluator (see eval sdr)")->capture_default_str();
    auto oracle_bsseval = std::make_shared<std::string>("off");
    oracle->add_option("--bsseval", *oracle_bsseval, "off or full (see eval sdr)")->capture_default_str();
    oracle->callback([oracle_args, oracle_methods, oracle_metrics, oracle_bsseval]() {
        oracle_args->methods = oracle_methods_from_list(*oracle_methods);
        set_sdr_metrics(*oracle_metrics, &oracle_args->scoring);
        set_bsseval_mode(*oracle_bsseval, &oracle_args->scoring);
        run_oracle_baselines(*oracle_args);
    });
#endif
#if ONESTEP_WITH_TABULAR
    add_tabular_eval(*eval);
#endif
}

}  // namespace onestep::cli
