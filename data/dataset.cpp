// load_dataset and describe_dataset: pick the reader for a dataset name and split, turn raw
// rows into model input, and report what a dataset holds.
#include "data/dataset.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <sstream>
#include <utility>

#include "core/error.hpp"
#include "core/tensor_file.hpp"
#include "data/dataset_sources.hpp"

namespace onestep {

namespace {

constexpr const char* kIdxPrefix = "idx:";
constexpr const char* kFolderPrefix = "folder:";
constexpr const char* kToyPrefix = "toy:";

bool starts_with(const std::string& text, const std::string& prefix) {
    return text.compare(0, prefix.size(), prefix) == 0;
}

std::string accepted_names() {
    std::string names = data_sources::npm_package_names() +
                        ", idx:DIR (IDX files), folder:DIR (one subfolder per class)";
    for (const auto& toy : data_sources::toy_names()) names += ", toy:" + toy;
    return names;
}

void check_split(const DataSpec& spec) {
    if (spec.split != "train" && spec.split != "test" && spec.split != "all") {
        throw UserError("dataset '" + spec.name + "': unknown split '" + spec.split +
                        "'; accepted: train, test, all");
    }
}

std::string path_after(const std::string& name, const std::string& prefix) {
    std::string path = name.substr(prefix.size());
    if (path.empty()) {
        throw UserError("dataset '" + name + "' names no folder; write " + prefix + "DIR");
    }
    return path;
}

std::string shape_text(const torch::Tensor& tensor, int64_t from_dim) {
    std::string text;
    for (int64_t dim = from_dim; dim < tensor.dim(); ++dim) {
        text += (text.empty() ? "" : "x") + std::to_string(tensor.size(dim));
    }
    return text;
}

std::string format_float(double value) {
    std::ostringstream out;
    out << std::fixed << std::setprecision(3) << value;
    return out.str();
}

// One column of the per-class table: a split's name and its data.
struct SplitColumn {
    std::string name;
    Dataset data;
};

std::vector<int64_t> class_counts(const Dataset& data, int64_t num_classes) {
    std::vector<int64_t> counts(num_classes, 0);
    auto labels = data.y.contiguous();
    const int64_t* label = labels.data_ptr<int64_t>();
    for (int64_t row = 0; row < labels.numel(); ++row) {
        if (label[row] >= 0 && label[row] < num_classes) ++counts[label[row]];
    }
    return counts;
}

std::string value_range_text(const Dataset& data) {
    if (data.size() == 0) return "values: (no rows)";
    if (data.is_image) {
        auto minimum = data.x.min().item<int64_t>();
        auto maximum = data.x.max().item<int64_t>();
        return "values: uint8 " + std::to_string(minimum) + ".." + std::to_string(maximum) +
               " (model input: x/127.5 - 1, in [-1, 1])";
    }
    auto minimum = std::get<0>(data.x.min(0));
    auto maximum = std::get<0>(data.x.max(0));
    return "values: float32, x in [" + format_float(minimum[0].item<double>()) + ", " +
           format_float(maximum[0].item<double>()) + "], y in [" +
           format_float(minimum[1].item<double>()) + ", " +
           format_float(maximum[1].item<double>()) + "]";
}

std::string counts_table(const std::vector<SplitColumn>& columns, const Dataset& reference) {
    const int64_t num_classes = reference.num_classes;
    size_t name_width = 5;
    for (const auto& name : reference.class_names) name_width = std::max(name_width, name.size());
    std::vector<std::vector<int64_t>> counts;
    for (const auto& column : columns) counts.push_back(class_counts(column.data, num_classes));

    std::ostringstream out;
    auto cell = [&](const std::string& text) { out << std::setw(10) << text; };
    out << "  " << std::setw(4) << std::left << "" << std::setw(name_width) << "class"
        << std::right;
    for (const auto& column : columns) cell(column.name);
    if (columns.size() > 1) cell("total");
    out << "\n";
    std::vector<int64_t> totals(columns.size(), 0);
    for (int64_t label = 0; label < num_classes; ++label) {
        out << "  " << std::setw(4) << std::left << label << std::setw(name_width)
            << reference.class_names[label] << std::right;
        int64_t row_total = 0;
        for (size_t column = 0; column < columns.size(); ++column) {
            cell(data_sources::with_thousands(counts[column][label]));
            totals[column] += counts[column][label];
            row_total += counts[column][label];
        }
        if (columns.size() > 1) cell(data_sources::with_thousands(row_total));
        out << "\n";
    }
    out << "  " << std::setw(4) << "" << std::setw(name_width) << std::left << "all" << std::right;
    int64_t grand_total = 0;
    for (auto total : totals) {
        cell(data_sources::with_thousands(total));
        grand_total += total;
    }
    if (columns.size() > 1) cell(data_sources::with_thousands(grand_total));
    out << "\n";

    out << "total: " << data_sources::with_thousands(grand_total) << " "
        << (reference.is_image ? "images" : "points");
    if (columns.size() > 1) {
        out << " (";
        for (size_t column = 0; column < columns.size(); ++column) {
            out << (column ? " / " : "") << data_sources::with_thousands(totals[column]) << " "
                << columns[column].name;
        }
        out << ")";
    }
    out << "\n";
    return out.str();
}

}   // namespace

Dataset load_dataset(const DataSpec& spec) {
    check_split(spec);
    if (const auto* package = data_sources::find_npm_package(spec.name)) {
        return data_sources::load_npm_cache(*package, spec);
    }
    if (starts_with(spec.name, kIdxPrefix)) {
        Dataset data = data_sources::load_idx(path_after(spec.name, kIdxPrefix), spec.split);
        data.name = spec.name;
        return data;
    }
    if (starts_with(spec.name, kFolderPrefix)) {
        Dataset data = data_sources::load_image_folder(path_after(spec.name, kFolderPrefix), spec);
        data.name = spec.name;
        return data;
    }
    if (starts_with(spec.name, kToyPrefix)) {
        return data_sources::load_toy(spec.name.substr(std::string(kToyPrefix).size()), spec);
    }
    throw UserError("unknown dataset '" + spec.name + "'; accepted: " + accepted_names());
}

at::Tensor to_model_input(const Dataset& dataset, const at::Tensor& raw_rows, int64_t image_size) {
    if (!dataset.is_image) return raw_rows.to(torch::kFloat32);
    TORCH_CHECK(raw_rows.dim() == 4 && raw_rows.scalar_type() == torch::kUInt8,
                "to_model_input expects uint8 images [N,C,H,W], got ", raw_rows.sizes(), " ",
                raw_rows.scalar_type());
    const int64_t height = raw_rows.size(2);
    const int64_t width = raw_rows.size(3);
    auto images = raw_rows.to(torch::kFloat32).div_(127.5).sub_(1.0);
    if (height == image_size && width == image_size) return images;
    const int64_t margin = image_size - height;
    if (height == width && margin > 0 && margin % 2 == 0) {
        // Pixel value 0 is the background of these sets, so the border gets its value, -1.
        const int64_t pad = margin / 2;
        return torch::constant_pad_nd(images, {pad, pad, pad, pad}, -1.0);
    }
    throw UserError("dataset '" + dataset.name + "' has " + std::to_string(height) + "x" +
                    std::to_string(width) + " images, which do not fit image_size " +
                    std::to_string(image_size) + "; accepted: image_size " +
                    std::to_string(height) +
                    (height == width ? " or a larger size with an even difference (padded)" : "") +
                    " (folder datasets are resized to image_size when loaded)");
}

std::string resolve_cache_dir(const std::string& cache_dir) {
    if (!cache_dir.empty()) return cache_dir;
    const char* from_environment = std::getenv("ONESTEP_DATA");
    if (from_environment != nullptr && *from_environment != '\0') return from_environment;
    return "data/cache";
}

std::string describe_dataset(const DataSpec& spec) {
    std::vector<SplitColumn> columns;
    std::vector<std::string> source_lines;
    auto load_split = [&](const std::string& split) {
        DataSpec split_spec = spec;
        split_spec.split = split;
        columns.push_back({split, load_dataset(split_spec)});
    };

    if (const auto* package = data_sources::find_npm_package(spec.name)) {
        const std::string cache_dir = resolve_cache_dir(spec.cache_dir);
        // One read of the cache serves both splits.
        auto cache = data_sources::read_npm_cache(*package, cache_dir);
        std::vector<bool> is_train = cache.is_test;
        is_train.flip();
        columns.push_back({"train", data_sources::select_rows(cache.all, is_train)});
        columns.push_back({"test", data_sources::select_rows(cache.all, cache.is_test)});
        source_lines.push_back("source: npm package " + package->package);
        source_lines.push_back("cache: " + data_sources::npm_cache_path(*package, cache_dir));
        source_lines.push_back("split: " + data_sources::npm_split_rule(package->test_per_class));
    } else if (starts_with(spec.name, kIdxPrefix)) {
        const std::string dir = path_after(spec.name, kIdxPrefix);
        load_split("train");
        try {
            load_split("test");
        } catch (const UserError& error) {
            source_lines.push_back("no test split: " + std::string(error.what()));
        }
        source_lines.insert(source_lines.begin(), "source: IDX files in " + dir);
    } else if (starts_with(spec.name, kFolderPrefix)) {
        const std::string dir = path_after(spec.name, kFolderPrefix);
        const bool has_splits = data_sources::image_folder_has_splits(dir);
        if (has_splits) {
            load_split("train");
            load_split("test");
        } else {
            load_split("all");
        }
        source_lines.push_back("source: image folder " + dir +
                               (has_splits ? " (train/ and test/ subfolders)"
                                           : " (one subfolder per class, no test split)"));
        source_lines.push_back("images are resized to " + std::to_string(spec.image_size) + "x" +
                               std::to_string(spec.image_size) + " with " +
                               std::to_string(spec.channels) + " channel(s) when loaded");
    } else if (starts_with(spec.name, kToyPrefix)) {
        load_split("train");
        load_split("test");
        source_lines.push_back("source: 2-D toy distribution, " +
                               data_sources::with_thousands(spec.toy_size) +
                               " points per split drawn from seed " + std::to_string(spec.seed) +
                               " (train and test use different streams)");
    } else {
        load_dataset(spec);   // throws the unknown-name error
    }

    const Dataset& reference = columns.front().data;
    Dataset everything = reference;
    for (size_t column = 1; column < columns.size(); ++column) {
        everything = data_sources::concat_rows(everything, columns[column].data);
    }

    std::ostringstream out;
    out << "dataset: " << spec.name << "\n";
    for (const auto& line : source_lines) out << line << "\n";
    if (reference.is_image) {
        out << "images: " << shape_text(reference.x, 1) << " (channels x height x width)";
        if (reference.x.size(2) < spec.image_size) {
            out << ", padded to " << spec.image_size << "x" << spec.image_size << " for the model";
        }
        out << "\n";
    } else {
        out << "points: " << shape_text(reference.x, 1) << "-D\n";
    }
    out << value_range_text(everything) << "\n";
    out << "classes: " << reference.num_classes << "\n";
    out << counts_table(columns, reference);
    return out.str();
}

namespace data_sources {

Dataset select_rows(const Dataset& dataset, const std::vector<bool>& keep) {
    std::vector<int64_t> rows;
    for (size_t row = 0; row < keep.size(); ++row) {
        if (keep[row]) rows.push_back(static_cast<int64_t>(row));
    }
    auto index = torch::tensor(rows, torch::kInt64);
    Dataset selected = dataset;
    selected.x = dataset.x.index_select(0, index);
    selected.y = dataset.y.index_select(0, index);
    return selected;
}

Dataset concat_rows(const Dataset& first, const Dataset& second) {
    Dataset joined = first;
    joined.x = torch::cat({first.x, second.x}, 0);
    joined.y = torch::cat({first.y, second.y}, 0);
    return joined;
}

std::string with_thousands(int64_t value) {
    std::string digits = std::to_string(value < 0 ? -value : value);
    std::string text;
    for (size_t index = 0; index < digits.size(); ++index) {
        if (index > 0 && (digits.size() - index) % 3 == 0) text += ',';
        text += digits[index];
    }
    return value < 0 ? "-" + text : text;
}

}   // namespace data_sources

}   // namespace onestep
