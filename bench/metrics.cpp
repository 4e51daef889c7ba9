// Metric benchmark and sanity check on real data: time to extract classifier features and
// compute FD for N images, the train-vs-test floor, and FD under increasing noise and blur.
//   onestep_bench_metrics [CLASSIFIER_CKPT] [DATASET] [N] [THREADS]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "core/registry.hpp"
#include "core/runtime.hpp"
#include "data/dataset.hpp"
#include "metrics/classifier.hpp"
#include "metrics/stats.hpp"

using namespace onestep;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

at::Tensor images_of(const std::string& dataset, const std::string& split, int64_t n) {
    DataSpec spec;
    spec.name = dataset;
    spec.split = split;
    Dataset data = load_dataset(spec);
    n = std::min(n, data.size());
    // A fixed spread-out subset: every k-th image, so all classes appear.
    at::Tensor rows = torch::arange(n, torch::kLong) * (data.size() / n);
    return to_model_input(data, data.x.index_select(0, rows), 32);
}

FeatureStats stats_of(const at::Tensor& features) {
    FeatureStats stats(features.size(1));
    stats.add(features);
    return stats;
}

double fd(const FeatureStats& a, const FeatureStats& b) {
    return frechet_distance(a.mean(), a.covariance(), b.mean(), b.covariance(), a.count(), b.count()).value;
}

}  // namespace

int main(int argc, char** argv) {
    reexec_with_passive_openmp(argv);
    std::string checkpoint = argc > 1 ? argv[1] : "runs/fmnist-classifier";
    std::string dataset = argc > 2 ? argv[2] : "fashion-mnist";
    int64_t n = argc > 3 ? std::stoll(argv[3]) : 10000;
    int threads = set_thread_count(argc > 4 ? std::stoi(argv[4]) : 0);
    register_builtin_methods();
    auto extractor = make_classifier_extractor(checkpoint, c10::Device(c10::kCPU));
    at::Tensor test = images_of(dataset, "test", n);
    at::Tensor train = images_of(dataset, "train", n);

    auto start = std::chrono::steady_clock::now();
    at::Tensor test_features = extractor->features(test);
    double feature_s = seconds_since(start);
    start = std::chrono::steady_clock::now();
    FeatureStats reference = stats_of(test_features);
    FeatureStats other = stats_of(extractor->features(train));
    double floor = fd(other, reference);
    double fd_s = seconds_since(start);
    std::printf("{\"extractor\": \"%s\", \"n\": %lld, \"threads\": %d, \"features_s\": %.3f, "
                "\"second_set_features_plus_stats_plus_fd_s\": %.3f, \"fd_train_vs_test\": %.4f}\n",
                extractor->id().c_str(), static_cast<long long>(test.size(0)), threads, feature_s, fd_s, floor);

    torch::manual_seed(0);
    at::Tensor noise = torch::randn_like(test);
    std::printf("%-22s %10s\n", "corruption of test", "FD to test");
    std::printf("%-22s %10.4f\n", "none (train images)", floor);
    for (double sigma : {0.05, 0.1, 0.2, 0.4})
        std::printf("noise sigma %-10.2f %10.4f\n", sigma,
                    fd(stats_of(extractor->features((test + sigma * noise).clamp(-1, 1))), reference));
    for (int kernel : {3, 5, 7}) {
        at::Tensor blurred = torch::avg_pool2d(test, {kernel, kernel}, {1, 1}, {kernel / 2, kernel / 2}, false, false);
        std::printf("box blur %dx%-12d %10.4f\n", kernel, kernel, fd(stats_of(extractor->features(blurred)), reference));
    }
    return 0;
}
