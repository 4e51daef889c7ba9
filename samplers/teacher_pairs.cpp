// Chunked, resumable teacher-pair generation.
#include "samplers/teacher_pairs.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/hash.hpp"
#include "core/runtime.hpp"
#include "core/tensor_file.hpp"
#include "core/trainer.hpp"
#include "data/random_streams.hpp"
#include "samplers/generator.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace onestep {

at::Tensor pair_noise(uint64_t seed, int64_t index, const std::vector<int64_t>& sample_shape) {
    uint64_t stream = data_sources::splitmix64(data_sources::splitmix64(seed) ^ static_cast<uint64_t>(index));
    auto generator = at::make_generator<at::CPUGeneratorImpl>(stream);
    return at::randn(sample_shape, generator, at::TensorOptions().dtype(at::kFloat));
}

namespace {

std::string chunk_name(int64_t index) {
    char name[48];
    std::snprintf(name, sizeof name, "chunk-%06lld.safetensors", static_cast<long long>(index));
    return name;
}

}  // namespace

void write_teacher_pairs(const PairRequest& request) {
    if (request.n < 1) throw UserError("--pairs must be at least 1");
    Generator teacher = open_generator(request.checkpoint, request.device);
    Sampler* sampler = teacher.sampler.get();
    if (sampler->noise_shape() != sampler->sample_shape())
        throw UserError("--ckpt " + request.checkpoint + ": a '" + teacher.method +
                        "' model draws from a latent, not from noise shaped like its samples, so its (noise, sample) "
                        "pairs cannot serve distillation; use a flow teacher");
    std::map<std::string, std::string> metadata = {
        {"teacher", teacher.path},
        {"teacher_sha256", teacher.analytic ? "analytic" : sha256_file(teacher.path)},
        {"teacher_method", teacher.method},
        {"sampler", sampler->describe(request.options)},
        {"nfe", std::to_string(sampler->nfe(request.options))},
        {"steps", std::to_string(request.options.steps)},
        {"grid", request.options.grid},
        {"guidance", std::to_string(request.options.guidance)},
        {"seed", std::to_string(request.seed)},
        {"n", std::to_string(request.n)},
        {"label_rule", "i mod num_classes"},
        {"num_classes", std::to_string(sampler->num_classes())},
        {"class_names", json(sampler->class_names()).dump()}};

    fs::path out(request.out);
    if (!out.parent_path().empty() && !fs::is_directory(out.parent_path()))
        throw UserError("--out " + request.out + ": folder " + out.parent_path().string() + " does not exist");
    fs::path partial = out.string() + ".partial";
    json expected(metadata);
    expected["chunk"] = request.chunk;
    // Derived from the teacher (its hash is in the manifest already); left out so that a partial
    // folder from a build that did not record them still resumes.
    expected.erase("num_classes");
    expected.erase("class_names");
    fs::path manifest = partial / "request.json";
    std::error_code error;
    if (fs::exists(manifest)) {
        json found = json::parse(std::ifstream(manifest), nullptr, false);
        if (found != expected)
            throw UserError(partial.string() + " holds pairs made with other settings or another teacher; remove it "
                            "or repeat the original command");
        std::fprintf(stderr, "resuming pairs in %s\n", partial.c_str());
    } else {
        fs::create_directories(partial, error);
        if (error) throw UserError("cannot create " + partial.string() + ": " + error.message());
        write_file_atomic(manifest.string(), expected.dump(2) + "\n");
    }

    std::vector<int64_t> shape = sampler->sample_shape();
    int64_t classes = sampler->num_classes();
    int64_t chunks = (request.n + request.chunk - 1) / request.chunk;
    auto started = std::chrono::steady_clock::now();
    int64_t made = 0;
    StopSignalScope signals;
    for (int64_t c = 0; c < chunks; ++c) {
        fs::path chunk_path = partial / chunk_name(c);
        if (fs::exists(chunk_path)) continue;
        int64_t begin = c * request.chunk;
        int64_t end = std::min(request.n, begin + request.chunk);
        std::vector<at::Tensor> noises;
        for (int64_t i = begin; i < end; ++i) noises.push_back(pair_noise(request.seed, i, shape));
        at::Tensor z = torch::stack(noises);
        at::Tensor y = default_labels(end, classes).slice(0, begin, end).contiguous();
        at::Tensor x;
        {
            torch::NoGradGuard no_grad;
            x = sampler->sample(z.to(request.device), y.to(request.device), request.options).cpu().contiguous();
        }
        write_safetensors(chunk_path.string(), {{"z", z}, {"x", x}, {"y", y}});
        made += end - begin;
        double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        std::fprintf(stderr, "pairs %lld/%lld (%.1f pairs/s)\n", static_cast<long long>(end),
                     static_cast<long long>(request.n), made / std::max(elapsed, 1e-9));
        if (stop_requested())
            throw Interrupted("stopped after " + std::to_string(end) + " pairs; the same command continues from there");
    }
    std::vector<at::Tensor> zs, xs, ys;
    for (int64_t c = 0; c < chunks; ++c) {
        TensorFile chunk = read_safetensors((partial / chunk_name(c)).string());
        zs.push_back(chunk.tensors.at("z"));
        xs.push_back(chunk.tensors.at("x"));
        ys.push_back(chunk.tensors.at("y"));
    }
    write_safetensors(request.out, {{"z", torch::cat(zs)}, {"x", torch::cat(xs)}, {"y", torch::cat(ys)}}, metadata);
    remove_tree(partial.string());
    std::fprintf(stderr, "wrote %s (%lld pairs)\n", request.out.c_str(), static_cast<long long>(request.n));
}

TeacherPairs read_teacher_pairs(const std::string& path) {
    TensorFile file = read_safetensors(path);
    TeacherPairs pairs;
    for (const char* name : {"z", "x", "y"})
        if (file.tensors.count(name) == 0) throw UserError(path + ": teacher pairs need tensors z, x and y; '" + name + "' is missing");
    pairs.z = file.tensors.at("z");
    pairs.x = file.tensors.at("x");
    pairs.y = file.tensors.at("y");
    if (pairs.z.sizes() != pairs.x.sizes() || pairs.y.dim() != 1 || pairs.y.size(0) != pairs.z.size(0) ||
        pairs.y.scalar_type() != at::kLong)
        throw UserError(path + ": z and x must have the same shape and y one int64 label per pair");
    pairs.metadata = file.metadata;
    // Files written before the class count was recorded: the labels i mod C reach C - 1.
    int64_t largest = pairs.y.numel() > 0 ? pairs.y.max().item<int64_t>() : 0;
    pairs.num_classes = largest > 0 ? largest + 1 : 0;
    if (auto found = file.metadata.find("num_classes"); found != file.metadata.end()) {
        try {
            pairs.num_classes = std::stoll(found->second);
        } catch (const std::exception&) {
            pairs.num_classes = -1;
        }
        if (pairs.num_classes < 0)
            throw UserError(path + ": metadata num_classes is '" + found->second + "', not a class count");
    }
    if (auto found = file.metadata.find("class_names"); found != file.metadata.end()) {
        json names = json::parse(found->second, nullptr, false);
        if (names.is_array())
            for (const json& name : names)
                if (name.is_string()) pairs.class_names.push_back(name.get<std::string>());
    }
    if (pairs.y.numel() > 0 && (pairs.y.min().item<int64_t>() < 0 || largest >= std::max<int64_t>(pairs.num_classes, 1)))
        throw UserError(path + ": labels run from " + std::to_string(pairs.y.min().item<int64_t>()) + " to " +
                        std::to_string(largest) + ", outside the " + std::to_string(pairs.num_classes) + " classes it records");
    return pairs;
}

double paired_error(Sampler& sampler, const TeacherPairs& pairs, const std::string& name, int64_t n,
                    const SampleOptions& options, const c10::Device& device) {
    if (sampler.noise_shape() != sampler.sample_shape())
        throw UserError("--pairs " + name + ": this generator draws from a latent, not from the pairs' noise, so it "
                        "has no paired error");
    if (pairs.z.sizes().slice(1) != at::IntArrayRef(sampler.sample_shape()))
        throw UserError("--pairs " + name + ": its samples are shaped unlike the generator's");
    if (pairs.num_classes != sampler.num_classes())
        throw UserError("--pairs " + name + ": made with " + std::to_string(pairs.num_classes) +
                        " classes, the generator has " + std::to_string(sampler.num_classes()));
    if (pairs.z.size(0) == 0) throw UserError("--pairs " + name + " holds no pairs");
    n = std::min(n, pairs.z.size(0));
    torch::NoGradGuard no_grad;
    double total = 0;
    for (int64_t begin = 0; begin < n; begin += 4096) {
        int64_t end = std::min(n, begin + 4096);
        // float16 pairs are allowed; the generators take float32.
        at::Tensor z = pairs.z.slice(0, begin, end).to(device, torch::kFloat);
        at::Tensor generated = sampler.sample(z, pairs.y.slice(0, begin, end).to(device), options).cpu();
        total += (generated - pairs.x.slice(0, begin, end).to(torch::kFloat)).flatten(1).norm(2, 1).sum().item<double>();
    }
    return total / static_cast<double>(n);
}

}  // namespace onestep
