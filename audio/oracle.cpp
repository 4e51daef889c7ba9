// Oracle estimates: computed per song in memory (songs of a test set are minutes long at most),
// written as float WAV so that quantisation does not cap the scores, then scored like a model.
#include "audio/oracle.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "audio/audio_io.hpp"
#include "audio/stem_dataset.hpp"
#include "audio/stem_files.hpp"
#include "audio/stft.hpp"
#include "core/error.hpp"
#include "core/options.hpp"

namespace fs = std::filesystem;

namespace onestep {
namespace {

const char* const kOracleMethods[] = {"mix", "mix-k", "irm", "eq"};
const StftConfig kIrmStft{4096, 1024};

// Opens a folder of songs (<song>/{mixture,<stem>}.wav) without writing an index into it.
StemDataset open_songs(const std::string& dir) {
    fs::path path = fs::path(dir).lexically_normal();
    if (path.filename().empty()) path = path.parent_path();
    StemDatasetOptions options;
    options.use_index = false;           // never write into the user's folders
    options.check_mixture_sum = false;   // the evaluator reads every file anyway
    return StemDataset::open(path.parent_path().empty() ? "." : path.parent_path().string(), path.filename().string(),
                             options);
}

// Least-squares real gains g_k(f) = sum Re(S_k conj(X)) / sum |X|^2 over every channel and frame
// of the songs in FIT_DIR: [K, F] float64, the stems in REFERENCE_STEMS' order.
at::Tensor fit_equaliser(const std::string& fit_dir, const std::vector<std::string>& reference_stems,
                         int64_t sample_rate) {
    StemDataset fit = open_songs(fit_dir);
    if (fit.stems() != reference_stems)
        throw UserError("--fit " + fit_dir + " has stems " + join_names(fit.stems()) + "; the test set has " +
                        join_names(reference_stems));
    if (fit.sample_rate() != sample_rate)
        throw UserError("--fit " + fit_dir + " is at " + std::to_string(fit.sample_rate()) + " Hz; the test set at " +
                        std::to_string(sample_rate) + " Hz");
    const int64_t count = static_cast<int64_t>(reference_stems.size());
    at::Tensor numerator = torch::zeros({count, kIrmStft.bins()}, torch::kDouble);
    at::Tensor denominator = torch::zeros({kIrmStft.bins()}, torch::kDouble);
    for (size_t i = 0; i < fit.songs().size(); ++i) {
        const StemSong& song = fit.song(i);
        at::Tensor mixture = stft(fit.read_mixture(i, 0, song.frames).to(torch::kDouble), kIrmStft);   // [C, F, S]
        denominator += mixture.abs().pow(2).sum(at::IntArrayRef{0, 2});
        for (int64_t k = 0; k < count; ++k) {
            at::Tensor stem = stft(fit.read_stem(i, k, 0, song.frames).to(torch::kDouble), kIrmStft);
            numerator[k] += torch::real(stem * mixture.conj()).sum(at::IntArrayRef{0, 2});
        }
        std::fprintf(stderr, "\rfitting the equaliser %zu/%zu: %s\x1b[K", i + 1, fit.songs().size(), song.name.c_str());
    }
    std::fprintf(stderr, "\n");
    // Bins the fit songs never excite get 1/K.
    return torch::where(denominator > 0, numerator / denominator.clamp_min(1e-300),
                        torch::full_like(numerator, 1.0 / static_cast<double>(count)));
}

// Estimates [K, C, T] of one song by METHOD from its stems [K, C, T] and mixture [C, T]; GAINS [K, F]
// are the fitted equaliser ("eq" only).
at::Tensor oracle_estimate(const std::string& method, const at::Tensor& stems, const at::Tensor& mixture,
                           const at::Tensor& gains) {
    const int64_t count = stems.size(0);
    if (method == "mix") return mixture.unsqueeze(0).expand_as(stems).contiguous();
    if (method == "mix-k") return (mixture / static_cast<double>(count)).unsqueeze(0).expand_as(stems).contiguous();
    if (method == "eq") {
        at::Tensor mixture_spectrum = stft(mixture.to(torch::kDouble), kIrmStft);   // [C, F, S]
        at::Tensor filtered = gains.view({count, 1, -1, 1}) * mixture_spectrum.unsqueeze(0);
        return istft(filtered, kIrmStft, stems.size(-1)).to(torch::kFloat);
    }
    // M_k = |S_k| / sum_j |S_j| applied to the mixture's spectrum; bins where every stem is silent get 1/K.
    at::Tensor spectra = stft(stems.to(torch::kDouble), kIrmStft);   // [K, C, F, S]
    at::Tensor magnitudes = spectra.abs();
    at::Tensor total = magnitudes.sum(0, /*keepdim=*/true);
    at::Tensor masks = torch::where(total > 0, magnitudes / total.clamp_min(1e-300),
                                    torch::full_like(magnitudes, 1.0 / count));
    at::Tensor mixture_spectrum = stft(mixture.to(torch::kDouble), kIrmStft);   // [C, F, S]
    return istft(masks * mixture_spectrum.unsqueeze(0), kIrmStft, stems.size(-1)).to(torch::kFloat);
}

}  // namespace

std::vector<std::string> oracle_methods_from_list(const std::string& list) {
    std::vector<std::string> methods;
    for (const std::string& item : split_list(list, /*keep_empty=*/true)) {
        bool known = false;
        for (const char* name : kOracleMethods) known = known || item == name;
        if (!known) throw UserError("unknown oracle method '" + item + "' (accepted: mix, mix-k, irm, eq)");
        methods.push_back(item);
    }
    if (methods.empty()) throw UserError("--methods is empty (accepted: mix, mix-k, irm, eq)");
    return methods;
}

void run_oracle_baselines(const OracleRequest& request) {
    StemDataset dataset = open_songs(request.reference_dir);
    const auto& stems = dataset.stems();
    at::Tensor gains;
    if (std::find(request.methods.begin(), request.methods.end(), "eq") != request.methods.end()) {
        if (request.fit_dir.empty())
            throw UserError("oracle method 'eq' needs --fit DIR: the songs (a training split) its gains are fitted on");
        gains = fit_equaliser(request.fit_dir, stems, dataset.sample_rate());
    }
    for (size_t i = 0; i < dataset.songs().size(); ++i) {
        const StemSong& song = dataset.song(i);
        std::vector<at::Tensor> parts;
        for (size_t k = 0; k < stems.size(); ++k) parts.push_back(dataset.read_stem(i, k, 0, song.frames));
        at::Tensor stem_audio = torch::stack(parts);
        at::Tensor mixture = dataset.read_mixture(i, 0, song.frames);
        for (const std::string& method : request.methods) {
            at::Tensor estimate = oracle_estimate(method, stem_audio, mixture, gains);
            fs::path folder = fs::path(request.out_dir) / method / song.name;
            fs::create_directories(folder);
            for (size_t k = 0; k < stems.size(); ++k)
                write_audio((folder / (stems[k] + ".wav")).string(), estimate[k], dataset.sample_rate(),
                            AudioFormat::kWavFloat);
        }
        std::fprintf(stderr, "\roracle estimates %zu/%zu: %s\x1b[K", i + 1, dataset.songs().size(), song.name.c_str());
    }
    std::fprintf(stderr, "\n");
    for (const std::string& method : request.methods) {
        SeparationEvalRequest scoring = request.scoring;
        scoring.reference_dir = request.reference_dir;
        scoring.estimate_dir = (fs::path(request.out_dir) / method).string();
        scoring.out_dir = (fs::path(request.out_dir) / "scores" / method).string();
        const char* what = method == "mix"     ? " (mixture as every stem)"
                           : method == "mix-k" ? " (mixture / K)"
                           : method == "irm"   ? " (ideal ratio mask, STFT 4096/1024)"
                                               : " (best fixed equaliser: per-bin gains fitted on --fit, STFT 4096/1024)";
        std::printf("oracle '%s'%s\n", method.c_str(), what);
        run_separation_eval(scoring);
        std::printf("\n");
    }
}

}  // namespace onestep
