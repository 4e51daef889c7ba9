// Top-level CLI: subcommands, --version, and the translation of errors into one line + status.
#include "cli/app.hpp"

#include <torch/torch.h>

#include <cstdio>
#include <iostream>

#include "cli/commands.hpp"
#include "core/error.hpp"

namespace onestep::cli {

int run(int argc, char** argv) {
    CLI::App app{"onestep: train, sample and evaluate one-step generative models"};
    app.set_version_flag("--version", std::string("onestep ") + ONESTEP_VERSION + " (libtorch " + TORCH_VERSION + ")");
    app.require_subcommand(1);
    app.fallthrough(false);
    add_train_command(app);
    add_sample_command(app);
    add_data_command(app);
    add_eval_command(app);
    add_separate_command(app);
    add_export_command(app);
    add_report_command(app);
    add_launch_command(app);
    add_impute_command(app);
    try {
        app.parse(argc, argv);
        return 0;
    } catch (const CLI::Success& success) {
        return app.exit(success);
    } catch (const CLI::ParseError& error) {
        app.exit(error);
        return 2;
    } catch (const Interrupted& interrupted) {
        std::fprintf(stderr, "\n%s\n", interrupted.what());
        return 130;
    } catch (const UserError& error) {
        std::fprintf(stderr, "error: %s\n", error.what());
        return 2;
    } catch (const c10::Error& error) {
        std::fprintf(stderr, "error: %s\n", error.what_without_backtrace());
        return 1;
    } catch (const std::exception& error) {
        std::fprintf(stderr, "error: %s\n", error.what());
        return 1;
    }
}

}  // namespace onestep::cli
