// `onestep report`: one Markdown page over every run under the given folders, with leaderboards.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "metrics/report.hpp"

namespace onestep::cli {

void add_report_command(CLI::App& app) {
    struct ReportArgs {
        std::vector<std::string> roots;
        std::string out;
        bool quiet = false;
    };
    auto args = std::make_shared<ReportArgs>();
    CLI::App* command = app.add_subcommand(
        "report", "one page over all runs: a table of runs and a leaderboard per metric (onestep report runs/)");
    command->add_option("folders", args->roots, "folders holding run folders (searched 6 levels deep)")->required();
    command->add_option("--out", args->out, "the Markdown page to write (default: FOLDER/report.md of the first folder)");
    command->add_flag("--quiet", args->quiet, "do not print the leaderboards");
    command->callback([args]() {
        Report report = collect_report(args->roots);
        std::string out = args->out.empty() ? (std::filesystem::path(args->roots.front()) / "report.md").string() : args->out;
        if (std::filesystem::is_directory(out)) throw UserError("--out " + out + " is a folder; name the page, e.g. " + out + "/report.md");
        write_report(report, out);
        if (!args->quiet) std::cout << format_leaderboards_text(report);
        if (!report.skipped.empty())
            std::cerr << report.skipped.size() << " file(s) not used, listed at the end of the page\n";
        auto count = [](size_t n, const char* noun) { return std::to_string(n) + " " + noun + (n == 1 ? "" : "s"); };
        std::cerr << "wrote " << out << " (" << count(report.runs.size(), "run") << ", "
                  << count(report.leaderboards.size(), "leaderboard") << ")\n";
    });
}

}  // namespace onestep::cli
