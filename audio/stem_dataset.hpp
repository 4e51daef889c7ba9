// MUSDB18-style stem folders (audio spec §2.1) and the random-chunk training sampler (§2.2):
// <root>/<split>/<song>/{mixture,<stem>...}.{wav,flac}, stem names taken from the data.
//
//   onestep::StemDataset train = onestep::StemDataset::open("data/stems", "train", {});
//   onestep::StemChunkSampler sampler(train, {.chunk_frames = 65536, .batch = 4, .seed = 1});
//   onestep::StemBatch batch = sampler.batch(step);     // stems [4, K, C, T], mixture [4, C, T]
//   at::Tensor vocals = train.read_stem(song, k, 0, train.song(song).frames);   // whole track
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace onestep {

struct StemDatasetOptions {
    std::vector<std::string> stems;   // empty: the sorted basenames (minus mixture) of the first song
    bool mono_to_stereo = false;      // duplicate mono files; otherwise a mono file is an error
    bool missing_stem_zeros = false;  // a song without a stem reads it as silence instead of failing
    std::string residual_stem;        // this stem is mixture - sum(other stems) (needs mixture files)
    int64_t max_length_mismatch = 1024;   // stems differing by at most this many frames are cropped
    bool use_index = true;            // read and refresh <root>/.onestep-index.json
    bool check_mixture_sum = true;    // measure (or look up) whether each mixture is the sum of its stems
};

struct StemSong {
    std::string name;
    std::string folder;
    std::string mixture;                   // empty: no mixture file
    std::vector<std::string> stem_files;   // per stem; empty for a missing or residual stem
    int64_t frames = 0;                    // common length after cropping
    int64_t channels = 0;                  // channels in the files (1 or the dataset's)
    double mixture_sum_snr_db = 0;         // 10 log10(|x|^2 / |x - sum s|^2); +inf when exact; 0 without mixture
};

class StemDataset {
  public:
    // Scans and validates ROOT/SPLIT; every problem is a UserError naming the file. Warnings
    // (cropped lengths, a mixture that is not the sum of its stems) go to stderr.
    static StemDataset open(const std::string& root, const std::string& split, const StemDatasetOptions& options);

    const std::vector<std::string>& stems() const { return stems_; }
    const std::vector<StemSong>& songs() const { return songs_; }
    const StemSong& song(size_t index) const { return songs_.at(index); }
    int64_t sample_rate() const { return sample_rate_; }
    int64_t channels() const { return channels_; }
    int64_t total_frames() const;
    const std::string& split_dir() const { return split_dir_; }

    // Frames [offset, offset + frames) of stem K of song SONG as float32 [channels, frames]; past
    // the end reads zeros. Missing stems read zeros; the residual stem is computed.
    at::Tensor read_stem(size_t song, size_t stem, int64_t offset, int64_t frames) const;
    // The mixture file's frames, or the sum of the stems when the song has none.
    at::Tensor read_mixture(size_t song, int64_t offset, int64_t frames) const;

  private:
    at::Tensor read_file(const std::string& path, int64_t offset, int64_t frames) const;
    std::string split_dir_;
    std::vector<std::string> stems_;
    std::vector<StemSong> songs_;
    int64_t sample_rate_ = 0, channels_ = 0;
    int residual_index_ = -1;
};

struct StemSamplerOptions {
    int64_t chunk_frames = 65536;
    int64_t batch = 4;
    double p_remix = 1.0;        // each stem from its own song and offset (Demucs/MSST remixing)
    double gain_min = 0.25, gain_max = 1.25;
    double p_channel_swap = 0.5;
    double p_polarity_flip = 0.5;
    double silent_threshold = 1e-3;   // mean |s| below this: redraw the stem chunk
    int silent_retries = 8;           // then accept it (models must learn silence too)
    uint64_t seed = 0;
};

struct StemBatch {
    at::Tensor stems;     // [B, K, C, T]
    at::Tensor mixture;   // [B, C, T] = sum over K after augmentation
};

// Draws training chunks. batch(step) depends only on (seed, step), so a resumed run sees the
// same data as an uninterrupted one. Songs are drawn proportionally to their length, offsets
// uniformly; a mixture quieter than the threshold is always redrawn.
class StemChunkSampler {
  public:
    StemChunkSampler(const StemDataset& dataset, const StemSamplerOptions& options);
    StemBatch batch(int64_t step) const;
    const StemSamplerOptions& options() const { return options_; }

  private:
    const StemDataset& dataset_;
    StemSamplerOptions options_;
    std::vector<double> song_weights_;
};

}  // namespace onestep
