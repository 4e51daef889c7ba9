// Loading the members, checking the inputs, naming the outputs, and streaming each track
// through the overlap-add engine into one writer per stem.
#include "audio/separate_files.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "audio/audio_io.hpp"
#include "audio/resample.hpp"
#include "audio/separator_method.hpp"
#include "audio/stem_files.hpp"
#include "core/error.hpp"
#include "core/runtime.hpp"

namespace fs = std::filesystem;

namespace onestep {
namespace {

// A file named mixture.* is named after its folder (REF/<track>/mixture.wav -> <track>), so the
// output mirrors a reference tree that `eval sdr` can score.
std::string track_name(const std::string& input) {
    fs::path path(input);
    std::string stem = path.stem().string();
    if (stem == kMixtureStem && path.has_parent_path()) {
        std::string parent = path.parent_path().filename().string();
        if (!parent.empty() && parent != "." && parent != "..") return parent;
    }
    return stem;
}

AudioFormat output_format(const std::string& requested, const AudioInfo& input) {
    if (!requested.empty()) return audio_format_from_name(requested);
    try {
        return audio_format_from_name(input.format);
    } catch (const UserError&) {
        return AudioFormat::kWavFloat;   // e.g. 8-bit or 32-bit PCM input: written as float WAV
    }
}

std::string extension_of(AudioFormat format) {
    std::string name = audio_format_name(format);
    return "." + name.substr(0, name.find('-'));
}

}  // namespace

std::vector<std::vector<double>> parse_weight_rows(const std::string& text) {
    std::vector<std::vector<double>> rows;
    if (text.empty()) return rows;
    std::stringstream row_stream(text);
    std::string row;
    while (std::getline(row_stream, row, ';')) {
        std::vector<double> values;
        std::stringstream value_stream(row);
        std::string value;
        while (std::getline(value_stream, value, ',')) {
            try {
                size_t used = 0;
                values.push_back(std::stod(value, &used));
                if (used != value.size()) throw std::invalid_argument(value);
            } catch (const std::exception&) {
                throw UserError("--weights: '" + value + "' in row " + std::to_string(rows.size() + 1) + " is not a number");
            }
        }
        rows.push_back(values);
    }
    return rows;
}

void run_separate(const SeparateRequest& request) {
    if (request.checkpoints.empty()) throw UserError("--ckpt names no model");
    if (request.inputs.empty()) throw UserError("no input files given");

    // Inputs first: a missing or corrupt file stops everything before any model is loaded.
    std::vector<AudioInfo> infos;
    std::map<std::string, std::string> names;
    for (const auto& input : request.inputs) {
        infos.push_back(probe_audio(input));
        std::string name = track_name(input);
        auto [place, inserted] = names.emplace(name, input);
        if (!inserted) throw UserError("inputs " + place->second + " and " + input + " would both write " + request.out_dir + "/" + name);
    }

    std::vector<LoadedSeparator> members;
    for (const auto& path : request.checkpoints) members.push_back(load_separator(path, request.device, request.steps));
    const LoadedSeparator& first = members.front();
    for (const auto& member : members) {
        if (member.stems != first.stems || member.sample_rate != first.sample_rate || member.channels != first.channels)
            throw UserError("ensemble members disagree: " + member.path + " separates {" + join_names(member.stems) + "} at " +
                            std::to_string(member.sample_rate) + " Hz, " + first.path + " {" + join_names(first.stems) +
                            "} at " + std::to_string(first.sample_rate) + " Hz");
    }
    const int64_t stems = static_cast<int64_t>(first.stems.size());
    std::vector<int64_t> written;   // stem indices to write
    for (const auto& name : request.stems) {
        auto found = std::find(first.stems.begin(), first.stems.end(), name);
        if (found == first.stems.end())
            throw UserError("--stems: the model has no stem '" + name + "' (it has " + join_names(first.stems) + ")");
        written.push_back(found - first.stems.begin());
    }
    if (written.empty())
        for (int64_t k = 0; k < stems; ++k) written.push_back(k);

    // Network evaluations, counted per chunk and member (TTA variants call a member again).
    auto evaluations = std::make_shared<int64_t>(0);
    std::vector<SeparatorFn> functions;
    for (const auto& member : members) {
        SeparatorFn counted = [evaluations, passes = member.passes, inner = member.separate](const at::Tensor& chunks) {
            *evaluations += chunks.size(0) * passes;
            return inner(chunks);
        };
        functions.push_back(with_tta(counted, request.tta_swap, request.tta_polarity));
    }
    SeparatorFn separate = functions.size() == 1 && request.weights.empty() ? functions.front()
                                                                            : ensemble(functions, request.weights, stems);
    if (!request.residual.empty()) {
        auto found = std::find(first.stems.begin(), first.stems.end(), request.residual);
        if (found == first.stems.end())
            throw UserError("--residual: the model has no stem '" + request.residual + "' (it has " + join_names(first.stems) + ")");
        separate = with_residual_stem(separate, found - first.stems.begin());
    }
    if (request.mixture_consistency) separate = with_mixture_consistency(separate);
    OverlapAddSettings settings = request.settings;
    if (settings.chunk <= 0) settings.chunk = first.chunk;
    // Transformers trained on C frames degrade on longer sequences: refuse unless asked.
    if (settings.chunk > first.chunk && !request.force)
        throw UserError("--chunk " + std::to_string(settings.chunk) + " is longer than the training chunk (" +
                        std::to_string(first.chunk) + " frames); pass --force to use it anyway");
    settings.validate();

    for (size_t i = 0; i < request.inputs.size(); ++i) {
        const std::string& input = request.inputs[i];
        const AudioInfo& info = infos[i];
        if (info.channels != first.channels && info.channels != 1)
            throw UserError(input + " has " + std::to_string(info.channels) + " channels; the model separates " +
                            std::to_string(first.channels) + " (or mono, duplicated)");
        // Mono input runs through a stereo model as two equal channels, averaged back.
        SeparatorFn track_fn = separate;
        if (info.channels == 1 && first.channels != 1) {
            int64_t channels = first.channels;
            track_fn = [separate, channels](const at::Tensor& chunks) {
                return separate(chunks.expand({chunks.size(0), channels, chunks.size(2)})).mean(2, /*keepdim=*/true);
            };
        }
        AudioFormat format = output_format(request.format, info);
        fs::path folder = fs::path(request.out_dir) / track_name(input);
        fs::create_directories(folder);
        std::vector<std::unique_ptr<AudioWriter>> writers;
        for (int64_t k : written)
            writers.push_back(std::make_unique<AudioWriter>((folder / (first.stems[k] + extension_of(format))).string(),
                                                            info.sample_rate, info.channels, format));
        auto started = std::chrono::steady_clock::now();
        *evaluations = 0;
        auto sink = [&](const at::Tensor& block) {
            for (size_t w = 0; w < written.size(); ++w) writers[w]->write(block[written[w]]);
        };
        if (info.sample_rate == first.sample_rate) {
            AudioReader reader(input);
            separate_stream(reader, track_fn, stems, settings, sink);
        } else {
            // Another rate: resampled to the model's and back in memory (the streaming path needs equal rates).
            at::Tensor audio = resample(read_audio(input).samples, info.sample_rate, first.sample_rate);
            at::Tensor out = separate_tensor(audio, track_fn, stems, settings);
            std::vector<at::Tensor> back;
            for (int64_t k = 0; k < stems; ++k) back.push_back(resample(out[k], first.sample_rate, info.sample_rate));
            at::Tensor restored = torch::stack(back);
            restored = restored.slice(2, 0, std::min<int64_t>(restored.size(2), info.frames));
            sink(restored);
        }
        int64_t clipped = 0;
        for (auto& writer : writers) {
            writer->close();
            clipped += writer->clipped_samples();
        }
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        double duration = static_cast<double>(info.frames) / static_cast<double>(info.sample_rate);
        std::printf("%s -> %s/ (%zu stems, %.1f s of audio, RTF %.3f, %.2f network evaluations per audio second)\n",
                    input.c_str(), folder.c_str(), written.size(), duration, duration > 0 ? seconds / duration : 0.0,
                    duration > 0 ? static_cast<double>(*evaluations) / duration : 0.0);
        if (clipped > 0)
            std::fprintf(stderr, "warning: %lld samples clipped in the PCM output of %s (use --format wav-float)\n",
                         static_cast<long long>(clipped), input.c_str());
    }
    std::printf("peak RSS %.1f MiB\n", static_cast<double>(peak_resident_bytes()) / (1 << 20));
}

}  // namespace onestep
