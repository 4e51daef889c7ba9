// The separation evaluator: find tracks and stems, check every file, stream the scores, then
// aggregate, print and write.
#include "audio/separation_eval.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include <unistd.h>

#include "audio/audio_io.hpp"
#include "audio/stem_files.hpp"
#include "core/error.hpp"
#include "core/options.hpp"
#include "core/files.hpp"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace onestep {
namespace {

struct TrackFiles {
    std::string split;   // empty without a split level
    std::string name;
    std::string mixture;   // empty: the sum of the reference stems
    std::vector<std::string> references, estimates;   // in stem order

    std::string label() const { return split.empty() ? name : split + "/" + name; }
};

// The estimate of STEM in FOLDER: STEM.wav, .flac or .ogg.
std::string find_estimate(const fs::path& folder, const std::string& stem, const std::string& track) {
    std::vector<std::string> found;
    for (const char* extension : kAudioExtensions) {
        fs::path candidate = folder / (stem + extension);
        std::error_code error;
        if (fs::is_regular_file(candidate, error)) found.push_back(candidate.string());
    }
    if (found.empty())
        throw UserError("missing estimate of stem '" + stem + "' for track '" + track + "': expected " +
                        (folder / (stem + ".wav")).string() + " (or .flac, .ogg)");
    if (found.size() > 1) throw UserError("two estimates of stem '" + stem + "' for track '" + track + "': " + join_names(found));
    return found.front();
}

std::vector<TrackFiles> find_tracks(const SeparationEvalRequest& request, std::vector<std::string>* stems) {
    fs::path reference_root(request.reference_dir), estimate_root(request.estimate_dir);
    std::error_code error;
    if (!fs::is_directory(reference_root, error)) throw UserError("--ref " + request.reference_dir + " is not a folder");
    if (!fs::is_directory(estimate_root, error)) throw UserError("--est " + request.estimate_dir + " is not a folder");

    // (split, track folder) pairs: REF/<track>/ when any subfolder holds audio, else REF/<split>/<track>/.
    std::vector<std::pair<std::string, fs::path>> track_folders;
    std::vector<std::string> top = subfolders_of(reference_root.string());
    bool flat = std::any_of(top.begin(), top.end(), [](const std::string& folder) { return !audio_files_in(folder).empty(); });
    for (const std::string& folder : top) {
        if (flat) {
            track_folders.emplace_back("", folder);
        } else {
            std::string split = fs::path(folder).filename().string();
            for (const std::string& track : subfolders_of(folder)) track_folders.emplace_back(split, track);
        }
    }
    if (track_folders.empty())
        throw UserError("--ref " + request.reference_dir + " holds no tracks: expected <track>/<stem>.wav or " +
                        "<split>/<track>/<stem>.wav");

    std::vector<TrackFiles> tracks;
    for (const auto& [split, folder] : track_folders) {
        TrackFiles track;
        track.split = split;
        track.name = folder.filename().string();
        std::map<std::string, std::string> files = audio_files_in(folder.string());
        if (files.count(kMixtureStem)) {
            track.mixture = files[kMixtureStem];
            files.erase(kMixtureStem);
        }
        if (files.empty()) throw UserError("reference track " + folder.string() + " has no stem files (.wav, .flac, .ogg)");
        std::vector<std::string> names;
        for (const auto& [name, path] : files) names.push_back(name);
        if (stems->empty()) {
            *stems = names;
        } else if (names != *stems) {
            throw UserError("reference track " + folder.string() + " has stems {" + join_names(names) + "}; the first track (" +
                            tracks.front().label() + ") has {" + join_names(*stems) + "}");
        }
        fs::path estimate_folder = split.empty() ? estimate_root / track.name : estimate_root / split / track.name;
        for (const auto& [name, path] : files) {
            track.references.push_back(path);
            track.estimates.push_back(find_estimate(estimate_folder, name, track.label()));
        }
        tracks.push_back(std::move(track));
    }
    return tracks;
}

// The checked geometry of one track.
struct TrackShape {
    int64_t sample_rate = 0;
    int64_t channels = 0;
    int64_t frames = 0;          // scored frames
    int64_t longest = 0;         // longest file; > frames only when cropping
};

TrackShape check_track(const TrackFiles& track, bool crop) {
    std::vector<std::string> paths = track.references;
    paths.insert(paths.end(), track.estimates.begin(), track.estimates.end());
    if (!track.mixture.empty()) paths.push_back(track.mixture);
    std::vector<AudioInfo> infos;
    for (const auto& path : paths) infos.push_back(probe_audio(path));
    TrackShape shape;
    shape.sample_rate = infos.front().sample_rate;
    shape.channels = infos.front().channels;
    shape.frames = infos.front().frames;
    for (size_t i = 1; i < infos.size(); ++i) {
        if (infos[i].sample_rate != shape.sample_rate)
            throw UserError("sample rates differ in track '" + track.label() + "': " + paths[i] + " is " +
                            std::to_string(infos[i].sample_rate) + " Hz, " + paths[0] + " is " +
                            std::to_string(shape.sample_rate) + " Hz");
        if (infos[i].channels != shape.channels)
            throw UserError("channel counts differ in track '" + track.label() + "': " + paths[i] + " has " +
                            std::to_string(infos[i].channels) + ", " + paths[0] + " has " + std::to_string(shape.channels));
    }
    int64_t shortest = shape.frames;
    size_t shortest_index = 0, longest_index = 0;
    shape.longest = shape.frames;
    for (size_t i = 1; i < infos.size(); ++i) {
        if (infos[i].frames < shortest) shortest = infos[i].frames, shortest_index = i;
        if (infos[i].frames > shape.longest) shape.longest = infos[i].frames, longest_index = i;
    }
    if (shortest != shape.longest && !crop)
        throw UserError("lengths differ in track '" + track.label() + "': " + paths[shortest_index] + " has " +
                        std::to_string(shortest) + " frames, " + paths[longest_index] + " has " +
                        std::to_string(shape.longest) + "; pass --crop to score the first " + std::to_string(shortest));
    shape.frames = shortest;
    return shape;
}

struct TrackResult {
    const TrackFiles* files = nullptr;
    TrackShape shape;
    std::vector<SeparationScores> scores;   // per stem
    BssEvalResult bsseval;                  // all stems together; empty without csdr/bsseval
    std::vector<BssEvalMedians> medians;    // per stem; empty when skipped or not asked for
};

bool wants_bsseval(const SeparationEvalRequest& request) { return request.csdr || request.bsseval_full; }

// The next N frames of every reader as float64 [C, n] blocks.
std::vector<at::Tensor> read_blocks(std::vector<AudioReader>& readers, int64_t n) {
    std::vector<at::Tensor> blocks;
    for (auto& reader : readers) blocks.push_back(reader.read_exactly(n, at::kDouble));
    return blocks;
}

TrackResult score_track(const TrackFiles& track, const TrackShape& shape, const SeparationEvalRequest& request) {
    size_t stems = track.references.size();
    std::vector<AudioReader> references, estimates;
    for (size_t k = 0; k < stems; ++k) {
        references.emplace_back(track.references[k]);
        estimates.emplace_back(track.estimates[k]);
    }
    std::unique_ptr<AudioReader> mixture;
    if (!track.mixture.empty()) mixture = std::make_unique<AudioReader>(track.mixture);
    std::vector<SdrAccumulator> with_estimate(stems, SdrAccumulator(shape.channels));
    std::vector<SdrAccumulator> with_mixture(stems, SdrAccumulator(shape.channels));
    // BSSEval's first pass (or the whole cSDR path) rides on the uSDR pass: [J, C, n] blocks.
    BssEvalOptions bss_options = bsseval_options(shape.sample_rate);
    int64_t sources = static_cast<int64_t>(stems);
    std::unique_ptr<BssEvalStream> full;
    std::unique_ptr<FrameSnrAccumulator> frame_snr;
    if (request.bsseval_full) {
        full = std::make_unique<BssEvalStream>(sources, shape.channels, shape.frames, bss_options);
    } else if (request.csdr) {
        frame_snr = std::make_unique<FrameSnrAccumulator>(sources, shape.channels, shape.frames, bss_options);
    }
    for (int64_t position = 0; position < shape.frames; position += request.block_frames) {
        int64_t n = std::min(request.block_frames, shape.frames - position);
        std::vector<at::Tensor> reference_blocks = read_blocks(references, n), estimate_blocks = read_blocks(estimates, n);
        at::Tensor all_references = at::stack(reference_blocks);
        at::Tensor mixture_block = mixture ? mixture->read_exactly(n, at::kDouble) : all_references.sum(0);
        for (size_t k = 0; k < stems; ++k) {
            with_estimate[k].add(reference_blocks[k], estimate_blocks[k]);
            with_mixture[k].add(reference_blocks[k], mixture_block);
        }
        if (full) full->add_correlations(all_references, at::stack(estimate_blocks));
        if (frame_snr) frame_snr->add(all_references, at::stack(estimate_blocks));
    }
    TrackResult result;
    result.files = &track;
    result.shape = shape;
    for (size_t k = 0; k < stems; ++k)
        result.scores.push_back(separation_scores(with_estimate[k], with_mixture[k], request.usdr_eps, kSiSdrEps));
    if (full) {
        full->fit_filters();
        if (!full->skipped()) {
            // Pass 2: the same files from the start, one frame at a time.
            for (auto& reader : references) reader.seek(0);
            for (auto& reader : estimates) reader.seek(0);
            for (int64_t position = 0; position < shape.frames; position += request.block_frames) {
                int64_t n = std::min(request.block_frames, shape.frames - position);
                full->add_frames(at::stack(read_blocks(references, n)), at::stack(read_blocks(estimates, n)));
            }
        }
        result.bsseval = full->result();
    } else if (frame_snr) {
        result.bsseval = frame_snr->result();
    }
    if (wants_bsseval(request) && !result.bsseval.skipped)
        for (const auto& frames : result.bsseval.targets) result.medians.push_back(bsseval_medians(frames));
    return result;
}

// (key, value) of MEDIANS: SDR under SDR_KEY, then SIR, ISR, SAR in full mode.
std::vector<std::pair<std::string, double>> median_values(const BssEvalMedians& medians, const std::string& sdr_key,
                                                          const SeparationEvalRequest& request) {
    std::vector<std::pair<std::string, double>> values = {{sdr_key, medians.sdr}};
    if (request.bsseval_full) {
        values.emplace_back("SIR", medians.sir);
        values.emplace_back("ISR", medians.isr);
        values.emplace_back("SAR", medians.sar);
    }
    return values;
}

// Per-track BSSEval medians of stem K for tables and summaries: cSDR, then SIR, ISR, SAR in full
// mode; NaN when the track was skipped or every frame was NaN.
std::vector<std::pair<std::string, double>> bsseval_values(const TrackResult& result, size_t k,
                                                           const SeparationEvalRequest& request) {
    if (!wants_bsseval(request)) return {};
    return median_values(result.medians.empty() ? BssEvalMedians{} : result.medians[k], "cSDR", request);
}

std::vector<std::pair<std::string, double>> metric_values(const SeparationScores& scores,
                                                          const SeparationEvalRequest& request) {
    std::vector<std::pair<std::string, double>> values;
    if (request.usdr) {
        values.emplace_back("uSDR", scores.usdr);
        values.emplace_back("uSDR_mix", scores.usdr_mix);
        values.emplace_back("SDRi", scores.sdri);
    }
    if (request.si_sdr) {
        values.emplace_back("SI-SDR", scores.si_sdr);
        values.emplace_back("SI-SDR_mix", scores.si_sdr_mix);
        values.emplace_back("SI-SDRi", scores.si_sdri);
    }
    return values;
}

std::string nonfinite_reason(double value) {
    if (std::isnan(value)) return "nan";
    return value > 0 ? "+inf" : "-inf";
}

// VALUE as a JSON number, or null with the reason stored under KEY in NONFINITE.
ojson finite_or_null(double value, const std::string& key, ojson& nonfinite) {
    if (std::isfinite(value)) return value;
    nonfinite[key] = nonfinite_reason(value);
    return nullptr;
}

// SAMPLE_RATE > 0 adds the frame length in samples (per-track files).
ojson settings_json(const SeparationEvalRequest& request, int64_t sample_rate = 0) {
    ojson metrics = ojson::array();
    if (request.usdr) metrics.push_back("usdr");
    if (request.si_sdr) metrics.push_back("sisdr");
    if (wants_bsseval(request)) metrics.push_back("csdr");
    ojson settings = {{"metrics", metrics},
                      {"usdr_eps", request.usdr_eps},
                      {"si_sdr_eps", kSiSdrEps},
                      {"silent_reference_power", kSilentReferencePower},
                      {"crop", request.crop}};
    if (wants_bsseval(request)) {
        ojson bsseval = {{"mode", "v4"}, {"decomposition", request.bsseval_full ? "full" : "csdr"}};
        if (sample_rate > 0) {
            BssEvalOptions options = bsseval_options(sample_rate);
            bsseval["win"] = options.win;
            bsseval["hop"] = options.win;
        } else {
            bsseval["win_seconds"] = 1.0;
            bsseval["hop_seconds"] = 1.0;
        }
        bsseval["filters_len"] = kBssEvalFilterLength;
        bsseval["eps"] = kBssEvalEps;
        bsseval["aggregation"] = "per track: median over frames of museval's 5-decimal values, +-inf as NaN";
        settings["bsseval"] = bsseval;
    }
    return settings;
}

// The "bsseval" block and the "frames" list of stem K (spec §1.5).
void add_bsseval_json(const TrackResult& result, size_t k, const SeparationEvalRequest& request, ojson& target) {
    if (result.bsseval.skipped) {
        target["bsseval"] = result.bsseval.skip_reason;
        return;
    }
    const BssEvalMedians& medians = result.medians[k];
    ojson median = ojson::object(), nonfinite = ojson::object();
    for (const auto& [key, value] : median_values(medians, "SDR", request))
        median[key] = finite_or_null(value, key, nonfinite);
    ojson block = {{"median", median}, {"frames_nan", medians.frames_nan}, {"frames_total", medians.frames_total}};
    if (!nonfinite.empty()) block["nonfinite"] = nonfinite;
    target["bsseval"] = block;

    double seconds = static_cast<double>(result.bsseval.win) / static_cast<double>(result.shape.sample_rate);
    ojson frames = ojson::array();
    const auto& scores = result.bsseval.targets[k];
    for (size_t t = 0; t < scores.size(); ++t) {
        ojson metrics = ojson::object(), frame_nonfinite = ojson::object();
        metrics["SDR"] = finite_or_null(scores[t].sdr, "SDR", frame_nonfinite);
        if (request.bsseval_full) {
            metrics["SIR"] = finite_or_null(scores[t].sir, "SIR", frame_nonfinite);
            metrics["SAR"] = finite_or_null(scores[t].sar, "SAR", frame_nonfinite);
            metrics["ISR"] = finite_or_null(scores[t].isr, "ISR", frame_nonfinite);
        }
        ojson frame = {{"time", static_cast<double>(t) * seconds}, {"duration", seconds}, {"metrics", metrics}};
        if (!frame_nonfinite.empty()) frame["nonfinite"] = frame_nonfinite;
        frames.push_back(frame);
    }
    target["frames"] = frames;
}

// museval's number format: 5 decimals, NaN as the bare literal (Python's json allow_nan).
std::string museval_number(double value) {
    double quantized = museval_quantize(value);
    if (std::isnan(quantized)) return "NaN";
    char buffer[64];
    std::snprintf(buffer, sizeof(buffer), "%.5f", quantized);
    return buffer;
}

// One track in museval's layout: {"targets": [{"name", "frames": [{"time", "duration",
// "metrics": {SDR, SIR, SAR, ISR}}]}]}, indented as museval writes it.
std::string museval_json(const TrackResult& result, const std::vector<std::string>& stems) {
    double seconds = static_cast<double>(result.bsseval.win) / static_cast<double>(result.shape.sample_rate);
    std::string out = "{\n  \"targets\": [";
    for (size_t k = 0; k < stems.size(); ++k) {
        out += k ? ",\n    {\n" : "\n    {\n";
        out += "      \"name\": " + ojson(stems[k]).dump() + ",\n      \"frames\": [";
        const auto& scores = result.bsseval.targets[k];
        for (size_t t = 0; t < scores.size(); ++t) {
            out += t ? ",\n        {\n" : "\n        {\n";
            out += "          \"time\": " + ojson(static_cast<double>(t) * seconds).dump() + ",\n";
            out += "          \"duration\": " + ojson(seconds).dump() + ",\n";
            out += "          \"metrics\": {\n";
            out += "            \"SDR\": " + museval_number(scores[t].sdr) + ",\n";
            out += "            \"SIR\": " + museval_number(scores[t].sir) + ",\n";
            out += "            \"SAR\": " + museval_number(scores[t].sar) + ",\n";
            out += "            \"ISR\": " + museval_number(scores[t].isr) + "\n";
            out += "          }\n        }";
        }
        out += scores.empty() ? "]\n    }" : "\n      ]\n    }";
    }
    out += stems.empty() ? "]\n}\n" : "\n  ]\n}\n";
    return out;
}

ojson track_json(const TrackResult& result, const std::vector<std::string>& stems, const SeparationEvalRequest& request) {
    const TrackFiles& files = *result.files;
    ojson record = {{"format", "onestep.sep-eval/1"}, {"track", files.name}};
    if (!files.split.empty()) record["split"] = files.split;
    record["sample_rate"] = result.shape.sample_rate;
    record["channels"] = result.shape.channels;
    record["length_samples"] = result.shape.frames;
    if (result.shape.longest != result.shape.frames) record["cropped_samples"] = result.shape.longest - result.shape.frames;
    record["mixture"] = files.mixture.empty() ? "sum of stems" : "file";
    record["settings"] = settings_json(request, result.shape.sample_rate);
    ojson targets = ojson::array();
    for (size_t k = 0; k < stems.size(); ++k) {
        const SeparationScores& scores = result.scores[k];
        ojson global = ojson::object(), nonfinite = ojson::object();
        for (const auto& [key, value] : metric_values(scores, request)) global[key] = finite_or_null(value, key, nonfinite);
        ojson target = {{"name", stems[k]}, {"global", global}};
        if (!nonfinite.empty()) target["nonfinite"] = nonfinite;
        target["reference_power"] = scores.reference_power;
        target["silent_reference"] = scores.silent_reference;
        if (wants_bsseval(request)) add_bsseval_json(result, k, request, target);
        targets.push_back(target);
    }
    record["targets"] = targets;
    return record;
}

struct Aggregate {
    double mean = NAN, median = NAN, std = NAN;
    int64_t n = 0, n_excluded = 0;
};

Aggregate aggregate(std::vector<double> values, int64_t excluded) {
    Aggregate out;
    out.n = static_cast<int64_t>(values.size());
    out.n_excluded = excluded;
    if (values.empty()) return out;
    double total = 0;
    for (double value : values) total += value;
    out.mean = total / values.size();
    double squares = 0;
    for (double value : values) squares += (value - out.mean) * (value - out.mean);
    out.std = std::sqrt(squares / values.size());
    std::sort(values.begin(), values.end());
    size_t middle = values.size() / 2;
    out.median = values.size() % 2 ? values[middle] : 0.5 * (values[middle - 1] + values[middle]);
    return out;
}

ojson aggregate_json(const Aggregate& value) {
    ojson nonfinite = ojson::object();
    ojson out = {{"mean", finite_or_null(value.mean, "mean", nonfinite)},
                 {"median", finite_or_null(value.median, "median", nonfinite)},
                 {"std", finite_or_null(value.std, "std", nonfinite)},
                 {"n", value.n},
                 {"n_excluded", value.n_excluded}};
    if (!nonfinite.empty()) out["nonfinite"] = "no tracks left to aggregate";
    return out;
}

std::string csv_number(double value) {
    if (!std::isfinite(value)) return nonfinite_reason(value);
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%.6f", value);
    return buffer;
}

std::string csv_field(const std::string& text) {
    if (text.find_first_of(",\"\n") == std::string::npos) return text;
    std::string quoted = "\"";
    for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    return quoted + "\"";
}

}  // namespace

void set_sdr_metrics(const std::string& list, SeparationEvalRequest* request) {
    request->usdr = false;
    request->si_sdr = false;
    request->csdr = false;
    for (const std::string& item : split_list(list, /*keep_empty=*/true)) {
        if (item == "usdr") {
            request->usdr = true;
        } else if (item == "sisdr" || item == "si-sdr") {
            request->si_sdr = true;
        } else if (item == "csdr") {
            request->csdr = true;
        } else {
            throw UserError("--metrics: unknown metric '" + item + "'; accepted: usdr, sisdr, csdr");
        }
    }
    if (!request->usdr && !request->si_sdr && !request->csdr)
        throw UserError("--metrics: name at least one of usdr, sisdr, csdr");
}

void set_bsseval_mode(const std::string& mode, SeparationEvalRequest* request) {
    if (mode == "full") {
        request->bsseval_full = true;
    } else if (mode == "off") {
        request->bsseval_full = false;
    } else {
        throw UserError("--bsseval: unknown mode '" + mode + "'; accepted: off, full");
    }
}

std::string run_separation_eval(const SeparationEvalRequest& request) {
    TORCH_CHECK(request.block_frames > 0, "block_frames must be positive");
    if (!request.museval_json_dir.empty() && !request.bsseval_full)
        throw UserError("--museval-json writes SDR, SIR, SAR and ISR per frame: it needs --bsseval full");
    std::vector<std::string> stems;
    std::vector<TrackFiles> tracks = find_tracks(request, &stems);
    if (request.bsseval_full && stems.size() < 2)
        throw UserError("--bsseval full needs at least 2 stems (museval scores each estimate against all the "
                        "references); " + request.reference_dir + " has only '" + stems.front() +
                        "'. --metrics csdr works with one stem");
    std::vector<TrackShape> shapes;
    for (const auto& track : tracks) shapes.push_back(check_track(track, request.crop));

    std::vector<TrackResult> results;
    bool progress = ::isatty(::fileno(stderr)) != 0;
    for (size_t i = 0; i < tracks.size(); ++i) {
        if (progress) {
            std::fprintf(stderr, "\rscoring %zu/%zu: %s\x1b[K", i + 1, tracks.size(), tracks[i].label().c_str());
            std::fflush(stderr);
        }
        results.push_back(score_track(tracks[i], shapes[i], request));
    }
    if (progress) std::fprintf(stderr, "\n");

    // Per (stem, metric): values over tracks, silent references and non-finite values left out.
    ojson targets = ojson::object();
    std::vector<std::vector<std::pair<std::string, Aggregate>>> table(stems.size());
    std::vector<std::string> keys;
    for (const auto& [key, value] : metric_values(SeparationScores{}, request)) keys.push_back(key);
    for (size_t k = 0; k < stems.size(); ++k) {
        ojson per_metric = ojson::object();
        for (size_t m = 0; m < keys.size(); ++m) {
            std::vector<double> values;
            int64_t excluded = 0;
            for (const auto& result : results) {
                double value = metric_values(result.scores[k], request)[m].second;
                if (result.scores[k].silent_reference || !std::isfinite(value)) {
                    ++excluded;
                } else {
                    values.push_back(value);
                }
            }
            Aggregate summary = aggregate(values, excluded);
            table[k].emplace_back(keys[m], summary);
            per_metric[keys[m]] = aggregate_json(summary);
        }
        targets[stems[k]] = per_metric;
    }
    // BSSEval per (stem, metric): the per-track medians over tracks, as museval's aggregation.
    std::vector<std::vector<std::pair<std::string, Aggregate>>> bsseval_table(stems.size());
    for (size_t k = 0; k < stems.size() && wants_bsseval(request); ++k) {
        size_t count = bsseval_values(results.front(), k, request).size();
        for (size_t m = 0; m < count; ++m) {
            std::vector<double> values;
            std::string key;
            for (const auto& result : results) {
                auto [name, value] = bsseval_values(result, k, request)[m];
                key = name;
                if (!std::isnan(value)) values.push_back(value);
            }
            Aggregate summary = aggregate(values, static_cast<int64_t>(results.size() - values.size()));
            bsseval_table[k].emplace_back(key, summary);
            ojson nonfinite = ojson::object();
            ojson entry = {{"median_of_medians", finite_or_null(summary.median, "median_of_medians", nonfinite)},
                           {"mean_of_medians", finite_or_null(summary.mean, "mean_of_medians", nonfinite)},
                           {"std", finite_or_null(summary.std, "std", nonfinite)},
                           {"n", summary.n},
                           {"n_excluded", summary.n_excluded}};
            if (!nonfinite.empty()) entry["nonfinite"] = "no tracks left to aggregate";
            targets[stems[k]][key] = entry;
        }
    }
    // MDX score: SDR_song = mean uSDR over the track's scored stems, then the mean over tracks.
    ojson scores = ojson::object();
    if (request.usdr) {
        std::vector<double> songs;
        for (const auto& result : results) {
            double total = 0;
            int count = 0;
            for (const auto& stem_scores : result.scores)
                if (!stem_scores.silent_reference && std::isfinite(stem_scores.usdr)) total += stem_scores.usdr, ++count;
            if (count > 0) songs.push_back(total / count);
        }
        Aggregate mdx = aggregate(songs, static_cast<int64_t>(results.size() - songs.size()));
        ojson nonfinite = ojson::object();
        scores["mdx_sdr"] = finite_or_null(mdx.mean, "mdx_sdr", nonfinite);
        scores["mdx_sdr_tracks"] = mdx.n;
        if (!nonfinite.empty()) scores["nonfinite"] = nonfinite;
    }
    // MUSDB paper score: mean over stems of the cSDR median of medians (and the Demucs variant).
    if (wants_bsseval(request)) {
        double median_total = 0, mean_total = 0;
        int64_t counted = 0;
        for (size_t k = 0; k < stems.size(); ++k) {
            const Aggregate& csdr = bsseval_table[k].front().second;
            if (csdr.n == 0) continue;
            median_total += csdr.median;
            mean_total += csdr.mean;
            ++counted;
        }
        ojson nonfinite = ojson::object();
        double musdb = counted ? median_total / counted : NAN, demucs = counted ? mean_total / counted : NAN;
        scores["musdb_csdr"] = finite_or_null(musdb, "musdb_csdr", nonfinite);
        scores["musdb_csdr_mean_of_medians"] = finite_or_null(demucs, "musdb_csdr_mean_of_medians", nonfinite);
        scores["musdb_csdr_stems"] = counted;
        int64_t skipped = 0;
        for (const auto& result : results) skipped += result.bsseval.skipped ? 1 : 0;
        scores["bsseval_tracks_skipped"] = skipped;
        if (!nonfinite.empty()) {
            if (!scores.contains("nonfinite")) scores["nonfinite"] = ojson::object();
            for (const auto& [key, value] : nonfinite.items()) scores["nonfinite"][key] = value;
        }
    }
    ojson summary = {{"format", "onestep.sep-eval-summary/1"},
                     {"reference", request.reference_dir},
                     {"estimates", request.estimate_dir},
                     {"tracks", results.size()},
                     {"stems", stems},
                     {"settings", settings_json(request)},
                     {"targets", targets},
                     {"scores", scores}};

    std::printf("%-16s %-11s %10s %10s %5s %10s\n", "stem", "metric", "mean", "median", "n", "n_excluded");
    // BSSEval rows: mean and median over tracks of the per-track medians over frames.
    for (size_t k = 0; k < stems.size(); ++k) {
        for (const auto& [key, value] : table[k])
            std::printf("%-16s %-11s %10.4f %10.4f %5lld %10lld\n", stems[k].c_str(), key.c_str(), value.mean, value.median,
                        static_cast<long long>(value.n), static_cast<long long>(value.n_excluded));
        for (const auto& [key, value] : bsseval_table[k])
            std::printf("%-16s %-11s %10.4f %10.4f %5lld %10lld\n", stems[k].c_str(), key.c_str(), value.mean, value.median,
                        static_cast<long long>(value.n), static_cast<long long>(value.n_excluded));
    }
    if (scores.contains("mdx_sdr") && scores["mdx_sdr"].is_number())
        std::printf("mdx_sdr (mean over tracks of the mean uSDR of the stems): %.4f\n", scores["mdx_sdr"].get<double>());
    if (scores.contains("musdb_csdr") && scores["musdb_csdr"].is_number())
        std::printf("musdb_csdr (mean over stems of the median over tracks of the median over 1 s frames): %.4f\n",
                    scores["musdb_csdr"].get<double>());
    if (wants_bsseval(request) && scores["bsseval_tracks_skipped"].get<int64_t>() > 0)
        std::printf("(BSSEval skipped for %lld tracks with a stem or estimate silent over the whole track)\n",
                    static_cast<long long>(scores["bsseval_tracks_skipped"].get<int64_t>()));
    std::printf("(%zu tracks, uSDR eps %g; means and medians over tracks leave out silent references)\n", results.size(),
                request.usdr_eps);
    std::fflush(stdout);

    if (!request.out_dir.empty()) {
        fs::path out(request.out_dir);
        std::string csv = "track,split,target";
        for (const auto& key : keys) csv += "," + key;
        if (!results.empty())
            for (const auto& [key, value] : bsseval_values(results.front(), 0, request)) csv += "," + key;
        csv += wants_bsseval(request) ? ",silent_reference,bsseval\n" : ",silent_reference\n";
        for (const auto& result : results) {
            fs::path path = result.files->split.empty() ? out / (result.files->name + ".json")
                                                        : out / result.files->split / (result.files->name + ".json");
            std::error_code error;
            fs::create_directories(path.parent_path(), error);
            if (error) throw UserError("cannot create " + path.parent_path().string() + ": " + error.message());
            write_file_atomic(path.string(), track_json(result, stems, request).dump(2, ' ', false, ojson::error_handler_t::replace) + "\n");
            for (size_t k = 0; k < stems.size(); ++k) {
                csv += csv_field(result.files->name) + "," + csv_field(result.files->split) + "," + csv_field(stems[k]);
                for (const auto& [key, value] : metric_values(result.scores[k], request)) csv += "," + csv_number(value);
                for (const auto& [key, value] : bsseval_values(result, k, request)) csv += "," + csv_number(value);
                csv += result.scores[k].silent_reference ? ",true" : ",false";
                if (wants_bsseval(request)) csv += "," + csv_field(result.bsseval.skipped ? result.bsseval.skip_reason : "ok");
                csv += "\n";
            }
        }
        write_file_atomic((out / "summary.json").string(), summary.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n");
        write_file_atomic((out / "summary.csv").string(), csv);
        std::fprintf(stderr, "wrote %s/summary.json and %zu track files\n", request.out_dir.c_str(), results.size());
    }
    if (!request.museval_json_dir.empty()) {
        // museval writes <subset>/<track>.json; tracks it would refuse (a silent source) get no file.
        fs::path out(request.museval_json_dir);
        size_t written = 0;
        for (const auto& result : results) {
            if (result.bsseval.skipped) continue;
            fs::path path = result.files->split.empty() ? out / (result.files->name + ".json")
                                                        : out / result.files->split / (result.files->name + ".json");
            std::error_code error;
            fs::create_directories(path.parent_path(), error);
            if (error) throw UserError("cannot create " + path.parent_path().string() + ": " + error.message());
            write_file_atomic(path.string(), museval_json(result, stems));
            ++written;
        }
        std::fprintf(stderr, "wrote %zu museval track files to %s\n", written, request.museval_json_dir.c_str());
    }
    return summary.dump(2, ' ', false, ojson::error_handler_t::replace);
}

}  // namespace onestep
