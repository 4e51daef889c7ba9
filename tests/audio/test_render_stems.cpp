// The synthetic stems renderer: song generator determinism and ranges, BS.1770 loudness, the
// mix gain rule, and whole songs rendered through the real CLI (sums, peaks, loudness, seeds).
#if ONESTEP_WITH_AUDIO
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "audio/audio_io.hpp"
#include "audio/render/loudness.hpp"
#include "audio/render/midi_file.hpp"
#include "audio/render/render_stems.hpp"
#include "audio/render/song.hpp"
#include "core/files.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
namespace render = onestep::render;
namespace test = onestep::test;
using Catch::Matchers::Contains;

namespace {

std::vector<double> sine(double amplitude, double hz, int64_t sample_rate, double seconds) {
    std::vector<double> samples(static_cast<size_t>(seconds * sample_rate));
    for (size_t i = 0; i < samples.size(); ++i) samples[i] = amplitude * std::sin(2 * M_PI * hz * i / sample_rate);
    return samples;
}

double loudness_of_file(const std::string& path) {
    onestep::AudioData data = onestep::read_audio(path, torch::kDouble);
    at::Tensor samples = data.samples.contiguous();
    REQUIRE(samples.size(0) == 2);
    return render::integrated_loudness(samples[0].data_ptr<double>(), samples[1].data_ptr<double>(), samples.size(1),
                                       data.info.sample_rate);
}

std::string render_command(const std::string& out, const std::string& extra) {
    return std::string(ONESTEP_BINARY) + " data render-stems --out " + out + " " + extra;
}

}  // namespace

TEST_CASE("the song generator is a function of the seed and keeps its ranges", "[unit]") {
    render::SongRecipe recipe;
    for (uint64_t index = 0; index < 12; ++index) {
        uint64_t seed = render::song_seed("train", index, 0);
        render::Song song = render::generate_song(seed, recipe);
        render::Song again = render::generate_song(seed, recipe);
        CHECK(render::note_hash(song) == render::note_hash(again));
        CHECK(song.tempo_bpm == again.tempo_bpm);
        CHECK(song.tempo_bpm >= 70);
        CHECK(song.tempo_bpm <= 170);
        CHECK((song.beats_per_bar == 3 || song.beats_per_bar == 4));
        CHECK((song.total_bars == 52 || song.total_bars == 56));
        CHECK(song.progressions.at("verse") != song.progressions.at("chorus"));
        std::set<std::string> roles;
        for (const render::Part& part : song.parts) {
            roles.insert(part.role);
            REQUIRE(!part.notes.empty());
            int low = 0, high = 127;
            if (part.role == "bass") low = 28, high = 50;
            if (part.role == "lead") low = 55, high = 79;
            if (part.role == "piano") low = 48, high = 76;
            if (part.role == "guitar") low = 40, high = 76;
            for (const render::Note& note : part.notes) {
                INFO(part.role << " key " << note.key);
                CHECK(note.key >= low);
                CHECK(note.key <= high);
                CHECK(note.velocity >= 1);
                CHECK(note.velocity <= 127);
                CHECK(note.onset >= 0);
                CHECK(note.onset <= song.length_seconds() + 0.05);
                CHECK(note.duration > 0);
            }
        }
        for (const char* role : {"drums", "bass", "piano", "guitar", "lead"}) CHECK(roles.count(role) == 1);
        CHECK(song.parts.size() >= 6);
        CHECK(song.parts.size() <= 8);
    }
    render::SongRecipe slakh;
    slakh.lead = slakh.extras = false;
    CHECK(render::generate_song(render::song_seed("test", 0, 0), slakh).parts.size() == 4);
}

TEST_CASE("different splits and seeds give different songs", "[unit]") {
    render::SongRecipe recipe;
    std::set<uint64_t> train, test;
    for (int index = 0; index < 10; ++index) {
        train.insert(render::note_hash(render::generate_song(render::song_seed("train", index, 0), recipe)));
        test.insert(render::note_hash(render::generate_song(render::song_seed("test", index, 0), recipe)));
    }
    CHECK(train.size() == 10);
    CHECK(test.size() == 10);
    for (uint64_t hash : test) CHECK(train.count(hash) == 0);
    CHECK(render::song_seed("valid", 3, 0) != render::song_seed("train", 3, 0));
    CHECK(render::song_seed("test-ood", 3, 0) == render::song_seed("test", 3, 0));
    CHECK(render::song_seed("test", 3, 7) != render::song_seed("test", 3, 0));
}

TEST_CASE("BS.1770 loudness of a 997 Hz sine at -23 dBFS is -23 LUFS stereo, -26.01 on one channel", "[unit]") {
    const double amplitude = std::pow(10.0, -23.0 / 20.0);
    for (int64_t sample_rate : {48000, 44100, 22050}) {
        INFO("sample rate " << sample_rate);
        std::vector<double> tone = sine(amplitude, 997, sample_rate, 5.0);
        std::vector<double> silence(tone.size(), 0.0);
        CHECK(render::integrated_loudness(tone.data(), tone.data(), tone.size(), sample_rate) ==
              Approx(-23.0).margin(0.05));
        CHECK(render::integrated_loudness(tone.data(), silence.data(), tone.size(), sample_rate) ==
              Approx(-26.01).margin(0.05));
        std::vector<float> tone_float(tone.begin(), tone.end());
        CHECK(render::integrated_loudness(tone_float.data(), tone_float.data(), tone.size(), sample_rate) ==
              Approx(-23.0).margin(0.05));
        CHECK(std::isinf(render::integrated_loudness(silence.data(), silence.data(), silence.size(), sample_rate)));
    }
    CHECK(render::loudness_gain(-13.0, -19.0) == Approx(std::pow(10.0, 6.0 / 20.0)));
}

TEST_CASE("the global gain keeps the mix at -1 dBFS and every stem below full scale", "[unit]") {
    CHECK(render::mix_gain(0.5, {0.3, 0.2}) == 1.0);
    CHECK(render::mix_gain(2.0, {0.9, 1.2}) == Approx(0.891251 / 2.0));
    // Stems that cancel in the mix: the loudest stem sets the gain.
    CHECK(render::mix_gain(0.6, {1.5, 1.4}) == Approx(0.999 / 1.5));
    CHECK(render::mix_gain(0.0, {0.0}) == 1.0);
}

TEST_CASE("MIDI files hold a tempo track and one track per source, clipped to the window", "[unit]") {
    render::MidiTrack bass{"S01 bass", 0, 33, false, {{9.5, 1.0, 40, 100}, {10.5, 0.5, 43, 90}, {20.0, 1.0, 45, 90}}};
    // 120 BPM, window from 10 s for 5 s: the first note is clipped to tick 0, the last is dropped.
    std::string file = render::standard_midi_file({bass}, 120, 4, 10.0, 5.0);
    REQUIRE(file.size() > 14);
    CHECK(file.substr(0, 4) == "MThd");
    CHECK(file[11] == 2);   // tracks: tempo + bass
    size_t second_track = file.find("MTrk", file.find("MTrk") + 4);
    REQUIRE(second_track != std::string::npos);
    std::string track = file.substr(second_track);
    CHECK(track.find(std::string("\xC0\x21", 2)) != std::string::npos);                 // program 33
    CHECK(track.find(std::string("\x00\x90\x28\x64", 4)) != std::string::npos);        // key 40 at tick 0
    // After 480 ticks: key 40 off, then key 43 on.
    CHECK(track.find(std::string("\x83\x60\x80\x28\x00\x00\x90\x2B\x5A", 9)) != std::string::npos);
    CHECK(std::count(track.begin(), track.end(), '\x90') == 2);   // key 45 lies outside the window
}

TEST_CASE("stem sets map parts to stems and bad render options are refused by name", "[unit]") {
    CHECK(render::stem_names("musdb4") == std::vector<std::string>{"vocals", "drums", "bass", "other"});
    CHECK(render::stem_names("slakh4") == std::vector<std::string>{"bass", "drums", "guitar", "piano"});
    CHECK(render::stem_of_part("musdb4", "guitar") == "other");
    CHECK(render::stem_of_part("six", "guitar") == "guitar");
    CHECK(render::stem_of_part("six", "pad") == "other");
    CHECK(render::stem_of_part("musdb4", "lead") == "vocals");
    render::RenderStemsOptions options;
    options.out_dir = "unused";
    options.split = "test";
    options.stem_set = "eight";
    CHECK_THAT(test::user_error_message([&] { render::validate_render_options(options); }), Contains("musdb4"));
    options.stem_set = "six";
    options.songs = 0;
    CHECK_THAT(test::user_error_message([&] { render::validate_render_options(options); }), Contains("--songs"));
    options.songs = 2;
    options.split = "holdout";
    CHECK_THAT(test::user_error_message([&] { render::validate_render_options(options); }), Contains("test-ood"));
}

TEST_CASE("render-stems writes exact sums at -1 dBFS with the specified loudness, reproducibly", "[integration]") {
    test::TempDir dir;
    const std::string args = "--size ci --split test --songs 2 --seconds 5 --format float --keep-sources";
    test::CommandResult first = test::run_command(render_command(dir / "a", args));
    INFO(first.output);
    REQUIRE(first.exit_code == 0);
    CHECK_THAT(first.output, Contains("songs per minute"));
    CHECK_THAT(first.output, Contains("TimGM6mb"));

    for (const char* song : {"song_0000", "song_0001"}) {
        INFO(song);
        const std::string folder = dir / (std::string("a/test/") + song);
        nlohmann::json meta = nlohmann::json::parse(test::read_text(folder + "/metadata.json"));
        CHECK(meta["sample_rate"] == 22050);
        CHECK(meta["length_samples"] == 5 * 22050);
        CHECK(meta["split"] == "test");
        const double gain = meta["overall_gain"].get<double>();
        REQUIRE(gain > 0);
        REQUIRE(gain <= 1);

        at::Tensor mixture = onestep::read_audio(folder + "/mixture.wav", torch::kDouble).samples;
        CHECK(mixture.size(0) == 2);
        CHECK(mixture.size(1) == 5 * 22050);
        at::Tensor stem_sum = torch::zeros_like(mixture);
        for (const char* stem : {"vocals", "drums", "bass", "other"})
            stem_sum += onestep::read_audio(folder + "/" + stem + ".wav", torch::kDouble).samples;
        CHECK((mixture - stem_sum).abs().max().item<double>() <= 1e-6);
        CHECK(mixture.abs().max().item<double>() <= 0.891251 + 1e-6);
        CHECK(mixture.abs().max().item<double>() > 0.1);

        int rendered = 0;
        for (const auto& source : meta["sources"]) {
            if (source.contains("dropped")) continue;
            ++rendered;
            CHECK(fs::file_size(folder + "/" + source["midi"].get<std::string>()) > 30);
            INFO(source.dump());
            const double expected = source["target_lufs"].get<double>() + 20 * std::log10(gain);
            CHECK(loudness_of_file(folder + "/sources/" + source["id"].get<std::string>() + ".wav") ==
                  Approx(expected).margin(0.1));
            // Drums and bass are single-source stems: the stem itself has the source's loudness.
            const std::string stem = source["stem"];
            if (stem == "drums" || stem == "bass")
                CHECK(loudness_of_file(folder + "/" + stem + ".wav") == Approx(expected).margin(0.1));
        }
        CHECK(rendered >= 4);
        CHECK(test::read_text(folder + "/all_src.mid").substr(0, 4) == "MThd");
    }

    test::CommandResult second = test::run_command(render_command(dir / "b", args));
    REQUIRE(second.exit_code == 0);
    for (const std::string& relative : onestep::list_files_recursive(dir / "a")) {
        INFO(relative);
        REQUIRE(fs::exists(dir / ("b/" + relative)));
        CHECK(test::read_text(dir / ("a/" + relative)) == test::read_text(dir / ("b/" + relative)));
    }

    // A finished song folder is skipped, and a song does not depend on what the process rendered
    // before it: song 1 rendered alone is byte for byte song 1.
    test::write_text(dir / "c/test/song_0000/metadata.json", "{}");
    test::CommandResult resumed = test::run_command(render_command(dir / "c", args));
    REQUIRE(resumed.exit_code == 0);
    CHECK_THAT(resumed.output, Contains("rendered 1 songs (1 already there)"));
    for (const char* file : {"mixture.wav", "vocals.wav", "drums.wav", "bass.wav", "other.wav", "metadata.json",
                             "all_src.mid"}) {
        INFO(file);
        CHECK(test::read_text(dir / (std::string("a/test/song_0001/") + file)) ==
              test::read_text(dir / (std::string("c/test/song_0001/") + file)));
    }
}

TEST_CASE("render-stems refuses bad arguments with a clear message and writes nothing", "[integration]") {
    test::TempDir dir;
    struct Case {
        const char* args;
        const char* message;
    };
    // The other options are refused by the same validation, covered by the unit test above.
    const Case cases[] = {{"--split test --songs 2 --stems musdb5", "musdb4"},
                          {"--split test --songs 0", "--songs"},
                          {"--songs 2", "--split"}};
    for (const Case& c : cases) {
        INFO(c.args);
        test::CommandResult result = test::run_command(render_command(dir / "out", c.args));
        INFO(result.output);
        CHECK(result.exit_code != 0);
        CHECK_THAT(result.output, Contains(c.message));
        CHECK_FALSE(fs::exists(dir / "out"));
    }
}

#endif
