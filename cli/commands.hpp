// One function per subcommand, each adding itself to the CLI11 app.
#pragma once
#include <CLI/CLI.hpp>

namespace onestep::cli {

void add_train_command(CLI::App& app);
void add_sample_command(CLI::App& app);
void add_data_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_separate_command(CLI::App& app);
void add_launch_command(CLI::App& app);
void add_forest_command(CLI::App& app);
// `eval tabular` (a no-op without the tabular part), added by add_eval_command.
void add_tabular_eval(CLI::App& eval);

}  // namespace onestep::cli
