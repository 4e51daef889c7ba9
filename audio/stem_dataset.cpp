// Stem folders: scan, validate (rates, channels, lengths, stems present), cache the probes in
// an index keyed by modification times, read chunks; and the augmenting chunk sampler.
#include "audio/stem_dataset.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "audio/audio_io.hpp"
#include "audio/stem_files.hpp"
#include "core/error.hpp"
#include "core/files.hpp"

namespace fs = std::filesystem;

namespace onestep {
namespace {

constexpr const char* kIndexName = ".onestep-index.json";
constexpr const char* kIndexFormat = "onestep.stem-index/1";
constexpr int64_t kBlockFrames = 1 << 16;

// A file's identity for the index: modification time and size.
std::string file_stamp(const std::string& path) {
    std::error_code error;
    auto time = fs::last_write_time(path, error);
    auto size = fs::file_size(path, error);
    return std::to_string(time.time_since_epoch().count()) + ":" + std::to_string(size);
}

// Probes through the index when the stamp matches, else opens the file.
class ProbeCache {
  public:
    explicit ProbeCache(std::string index_path, bool enabled) : path_(std::move(index_path)), enabled_(enabled) {
        if (!enabled_) return;
        std::error_code error;
        if (!fs::exists(path_, error)) return;
        try {
            std::FILE* file = std::fopen(path_.c_str(), "rb");
            if (!file) return;
            nlohmann::json loaded = nlohmann::json::parse(file, nullptr, /*allow_exceptions=*/false);
            std::fclose(file);
            if (loaded.is_object() && loaded.value("format", "") == kIndexFormat) index_ = loaded;
        } catch (...) {
            // An unreadable index is rebuilt from the files.
        }
    }

    AudioInfo probe(const std::string& path) {
        std::string stamp = file_stamp(path);
        if (enabled_ && index_.contains("files") && index_["files"].contains(path)) {
            const auto& entry = index_["files"][path];
            if (entry.value("stamp", "") == stamp) {
                AudioInfo info;
                info.sample_rate = entry.at("sample_rate");
                info.channels = entry.at("channels");
                info.frames = entry.at("frames");
                info.format = entry.value("format", "");
                return info;
            }
        }
        AudioInfo info = probe_audio(path);
        index_["files"][path] = {{"stamp", stamp}, {"sample_rate", info.sample_rate}, {"channels", info.channels},
                                 {"frames", info.frames}, {"format", info.format}};
        changed_ = true;
        return info;
    }

    // A per-song value stored under KEY, valid while STAMP is unchanged.
    bool lookup(const std::string& key, const std::string& stamp, double* value) const {
        if (!enabled_ || !index_.contains("songs") || !index_["songs"].contains(key)) return false;
        const auto& entry = index_["songs"][key];
        if (entry.value("stamp", "") != stamp || !entry.contains("mixture_sum_snr_db")) return false;
        *value = entry["mixture_sum_snr_db"].is_null() ? std::numeric_limits<double>::infinity()
                                                        : entry["mixture_sum_snr_db"].get<double>();
        return true;
    }
    void store(const std::string& key, const std::string& stamp, double value) {
        index_["songs"][key] = {{"stamp", stamp},
                                {"mixture_sum_snr_db", std::isfinite(value) ? nlohmann::json(value) : nlohmann::json()}};
        changed_ = true;
    }

    // Rewrites the index when something changed; a read-only dataset just goes without one.
    void save() {
        if (!enabled_ || !changed_) return;
        index_["format"] = kIndexFormat;
        try {
            write_file_atomic(path_, index_.dump(1));
        } catch (const UserError&) {
        }
    }

  private:
    std::string path_;
    bool enabled_;
    bool changed_ = false;
    nlohmann::json index_ = nlohmann::json::object();
};

// [C, n] with N frames of FILE_CHANNELS channels widened to CHANNELS (mono duplicated).
at::Tensor widen(at::Tensor block, int64_t channels) {
    if (block.size(0) == channels) return block;
    return block.expand({channels, block.size(1)}).contiguous();
}

}  // namespace

StemDataset StemDataset::open(const std::string& root, const std::string& split, const StemDatasetOptions& options) {
    StemDataset dataset;
    std::error_code error;
    if (!fs::is_directory(root, error)) throw UserError("stem dataset " + root + " is not a folder");
    dataset.split_dir_ = (fs::path(root) / split).string();
    if (!fs::is_directory(dataset.split_dir_, error))
        throw UserError("stem dataset " + root + " has no '" + split + "' split: expected " + dataset.split_dir_ +
                        "/<song>/<stem>.wav");
    std::vector<std::string> folders = subfolders_of(dataset.split_dir_);
    if (folders.empty()) throw UserError(dataset.split_dir_ + " holds no song folders");
    ProbeCache cache((fs::path(root) / kIndexName).string(), options.use_index);

    // The stem list: from the options, else from the first song's files.
    dataset.stems_ = options.stems;
    if (dataset.stems_.empty()) {
        for (const auto& [name, path] : audio_files_in(folders.front()))
            if (name != kMixtureStem) dataset.stems_.push_back(name);
        if (!options.residual_stem.empty() &&
            std::find(dataset.stems_.begin(), dataset.stems_.end(), options.residual_stem) == dataset.stems_.end())
            dataset.stems_.push_back(options.residual_stem);
        std::sort(dataset.stems_.begin(), dataset.stems_.end());
    }
    if (dataset.stems_.empty()) throw UserError("song " + folders.front() + " has no stem files (.wav, .flac, .ogg)");
    for (size_t k = 0; k < dataset.stems_.size(); ++k) {
        if (dataset.stems_[k] == kMixtureStem) throw UserError("'mixture' cannot be a stem name");
        if (dataset.stems_[k] == options.residual_stem) dataset.residual_index_ = static_cast<int>(k);
    }
    if (!options.residual_stem.empty() && dataset.residual_index_ < 0)
        throw UserError("residual stem '" + options.residual_stem + "' is not among the stems {" +
                        join_names(dataset.stems_) + "}");

    std::string first_file;
    for (const std::string& folder : folders) {
        StemSong song;
        song.folder = folder;
        song.name = fs::path(folder).filename().string();
        std::map<std::string, std::string> files = audio_files_in(folder);
        if (files.count(kMixtureStem)) song.mixture = files[kMixtureStem];
        if (dataset.residual_index_ >= 0 && song.mixture.empty())
            throw UserError("song " + folder + " has no mixture file, which the residual stem '" + options.residual_stem +
                            "' needs");

        std::vector<std::pair<std::string, AudioInfo>> probed;   // every file of the song
        for (size_t k = 0; k < dataset.stems_.size(); ++k) {
            const std::string& stem = dataset.stems_[k];
            if (static_cast<int>(k) == dataset.residual_index_) {
                song.stem_files.emplace_back();
                continue;
            }
            auto found = files.find(stem);
            if (found == files.end()) {
                if (!options.missing_stem_zeros)
                    throw UserError("song " + folder + " has no stem '" + stem + "' (expected " + folder + "/" + stem +
                                    ".wav; the stems are {" + join_names(dataset.stems_) +
                                    "}; --missing-stem zeros reads it as silence)");
                song.stem_files.emplace_back();
                continue;
            }
            song.stem_files.push_back(found->second);
            probed.emplace_back(found->second, cache.probe(found->second));
        }
        if (!song.mixture.empty()) probed.emplace_back(song.mixture, cache.probe(song.mixture));
        if (probed.empty()) throw UserError("song " + folder + " has none of the stems {" + join_names(dataset.stems_) + "}");

        int64_t shortest = std::numeric_limits<int64_t>::max(), longest = 0;
        for (const auto& [path, info] : probed) {
            if (dataset.sample_rate_ == 0) {
                dataset.sample_rate_ = info.sample_rate;
                dataset.channels_ = options.mono_to_stereo && info.channels == 1 ? 2 : info.channels;
                first_file = path;
            }
            if (info.sample_rate != dataset.sample_rate_)
                throw UserError(path + " is at " + std::to_string(info.sample_rate) + " Hz but " + first_file + " is at " +
                                std::to_string(dataset.sample_rate_) + " Hz; resample the dataset to one rate");
            bool widened = options.mono_to_stereo && info.channels == 1 && dataset.channels_ == 2;
            if (info.channels != dataset.channels_ && !widened)
                throw UserError(path + " has " + std::to_string(info.channels) + " channel(s) but " + first_file + " has " +
                                std::to_string(dataset.channels_) +
                                (info.channels == 1 ? " (--mono-to-stereo duplicates mono files)" : ""));
            if (song.channels == 0 || info.channels != dataset.channels_) song.channels = info.channels;
            shortest = std::min(shortest, info.frames);
            longest = std::max(longest, info.frames);
        }
        if (longest - shortest > options.max_length_mismatch)
            throw UserError("the files of song " + folder + " differ in length by " + std::to_string(longest - shortest) +
                            " frames (" + std::to_string(shortest) + " to " + std::to_string(longest) +
                            "); at most " + std::to_string(options.max_length_mismatch) + " are cropped");
        if (longest != shortest)
            std::fprintf(stderr, "warning: song %s: files differ by %lld frames; cropped to %lld\n", folder.c_str(),
                         static_cast<long long>(longest - shortest), static_cast<long long>(shortest));
        if (shortest == 0) throw UserError("song " + folder + " is empty (0 frames)");
        song.frames = shortest;
        dataset.songs_.push_back(std::move(song));
    }

    // A mixture that is not the sum of its stems usually means a wrong stem list or gain.
    for (size_t i = 0; i < dataset.songs_.size(); ++i) {
        StemSong& song = dataset.songs_[i];
        if (!options.check_mixture_sum || song.mixture.empty() || dataset.residual_index_ >= 0) continue;
        std::string stamp = file_stamp(song.mixture);
        for (const auto& file : song.stem_files) stamp += "|" + (file.empty() ? std::string("-") : file_stamp(file));
        double snr = 0;
        if (!cache.lookup(song.folder, stamp, &snr)) {
            double signal = 0, error_energy = 0;
            for (int64_t offset = 0; offset < song.frames; offset += kBlockFrames) {
                int64_t n = std::min(kBlockFrames, song.frames - offset);
                at::Tensor mixture = dataset.read_mixture(i, offset, n).to(torch::kDouble);
                at::Tensor sum = torch::zeros_like(mixture);
                for (size_t k = 0; k < dataset.stems_.size(); ++k) sum += dataset.read_stem(i, k, offset, n).to(torch::kDouble);
                signal += mixture.pow(2).sum().item<double>();
                error_energy += (mixture - sum).pow(2).sum().item<double>();
            }
            snr = error_energy == 0 ? std::numeric_limits<double>::infinity() : 10 * std::log10(signal / error_energy);
            cache.store(song.folder, stamp, snr);
        }
        song.mixture_sum_snr_db = snr;
        if (snr < 30)
            std::fprintf(stderr, "warning: song %s: mixture is not the sum of stems (%.1f dB, below 30 dB)\n",
                         song.folder.c_str(), snr);
    }
    cache.save();
    return dataset;
}

int64_t StemDataset::total_frames() const {
    int64_t total = 0;
    for (const auto& song : songs_) total += song.frames;
    return total;
}

at::Tensor StemDataset::read_file(const std::string& path, int64_t offset, int64_t frames) const {
    at::Tensor out = torch::zeros({channels_, frames});
    if (offset >= 0 && frames > 0) {
        AudioReader reader(path);
        int64_t available = std::min<int64_t>(frames, reader.info().frames - offset);
        if (available > 0) {
            reader.seek(offset);
            out.slice(1, 0, available).copy_(widen(reader.read_exactly(available), channels_));
        }
    }
    return out;
}

at::Tensor StemDataset::read_stem(size_t song_index, size_t stem, int64_t offset, int64_t frames) const {
    const StemSong& song = songs_.at(song_index);
    TORCH_CHECK(stem < stems_.size(), "stem index out of range");
    frames = std::max<int64_t>(0, std::min(frames, song.frames - offset));
    if (static_cast<int>(stem) == residual_index_) {
        at::Tensor residual = read_file(song.mixture, offset, frames);
        for (size_t k = 0; k < stems_.size(); ++k)
            if (k != stem && !song.stem_files[k].empty()) residual -= read_file(song.stem_files[k], offset, frames);
        return residual;
    }
    if (song.stem_files[stem].empty()) return torch::zeros({channels_, frames});
    return read_file(song.stem_files[stem], offset, frames);
}

at::Tensor StemDataset::read_mixture(size_t song_index, int64_t offset, int64_t frames) const {
    const StemSong& song = songs_.at(song_index);
    frames = std::max<int64_t>(0, std::min(frames, song.frames - offset));
    if (!song.mixture.empty()) return read_file(song.mixture, offset, frames);
    at::Tensor sum = torch::zeros({channels_, frames});
    for (size_t k = 0; k < stems_.size(); ++k) sum += read_stem(song_index, k, offset, frames);
    return sum;
}

StemChunkSampler::StemChunkSampler(const StemDataset& dataset, const StemSamplerOptions& options)
    : dataset_(dataset), options_(options) {
    if (options.chunk_frames <= 0 || options.batch <= 0)
        throw UserError("the stem sampler needs a positive chunk length and batch size");
    if (!(options.gain_min > 0 && options.gain_min <= options.gain_max))
        throw UserError("stem gain range must satisfy 0 < gain_min <= gain_max");
    for (const auto& song : dataset.songs()) song_weights_.push_back(static_cast<double>(song.frames));
}

StemBatch StemChunkSampler::batch(int64_t step) const {
    // One generator per (seed, step): batches are reproducible and independent of history.
    std::seed_seq seeds{static_cast<uint32_t>(options_.seed), static_cast<uint32_t>(options_.seed >> 32),
                        static_cast<uint32_t>(step), static_cast<uint32_t>(static_cast<uint64_t>(step) >> 32)};
    std::mt19937_64 rng(seeds);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    std::discrete_distribution<size_t> pick_song(song_weights_.begin(), song_weights_.end());
    const int64_t stems = static_cast<int64_t>(dataset_.stems().size()), channels = dataset_.channels();
    const int64_t length = options_.chunk_frames;

    auto pick_offset = [&](size_t song) {
        int64_t room = dataset_.song(song).frames - length;
        return room <= 0 ? int64_t{0} : std::uniform_int_distribution<int64_t>(0, room)(rng);
    };
    auto quiet = [&](const at::Tensor& chunk) { return chunk.abs().mean().item<double>() < options_.silent_threshold; };

    StemBatch out{torch::zeros({options_.batch, stems, channels, length}), torch::zeros({options_.batch, channels, length})};
    constexpr int kMixtureAttempts = 100;
    for (int64_t b = 0; b < options_.batch; ++b) {
        for (int attempt = 0;; ++attempt) {
            bool remix = uniform(rng) < options_.p_remix;
            size_t shared_song = pick_song(rng);
            int64_t shared_offset = pick_offset(shared_song);
            at::Tensor example = out.stems[b];
            for (int64_t k = 0; k < stems; ++k) {
                at::Tensor chunk;
                for (int retry = 0; retry <= options_.silent_retries; ++retry) {
                    size_t song = remix ? pick_song(rng) : shared_song;
                    int64_t offset = remix ? pick_offset(song) : shared_offset;
                    chunk = dataset_.read_stem(song, static_cast<size_t>(k), offset, length);
                    if (!remix || !quiet(chunk)) break;   // coherent stems are never redrawn one by one
                }
                double gain = options_.gain_min + (options_.gain_max - options_.gain_min) * uniform(rng);
                if (uniform(rng) < options_.p_polarity_flip) gain = -gain;
                if (channels == 2 && uniform(rng) < options_.p_channel_swap) chunk = chunk.flip({0});
                example[k].zero_();
                example[k].slice(1, 0, chunk.size(1)).copy_(chunk * gain);
            }
            out.mixture[b].copy_(example.sum(0));
            if (!quiet(out.mixture[b])) break;
            if (attempt + 1 >= kMixtureAttempts)
                throw UserError("stem dataset " + dataset_.split_dir() + ": " + std::to_string(kMixtureAttempts) +
                                " chunks in a row had a mixture with mean |x| below " +
                                std::to_string(options_.silent_threshold) + "; is the data silent?");
        }
    }
    return out;
}

}  // namespace onestep
