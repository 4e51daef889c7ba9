// `onestep sample`: draw samples from a checkpoint through its Sampler and write a grid, one
// PNG per image, a scatter plot or a CSV of points.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/runtime.hpp"
#include "core/trainer.hpp"
#include "data/image_io.hpp"
#include "samplers/generator.hpp"
#include "samplers/teacher_pairs.hpp"

namespace fs = std::filesystem;

namespace onestep::cli {
namespace {

struct SampleArgs {
    std::string checkpoint;
    std::string out;
    int64_t n = 64;
    int64_t steps = 0;
    std::string sampler;
    std::string grid = "uniform";
    double guidance = 1.0;
    double eta = 0.0;
    int64_t class_id = -1;
    uint64_t seed = 0;
    int64_t batch = 256;
    std::string device = "cpu";
    int threads = 0;
    int64_t pairs = 0;
    std::string condition_file;
};

enum class OutputKind { Grid, Folder, Csv };

OutputKind output_kind(const std::string& out) {
    if (!out.empty() && out.back() == '/') return OutputKind::Folder;
    if (fs::is_directory(out)) return OutputKind::Folder;
    std::string extension = fs::path(out).extension().string();
    if (extension == ".png") return OutputKind::Grid;
    if (extension == ".csv") return OutputKind::Csv;
    throw UserError("--out " + out + ": expected a .png file (grid or scatter), a .csv file (points) or a folder ending in /");
}

void write_points_csv(const std::string& path, const at::Tensor& points, const at::Tensor& labels) {
    std::ostringstream out;
    auto rows = points.accessor<float, 2>();
    auto label = labels.accessor<int64_t, 1>();
    out << "x,y,label\n";
    for (int64_t i = 0; i < points.size(0); ++i) out << rows[i][0] << "," << rows[i][1] << "," << label[i] << "\n";
    write_file_atomic(path, out.str());
}

void run_pairs(const SampleArgs& args, const c10::Device& device) {
    PairRequest request;
    request.checkpoint = args.checkpoint;
    request.out = args.out;
    request.n = args.pairs;
    request.options.steps = args.steps;
    request.options.sampler = args.sampler;
    request.options.grid = args.grid;
    request.options.guidance = args.guidance;
    request.options.eta = args.eta;
    request.options.seed = args.seed;
    request.seed = args.seed;
    request.chunk = args.batch;
    request.device = device;
    write_teacher_pairs(request);
}

void run_sample(const SampleArgs& args) {
    if (is_forest_run(args.checkpoint)) {
        run_forest_sample(args.checkpoint, static_cast<size_t>(args.n), args.out, args.seed, args.condition_file,
                          static_cast<int>(args.steps));
        return;
    }
    set_thread_count(args.threads);
    c10::Device device = parse_device(args.device);
    if (args.pairs > 0) return run_pairs(args, device);
    OutputKind kind = output_kind(args.out);
    Generator generator = open_generator(args.checkpoint, device);
    Sampler* sampler = generator.sampler.get();
    int64_t classes = sampler->num_classes();
    if (args.class_id >= 0 && (classes == 0 || args.class_id >= classes))
        throw UserError("--class " + std::to_string(args.class_id) + ": the model has " +
                        (classes == 0 ? std::string("no classes") : std::to_string(classes) + " classes (0.." +
                                                                         std::to_string(classes - 1) + ")"));
    SampleOptions options;
    options.steps = args.steps;
    options.sampler = args.sampler;
    options.grid = args.grid;
    options.guidance = args.guidance;
    options.eta = args.eta;
    options.seed = args.seed;

    at::Tensor labels = default_labels(args.n, classes, args.class_id);
    std::fprintf(stderr, "sampling %lld with %s (%lld NFE each) from %s step %lld\n", static_cast<long long>(args.n),
                 sampler->describe(options).c_str(), static_cast<long long>(sampler->nfe(options)),
                 generator.method.c_str(), static_cast<long long>(generator.step));
    at::Tensor samples = draw_samples(*sampler, labels, options, args.seed, args.batch, device);
    bool images = samples.dim() == 4;
    if (kind == OutputKind::Grid) {
        if (images)
            write_image_grid(args.out, samples, classes > 0 ? labels : at::Tensor(), sampler->class_names());
        else
            write_scatter(args.out, samples, classes > 0 ? labels : at::Tensor(), at::Tensor(),
                          generator.method + ", " + sampler->describe(options));
    } else if (kind == OutputKind::Csv) {
        if (images) throw UserError("--out " + args.out + ": images go to a .png grid or a folder, not a CSV");
        write_points_csv(args.out, samples, labels);
    } else {
        if (!images) throw UserError("--out " + args.out + ": points go to a .png scatter or a .csv file");
        std::error_code error;
        fs::create_directories(args.out, error);
        if (error) throw UserError("cannot create " + args.out + ": " + error.message());
        for (int64_t i = 0; i < samples.size(0); ++i) {
            char name[32];
            std::snprintf(name, sizeof name, "%06lld.png", static_cast<long long>(i));
            write_image_grid((fs::path(args.out) / name).string(), samples.slice(0, i, i + 1), at::Tensor(), {}, 1, 1);
        }
    }
    std::fprintf(stderr, "wrote %s\n", args.out.c_str());
}

}  // namespace

void add_sample_command(CLI::App& app) {
    auto args = std::make_shared<SampleArgs>();
    CLI::App* command = app.add_subcommand("sample", "draw samples from a checkpoint");
    command->add_option("--ckpt", args->checkpoint, "checkpoint, run directory or exported .safetensors; analytic:8gaussians[-fine|-coarse] is the "
                        "exact flow of the toy mixture")->required();
    command->add_option("--out", args->out, "grid.png, points.csv, or a folder/ for one PNG per image")->required();
    command->add_option("--n", args->n, "number of samples")->capture_default_str()->check(CLI::Range(1, 10000000));
    command->add_option("--steps", args->steps, "sampling steps (0: the method's default)")->capture_default_str();
    command->add_option("--sampler", args->sampler, "sampler name (empty: the method's default)");
    command->add_option("--grid", args->grid, "time grid: uniform, karras, ddpm-skip")->capture_default_str();
    command->add_option("--cfg", args->guidance, "classifier-free guidance weight w (1: conditional)")
        ->capture_default_str();
    command->add_option("--eta", args->eta, "DDIM stochasticity")->capture_default_str();
    command->add_option("--class", args->class_id, "draw only this class (default: classes in turn)");
    command->add_option("--seed", args->seed, "noise seed")->capture_default_str();
    command->add_option("--batch", args->batch, "samples per forward batch")->capture_default_str()->check(CLI::Range(1, 1000000));
    command->add_option("--pairs", args->pairs,
                        "write N teacher pairs (noise, output, label) to --out as safetensors instead of images; "
                        "resumable")->check(CLI::Range(int64_t{1}, int64_t{100000000}));
    command->add_option("--device", args->device, "cpu or cuda")->capture_default_str();
    command->add_option("--threads", args->threads, "intra-op threads (0: all cores)")->capture_default_str();
    command->add_option("--cond-data", args->condition_file,
                        "forest runs: CSV of covariate values (and labels), one generated row per line");
    command->callback([args]() { run_sample(*args); });
}

}  // namespace onestep::cli
