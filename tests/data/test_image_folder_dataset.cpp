// folder:DIR datasets: tiny PNGs written here load with sorted class names, resizing, grey and
// RGB; train/ and test/ subfolders give the splits; empty or broken folders name the path.
#include <torch/torch.h>
#include <catch2/catch.hpp>
#include <opencv2/imgcodecs.hpp>

#include <filesystem>

#include "data/dataset.hpp"
#include "data_test_helpers.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using onestep::DataSpec;
using onestep::data_test::user_error_message;
using onestep::test::TempDir;

namespace {

void write_png(const std::string& path, const cv::Mat& image) {
    fs::create_directories(fs::path(path).parent_path());
    REQUIRE(cv::imwrite(path, image));
}

// A 12x12 grey square of one value.
void write_grey(const std::string& path, int value) {
    write_png(path, cv::Mat(12, 12, CV_8UC1, cv::Scalar(value)));
}

DataSpec folder_spec(const std::string& dir, const std::string& split, int64_t channels = 1) {
    DataSpec spec;
    spec.name = "folder:" + dir;
    spec.split = split;
    spec.image_size = 8;
    spec.channels = channels;
    return spec;
}

}   // namespace

TEST_CASE("an image folder loads sorted classes, resized, in grey", "[unit]") {
    TempDir dir;
    write_grey(dir / "dog/b.png", 200);
    write_grey(dir / "dog/a.png", 100);
    write_grey(dir / "cat/z.png", 50);
    onestep::test::write_text(dir / "cat/notes.txt", "not an image, ignored");
    onestep::test::write_text(dir / "cat/.hidden.png", "hidden files are ignored");

    auto data = onestep::load_dataset(folder_spec(dir.path(), "train"));
    CHECK(data.class_names == std::vector<std::string>{"cat", "dog"});
    CHECK(data.num_classes == 2);
    REQUIRE(data.x.sizes() == torch::IntArrayRef({3, 1, 8, 8}));
    CHECK(torch::equal(data.y, torch::tensor({0, 1, 1}, torch::kInt64)));
    // Files in sorted order within a class; a flat square stays flat when resized.
    CHECK(data.x[0].min().item<int64_t>() == 50);
    CHECK(data.x[1].max().item<int64_t>() == 100);
    CHECK(data.x[2].min().item<int64_t>() == 200);

    auto everything = onestep::load_dataset(folder_spec(dir.path(), "all"));
    CHECK(torch::equal(everything.x, data.x));

    auto model_input = onestep::to_model_input(data, data.x, 8);
    CHECK(model_input.sizes() == torch::IntArrayRef({3, 1, 8, 8}));
    CHECK(model_input[2].max().item<float>() == Approx(200 / 127.5 - 1));

    const std::string report = onestep::describe_dataset(folder_spec(dir.path(), "train"));
    CHECK_THAT(report, Catch::Contains("total: 3 images"));
    CHECK_THAT(report, Catch::Contains("no test split"));
}

TEST_CASE("an image folder loads RGB in RGB order", "[unit]") {
    TempDir dir;
    write_png(dir / "red/r.png", cv::Mat(8, 8, CV_8UC3, cv::Scalar(0, 0, 255)));   // BGR red
    auto data = onestep::load_dataset(folder_spec(dir.path(), "train", 3));
    REQUIRE(data.x.sizes() == torch::IntArrayRef({1, 3, 8, 8}));
    CHECK(data.x[0][0].min().item<int64_t>() == 255);
    CHECK(data.x[0][2].max().item<int64_t>() == 0);
}

TEST_CASE("an image folder with train/ and test/ has both splits", "[unit]") {
    TempDir dir;
    write_grey(dir / "train/a/1.png", 10);
    write_grey(dir / "train/a/2.png", 11);
    write_grey(dir / "train/b/1.png", 12);
    write_grey(dir / "test/b/1.png", 13);

    auto train = onestep::load_dataset(folder_spec(dir.path(), "train"));
    auto test = onestep::load_dataset(folder_spec(dir.path(), "test"));
    auto all = onestep::load_dataset(folder_spec(dir.path(), "all"));
    CHECK(train.size() == 3);
    REQUIRE(test.size() == 1);
    CHECK(test.y[0].item<int64_t>() == 1);   // class "b" keeps its train label
    CHECK(test.class_names == train.class_names);
    CHECK(all.size() == 4);

    write_grey(dir / "test/c/1.png", 14);
    CHECK_THAT(user_error_message([&] { onestep::load_dataset(folder_spec(dir.path(), "test")); }),
               Catch::Contains("test/c has no counterpart"));
}

TEST_CASE("broken image folders are reported with the path", "[unit]") {
    TempDir dir;
    SECTION("missing folder") {
        CHECK_THAT(
            user_error_message([&] { onestep::load_dataset(folder_spec(dir / "none", "train")); }),
            Catch::Contains(dir / "none" + " does not exist"));
    }
    SECTION("an empty folder") {
        CHECK_THAT(
            user_error_message([&] { onestep::load_dataset(folder_spec(dir.path(), "train")); }),
            Catch::Contains(dir.path() + " is empty"));
    }
    SECTION("images without class subfolders form one unlabelled class") {
        write_grey(dir / "1.png", 1);
        write_grey(dir / "2.png", 2);
        onestep::Dataset flat = onestep::load_dataset(folder_spec(dir.path(), "train"));
        CHECK(flat.size() == 2);
        CHECK(flat.num_classes == 1);
    }
    SECTION("a class folder without images") {
        write_grey(dir / "a/1.png", 1);
        fs::create_directories(dir / "b");
        CHECK_THAT(
            user_error_message([&] { onestep::load_dataset(folder_spec(dir.path(), "train")); }),
            Catch::Contains("class folder " + (dir / "b") + " holds no images"));
    }
    SECTION("an unreadable image") {
        onestep::test::write_text(dir / "a/broken.png", "not a png");
        CHECK_THAT(
            user_error_message([&] { onestep::load_dataset(folder_spec(dir.path(), "train")); }),
            Catch::Contains("cannot read the image " + (dir / "a/broken.png")));
    }
    SECTION("no test split") {
        write_grey(dir / "a/1.png", 1);
        const std::string message =
            user_error_message([&] { onestep::load_dataset(folder_spec(dir.path(), "test")); });
        CHECK_THAT(message, Catch::Contains("has no test split"));
        CHECK_THAT(message, Catch::Contains("/train/CLASS"));
    }
    SECTION("bad channels") {
        write_grey(dir / "a/1.png", 1);
        CHECK_THAT(
            user_error_message([&] { onestep::load_dataset(folder_spec(dir.path(), "train", 2)); }),
            Catch::Contains("channels is 2; accepted: 1 (grey) or 3 (RGB)"));
    }
}
