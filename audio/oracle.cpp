// Oracle estimates: computed per song in memory (songs of a test set are minutes long at most),
// written as float WAV so that quantisation does not cap the scores, then scored like a model.
#include "audio/oracle.hpp"

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "audio/audio_io.hpp"
#include "audio/stem_dataset.hpp"
#include "audio/stft.hpp"
#include "core/error.hpp"
#include "core/options.hpp"

namespace fs = std::filesystem;

namespace onestep {
namespace {

const char* const kOracleMethods[] = {"mix", "mix-k", "irm"};
const StftConfig kIrmStft{4096, 1024};

// Estimates [K, C, T] of one song by METHOD from its stems [K, C, T] and mixture [C, T].
at::Tensor oracle_estimate(const std::string& method, const at::Tensor& stems, const at::Tensor& mixture) {
    const int64_t count = stems.size(0);
    if (method == "mix") return mixture.unsqueeze(0).expand_as(stems).contiguous();
    if (method == "mix-k") return (mixture / static_cast<double>(count)).unsqueeze(0).expand_as(stems).contiguous();
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
        if (!known) throw UserError("unknown oracle method '" + item + "' (accepted: mix, mix-k, irm)");
        methods.push_back(item);
    }
    if (methods.empty()) throw UserError("--methods is empty (accepted: mix, mix-k, irm)");
    return methods;
}

void run_oracle_baselines(const OracleRequest& request) {
    fs::path reference = fs::path(request.reference_dir).lexically_normal();
    if (reference.filename().empty()) reference = reference.parent_path();
    StemDatasetOptions options;
    options.use_index = false;           // never write into the user's test set
    options.check_mixture_sum = false;   // the evaluator reads every file anyway
    StemDataset dataset = StemDataset::open(reference.parent_path().empty() ? "." : reference.parent_path().string(),
                                            reference.filename().string(), options);
    const auto& stems = dataset.stems();
    for (size_t i = 0; i < dataset.songs().size(); ++i) {
        const StemSong& song = dataset.song(i);
        std::vector<at::Tensor> parts;
        for (size_t k = 0; k < stems.size(); ++k) parts.push_back(dataset.read_stem(i, k, 0, song.frames));
        at::Tensor stem_audio = torch::stack(parts);
        at::Tensor mixture = dataset.read_mixture(i, 0, song.frames);
        for (const std::string& method : request.methods) {
            at::Tensor estimate = oracle_estimate(method, stem_audio, mixture);
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
        std::printf("oracle '%s'%s\n", method.c_str(),
                    method == "mix" ? " (mixture as every stem)" : method == "mix-k" ? " (mixture / K)" : " (ideal ratio mask, STFT 4096/1024)");
        run_separation_eval(scoring);
        std::printf("\n");
    }
}

}  // namespace onestep
