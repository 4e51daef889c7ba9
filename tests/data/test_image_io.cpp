// Sample grids, scatter plots, line plots and loss curves: sizes, pixel values, captions, and
// clear errors for bad inputs and unwritable paths.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>

#include <cmath>
#include <filesystem>
#include <limits>

#include "core/error.hpp"
#include "data/image_io.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using onestep::UserError;
using onestep::test::TempDir;
using onestep::test::user_error_message;

namespace {

// Matches the caption strip and gap the grid writer uses (kCaptionHeight, kGridGap).
constexpr int kCaption = 14;
constexpr int kGap = 2;

const std::vector<std::string> kFashionNames = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};


// Grey level k in 0..255 as the [-1,1] value that maps back to exactly k.
float from_grey(int level) { return static_cast<float>(level / 127.5 - 1.0); }

// Pixels of IMAGE within TOLERANCE of the BGR colour.
int count_colour(const cv::Mat& image, cv::Vec3b colour, int tolerance) {
    int count = 0;
    for (int y = 0; y < image.rows; ++y) {
        for (int x = 0; x < image.cols; ++x) {
            cv::Vec3b pixel = image.at<cv::Vec3b>(y, x);
            if (std::abs(pixel[0] - colour[0]) <= tolerance && std::abs(pixel[1] - colour[1]) <= tolerance &&
                std::abs(pixel[2] - colour[2]) <= tolerance) {
                ++count;
            }
        }
    }
    return count;
}

}  // namespace

TEST_CASE("image grid of labelled images has the expected layout and pixels", "[unit]") {
    TempDir dir;
    const std::string path = dir / "grid.png";
    // Image i is flat grey 20 i + 10 with a white top-left pixel, to check values and orientation.
    at::Tensor images = torch::empty({10, 1, 32, 32});
    for (int i = 0; i < 10; ++i) {
        images[i].fill_(from_grey(20 * i + 10));
        images[i][0][0][0] = 1.0f;
    }
    at::Tensor labels = torch::arange(10, torch::kLong);
    onestep::write_image_grid(path, images, labels, kFashionNames);
    CHECK_FALSE(fs::exists(path + ".tmp.png"));

    cv::Mat grid = cv::imread(path, cv::IMREAD_UNCHANGED);
    REQUIRE_FALSE(grid.empty());
    REQUIRE(grid.type() == CV_8UC1);
    // 10 images: 4 columns, 3 rows of 64x64 cells (scale 2), each under a caption strip.
    CHECK(grid.cols == 4 * 64 + 3 * kGap);
    CHECK(grid.rows == 3 * (kCaption + 64) + 2 * kGap);
    for (int i = 0; i < 10; ++i) {
        INFO("image " << i);
        const int x = (i % 4) * (64 + kGap);
        const int caption_y = (i / 4) * (kCaption + 64 + kGap);
        const int y = caption_y + kCaption;
        CHECK(grid.at<uint8_t>(y, x) == 255);
        CHECK(grid.at<uint8_t>(y + 1, x + 1) == 255);   // nearest-neighbour upscaling: a 2x2 block
        CHECK(grid.at<uint8_t>(y + 2, x + 2) == 20 * i + 10);
        CHECK(grid.at<uint8_t>(y + 40, x + 20) == 20 * i + 10);
        CHECK(grid.at<uint8_t>(y + 63, x + 63) == 20 * i + 10);
        // The caption strip holds dark text on white.
        double darkest = 0, lightest = 0;
        cv::minMaxLoc(grid(cv::Rect(x, caption_y, 64, kCaption)), &darkest, &lightest);
        CHECK(darkest < 100);
        CHECK(lightest == 255);
    }
}

TEST_CASE("image grid without labels, in colour, and a single image", "[unit]") {
    TempDir dir;
    SECTION("colour grid keeps RGB order") {
        at::Tensor images = torch::full({3, 3, 8, 8}, -1.0f);
        images.select(1, 0).fill_(1.0f);   // pure red
        const std::string path = dir / "rgb.png";
        onestep::write_image_grid(path, images, at::Tensor(), {}, 3, 3);
        cv::Mat grid = cv::imread(path, cv::IMREAD_UNCHANGED);
        REQUIRE(grid.type() == CV_8UC3);
        CHECK(grid.cols == 3 * 24 + 2 * kGap);
        CHECK(grid.rows == 24);
        CHECK(grid.at<cv::Vec3b>(5, 5) == cv::Vec3b(0, 0, 255));
    }
    SECTION("one image at scale 1 is the image itself") {
        at::Tensor image = torch::linspace(-1, 1, 28 * 28).reshape({1, 1, 28, 28});
        const std::string path = dir / "one.png";
        onestep::write_image_grid(path, image, at::Tensor(), {}, 1, 1);
        cv::Mat read = cv::imread(path, cv::IMREAD_UNCHANGED);
        REQUIRE(read.rows == 28);
        REQUIRE(read.cols == 28);
        CHECK(read.at<uint8_t>(0, 0) == 0);
        CHECK(read.at<uint8_t>(27, 27) == 255);
    }
    SECTION("labels without class names show the numbers") {
        const std::string path = dir / "numbers.png";
        onestep::write_image_grid(path, torch::zeros({2, 1, 16, 16}), torch::tensor({3, 12}), {});
        cv::Mat read = cv::imread(path, cv::IMREAD_UNCHANGED);
        CHECK(read.rows == kCaption + 32);
        CHECK(read.cols == 2 * 32 + kGap);
    }
}

TEST_CASE("image grid rejects bad inputs and unwritable paths", "[unit]") {
    TempDir dir;
    const std::string path = dir / "bad.png";
    CHECK_THAT(user_error_message([&] { onestep::write_image_grid(path, torch::zeros({0, 1, 8, 8})); }),
               Catch::Contains("[N,1|3,H,W]"));
    CHECK_THAT(user_error_message([&] { onestep::write_image_grid(path, torch::zeros({4, 8, 8})); }),
               Catch::Contains("got [4,8,8]"));
    CHECK_THAT(user_error_message([&] { onestep::write_image_grid(path, torch::zeros({4, 2, 8, 8})); }),
               Catch::Contains(path));
    CHECK_THAT(
        user_error_message([&] { onestep::write_image_grid(path, torch::zeros({4, 1, 8, 8}), torch::zeros({3})); }),
        Catch::Contains("labels of shape [4]"));
    CHECK_FALSE(fs::exists(path));

    const std::string blocker = dir / "file";
    onestep::test::write_text(blocker, "x");
    const std::string unwritable = blocker + "/grid.png";
    std::string message =
        user_error_message([&] { onestep::write_image_grid(unwritable, torch::zeros({1, 1, 8, 8})); });
    CHECK_THAT(message, Catch::Contains(unwritable));
    CHECK_THAT(message, Catch::Contains("Not a directory"));

    const std::string unknown_format = dir / "grid.notanimage";
    message = user_error_message([&] { onestep::write_image_grid(unknown_format, torch::zeros({1, 1, 8, 8})); });
    CHECK_THAT(message, Catch::Contains(unknown_format));
    CHECK_FALSE(fs::exists(unknown_format));
    CHECK_FALSE(fs::exists(unknown_format + ".tmp.notanimage"));
}

TEST_CASE("scatter plot draws labelled points over grey reference points", "[unit]") {
    TempDir dir;
    const std::string path = dir / "scatter.png";
    torch::manual_seed(5);
    at::Tensor points = torch::randn({600, 2}) * 2 + 1;
    points[0][0] = std::numeric_limits<float>::quiet_NaN();   // skipped, not fatal
    at::Tensor labels = torch::arange(600, torch::kLong).remainder(3);
    at::Tensor reference = torch::randn({300, 2}) * 4;
    onestep::write_scatter(path, points, labels, reference, "shortcut, 1 step");
    cv::Mat image = cv::imread(path, cv::IMREAD_COLOR);
    REQUIRE_FALSE(image.empty());
    CHECK(image.cols == 512);
    CHECK(image.rows == 512);
    CHECK(fs::file_size(path) > 1000);
    // The first three palette colours (tab10 blue, orange, green, as BGR) and the reference grey.
    CHECK(count_colour(image, {180, 119, 31}, 6) > 50);
    CHECK(count_colour(image, {14, 127, 255}, 6) > 50);
    CHECK(count_colour(image, {44, 160, 44}, 6) > 50);
    CHECK(count_colour(image, {205, 205, 205}, 3) > 20);

    SECTION("without labels or reference, and with a single point") {
        onestep::write_scatter(path, torch::randn({50, 2}));
        CHECK(cv::imread(path).cols == 512);
        onestep::write_scatter(path, torch::tensor({{0.5f, 0.5f}}));
        CHECK(cv::imread(path).rows == 512);
    }
    SECTION("bad shapes") {
        CHECK_THAT(user_error_message([&] { onestep::write_scatter(path, torch::zeros({5, 3})); }),
                   Catch::Contains("[N,2]"));
        CHECK_THAT(user_error_message([&] { onestep::write_scatter(path, torch::zeros({5, 2}), torch::zeros({4})); }),
                   Catch::Contains("[5]"));
        CHECK_THAT(
            user_error_message([&] { onestep::write_scatter(path, torch::full({3, 2}, std::nan(""))); }),
            Catch::Contains("finite"));
    }
}

TEST_CASE("line plot draws several series, on linear and log axes", "[unit]") {
    TempDir dir;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    onestep::Series train{"loss", {}, {}};
    for (int step = 0; step <= 1000; step += 10) {
        train.x.push_back(step);
        train.y.push_back(2.0 * std::exp(-step / 150.0) + 0.001);
    }
    train.y[20] = nan;
    train.y[21] = inf;
    onestep::Series eval{"eval_loss", {0, 500, 1000}, {2.2, 0.05, 0.01}};
    onestep::Series single{"once", {300}, {0.5}};
    onestep::Series flat{"flat", {0, 1000}, {0.3, 0.3}};

    for (bool log_y : {false, true}) {
        INFO("log_y " << log_y);
        const std::string path = dir / (log_y ? "log.png" : "linear.png");
        onestep::write_line_plot(path, {train, eval, single, flat}, "losses", "step", log_y);
        cv::Mat image = cv::imread(path, cv::IMREAD_COLOR);
        REQUIRE_FALSE(image.empty());
        CHECK(image.cols == 800);
        CHECK(image.rows == 500);
        CHECK(count_colour(image, {180, 119, 31}, 10) > 100);   // first series
        CHECK(count_colour(image, {14, 127, 255}, 10) > 50);    // second series
        CHECK_FALSE(fs::exists(path + ".tmp.png"));
    }
    SECTION("a constant series alone and a single point alone") {
        const std::string path = dir / "edge.png";
        onestep::write_line_plot(path, {flat}, "", "", false);
        CHECK(cv::imread(path).cols == 800);
        onestep::write_line_plot(path, {single}, "one", "x", true);
        CHECK(cv::imread(path).rows == 500);
    }
    SECTION("a log x axis spreads 1, 2, ..., 128 evenly and has no place for 0") {
        // On a linear axis the segment from 1 to 2 is under 1 % of the width; on a log axis, a seventh.
        onestep::Series few{"1 to 2", {1, 2}, {1.0, 1.0}};
        onestep::Series many{"64 to 128", {64, 128}, {0.5, 0.5}};
        for (bool log_x : {false, true}) {
            INFO("log_x " << log_x);
            const std::string path = dir / (log_x ? "log-x.png" : "linear-x.png");
            onestep::write_line_plot(path, {few, many}, "", "steps", false, log_x);
            int64_t first_series = count_colour(cv::imread(path, cv::IMREAD_COLOR), {180, 119, 31}, 10);
            if (log_x) CHECK(first_series > 300);
            else CHECK(first_series < 150);
        }
        onestep::Series zero{"zero", {0}, {1.0}};
        CHECK_THAT(user_error_message([&] { onestep::write_line_plot(dir / "zero.png", {zero}, "", "", false, true); }),
                   Catch::Contains("not positive on a log scale"));
    }
    SECTION("bad inputs") {
        const std::string path = dir / "bad.png";
        CHECK_THAT(user_error_message([&] { onestep::write_line_plot(path, {}, "", "", false); }),
                   Catch::Contains("at least one series"));
        onestep::Series uneven{"uneven", {1, 2, 3}, {1, 2}};
        CHECK_THAT(user_error_message([&] { onestep::write_line_plot(path, {uneven}, "", "", false); }),
                   Catch::Contains("'uneven'"));
        onestep::Series negative{"negative", {1, 2}, {-1, nan}};
        CHECK_THAT(user_error_message([&] { onestep::write_line_plot(path, {negative}, "", "", true); }),
                   Catch::Contains(path));
        CHECK_FALSE(fs::exists(path));
    }
}

TEST_CASE("loss curves come from log.jsonl, and malformed lines are named", "[unit]") {
    TempDir dir;
    const std::string log = dir / "run/log.jsonl";
    const std::string png = dir / "loss.png";
    std::string text = R"({"event":"start","method":"flow"})" "\n";
    for (int step = 1; step <= 200; ++step) {
        text += "{\"step\":" + std::to_string(step) + ",\"loss\":" + std::to_string(1.0 / step) +
                ",\"loss_ema\":" + std::to_string(1.2 / step) + ",\"lr\":0.001,\"done\":false}\n";
    }
    text += "\n";
    onestep::test::write_text(log, text);
    onestep::plot_log_curves(log, png);
    cv::Mat image = cv::imread(png, cv::IMREAD_COLOR);
    REQUIRE_FALSE(image.empty());
    CHECK(image.cols == 800);
    CHECK(image.rows == 500);
    CHECK(count_colour(image, {180, 119, 31}, 10) > 100);
    CHECK(count_colour(image, {14, 127, 255}, 10) > 100);

    SECTION("a line that is not JSON") {
        onestep::test::write_text(log, "{\"step\":1,\"loss\":0.5}\n{\"step\":2,\"loss\":0.4}\n{\"step\":3,\"loss\":\n");
        std::string message = user_error_message([&] { onestep::plot_log_curves(log, png); });
        CHECK_THAT(message, Catch::Contains(log + ":3"));
    }
    SECTION("a line that is JSON but not an object") {
        onestep::test::write_text(log, "{\"step\":1,\"loss\":0.5}\n[1,2]\n");
        CHECK_THAT(user_error_message([&] { onestep::plot_log_curves(log, png); }), Catch::Contains(log + ":2"));
    }
    SECTION("no loss fields") {
        onestep::test::write_text(log, "{\"step\":1,\"lr\":0.5}\n");
        std::string message = user_error_message([&] { onestep::plot_log_curves(log, png); });
        CHECK_THAT(message, Catch::Contains(log));
        CHECK_THAT(message, Catch::Contains("loss"));
    }
    SECTION("missing log") {
        const std::string missing = dir / "none.jsonl";
        CHECK_THAT(user_error_message([&] { onestep::plot_log_curves(missing, png); }), Catch::Contains(missing));
    }
}
