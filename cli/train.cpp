// `onestep train METHOD`: resolve the config, prepare the run directory, hand over to the Trainer.
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cli/commands.hpp"
#include "core/checkpoint.hpp"
#include "core/distributed.hpp"
#include "core/error.hpp"
#include "core/runtime.hpp"
#include "core/trainer.hpp"

namespace fs = std::filesystem;

namespace onestep::cli {
namespace {

struct TrainArgs {
    std::string method;
    std::string config_path;
    std::vector<std::string> overrides;
    std::string run_dir;
    std::string resume;
    std::string device = "cpu";
    int threads = 0;
    int64_t stop_at_step = -1;
    bool help = false;
};

std::string timestamp() {
    std::time_t now = std::time(nullptr);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y%m%d-%H%M%S", std::localtime(&now));
    return buffer;
}

std::string methods_text() {
    std::string text = "Methods:\n";
    for (const MethodInfo* info : registered_methods()) {
        std::string name = info->name;
        name.resize(std::max<size_t>(name.size(), 16), ' ');
        text += "  " + name + info->description + "\n";
    }
    return text + "\n`onestep train METHOD --help` lists the method's config keys.\n";
}

void run_train(CLI::App& command, const TrainArgs& args) {
    if (args.help || args.method.empty()) {
        std::cout << command.help();
        if (args.method.empty()) {
            std::cout << "\n" << methods_text();
        } else {
            const MethodInfo& info = find_method(args.method);
            std::cout << "\n" << info.name << ": " << info.description
                      << "\n\nConfig keys (YAML file via --config, or --set key=value):\n"
                      << training_options(info).help_text();
        }
        if (!args.help) throw UserError("train: name a method, e.g. `onestep train flow --config configs/toy2d/flow.yaml`");
        return;
    }
    const MethodInfo& info = find_method(args.method);
    OptionTable table = training_options(info);

    TrainRequest request;
    request.method = &info;
    request.device = parse_device(args.device);
    request.stop_at_step = args.stop_at_step;
    if (!args.resume.empty()) {
        request.resume_from = resolve_checkpoint_path(args.resume);
        Checkpoint header = peek_checkpoint(request.resume_from);
        if (header.method != info.name)
            throw UserError(request.resume_from + ": is a '" + header.method + "' checkpoint, not '" + info.name + "'");
        Config base = config_from_yaml_text(table, header.config_yaml, request.resume_from + " (config)");
        request.config = resolve_config_from(table, base, args.config_path, args.overrides);
        fs::path ckpt_dir = fs::path(request.resume_from).parent_path();
        request.run_dir = args.run_dir.empty() ? ckpt_dir.parent_path().string() : args.run_dir;
    } else {
        request.config = resolve_config(table, args.config_path, args.overrides);
        request.run_dir = args.run_dir.empty() ? "runs/" + info.name + "-" + timestamp() : args.run_dir;
        if (fs::exists(fs::path(request.run_dir) / "checkpoints" / "latest.ckpt"))
            throw UserError("run directory " + request.run_dir + " already holds a run; continue it with --resume " +
                            request.run_dir + " or choose another --run-dir");
    }
    // Several processes (a launcher's WORLD_SIZE, RANK, ...): the cores of a machine are shared
    // by its processes, and each process drives the GPU of its LOCAL_RANK.
    request.distributed = distributed_env_from_environment();
    int threads = args.threads;
    if (threads <= 0 && request.distributed.local_world_size > 1)
        threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / request.distributed.local_world_size);
    if (request.device.is_cuda() && request.distributed.world_size > 1)
        request.device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(request.distributed.local_rank));
    set_thread_count(threads);
    train(request);
}

}  // namespace

void add_train_command(CLI::App& app) {
    auto args = std::make_shared<TrainArgs>();
    CLI::App* command = app.add_subcommand("train", "train a method (`onestep train --help` lists them)");
    command->set_help_flag();
    command->add_flag("-h,--help", args->help, "this help; with a METHOD, also its config keys");
    command->add_option("method", args->method, "method to train");
    command->add_option("-c,--config", args->config_path, "YAML config file");
    command->add_option("--set", args->overrides, "override a config key: --set optim.lr=0.001 (repeatable)");
    command->add_option("--run-dir", args->run_dir, "run directory (default runs/METHOD-TIMESTAMP)");
    command->add_option("--resume", args->resume, "continue a run: its directory or a checkpoint file");
    command->add_option("--device", args->device, "cpu or cuda")->capture_default_str();
    command->add_option("--threads", args->threads, "intra-op threads (0: all cores, shared by the LOCAL_WORLD_SIZE processes of a launch)")->capture_default_str();
    command->add_option("--stop-at-step", args->stop_at_step,
                        "stop after this many steps in all, with a checkpoint (the schedule still follows `steps`)");
    add_forest_train_commands(*command);
    command->callback([command, args]() {
        if (!command->get_subcommands().empty()) return;   // a forest method ran as its own subcommand
        run_train(*command, *args);
    });
}

}  // namespace onestep::cli
