// The synthetic stems data set: seeded songs rendered per source with fluidsynth, normalised,
// summed into stems and an exact mixture, and written one song folder at a time.
//
//   onestep::render::RenderStemsOptions options;
//   options.out_dir = "/tmp/stems"; options.split = "test"; options.songs = 20; options.seconds = 30;
//   onestep::render::render_stems(options, std::cout);      // /tmp/stems/test/song_0000/mixture.wav ...
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace onestep::render {

struct RenderStemsOptions {
    std::string out_dir;
    std::string split;          // train, valid, test, test-id, test-ood; "" = every split of SIZE
    int64_t songs = -1;         // -1: the size's count for the split
    double seconds = -1;        // -1: the size's length
    std::string stem_set = "musdb4";
    uint64_t seed = 0;          // 0 reproduces the spec's song seeds
    std::string size;           // ci, small, standard; "" = standard when SPLIT is given
    int64_t sample_rate = 0;    // 0: the size's rate
    std::string format = "pcm16";   // pcm16, flac, float
    double loudness_jitter = 6.0;   // dB around -13 LUFS
    bool keep_sources = false;
};

struct RenderStemsReport {
    int64_t rendered = 0;
    int64_t skipped = 0;
    double wall_seconds = 0;
};

// Validates OPTIONS (UserError naming the option and its accepted values) before anything is
// written, then renders every missing song; finished song folders are kept as they are.
RenderStemsReport render_stems(const RenderStemsOptions& options, std::ostream& log);

// Throws UserError for a bad option; render_stems calls it first.
void validate_render_options(const RenderStemsOptions& options);

// splitmix64((tag << 40) ^ index), tags train 1, valid 2, test/test-id/test-ood 3; a non-zero
// BASE_SEED moves every split to another stream.
uint64_t song_seed(const std::string& split, int64_t index, uint64_t base_seed);

// The stems of a set: musdb4 = vocals, drums, bass, other; slakh4 = bass, drums, guitar, piano;
// six = vocals, drums, bass, guitar, piano, other.
std::vector<std::string> stem_names(const std::string& stem_set);

// The stem a song part goes to ("lead" -> vocals, extras -> other, ...).
std::string stem_of_part(const std::string& stem_set, const std::string& role);

}  // namespace onestep::render
