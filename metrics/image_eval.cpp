// Image evaluation: sources of real and generated images, features, metrics and baselines.
#include "metrics/image_eval.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/hash.hpp"
#include "core/trainer.hpp"
#include "data/dataset.hpp"
#include "metrics/features.hpp"
#include "metrics/stats.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace onestep {
namespace {

constexpr int64_t kImageSize = 32;

// A seeded subset of N rows (in a fixed order), without replacement.
at::Tensor seeded_subset(int64_t total, int64_t n, uint64_t seed) {
    std::vector<int64_t> order(total);
    for (int64_t i = 0; i < total; ++i) order[i] = i;
    std::mt19937_64 engine(seed);
    for (int64_t i = 0; i < n; ++i) {
        std::uniform_int_distribution<int64_t> pick(i, total - 1);
        std::swap(order[i], order[pick(engine)]);
    }
    order.resize(n);
    return torch::tensor(order, torch::kLong);
}

bool is_stats_file(const std::string& source) {
    std::string extension = fs::path(source).extension().string();
    return !fs::is_directory(source) && (extension == ".npz" || extension == ".safetensors");
}

struct ImageSet {
    at::Tensor images;   // float [N, C, 32, 32] in [-1, 1]
    at::Tensor labels;   // int64 [N] (requested labels for generated sets; -1 when unknown)
    std::string description;
    int64_t nfe = -1;    // network evaluations per generated image (-1: not generated here)
    int64_t step = -1;   // the generator's training step
};

// "NAME:SPLIT" (a dataset) or a folder of images.
ImageSet real_images(const std::string& source, int64_t n, uint64_t seed, const std::string& cache_dir) {
    DataSpec spec;
    spec.image_size = kImageSize;
    spec.cache_dir = cache_dir;
    if (fs::is_directory(source)) {
        spec.name = "folder:" + source;
    } else {
        auto colon = source.rfind(':');
        spec.name = source.substr(0, colon);
        spec.split = colon == std::string::npos ? "test" : source.substr(colon + 1);
        if (spec.split != "train" && spec.split != "test" && spec.split != "all") {
            // "folder:DIR" or "idx:DIR" without a split: every image.
            spec.name = source;
            spec.split = "all";
        }
    }
    Dataset data = load_dataset(spec);
    if (!data.is_image) throw UserError("--real " + source + ": not an image dataset");
    if (data.size() < n)
        throw UserError("--real " + source + " has " + std::to_string(data.size()) + " images, fewer than --n " +
                        std::to_string(n));
    at::Tensor rows = seeded_subset(data.size(), n, seed);
    return {to_model_input(data, data.x.index_select(0, rows), kImageSize), data.y.index_select(0, rows),
            source + " (" + std::to_string(n) + " of " + std::to_string(data.size()) + ")"};
}

// The baseline's second real set: the other split of the same dataset, at the same N.
std::string other_split(const std::string& source) {
    auto colon = source.rfind(':');
    if (fs::is_directory(source) || colon == std::string::npos) return "";
    std::string split = source.substr(colon + 1);
    if (split == "test") return source.substr(0, colon) + ":train";
    if (split == "train") return source.substr(0, colon) + ":test";
    return "";
}

ImageSet fake_images(const ImageEvalRequest& request, std::string& checkpoint_path) {
    if (request.fake.rfind("ckpt:", 0) == 0) {
        checkpoint_path = resolve_checkpoint_path(request.fake.substr(5));
        TrainedMethod trained = load_trained_method(checkpoint_path, request.device);
        std::unique_ptr<Sampler> sampler = trained.method->make_sampler();
        if (!sampler) throw UserError("--fake " + request.fake + ": method '" + trained.info->name + "' has no sampler");
        if (sampler->sample_shape().size() != 3) throw UserError("--fake " + request.fake + ": does not produce images");
        at::Tensor labels = default_labels(request.n, sampler->num_classes());
        std::fprintf(stderr, "sampling %lld images with %s (%lld NFE each)\n", static_cast<long long>(request.n),
                     sampler->describe(request.options).c_str(),
                     static_cast<long long>(sampler->nfe(request.options)));
        at::Tensor images = draw_samples(*sampler, labels, request.options, request.seed, 256, request.device);
        if (sampler->num_classes() == 0) labels.fill_(-1);
        return {images, labels,
                trained.info->name + " step " + std::to_string(trained.step) + ", " + sampler->describe(request.options),
                sampler->nfe(request.options), trained.step};
    }
    if (!fs::is_directory(request.fake))
        throw UserError("--fake " + request.fake + ": expected ckpt:PATH or a folder of images");
    ImageSet set = real_images(request.fake, request.n, request.seed, request.cache_dir);
    set.labels.fill_(-1);
    set.description = request.fake;
    return set;
}

// Reference statistics of a dataset split, cached by extractor, split, N and seed.
ReferenceStats dataset_stats(FeatureExtractor& extractor, const ImageEvalRequest& request, const at::Tensor& features,
                             const std::string& source) {
    ReferenceStats stats;
    FeatureStats accumulator(extractor.feature_dim());
    accumulator.add(features);
    stats.mu = accumulator.mean();
    stats.sigma = accumulator.covariance();
    stats.n = accumulator.count();
    stats.metadata = {{"extractor", extractor.id()}, {"extractor_sha256", extractor.sha256()},
                      {"mode", extractor.mode()}, {"source", source}, {"n", std::to_string(stats.n)},
                      {"seed", std::to_string(request.seed)}};
    return stats;
}

std::string cache_name(const FeatureExtractor& extractor, const std::string& source, int64_t n, uint64_t seed) {
    std::string safe = source;
    for (char& c : safe)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '_';
    return safe + "-n" + std::to_string(n) + "-s" + std::to_string(seed) + "-" + extractor.sha256().substr(0, 12) + ".safetensors";
}

struct MetricValue {
    double value = 0;
    double std = std::nan("");
    json extra = json::object();
};

MetricValue compute(const std::string& metric, const at::Tensor& real, const at::Tensor& fake, uint64_t seed) {
    MetricValue result;
    if (metric == "fid") {
        FeatureStats a(real.size(1)), b(fake.size(1));
        a.add(real);
        b.add(fake);
        FrechetResult fd = frechet_distance(b.mean(), b.covariance(), a.mean(), a.covariance(), fake.size(0), real.size(0));
        result.value = fd.value;
        result.extra = {{"jitter_applied", fd.jitter_applied}, {"rank_deficient", fd.rank_deficient}};
    } else if (metric == "kid") {
        KidResult kid = kernel_inception_distance(real, fake, 100, 1000, seed);
        result.value = kid.mean;
        result.std = kid.std;
        result.extra = {{"subsets", kid.subsets}, {"subset_size", kid.subset_size}};
    } else if (metric == "prdc") {
        PrecisionRecall pr = precision_recall(real, fake);
        result.value = pr.precision;
        result.extra = {{"precision", pr.precision}, {"recall", pr.recall},
                        {"f1", pr.precision + pr.recall > 0 ? 2 * pr.precision * pr.recall / (pr.precision + pr.recall) : 0.0}};
    }
    return result;
}

std::string metric_name(const std::string& metric, const FeatureExtractor& extractor) {
    bool inception = extractor.id().rfind("inception", 0) == 0;
    std::string suffix = inception ? "_inception" : "_classifier";
    if (metric == "fid") return inception ? "fid_inception" : "fd_classifier";
    if (metric == "prdc") return "pr" + suffix;
    if (metric == "cacc") return "acc_cond";
    if (metric == "classes") return "class_share";
    return metric + suffix;
}

std::string format_value(const std::string& metric, const MetricValue& value) {
    char text[160];
    if (metric == "kid")
        std::snprintf(text, sizeof text, "%.4g ± %.2g (x1e3: %.3f)", value.value, value.std, value.value * 1e3);
    else if (metric == "prdc")
        std::snprintf(text, sizeof text, "precision %.4f recall %.4f", value.extra["precision"].get<double>(),
                      value.extra["recall"].get<double>());
    else if (metric == "is")
        std::snprintf(text, sizeof text, "%.4f ± %.4f", value.value, value.std);
    else
        std::snprintf(text, sizeof text, "%.4f", value.value);
    return text;
}

std::string cells(const std::vector<double>& values) {
    std::string text;
    for (double value : values) {
        char cell[16];
        std::snprintf(cell, sizeof cell, " %.3f", value);
        text += cell;
    }
    return text;
}

// Share of each class 0..CLASSES-1 among LABELS.
std::vector<double> class_shares(const at::Tensor& labels, int64_t classes) {
    at::Tensor counts = torch::bincount(labels.to(torch::kLong), {}, classes).to(torch::kDouble) / labels.numel();
    return std::vector<double>(counts.data_ptr<double>(), counts.data_ptr<double>() + classes);
}

// Mode collapse: how spread each class's samples (by LABELS) are in feature space, against real
// images of the class; recorded as diversity_per_class and diversity_min.
std::vector<double> record_diversity(FeatureExtractor& extractor, const at::Tensor& images, const at::Tensor& labels,
                                     const ImageSet& real, int64_t classes, json& record) {
    std::vector<double> diversity =
        class_diversity(extractor.features(images), labels, extractor.features(real.images), real.labels, classes);
    double lowest = std::numeric_limits<double>::infinity();
    for (double ratio : diversity)
        if (std::isfinite(ratio)) lowest = std::min(lowest, ratio);
    record["diversity_per_class"] = diversity;
    if (std::isfinite(lowest)) record["diversity_min"] = lowest;
    return diversity;
}

std::string diversity_line(const std::vector<double>& diversity) {
    return "\n  diversity per class (fake / real mean pairwise feature distance; < 0.5 flags collapse):" + cells(diversity);
}

}  // namespace

std::string run_image_eval(const ImageEvalRequest& request) {
    const std::string& metric = request.metric;
    if (metric != "fid" && metric != "kid" && metric != "prdc" && metric != "is" && metric != "cacc" && metric != "classes")
        throw UserError("eval " + metric + ": expected fid, kid, prdc, is, cacc or classes");
    if (request.n < 2) throw UserError("--n must be at least 2");
    auto started = std::chrono::steady_clock::now();
    std::unique_ptr<FeatureExtractor> extractor = make_feature_extractor(request.features, request.device);
    std::string cache_dir = resolve_cache_dir(request.cache_dir);

    std::string checkpoint_path;
    ImageSet fake = fake_images(request, checkpoint_path);
    json record = {{"metric", metric_name(metric, *extractor)},
                   {"n_gen", request.n},
                   {"fake", request.fake},
                   {"fake_description", fake.description},
                   {"extractor", {{"id", extractor->id()}, {"sha256", extractor->sha256()},
                                  {"feature_dim", extractor->feature_dim()}}},
                   {"mode", extractor->mode()},
                   {"quantization", "png (floor(127.5 x + 128))"},
                   {"cov_norm", "n-1"},
                   {"seed", request.seed},
                   {"onestep_version", ONESTEP_VERSION},
                   {"libtorch_version", TORCH_VERSION},
                   {"device", request.device.str()}};
    if (fake.nfe >= 0) record["nfe"] = fake.nfe, record["step"] = fake.step;
    std::string line;

    if (metric == "is") {
        at::Tensor logits = extractor->logits(fake.images).to(torch::kDouble);
        ScoreResult score = inception_score(logits, 10);
        MetricValue value{score.mean, score.std, json::object()};
        record["value"] = score.mean;
        record["std"] = score.std;
        line = record["metric"].get<std::string>() + " " + extractor->id() + " N_gen=" + std::to_string(request.n) +
               " value=" + format_value(metric, value);
        if (request.baseline && !fs::is_directory(request.real) && !is_stats_file(request.real)) {
            ImageSet real = real_images(request.real, request.n, request.seed + 1, request.cache_dir);
            ScoreResult base = inception_score(extractor->logits(real.images).to(torch::kDouble), 10);
            record["baseline"] = {{"value", base.mean}, {"std", base.std}, {"source", request.real}, {"n", request.n}};
            line += " real(" + request.real + ")=" + format_value(metric, {base.mean, base.std, json::object()});
        }
    } else if (metric == "cacc") {
        if (fake.labels.numel() == 0 || fake.labels.min().item<int64_t>() < 0)
            throw UserError("eval cacc: needs a class-conditional generator given as --fake ckpt:PATH");
        at::Tensor predicted = extractor->logits(fake.images).argmax(1);
        at::Tensor correct = (predicted == fake.labels).to(torch::kDouble);
        double accuracy = correct.mean().item<double>();
        int64_t classes = fake.labels.max().item<int64_t>() + 1;
        std::vector<double> per_class;
        for (int64_t c = 0; c < classes; ++c) {
            at::Tensor mask = fake.labels == c;
            per_class.push_back(mask.sum().item<int64_t>() > 0 ? correct.masked_select(mask).mean().item<double>() : 0.0);
        }
        record["value"] = accuracy;
        record["per_class"] = per_class;
        ImageSet real = real_images(request.real, request.n, request.seed + 1, request.cache_dir);
        double ceiling = (extractor->logits(real.images).argmax(1) == real.labels).to(torch::kDouble).mean().item<double>();
        record["baseline"] = {{"value", ceiling}, {"source", request.real}, {"n", request.n},
                              {"meaning", "the classifier's accuracy on real images (the ceiling)"}};
        std::vector<double> diversity = record_diversity(*extractor, fake.images, fake.labels, real, classes, record);
        char text[200];
        std::snprintf(text, sizeof text, "acc_cond %s N_gen=%lld value=%.4f (classifier on real %s: %.4f)",
                      extractor->id().c_str(), static_cast<long long>(request.n), accuracy, request.real.c_str(), ceiling);
        line = text;
        line += "\n  per class:" + cells(per_class) + diversity_line(diversity);
    } else if (metric == "classes") {
        // Which classes an (unconditional) generator draws, by the classifier's vote.
        at::Tensor logits = extractor->logits(fake.images);
        const int64_t classes = logits.size(1);
        at::Tensor predicted = logits.argmax(1).cpu();
        ImageSet real = real_images(request.real, request.n, request.seed + 1, request.cache_dir);
        if (real.labels.numel() == 0 || real.labels.min().item<int64_t>() < 0 || real.labels.max().item<int64_t>() + 1 != classes)
            throw UserError("eval classes: the extractor " + extractor->id() + " has " + std::to_string(classes) +
                            " outputs and --real " + request.real + " does not hold that many labelled classes; use "
                            "the dataset's own classifier (--features classifier:RUN)");
        at::Tensor real_predicted = extractor->logits(real.images).argmax(1).cpu();
        std::vector<double> share = class_shares(predicted, classes), real_share = class_shares(real_predicted, classes);
        const auto lowest = std::min_element(share.begin(), share.end());
        record["value"] = *lowest;
        record["share_per_class"] = share;
        record["baseline"] = {{"value", *std::min_element(real_share.begin(), real_share.end())},
                              {"share_per_class", real_share}, {"source", request.real}, {"n", request.n},
                              {"meaning", "the classifier's histogram of real images"}};
        // Both sides grouped by the classifier's vote.
        ImageSet real_by_vote = real;
        real_by_vote.labels = real_predicted;
        std::vector<double> diversity = record_diversity(*extractor, fake.images, predicted, real_by_vote, classes, record);
        char text[240];
        std::snprintf(text, sizeof text, "class_share %s N_gen=%lld lowest=%.4f (class %lld; real %s: %.4f)",
                      extractor->id().c_str(), static_cast<long long>(request.n), *lowest,
                      static_cast<long long>(lowest - share.begin()), request.real.c_str(),
                      record["baseline"]["value"].get<double>());
        line = text;
        line += "\n  share per class:" + cells(share) + "\n  real:           " + cells(real_share) +
                diversity_line(diversity);
    } else {
        at::Tensor fake_features = extractor->features(fake.images);
        MetricValue value;
        std::string reference_text;
        if (is_stats_file(request.real)) {
            if (metric != "fid") throw UserError("--real " + request.real + ": statistics files serve eval fid only");
            ReferenceStats stats = read_reference_stats(request.real);
            auto found = stats.metadata.find("extractor_sha256");
            if (found != stats.metadata.end() && found->second != extractor->sha256())
                throw UserError("--real " + request.real + ": statistics were computed with another extractor (" +
                                stats.metadata["extractor"] + ")");
            FeatureStats accumulator(extractor->feature_dim());
            accumulator.add(fake_features);
            FrechetResult fd = frechet_distance(accumulator.mean(), accumulator.covariance(), stats.mu, stats.sigma,
                                                request.n, stats.n);
            value.value = fd.value;
            value.extra = {{"jitter_applied", fd.jitter_applied}, {"rank_deficient", fd.rank_deficient}};
            record["reference"] = {{"stats_file", request.real}, {"sha256", sha256_file(request.real)}, {"n", stats.n}};
            reference_text = std::to_string(stats.n) + "(" + request.real + ")";
        } else {
            ImageSet real = real_images(request.real, request.n, request.seed + 1, request.cache_dir);
            at::Tensor real_features = extractor->features(real.images);
            value = compute(metric, real_features, fake_features, request.seed);
            record["reference"] = {{"source", request.real}, {"n", request.n}};
            reference_text = std::to_string(request.n) + "(" + request.real + ")";
            if (!request.save_stats.empty()) {
                write_reference_stats(request.save_stats, dataset_stats(*extractor, request, real_features, request.real));
                std::fprintf(stderr, "wrote %s\n", request.save_stats.c_str());
            }
            if (metric == "fid" && !fs::is_directory(request.real)) {
                fs::path stats_dir = fs::path(cache_dir) / "stats";
                std::error_code error;
                fs::create_directories(stats_dir, error);
                if (!error) {
                    fs::path stats_path = stats_dir / cache_name(*extractor, request.real, request.n, request.seed + 1);
                    if (!fs::exists(stats_path))
                        write_reference_stats(stats_path.string(),
                                              dataset_stats(*extractor, request, real_features, request.real));
                    record["reference"]["stats_file"] = stats_path.string();
                }
            }
            std::string other = other_split(request.real);
            if (request.baseline && !other.empty()) {
                ImageSet second = real_images(other, request.n, request.seed + 2, request.cache_dir);
                MetricValue base = compute(metric, real_features, extractor->features(second.images), request.seed);
                record["baseline"] = {{"value", base.value}, {"source", other}, {"n", request.n}};
                if (!std::isnan(base.std)) record["baseline"]["std"] = base.std;
                if (!base.extra.empty()) record["baseline"]["detail"] = base.extra;
                record["baseline_text"] = format_value(metric, base);
            }
        }
        record["value"] = value.value;
        if (!std::isnan(value.std)) record["std"] = value.std;
        if (!value.extra.empty()) record["detail"] = value.extra;
        line = record["metric"].get<std::string>() + " " + extractor->id() + " N_gen=" + std::to_string(request.n) +
               " N_ref=" + reference_text + " value=" + format_value(metric, value);
        if (record.contains("baseline"))
            line += " baseline(" + record["baseline"]["source"].get<std::string>() + "<->" + request.real +
                    ", N=" + std::to_string(request.n) + ")=" + record["baseline_text"].get<std::string>();
        else
            line += " baseline: n/a (needs --real NAME:SPLIT)";
        if (value.extra.value("rank_deficient", false)) line += " [warning: N <= feature dim, covariance rank-deficient]";
    }
    record["wall_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);

    std::string out = request.out;
    if (out.empty() && !checkpoint_path.empty()) {
        fs::path eval_dir = fs::path(checkpoint_path).parent_path().parent_path() / "eval";
        if (fs::is_directory(eval_dir)) {
            char stamp[32];
            std::time_t now = std::time(nullptr);
            std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
            out = (eval_dir / (record["metric"].get<std::string>() + "_" + stamp + ".json")).string();
        }
    }
    if (!out.empty()) {
        write_file_atomic(out, record.dump(2) + "\n");
        std::fprintf(stderr, "wrote %s\n", out.c_str());
    }
    return record.dump();
}

}  // namespace onestep
