// The classifier method and classifier-feature metrics on a synthetic labelled image set made
// here (ten classes of oriented bars): training reaches high accuracy, features are
// deterministic, FD grows with noise and blur, and `eval` runs end to end with its baseline.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

#include "core/registry.hpp"
#include "data/dataset.hpp"
#include "metrics/classifier.hpp"
#include "metrics/stats.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using namespace onestep;
using Catch::Matchers::Contains;

namespace {

const std::string kOnestep = ONESTEP_BINARY;

// Class c: a bar through the centre at angle 18c degrees, random thickness, offset and brightness.
void write_bar_images(const std::string& root, int per_class, uint64_t seed) {
    std::mt19937_64 engine(seed);
    std::uniform_real_distribution<double> jitter(-2.0, 2.0), brightness(150, 255);
    std::uniform_int_distribution<int> thickness(2, 4);
    for (int c = 0; c < 10; ++c) {
        fs::create_directories(root + "/" + std::to_string(c));
        for (int i = 0; i < per_class; ++i) {
            cv::Mat image(28, 28, CV_8UC1, cv::Scalar(0));
            double angle = c * M_PI / 10.0;
            cv::Point2d centre(14 + jitter(engine), 14 + jitter(engine));
            cv::Point2d offset(11 * std::cos(angle), 11 * std::sin(angle));
            cv::line(image, centre - offset, centre + offset, cv::Scalar(brightness(engine)), thickness(engine), cv::LINE_AA);
            cv::imwrite(root + "/" + std::to_string(c) + "/" + std::to_string(i) + ".png", image);
        }
    }
}

struct TrainedClassifier {
    test::TempDir dir;
    std::string checkpoint;
};

// One classifier for all tests in this file (training takes a few seconds).
TrainedClassifier& trained_classifier() {
    static std::unique_ptr<TrainedClassifier> shared;
    if (!shared) {
        register_builtin_methods();   // the extractor rebuilds the classifier by name
        auto made = std::make_unique<TrainedClassifier>();
        write_bar_images(made->dir / "bars/train", 60, 1);
        write_bar_images(made->dir / "bars/test", 30, 2);
        auto run = test::run_command(kOnestep + " train classifier --threads 2 --run-dir " + (made->dir / "cls") +
                                     " --set data.name=folder:" + (made->dir / "bars") +
                                     " --set data.image_size=28 --set steps=150 --set batch_size=32"
                                     " --set classifier.width=8 --set classifier.feature_dim=32 --set optim.lr=3e-3"
                                     " --set ckpt_every=150 --set log_every=10");
        INFO(run.output);
        REQUIRE(run.exit_code == 0);
        made->checkpoint = made->dir / "cls";
        shared = std::move(made);
    }
    return *shared;
}

at::Tensor test_images(const TrainedClassifier& trained) {
    DataSpec spec;
    spec.name = "folder:" + (trained.dir / "bars");
    spec.split = "test";
    spec.image_size = 32;
    Dataset data = load_dataset(spec);
    return to_model_input(data, data.x, 32);
}

double fd(const at::Tensor& a, const at::Tensor& b) {
    FeatureStats left(a.size(1)), right(b.size(1));
    left.add(a);
    right.add(b);
    return frechet_distance(left.mean(), left.covariance(), right.mean(), right.covariance()).value;
}

}  // namespace

TEST_CASE("the classifier learns the synthetic classes and logs its held-out accuracy", "[integration]") {
    TrainedClassifier& trained = trained_classifier();
    nlohmann::json record = nlohmann::json::parse(test::read_text(trained.dir / "cls/eval/step-00000150.json"));
    CHECK(record["eval"]["test_accuracy"].get<double>() > 0.9);
}

TEST_CASE("classifier FD grows with noise and blur, and features are deterministic", "[integration]") {
    TrainedClassifier& trained = trained_classifier();
    auto extractor = make_classifier_extractor(trained.checkpoint, c10::Device(c10::kCPU));
    at::Tensor images = test_images(trained);
    at::Tensor reference = extractor->features(images);
    CHECK(torch::equal(reference, extractor->features(images)));
    CHECK(extractor->id().find("/cnn32@") != std::string::npos);

    torch::manual_seed(0);
    at::Tensor noise = torch::randn_like(images);
    double previous = fd(reference, reference);
    CHECK(std::abs(previous) < 1e-6);
    for (double sigma : {0.05, 0.1, 0.2, 0.4}) {
        double value = fd(reference, extractor->features((images + sigma * noise).clamp(-1, 1)));
        INFO("sigma " << sigma);
        CHECK(value > previous);
        previous = value;
    }
    previous = 0;
    for (int kernel : {3, 5, 7}) {
        at::Tensor blurred =
            torch::avg_pool2d(images, {kernel, kernel}, {1, 1}, {kernel / 2, kernel / 2}, false, false);
        double value = fd(reference, extractor->features(blurred));
        INFO("blur " << kernel);
        CHECK(value > previous);
        previous = value;
    }
}

TEST_CASE("eval fid of a generator run records its NFE and step, and report ranks it", "[integration]") {
    TrainedClassifier& trained = trained_classifier();
    const std::string runs = trained.dir / "runs";
    auto flow = test::run_command(kOnestep + " train flow --threads 2 --run-dir " + runs + "/flow --set data.name=folder:" +
                                  (trained.dir / "bars") +
                                  " --set steps=2 --set batch_size=4 --set sample.n=4 --set model.unet.channels=8"
                                  " --set model.unet.channel_mult=[1,2] --set model.unet.attention_resolutions=[16]");
    INFO(flow.output);
    REQUIRE(flow.exit_code == 0);
    for (int steps : {1, 2}) {
        auto evaluated = test::run_command(kOnestep + " eval fid --features classifier:" + trained.checkpoint +
                                           " --fake ckpt:" + runs + "/flow --steps " + std::to_string(steps) +
                                           " --real " + (trained.dir / "bars/test") + " --n 20 --no-baseline --out " +
                                           runs + "/fd-" + std::to_string(steps) + ".json");
        INFO(evaluated.output);
        REQUIRE(evaluated.exit_code == 0);
        nlohmann::json record = nlohmann::json::parse(test::read_text(runs + "/fd-" + std::to_string(steps) + ".json"));
        CHECK(record["nfe"] == steps);
        CHECK(record["step"] == 2);
    }
    auto report = test::run_command(kOnestep + " report " + runs);
    INFO(report.output);
    CHECK(report.exit_code == 0);
    CHECK_THAT(report.output, Contains("fd_classifier (lower is better)"));
    std::string page = test::read_text(runs + "/report.md");
    CHECK_THAT(page, Contains("| flow | flow | folder:" + (trained.dir / "bars")));
    CHECK(fs::exists(runs + "/report-figures"));
}

TEST_CASE("eval fid, kid, prdc and is run through the CLI with the baseline", "[integration]") {
    TrainedClassifier& trained = trained_classifier();
    std::string features = " --features classifier:" + trained.checkpoint;
    std::string real = " --real " + (trained.dir / "bars/test");
    for (std::string metric : {"fid", "kid", "prdc", "is"}) {
        auto result = test::run_command(kOnestep + " eval " + metric + features + " --fake " + (trained.dir / "bars/train/3") +
                                        " --real " + (trained.dir / "bars/test") + " --n 25 --out " +
                                        (trained.dir / (metric + ".json")) + " --threads 2");
        INFO(result.output);
        CHECK(result.exit_code == 0);
        CHECK(fs::exists(trained.dir / (metric + ".json")));
    }
    // Statistics saved as pytorch-fid's .npz serve as --real and give the same FD.
    auto saved = test::run_command(kOnestep + " eval fid" + features + " --fake " + (trained.dir / "bars/train/3") + real +
                                   " --n 25 --save-stats " + (trained.dir / "ref.npz") + " --out " + (trained.dir / "a.json"));
    INFO(saved.output);
    REQUIRE(saved.exit_code == 0);
    auto from_stats = test::run_command(kOnestep + " eval fid" + features + " --fake " + (trained.dir / "bars/train/3") +
                                        " --real " + (trained.dir / "ref.npz") + " --n 25 --out " + (trained.dir / "b.json"));
    INFO(from_stats.output);
    REQUIRE(from_stats.exit_code == 0);
    double direct = nlohmann::json::parse(test::read_text(trained.dir / "a.json"))["value"].get<double>();
    double via_stats = nlohmann::json::parse(test::read_text(trained.dir / "b.json"))["value"].get<double>();
    CHECK(via_stats == Approx(direct).epsilon(1e-9));

    // The class histogram of a folder holding class 3 only: class 3 dominates, another class is absent.
    auto classes = test::run_command(kOnestep + " eval classes" + features + " --fake " + (trained.dir / "bars/train/3") +
                                     real + " --n 25 --out " + (trained.dir / "classes.json"));
    INFO(classes.output);
    REQUIRE(classes.exit_code == 0);
    CHECK_THAT(classes.output, Contains("share per class"));
    nlohmann::json histogram = nlohmann::json::parse(test::read_text(trained.dir / "classes.json"));
    CHECK(histogram["metric"] == "class_share");
    CHECK(histogram["share_per_class"][3].get<double>() > 0.8);
    CHECK(histogram["value"].get<double>() == 0.0);
    CHECK(histogram["baseline"]["value"].get<double>() > 0.0);   // real images of every class

    nlohmann::json fid = nlohmann::json::parse(test::read_text(trained.dir / "fid.json"));
    CHECK(fid["metric"] == "fd_classifier");
    CHECK(fid["extractor"]["sha256"].get<std::string>().size() == 64);
    CHECK(fid["value"].get<double>() > 0);

    auto missing = test::run_command(kOnestep + " eval fid --features classifier:" + (trained.dir / "none") +
                                     " --fake " + (trained.dir / "bars/test") + real);
    CHECK(missing.exit_code == 2);
    CHECK_THAT(missing.output, Contains("no such checkpoint"));
    auto wrong =
        test::run_command(kOnestep + " eval cacc" + features + " --fake " + (trained.dir / "bars/test") + real + " --n 25");
    CHECK(wrong.exit_code == 2);
    CHECK_THAT(wrong.output, Contains("class-conditional generator"));
}
