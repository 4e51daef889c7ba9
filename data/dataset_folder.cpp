// folder:DIR: one subfolder per class (sorted names are the classes), images decoded by OpenCV
// and resized to image_size; DIR/train and DIR/test give the two splits when both exist.
#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/error.hpp"
#include "core/files.hpp"
#include "data/dataset.hpp"
#include "data/dataset_sources.hpp"

namespace onestep::data_sources {

namespace fs = std::filesystem;

namespace {

const std::set<std::string> kImageExtensions = {".png",  ".jpg",  ".jpeg", ".bmp", ".tif",
                                                ".tiff", ".webp", ".pgm",  ".ppm", ".pbm"};
constexpr const char* kExtensionList = "png, jpg, jpeg, bmp, tif, tiff, webp, pgm, ppm, pbm";

bool has_image_extension(const fs::path& path) {
    std::string extension = path.extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return kImageExtensions.count(extension) > 0;
}

std::vector<fs::path> sorted_entries(const fs::path& dir, bool folders) {
    std::vector<fs::path> entries;
    for (const DirectoryEntry& entry : list_directory(dir.string())) {
        if (entry.is_hidden()) continue;
        if (folders ? entry.is_directory : entry.is_regular_file) entries.push_back(entry.path);
    }
    return entries;
}

// The class subfolders of DIR, with their sorted names.
std::vector<fs::path> class_folders(const fs::path& dir) {
    if (!fs::is_directory(dir)) {
        throw UserError("image folder " + dir.string() +
                        " does not exist; expected one subfolder of images per class");
    }
    auto folders = sorted_entries(dir, true);
    if (folders.empty()) {
        throw UserError("image folder " + dir.string() +
                        " has no class subfolders; expected DIR/CLASS/*.png (one subfolder per "
                        "class), or DIR/train/CLASS and DIR/test/CLASS");
    }
    return folders;
}

// Decodes one image as CHANNELS x SIZE x SIZE bytes appended to PIXELS.
void append_image(const fs::path& path, const DataSpec& spec, std::vector<uint8_t>& pixels) {
    const int flags = spec.channels == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR;
    cv::Mat image = cv::imread(path.string(), flags);
    if (image.empty()) {
        throw UserError("cannot read the image " + path.string() +
                        " (not a valid image file; accepted: " + kExtensionList + ")");
    }
    const int side = static_cast<int>(spec.image_size);
    if (image.rows != side || image.cols != side) {
        cv::Mat resized;
        cv::resize(image, resized, cv::Size(side, side), 0, 0, cv::INTER_AREA);
        image = resized;
    }
    if (spec.channels == 3) cv::cvtColor(image, image, cv::COLOR_BGR2RGB);
    if (!image.isContinuous()) image = image.clone();
    // HWC (OpenCV) to CHW (the model's layout).
    const size_t plane = static_cast<size_t>(side) * side;
    const size_t start = pixels.size();
    pixels.resize(start + plane * spec.channels);
    const uint8_t* source = image.ptr<uint8_t>();
    for (size_t pixel = 0; pixel < plane; ++pixel) {
        for (int64_t channel = 0; channel < spec.channels; ++channel) {
            pixels[start + channel * plane + pixel] = source[pixel * spec.channels + channel];
        }
    }
}

// Reads DIR/CLASS/* for the given class names (a class without a folder here has no images).
Dataset read_classes(const fs::path& dir, const std::vector<std::string>& class_names,
                     const DataSpec& spec) {
    std::vector<uint8_t> pixels;
    std::vector<int64_t> labels;
    for (size_t label = 0; label < class_names.size(); ++label) {
        const fs::path class_dir = dir / class_names[label];
        if (!fs::is_directory(class_dir)) continue;
        size_t images_in_class = 0;
        for (const auto& file : sorted_entries(class_dir, false)) {
            if (!has_image_extension(file)) continue;
            append_image(file, spec, pixels);
            labels.push_back(static_cast<int64_t>(label));
            ++images_in_class;
        }
        if (images_in_class == 0) {
            throw UserError("class folder " + class_dir.string() +
                            " holds no images (accepted: " + kExtensionList + ")");
        }
    }
    const int64_t count = static_cast<int64_t>(labels.size());
    Dataset data;
    data.is_image = true;
    data.x = torch::empty({count, spec.channels, spec.image_size, spec.image_size}, torch::kUInt8);
    if (!pixels.empty()) std::memcpy(data.x.data_ptr<uint8_t>(), pixels.data(), pixels.size());
    data.y = torch::tensor(labels, torch::kInt64);
    data.num_classes = static_cast<int64_t>(class_names.size());
    data.class_names = class_names;
    return data;
}

std::vector<std::string> names_of(const std::vector<fs::path>& folders) {
    std::vector<std::string> names;
    for (const auto& folder : folders) names.push_back(folder.filename().string());
    return names;
}

}   // namespace

bool image_folder_has_splits(const std::string& dir) {
    return fs::is_directory(fs::path(dir) / "train") && fs::is_directory(fs::path(dir) / "test");
}

Dataset load_image_folder(const std::string& dir, const DataSpec& spec) {
    if (spec.channels != 1 && spec.channels != 3) {
        throw UserError("folder:" + dir + ": channels is " + std::to_string(spec.channels) +
                        "; accepted: 1 (grey) or 3 (RGB)");
    }
    if (spec.image_size < 1 || spec.image_size > 4096) {
        throw UserError("folder:" + dir + ": image_size is " + std::to_string(spec.image_size) +
                        "; accepted: 1 to 4096");
    }
    if (!image_folder_has_splits(dir)) {
        if (spec.split == "test") {
            throw UserError("folder:" + dir +
                            " has no test split: an image folder without "
                            "train/ and test/ subfolders is all training data (use split train or "
                            "all, or arrange it as " +
                            dir + "/train/CLASS and " + dir + "/test/CLASS)");
        }
        // A folder of images without class subfolders (e.g. `onestep sample --out DIR/`) is one
        // unlabelled class.
        if (fs::is_directory(dir) && sorted_entries(dir, true).empty()) {
            auto files = sorted_entries(dir, false);
            if (std::none_of(files.begin(), files.end(), [](const fs::path& file) { return has_image_extension(file); }))
                throw UserError("image folder " + dir + " is empty: expected images (" + kExtensionList +
                                ") or one subfolder of images per class");
            Dataset flat = read_classes(dir, {""}, spec);
            flat.class_names = {"images"};
            return flat;
        }
        const auto class_names = names_of(class_folders(dir));
        return read_classes(dir, class_names, spec);
    }

    // Classes come from train/; test/ may lack some of them but may not add new ones.
    const fs::path train_dir = fs::path(dir) / "train";
    const fs::path test_dir = fs::path(dir) / "test";
    const auto class_names = names_of(class_folders(train_dir));
    for (const auto& name : names_of(sorted_entries(test_dir, true))) {
        if (std::find(class_names.begin(), class_names.end(), name) == class_names.end()) {
            throw UserError("class folder " + (test_dir / name).string() +
                            " has no counterpart in " + train_dir.string() +
                            "; the test classes must be among the train classes");
        }
    }
    if (spec.split == "train") return read_classes(train_dir, class_names, spec);
    Dataset test = read_classes(test_dir, class_names, spec);
    if (test.size() == 0) {
        throw UserError("image folder " + test_dir.string() +
                        " holds no class subfolders with images");
    }
    if (spec.split == "test") return test;
    return concat_rows(read_classes(train_dir, class_names, spec), test);
}

}   // namespace onestep::data_sources
