// idx:DIR: the IDX files MNIST-style datasets ship as (train-images-idx3-ubyte, ...), plain or
// gzipped. Every header is checked against the data that follows it.
#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/error.hpp"
#include "data/dataset.hpp"
#include "data/dataset_sources.hpp"

namespace onestep::data_sources {

namespace fs = std::filesystem;

namespace {

constexpr uint8_t kUnsignedByteType = 0x08;
constexpr size_t kReadChunk = size_t{1} << 20;

struct IdxArray {
    std::string path;
    std::vector<int64_t> dims;
    std::vector<uint8_t> bytes;
};

const char* const kLayout =
    "an IDX folder holds train-images-idx3-ubyte, train-labels-idx1-ubyte, "
    "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each optionally gzipped (.gz)";

// DIR/train-images-idx3-ubyte[.gz], also accepting the dotted names some mirrors use
// (train-images.idx3-ubyte). Empty when none exists.
std::string find_idx_file(const std::string& dir, const std::string& prefix,
                          const std::string& kind) {
    for (const std::string& base : {prefix + "-" + kind, prefix + "." + kind}) {
        for (const char* suffix : {"", ".gz"}) {
            const fs::path candidate = fs::path(dir) / (base + suffix);
            if (fs::is_regular_file(candidate)) return candidate.string();
        }
    }
    return "";
}

std::string dims_text(const std::vector<int64_t>& dims) {
    std::string text;
    for (auto dim : dims) text += (text.empty() ? "" : "x") + std::to_string(dim);
    return text;
}

// Reads a whole IDX file of unsigned bytes with EXPECTED_RANK dimensions. gzread reads plain
// files unchanged, so one path serves both.
IdxArray read_idx(const std::string& path, uint8_t expected_rank, const std::string& what) {
    std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), gzclose);
    if (!file) throw UserError("cannot open " + path + ": " + std::strerror(errno));
    auto read_bytes = [&](void* into, size_t count) -> size_t {
        size_t done = 0;
        while (done < count) {
            const unsigned request = static_cast<unsigned>(std::min(count - done, kReadChunk));
            const int got = gzread(file.get(), static_cast<uint8_t*>(into) + done, request);
            if (got < 0) {
                int code = 0;
                throw UserError(
                    path + " cannot be read (corrupt gzip data?): " + gzerror(file.get(), &code));
            }
            if (got == 0) break;
            done += static_cast<size_t>(got);
        }
        return done;
    };

    std::array<uint8_t, 4> magic{};
    const size_t magic_bytes = read_bytes(magic.data(), magic.size());
    const uint32_t expected_magic = 0x00000800u | expected_rank;
    char expected_hex[16];
    std::snprintf(expected_hex, sizeof(expected_hex), "0x%08X", expected_magic);
    if (magic_bytes < magic.size() || magic[0] != 0 || magic[1] != 0 ||
        magic[2] != kUnsignedByteType || magic[3] != expected_rank) {
        char found_hex[16];
        std::snprintf(found_hex, sizeof(found_hex), "0x%02X%02X%02X%02X", magic[0], magic[1],
                      magic[2], magic[3]);
        throw UserError(path + " is not an IDX file of " + what + ": its magic number is " +
                        (magic_bytes < magic.size() ? std::string("missing (file too short)")
                                                    : std::string(found_hex)) +
                        ", expected " + expected_hex + " (unsigned bytes, " +
                        std::to_string(expected_rank) + " dimension" +
                        (expected_rank > 1 ? "s" : "") + ")");
    }

    IdxArray array;
    array.path = path;
    uint64_t payload = 1;
    for (uint8_t dim = 0; dim < expected_rank; ++dim) {
        std::array<uint8_t, 4> size_bytes{};
        if (read_bytes(size_bytes.data(), 4) < 4) {
            throw UserError(path + " is truncated inside its header (expected " +
                            std::to_string(expected_rank) + " dimension sizes)");
        }
        const uint64_t size = (uint64_t{size_bytes[0]} << 24) | (uint64_t{size_bytes[1]} << 16) |
                              (uint64_t{size_bytes[2]} << 8) | uint64_t{size_bytes[3]};
        array.dims.push_back(static_cast<int64_t>(size));
        payload *= size;
        if (payload > (uint64_t{1} << 40)) {
            throw UserError(path + " has an implausible header: " + dims_text(array.dims) + "...");
        }
    }

    // Grow while reading, so a header that lies about its size cannot make us allocate it.
    array.bytes.resize(static_cast<size_t>(std::min<uint64_t>(payload, uint64_t{1} << 28)));
    size_t filled = 0;
    while (true) {
        if (filled == array.bytes.size()) {
            if (filled == payload) break;
            array.bytes.resize(static_cast<size_t>(std::min<uint64_t>(payload, filled * 2)));
        }
        const size_t got = read_bytes(array.bytes.data() + filled, array.bytes.size() - filled);
        filled += got;
        if (got == 0) break;
    }
    if (filled < payload) {
        throw UserError(path + " is truncated: its header says " + dims_text(array.dims) + " (" +
                        with_thousands(static_cast<int64_t>(payload)) +
                        " bytes of data) but it holds only " +
                        with_thousands(static_cast<int64_t>(filled)) + " bytes");
    }
    uint8_t extra = 0;
    if (read_bytes(&extra, 1) > 0) {
        throw UserError(path + " has data beyond the " + dims_text(array.dims) + " (" +
                        with_thousands(static_cast<int64_t>(payload)) +
                        " bytes) its header announces; the file does not match its header");
    }
    return array;
}

struct IdxSplit {
    std::string images_path;
    std::string labels_path;
};

IdxSplit locate_split(const std::string& dir, const std::string& split, bool required) {
    const std::string prefix = split == "train" ? "train" : "t10k";
    IdxSplit files{find_idx_file(dir, prefix + "-images", "idx3-ubyte"),
                   find_idx_file(dir, prefix + "-labels", "idx1-ubyte")};
    if (required) {
        for (const auto& [found, name] :
             {std::pair{files.images_path, prefix + "-images-idx3-ubyte"},
              std::pair{files.labels_path, prefix + "-labels-idx1-ubyte"}}) {
            if (found.empty()) {
                throw UserError("idx:" + dir + ": the " + split + " split needs " +
                                (fs::path(dir) / name).string() + " (or " + name + ".gz); " +
                                kLayout);
            }
        }
    }
    return files;
}

Dataset read_split(const IdxSplit& files) {
    IdxArray images = read_idx(files.images_path, 3, "images");
    IdxArray labels = read_idx(files.labels_path, 1, "labels");
    if (images.dims[0] != labels.dims[0]) {
        throw UserError(files.images_path + " holds " + with_thousands(images.dims[0]) +
                        " images but " + files.labels_path + " holds " +
                        with_thousands(labels.dims[0]) + " labels; expected one label per image");
    }
    if (images.dims[1] == 0 || images.dims[2] == 0) {
        throw UserError(files.images_path + " holds images of size " + dims_text(images.dims) +
                        "; expected N x height x width with height, width > 0");
    }
    Dataset data;
    data.is_image = true;
    data.x = torch::empty({images.dims[0], 1, images.dims[1], images.dims[2]}, torch::kUInt8);
    std::memcpy(data.x.data_ptr<uint8_t>(), images.bytes.data(), images.bytes.size());
    data.y = torch::empty({labels.dims[0]}, torch::kInt64);
    std::copy(labels.bytes.begin(), labels.bytes.end(), data.y.data_ptr<int64_t>());
    return data;
}

}   // namespace

Dataset load_idx(const std::string& dir, const std::string& split) {
    if (!fs::is_directory(dir)) {
        throw UserError("idx:" + dir + ": the folder does not exist; " + kLayout);
    }
    Dataset data;
    if (split == "all") {
        data = concat_rows(read_split(locate_split(dir, "train", true)),
                           read_split(locate_split(dir, "test", true)));
    } else {
        data = read_split(locate_split(dir, split, true));
    }

    // Class count from every label file in the folder, so train and test agree on it.
    int64_t largest_label = data.y.numel() > 0 ? data.y.max().item<int64_t>() : -1;
    if (split != "all") {
        IdxSplit other = locate_split(dir, split == "train" ? "test" : "train", false);
        if (!other.labels_path.empty()) {
            for (uint8_t label : read_idx(other.labels_path, 1, "labels").bytes) {
                largest_label = std::max<int64_t>(largest_label, label);
            }
        }
    }
    data.num_classes = largest_label + 1;
    for (int64_t label = 0; label < data.num_classes; ++label) {
        data.class_names.push_back(std::to_string(label));
    }
    return data;
}

}   // namespace onestep::data_sources
