// The song -> files pipeline of the stems renderer: per-source fluidsynth renders, loudness
// normalisation, exact float64 sums, one global gain, and song folders that appear atomically.
#include "audio/render/render_stems.hpp"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

#include "audio/audio_io.hpp"
#include "audio/render/loudness.hpp"
#include "audio/render/midi_file.hpp"
#include "audio/render/random.hpp"
#include "audio/render/song.hpp"
#include "audio/render/soundfonts.hpp"
#include "audio/render/synth.hpp"
#include "core/error.hpp"
#include "core/files.hpp"

namespace fs = std::filesystem;

namespace onestep::render {
namespace {

constexpr const char* kGenerator = "onestep-render-stems";
constexpr int kGeneratorVersion = 1;
constexpr double kTargetLufs = -13.0;
constexpr double kFadeSeconds = 0.020;
constexpr double kPrerollSeconds = 1.0;   // lets notes and reverb already sound at the window start
constexpr int kProgramRetries = 2;        // a silent source is re-drawn with another program

const std::vector<std::string> kSplits = {"train", "valid", "test", "test-id", "test-ood"};

void remove_tree_or_throw(const std::string& path) {
    std::string error;
    if (!remove_tree(path, &error)) throw UserError(error);
}
const std::vector<std::string> kStemSets = {"musdb4", "slakh4", "six"};
const std::vector<std::string> kSizes = {"ci", "small", "standard"};
const std::vector<std::string> kFormats = {"pcm16", "flac", "float"};

struct SizePreset {
    int64_t train, valid, test;
    double seconds;
    int64_t sample_rate;
    bool timgm_only;
};

SizePreset size_preset(const std::string& size) {
    if (size == "ci") return {6, 0, 2, 10, 22050, true};
    if (size == "small") return {24, 4, 8, 30, 44100, false};
    return {100, 10, 25, 90, 44100, false};
}

std::string join(const std::vector<std::string>& items) {
    std::string text;
    for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
    return text;
}

bool contains(const std::vector<std::string>& items, const std::string& item) {
    return std::find(items.begin(), items.end(), item) != items.end();
}

int64_t split_count(const SizePreset& preset, const std::string& split) {
    if (split == "train") return preset.train;
    if (split == "valid") return preset.valid;
    return preset.test;
}

AudioFormat audio_format(const std::string& format) {
    if (format == "flac") return AudioFormat::kFlacPcm16;
    if (format == "float") return AudioFormat::kWavFloat;
    return AudioFormat::kWavPcm16;
}

std::string extension(const std::string& format) { return format == "flac" ? ".flac" : ".wav"; }

// Everything the run settles once: counts, length, rate, and the splits to render.
struct RunPlan {
    std::vector<std::pair<std::string, int64_t>> splits;
    double seconds;
    int64_t sample_rate;
    bool timgm_only;
};

RunPlan plan_run(const RenderStemsOptions& options) {
    SizePreset preset = size_preset(options.size);
    RunPlan plan;
    plan.seconds = options.seconds > 0 ? options.seconds : preset.seconds;
    plan.sample_rate = options.sample_rate > 0 ? options.sample_rate : preset.sample_rate;
    plan.timgm_only = preset.timgm_only;
    std::vector<std::string> splits = options.split.empty() ? std::vector<std::string>{"train", "valid", "test"}
                                                            : std::vector<std::string>{options.split};
    for (const std::string& split : splits) {
        int64_t count = options.songs > 0 ? options.songs : split_count(preset, split);
        if (count > 0) plan.splits.push_back({split, count});
    }
    return plan;
}

// One rendered source and what metadata.json says about it.
struct Source {
    std::string id;
    const Part* part = nullptr;
    std::string stem;
    std::string soundfont;
    int bank = 0;
    int program = 0;
    std::string program_name;
    ChannelSettings channel;
    double loudness_raw = 0;
    double target = 0;
    double gain = 0;
    std::string dropped;   // why the source is not in the mix; "" when it is
    StereoAudio audio;
};

class RendererCache {
  public:
    explicit RendererCache(int64_t sample_rate) : sample_rate_(sample_rate) {}
    FluidRenderer& get(const std::string& path) {
        auto& slot = renderers_[path];
        if (!slot) slot = std::make_unique<FluidRenderer>(path, sample_rate_);
        return *slot;
    }

  private:
    int64_t sample_rate_;
    std::map<std::string, std::unique_ptr<FluidRenderer>> renderers_;
};

void apply_fades(StereoAudio& audio, int64_t fade_frames) {
    int64_t frames = audio.frames();
    fade_frames = std::min(fade_frames, frames / 2);
    for (int64_t i = 0; i < fade_frames; ++i) {
        float gain = static_cast<float>(i) / fade_frames;
        for (std::vector<float>* channel : {&audio.left, &audio.right}) {
            (*channel)[i] *= gain;
            (*channel)[frames - 1 - i] *= gain;
        }
    }
}

bool has_notes_in(const Part& part, double start, double end) {
    for (const Note& note : part.notes)
        if (note.onset < end && note.onset + note.duration > start) return true;
    return false;
}

// Draws soundfont, program and channel settings for PART and renders it into the window.
Source render_source(const Part& part, int index, const Song& song, const std::string& stem_set,
                     const SoundFontPool& pool, RendererCache& renderers, const EffectSettings& effects,
                     double window_start, int64_t frames, int64_t sample_rate, double jitter) {
    Rng rng(splitmix64(song.seed ^ (0x5EED000000ULL + static_cast<uint64_t>(index))));
    Source source;
    char id[8];
    std::snprintf(id, sizeof id, "S%02d", index);
    source.id = id;
    source.part = &part;
    source.stem = stem_of_part(stem_set, part.role);
    source.soundfont = rng.pick(pool.paths);
    FluidRenderer& renderer = renderers.get(source.soundfont);

    ChannelSettings& channel = source.channel;
    channel.is_drum = part.instrument_class == InstrumentClass::kDrums;
    if (part.role == "bass")
        channel.pan = 64 + rng.uniform_int(-5, 5);
    else if (part.role == "lead")
        channel.pan = 64 + rng.uniform_int(-8, 8);
    else
        channel.pan = rng.uniform_int(20, 108);
    channel.reverb_send = rng.uniform_int(0, 60);
    channel.chorus_send = rng.uniform_int(0, 30);
    channel.vibrato = part.instrument_class == InstrumentClass::kVoice;
    channel.vibrato_hz = rng.uniform(5.0, 6.0);
    channel.vibrato_cents = rng.uniform(20.0, 40.0);
    source.target = kTargetLufs + rng.uniform(-jitter, jitter);

    std::vector<PresetInfo> choices;
    if (channel.is_drum) {
        choices = drum_kits(renderer.presets());
    } else {
        for (int program : present_programs(renderer.presets(), part.programs))
            choices.push_back({0, program, preset_name(renderer.presets(), 0, program)});
    }
    if (choices.empty()) {
        source.dropped = "the soundfont has no preset of class " + instrument_class_name(part.instrument_class);
        return source;
    }
    const double preroll = std::min(kPrerollSeconds, window_start);
    const int64_t preroll_frames = std::llround(preroll * sample_rate);
    const double window_end = window_start + static_cast<double>(frames) / sample_rate;
    if (!has_notes_in(part, window_start, window_end)) {
        source.dropped = "no notes in the rendered window";
        return source;
    }
    for (int attempt = 0; attempt <= kProgramRetries && !choices.empty(); ++attempt) {
        size_t pick = rng.next() % choices.size();
        const PresetInfo preset = choices[pick];
        choices.erase(choices.begin() + pick);
        source.bank = channel.bank = preset.bank;
        source.program = channel.program = preset.program;
        source.program_name = preset.name;
        StereoAudio audio = renderer.render(part.notes, window_start - preroll, preroll_frames + frames, channel, effects);
        audio.left.erase(audio.left.begin(), audio.left.begin() + preroll_frames);
        audio.right.erase(audio.right.begin(), audio.right.begin() + preroll_frames);
        apply_fades(audio, std::llround(kFadeSeconds * sample_rate));
        source.loudness_raw = integrated_loudness(audio.left.data(), audio.right.data(), frames, sample_rate);
        if (source.loudness_raw >= kSilentLufs) {
            source.gain = loudness_gain(source.target, source.loudness_raw);
            source.audio = std::move(audio);
            source.dropped.clear();
            return source;
        }
        source.dropped = "below " + std::to_string(static_cast<int>(kSilentLufs)) + " LUFS with every program tried";
    }
    return source;
}

double peak_of(const std::vector<std::vector<double>>& channels) {
    double peak = 0;
    for (const auto& channel : channels)
        for (double x : channel) peak = std::max(peak, std::abs(x));
    return peak;
}

double to_db(double value) { return value > 0 ? 20.0 * std::log10(value) : -std::numeric_limits<double>::infinity(); }

nlohmann::json finite_or_null(double value) { return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(); }

void write_stereo(const std::string& path, const std::vector<std::vector<double>>& channels, double gain,
                  int64_t sample_rate, AudioFormat format) {
    int64_t frames = static_cast<int64_t>(channels[0].size());
    at::Tensor samples = torch::empty({2, frames}, torch::kDouble);
    for (int c = 0; c < 2; ++c) {
        double* out = samples[c].data_ptr<double>();
        for (int64_t i = 0; i < frames; ++i) out[i] = gain * channels[c][i];
    }
    write_audio(path, samples, sample_rate, format);
}

struct SongSummary {
    int sources = 0;
    double mix_lufs = 0;
    double mix_peak_db = 0;
    double gain_db = 0;
};

// Renders song INDEX of SPLIT into FOLDER (a temporary folder the caller renames).
SongSummary render_song(const std::string& split, int64_t index, const RenderStemsOptions& options,
                        const RunPlan& plan, const SoundFontPool& pool, RendererCache& renderers,
                        const std::string& folder) {
    const uint64_t seed = song_seed(split, index, options.seed);
    SongRecipe recipe;
    recipe.lead = options.stem_set != "slakh4";
    recipe.extras = options.stem_set != "slakh4";
    const Song song = generate_song(seed, recipe);
    const int64_t sample_rate = plan.sample_rate;
    const int64_t frames = std::llround(plan.seconds * sample_rate);
    const int start_bar = pick_window_start_bar(song, plan.seconds, seed);
    const double window_start = start_bar * song.seconds_per_bar();

    Rng effects_rng(splitmix64(seed ^ 0xEFFEC7ULL));
    EffectSettings effects;
    effects.room_size = effects_rng.uniform(0.2, 0.8);
    effects.damp = 0.3;
    effects.width = effects_rng.uniform(0.5, 1.0);
    effects.level = effects_rng.uniform(0.5, 0.9);

    std::vector<Source> sources;
    for (size_t i = 0; i < song.parts.size(); ++i)
        sources.push_back(render_source(song.parts[i], static_cast<int>(i), song, options.stem_set, pool, renderers,
                                        effects, window_start, frames, sample_rate, options.loudness_jitter));

    // Stems and mix in float64: m = sum_i g_i x_i, exactly the sum of the stems.
    const std::vector<std::string> stems = stem_names(options.stem_set);
    std::map<std::string, std::vector<std::vector<double>>> stem_audio;
    for (const std::string& stem : stems) stem_audio[stem] = {std::vector<double>(frames, 0.0), std::vector<double>(frames, 0.0)};
    std::vector<std::vector<double>> mix = {std::vector<double>(frames, 0.0), std::vector<double>(frames, 0.0)};
    for (const Source& source : sources) {
        if (!source.dropped.empty()) continue;
        auto& stem = stem_audio[source.stem];
        for (int64_t i = 0; i < frames; ++i) {
            stem[0][i] += source.gain * source.audio.left[i];
            stem[1][i] += source.gain * source.audio.right[i];
        }
    }
    for (const std::string& stem : stems)
        for (int c = 0; c < 2; ++c)
            for (int64_t i = 0; i < frames; ++i) mix[c][i] += stem_audio[stem][c][i];
    std::vector<double> stem_peaks;
    for (const std::string& stem : stems) stem_peaks.push_back(peak_of(stem_audio[stem]));
    const double mix_peak = peak_of(mix);
    const double overall_gain = mix_gain(mix_peak, stem_peaks);

    const AudioFormat format = audio_format(options.format);
    const std::string ext = extension(options.format);
    write_stereo(folder + "/mixture" + ext, mix, overall_gain, sample_rate, format);
    for (const std::string& stem : stems)
        write_stereo(folder + "/" + stem + ext, stem_audio[stem], overall_gain, sample_rate, format);
    if (options.keep_sources) {
        fs::create_directories(folder + "/sources");
        for (const Source& source : sources) {
            if (!source.dropped.empty()) continue;
            std::vector<std::vector<double>> channels = {
                std::vector<double>(source.audio.left.begin(), source.audio.left.end()),
                std::vector<double>(source.audio.right.begin(), source.audio.right.end())};
            write_stereo(folder + "/sources/" + source.id + ext, channels, overall_gain * source.gain, sample_rate, format);
        }
    }

    // Note lists of the window as MIDI: one file per source and all sources together.
    fs::create_directories(folder + "/MIDI");
    std::vector<MidiTrack> all_tracks;
    int next_channel = 0;
    for (const Source& source : sources) {
        if (!source.dropped.empty()) continue;
        MidiTrack track{source.id + " " + source.part->role, source.channel.is_drum ? 9 : 0, source.program,
                        source.channel.is_drum, source.part->notes};
        write_file_atomic(folder + "/MIDI/" + source.id + ".mid",
                          standard_midi_file({track}, song.tempo_bpm, song.beats_per_bar, window_start, plan.seconds));
        if (!track.is_drum) {
            if (next_channel == 9) ++next_channel;   // channel 10 is the GM drum channel
            track.channel = next_channel++;
        }
        if (track.channel < 16) all_tracks.push_back(track);
    }
    write_file_atomic(folder + "/all_src.mid",
                      standard_midi_file(all_tracks, song.tempo_bpm, song.beats_per_bar, window_start, plan.seconds));

    std::vector<double> scaled_left(frames), scaled_right(frames);
    for (int64_t i = 0; i < frames; ++i) {
        scaled_left[i] = overall_gain * mix[0][i];
        scaled_right[i] = overall_gain * mix[1][i];
    }
    SongSummary summary;
    summary.mix_lufs = integrated_loudness(scaled_left.data(), scaled_right.data(), frames, sample_rate);
    summary.mix_peak_db = to_db(overall_gain * mix_peak);
    summary.gain_db = to_db(overall_gain);

    nlohmann::ordered_json meta;
    meta["generator"] = kGenerator;
    meta["version"] = kGeneratorVersion;
    meta["seed"] = seed;
    meta["song_index"] = index;
    meta["split"] = split;
    meta["sample_rate"] = sample_rate;
    meta["tempo_bpm"] = song.tempo_bpm;
    meta["meter"] = std::to_string(song.beats_per_bar) + "/4";
    meta["swing"] = song.swing;
    meta["key"] = song.key_name();
    meta["mode"] = song.minor ? "minor" : "major";
    nlohmann::ordered_json form = nlohmann::ordered_json::array();
    for (const Section& section : song.form)
        form.push_back({{"name", section.name}, {"first_bar", section.first_bar}, {"bars", section.bars}});
    meta["form"] = form;
    meta["progressions"] = song.progressions;
    meta["window_start_bar"] = start_bar;
    meta["window_start_seconds"] = window_start;
    meta["length_samples"] = frames;
    meta["overall_gain"] = overall_gain;
    meta["mix_peak_dbfs"] = finite_or_null(summary.mix_peak_db);
    meta["mix_loudness_lufs"] = finite_or_null(summary.mix_lufs);
    meta["stem_set"] = options.stem_set;
    meta["format"] = audio_format_name(format);
    meta["note_hash"] = note_hash(song);
    meta["soundfont_pool"] = pool.paths;
    meta["pools_disjoint"] = pool.disjoint;
    meta["effects"] = {{"room_size", effects.room_size}, {"damp", effects.damp}, {"width", effects.width},
                       {"level", effects.level}};
    nlohmann::ordered_json stems_json = nlohmann::ordered_json::object();
    for (const std::string& stem : stems) {
        nlohmann::ordered_json ids = nlohmann::ordered_json::array();
        for (const Source& source : sources)
            if (source.stem == stem && source.dropped.empty()) ids.push_back(source.id);
        stems_json[stem] = ids;
    }
    meta["stems"] = stems_json;
    nlohmann::ordered_json sources_json = nlohmann::ordered_json::array();
    for (const Source& source : sources) {
        nlohmann::ordered_json entry;
        entry["id"] = source.id;
        entry["class"] = instrument_class_name(source.part->instrument_class);
        entry["role"] = source.part->role;
        entry["stem"] = source.stem;
        entry["program"] = source.channel.is_drum ? nlohmann::ordered_json() : nlohmann::ordered_json(source.program);
        entry["program_name"] = source.program_name;
        entry["soundfont"] = fs::path(source.soundfont).filename().string();
        entry["drum_kit"] = source.channel.is_drum ? nlohmann::ordered_json(source.program_name) : nlohmann::ordered_json();
        entry["renderer"] = "fluidsynth";
        entry["is_drum"] = source.channel.is_drum;
        entry["bank"] = source.bank;
        entry["pan"] = source.channel.pan;
        entry["reverb_send"] = source.channel.reverb_send;
        entry["chorus_send"] = source.channel.chorus_send;
        if (source.channel.vibrato)
            entry["vibrato"] = {{"hz", source.channel.vibrato_hz}, {"cents", source.channel.vibrato_cents}};
        entry["notes"] = source.part->notes.size();
        entry["loudness_raw_lufs"] = finite_or_null(source.loudness_raw);
        entry["target_lufs"] = source.target;
        entry["gain"] = source.gain;
        entry["midi"] = source.dropped.empty() ? nlohmann::ordered_json("MIDI/" + source.id + ".mid") : nlohmann::ordered_json();
        if (!source.dropped.empty()) entry["dropped"] = source.dropped;
        sources_json.push_back(entry);
        if (source.dropped.empty()) ++summary.sources;
    }
    meta["sources"] = sources_json;
    nlohmann::ordered_json notes = pool.notes;
    notes.push_back("voice-like stem: GM voice programs 52, 53, 54, 85 with pitch-bend vibrato (libespeak-ng is not used)");
    notes.push_back("drums: soundfont drum kits (hydrogen-drumkits is not used)");
    meta["notes"] = notes;
    write_file_atomic(folder + "/metadata.json", meta.dump(2) + "\n");
    return summary;
}

std::string song_name(int64_t index) {
    char name[32];
    std::snprintf(name, sizeof name, "song_%04lld", static_cast<long long>(index));
    return name;
}

}  // namespace

uint64_t song_seed(const std::string& split, int64_t index, uint64_t base_seed) {
    uint64_t tag = split == "train" ? 1 : split == "valid" ? 2 : 3;
    return splitmix64(((tag << 40) ^ static_cast<uint64_t>(index)) ^ (base_seed << 44));
}

std::vector<std::string> stem_names(const std::string& stem_set) {
    if (stem_set == "slakh4") return {"bass", "drums", "guitar", "piano"};
    if (stem_set == "six") return {"vocals", "drums", "bass", "guitar", "piano", "other"};
    return {"vocals", "drums", "bass", "other"};
}

std::string stem_of_part(const std::string& stem_set, const std::string& role) {
    if (role == "lead") return "vocals";
    if (role == "drums" || role == "bass") return role;
    if ((role == "piano" || role == "guitar") && stem_set != "musdb4") return role;
    return "other";
}

void validate_render_options(const RenderStemsOptions& options) {
    if (options.out_dir.empty()) throw UserError("--out: give the folder to render into");
    if (!contains(kStemSets, options.stem_set))
        throw UserError("--stems: unknown stem set '" + options.stem_set + "' (accepted: " + join(kStemSets) + ")");
    if (!options.split.empty() && !contains(kSplits, options.split))
        throw UserError("--split: unknown split '" + options.split + "' (accepted: " + join(kSplits) + ")");
    if (!options.size.empty() && !contains(kSizes, options.size))
        throw UserError("--size: unknown size '" + options.size + "' (accepted: " + join(kSizes) + ")");
    if (options.split.empty() && options.size.empty()) throw UserError("--split: give a split, or --size to render every split of a size");
    if (!contains(kFormats, options.format))
        throw UserError("--format: unknown format '" + options.format + "' (accepted: " + join(kFormats) + ")");
    if (options.songs != -1 && options.songs < 1)
        throw UserError("--songs: must be at least 1, got " + std::to_string(options.songs));
    if (options.seconds != -1 && !(options.seconds >= 1 && options.seconds <= 600))
        throw UserError("--seconds: must be in [1, 600], got " + std::to_string(options.seconds));
    if (options.sample_rate != 0 && (options.sample_rate < 8000 || options.sample_rate > 192000))
        throw UserError("--sample-rate: must be in [8000, 192000], got " + std::to_string(options.sample_rate));
    if (!(options.loudness_jitter >= 0 && options.loudness_jitter <= 24))
        throw UserError("--loudness-jitter: must be in [0, 24] dB, got " + std::to_string(options.loudness_jitter));
}

RenderStemsReport render_stems(const RenderStemsOptions& options, std::ostream& log) {
    validate_render_options(options);
    const RunPlan plan = plan_run(options);
    // Pools first: a missing soundfont is reported before any folder exists.
    std::map<std::string, SoundFontPool> pools;
    for (const auto& [split, count] : plan.splits) pools[split] = soundfont_pool(split, plan.timgm_only);

    RenderStemsReport report;
    const auto started = std::chrono::steady_clock::now();
    RendererCache renderers(plan.sample_rate);
    for (const auto& [split, count] : plan.splits) {
        const SoundFontPool& pool = pools[split];
        log << pool.describe();
        const fs::path split_dir = fs::path(options.out_dir) / split;
        fs::create_directories(split_dir);
        for (int64_t index = 0; index < count; ++index) {
            const std::string name = song_name(index);
            const fs::path final_dir = split_dir / name;
            if (fs::exists(final_dir / "metadata.json")) {
                ++report.skipped;
                continue;
            }
            // Rendered into a hidden folder and renamed, so a song folder is whole or absent.
            const fs::path partial_dir = split_dir / ("." + name + ".partial");
            remove_tree_or_throw(partial_dir.string());
            fs::create_directories(partial_dir);
            const auto song_started = std::chrono::steady_clock::now();
            SongSummary summary = render_song(split, index, options, plan, pool, renderers, partial_dir.string());
            remove_tree_or_throw(final_dir.string());
            fs::rename(partial_dir, final_dir);
            ++report.rendered;
            double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - song_started).count();
            char line[256];
            std::snprintf(line, sizeof line, "%s/%s: %.1f s, %d sources, mix %.1f LUFS, peak %.2f dBFS, gain %.1f dB (%.2f s)\n",
                          split.c_str(), name.c_str(), plan.seconds, summary.sources, summary.mix_lufs,
                          summary.mix_peak_db, summary.gain_db, took);
            log << line << std::flush;
        }
    }
    report.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    char line[256];
    std::snprintf(line, sizeof line, "rendered %lld songs (%lld already there) in %.1f s: %.1f songs per minute\n",
                  static_cast<long long>(report.rendered), static_cast<long long>(report.skipped), report.wall_seconds,
                  report.rendered > 0 ? report.rendered / (report.wall_seconds / 60.0) : 0.0);
    log << line;
    return report;
}

}  // namespace onestep::render
