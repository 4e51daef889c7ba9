// `onestep export`: a checkpoint's weights as safetensors with the resolved config in its metadata.
#include <iostream>

#include "cli/commands.hpp"
#include "core/trainer.hpp"

namespace onestep::cli {

void add_export_command(CLI::App& app) {
    struct ExportArgs {
        std::string checkpoint, out;
    };
    auto args = std::make_shared<ExportArgs>();
    CLI::App* command = app.add_subcommand("export", "write a checkpoint's weights as .safetensors");
    command->add_option("--ckpt", args->checkpoint, "checkpoint or run directory")->required();
    command->add_option("--out", args->out, "output .safetensors file")->required();
    command->callback([args]() {
        export_weights(args->checkpoint, args->out);
        std::cerr << "wrote " << args->out << "\n";
    });
}

}  // namespace onestep::cli
