// One function per subcommand, each adding itself to the CLI11 app.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace onestep::cli {

void add_train_command(CLI::App& app);
void add_sample_command(CLI::App& app);
void add_data_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_separate_command(CLI::App& app);
void add_launch_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_impute_command(CLI::App& app);   // `impute` and `classify` for forest runs
// `train forest-flow|forest-diffusion` under `train`.
void add_forest_train_commands(CLI::App& train);
// `sample --ckpt RUN` when RUN is a forest run directory.
bool is_forest_run(const std::string& path);
// CONDITION_FILE (may be empty): covariate values, and optionally labels, one row per generated row.
// STEPS: grid points of the sampler (0: the run's n_t levels).
void run_forest_sample(const std::string& run_dir, size_t rows, const std::string& out, uint64_t seed,
                       const std::string& condition_file, int steps);
// `eval tabular` (a no-op without the tabular part), added by add_eval_command.
void add_tabular_eval(CLI::App& eval);

}  // namespace onestep::cli
