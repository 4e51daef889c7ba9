// Reference-statistics files (see stats.hpp): the suite's safetensors layout, and pytorch-fid's
// .npz, a zip (libzip) of NumPy .npy arrays; Debian packages no .npy library, so that part is here.
#include "metrics/stats.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zip.h>

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/text.hpp"
#include "core/error.hpp"
#include "core/tensor_file.hpp"

namespace onestep {
namespace {

constexpr const char* kMeanName = "mu";
constexpr const char* kCovarianceName = "sigma";
constexpr const char* kCountKey = "n";
constexpr const char* kNpyMagic = "\x93NUMPY";
constexpr size_t kNpyMagicBytes = 6;
// Current numpy aligns the data section to 64 bytes (older versions used 16; readers accept both).
constexpr size_t kNpyAlignment = 64;
// Far above any real covariance (d = 16384 in float64 is 2 GiB); a larger entry is a broken archive.
constexpr uint64_t kMaxNpyBytes = uint64_t{1} << 32;

bool is_npz_path(const std::string& path) {
    if (path.size() < 4) return false;
    std::string suffix = path.substr(path.size() - 4);
    std::transform(suffix.begin(), suffix.end(), suffix.begin(), [](unsigned char c) { return std::tolower(c); });
    return suffix == ".npz";
}

// mu must be [d] and sigma [d, d], both floating point; WHERE prefixes the error.
void check_shapes(const at::Tensor& mu, const at::Tensor& sigma, const std::string& where) {
    if (!mu.defined() || !sigma.defined()) throw UserError(where + ": mu and sigma must both be given");
    if (!mu.is_floating_point() || !sigma.is_floating_point()) {
        throw UserError(where + ": mu and sigma must be floating point, got " +
                        std::string(c10::toString(mu.scalar_type())) + " and " + c10::toString(sigma.scalar_type()));
    }
    if (mu.dim() != 1 || mu.size(0) == 0 || sigma.dim() != 2 || sigma.size(0) != mu.size(0) ||
        sigma.size(1) != mu.size(0)) {
        throw UserError(where + ": mu must be [d] and sigma [d, d], got mu " + shape_text(mu.sizes().vec()) +
                        " and sigma " + shape_text(sigma.sizes().vec()));
    }
}

at::Tensor cpu_double(const at::Tensor& tensor) { return tensor.detach().to(torch::kCPU, torch::kDouble).contiguous(); }

// ---- NumPy .npy (format versions 1.0 to 3.0; little-endian float64 or float32, C order) ----

struct NpyHeader {
    std::string descr;
    bool fortran_order = false;
    std::vector<int64_t> shape;
};

// Parses the Python dict literal numpy writes, e.g. {'descr': '<f8', 'fortran_order': False,
// 'shape': (3, 3), }: string keys; string, boolean or integer-tuple values.
class NpyHeaderParser {
  public:
    NpyHeaderParser(std::string text, std::string where) : text_(std::move(text)), where_(std::move(where)) {}

    NpyHeader parse() {
        NpyHeader header;
        bool has_descr = false, has_order = false, has_shape = false;
        expect('{');
        while (true) {
            skip_space();
            if (peek() == '}') break;
            std::string key = parse_string();
            expect(':');
            skip_space();
            if (key == "descr") {
                header.descr = parse_string();
                has_descr = true;
            } else if (key == "fortran_order") {
                header.fortran_order = parse_bool();
                has_order = true;
            } else if (key == "shape") {
                header.shape = parse_shape();
                has_shape = true;
            } else {
                fail("unexpected key '" + key + "'");
            }
            skip_space();
            if (peek() == ',') ++position_;
        }
        ++position_;
        skip_space();
        if (position_ != text_.size()) fail("text after the closing '}'");
        if (!has_descr || !has_order || !has_shape) fail("'descr', 'fortran_order' and 'shape' are all required");
        return header;
    }

  private:
    [[noreturn]] void fail(const std::string& what) const {
        throw UserError(where_ + ": malformed .npy header (" + what + "): " + text_.substr(0, 120));
    }
    char peek() const {
        if (position_ >= text_.size()) fail("ends early");
        return text_[position_];
    }
    void skip_space() {
        while (position_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[position_]))) ++position_;
    }
    void expect(char wanted) {
        skip_space();
        if (peek() != wanted) fail(std::string("expected '") + wanted + "'");
        ++position_;
    }
    std::string parse_string() {
        skip_space();
        char quote = peek();
        if (quote != '\'' && quote != '"') fail("expected a quoted string");
        size_t end = text_.find(quote, position_ + 1);
        if (end == std::string::npos) fail("unterminated string");
        std::string value = text_.substr(position_ + 1, end - position_ - 1);
        position_ = end + 1;
        return value;
    }
    bool parse_bool() {
        if (text_.compare(position_, 4, "True") == 0) {
            position_ += 4;
            return true;
        }
        if (text_.compare(position_, 5, "False") == 0) {
            position_ += 5;
            return false;
        }
        fail("'fortran_order' is neither True nor False");
    }
    std::vector<int64_t> parse_shape() {
        std::vector<int64_t> shape;
        expect('(');
        while (true) {
            skip_space();
            if (peek() == ')') break;
            if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("'shape' is not a tuple of integers");
            int64_t value = 0;
            while (position_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[position_]))) {
                if (value > (int64_t{1} << 40)) fail("a dimension is too large");
                value = value * 10 + (text_[position_++] - '0');
            }
            if (position_ < text_.size() && text_[position_] == 'L') ++position_;  // Python 2 long
            shape.push_back(value);
            skip_space();
            if (peek() == ',') {
                ++position_;
            } else if (peek() != ')') {
                fail("expected ',' or ')' in 'shape'");
            }
        }
        ++position_;
        return shape;
    }

    std::string text_;
    std::string where_;
    size_t position_ = 0;
};

// Decodes one .npy file held in BYTES into a float64 tensor; WHERE ("file: entry") prefixes errors.
at::Tensor decode_npy(const std::string& bytes, const std::string& where) {
    if (bytes.size() < kNpyMagicBytes + 4 || bytes.compare(0, kNpyMagicBytes, kNpyMagic) != 0) {
        throw UserError(where + ": not a NumPy .npy array (no \\x93NUMPY magic)");
    }
    const auto major = static_cast<unsigned char>(bytes[6]);
    size_t header_start = 0, header_bytes = 0;
    auto byte_at = [&bytes](size_t i) { return static_cast<size_t>(static_cast<unsigned char>(bytes[i])); };
    if (major == 1) {
        header_start = 10;
        header_bytes = byte_at(8) | byte_at(9) << 8;
    } else if (major == 2 || major == 3) {
        if (bytes.size() < 12) throw UserError(where + ": truncated .npy header");
        header_start = 12;
        header_bytes = byte_at(8) | byte_at(9) << 8 | byte_at(10) << 16 | byte_at(11) << 24;
    } else {
        throw UserError(where + ": unsupported .npy format version " + std::to_string(major) + "." +
                        std::to_string(byte_at(7)) + " (1.0 to 3.0 are read)");
    }
    if (header_bytes > bytes.size() - header_start) throw UserError(where + ": truncated .npy header");
    NpyHeader header = NpyHeaderParser(bytes.substr(header_start, header_bytes), where).parse();

    size_t item_bytes = 0;
    if (header.descr == "<f8") {
        item_bytes = 8;
    } else if (header.descr == "<f4") {
        item_bytes = 4;
    } else {
        throw UserError(where + ": dtype '" + header.descr + "' is not supported (accepted: '<f8', '<f4')");
    }
    if (header.fortran_order) {
        throw UserError(where + ": the array is stored in Fortran order; only C order is supported");
    }
    uint64_t elements = 1;
    for (int64_t dim : header.shape) {
        elements *= static_cast<uint64_t>(dim);
        if (elements > kMaxNpyBytes) throw UserError(where + ": shape " + shape_text(header.shape) + " is too large");
    }
    const size_t data_start = header_start + header_bytes;
    const uint64_t data_bytes = elements * item_bytes;
    if (bytes.size() - data_start != data_bytes) {
        throw UserError(where + ": shape " + shape_text(header.shape) + " needs " + std::to_string(data_bytes) +
                        " bytes of data, the entry has " + std::to_string(bytes.size() - data_start) +
                        (bytes.size() - data_start < data_bytes ? " (truncated)" : ""));
    }
    at::Tensor values = torch::empty(header.shape, item_bytes == 8 ? torch::kDouble : torch::kFloat);
    if (data_bytes > 0) std::memcpy(values.data_ptr(), bytes.data() + data_start, data_bytes);
    return values.to(torch::kDouble);
}

// A .npy v1.0 file holding TENSOR (float64, C order), laid out as current numpy writes it.
std::string encode_npy(const at::Tensor& tensor) {
    // Python's tuple repr: (3,) for one dimension, (3, 3) for two.
    std::string shape = "(";
    for (int64_t i = 0; i < tensor.dim(); ++i) shape += (i > 0 ? ", " : "") + std::to_string(tensor.size(i));
    shape += tensor.dim() == 1 ? ",)" : ")";
    std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': " + shape + ", }";
    const size_t prefix_bytes = kNpyMagicBytes + 4;
    header.append(kNpyAlignment - (prefix_bytes + header.size() + 1) % kNpyAlignment, ' ');
    header += '\n';
    std::string bytes(kNpyMagic, kNpyMagicBytes);
    bytes += '\x01';
    bytes += '\x00';
    bytes += static_cast<char>(header.size() & 0xff);
    bytes += static_cast<char>((header.size() >> 8) & 0xff);
    bytes += header;
    const size_t data_start = bytes.size();
    bytes.resize(data_start + tensor.nbytes());
    std::memcpy(&bytes[data_start], tensor.data_ptr<double>(), tensor.nbytes());
    return bytes;
}

// ---- pytorch-fid .npz: a zip archive holding mu.npy and sigma.npy ----

std::string zip_error_text(int code) {
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    std::string text = zip_error_strerror(&error);
    zip_error_fini(&error);
    return text;
}

using ZipArchive = std::unique_ptr<zip_t, decltype(&zip_discard)>;

std::string read_zip_entry(zip_t* archive, const std::string& path, const std::string& name) {
    const std::string where = path + ": entry '" + name + "'";
    zip_int64_t index = zip_name_locate(archive, name.c_str(), 0);
    if (index < 0) throw UserError(where + " is missing (a pytorch-fid .npz holds mu.npy and sigma.npy)");
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat_index(archive, static_cast<zip_uint64_t>(index), 0, &stat) != 0 || !(stat.valid & ZIP_STAT_SIZE)) {
        throw UserError(where + " cannot be read: " + zip_strerror(archive));
    }
    if (stat.size > kMaxNpyBytes) throw UserError(where + " claims " + std::to_string(stat.size) + " bytes");
    std::unique_ptr<zip_file_t, decltype(&zip_fclose)> file(
        zip_fopen_index(archive, static_cast<zip_uint64_t>(index), 0), zip_fclose);
    if (!file) throw UserError(where + " cannot be opened: " + zip_strerror(archive));
    std::string bytes(stat.size, '\0');
    zip_uint64_t done = 0;
    while (done < stat.size) {
        zip_int64_t got = zip_fread(file.get(), &bytes[done], stat.size - done);
        if (got < 0) throw UserError(where + " cannot be read: " + zip_file_strerror(file.get()));
        if (got == 0) throw UserError(where + " is truncated");
        done += static_cast<zip_uint64_t>(got);
    }
    return bytes;
}

ReferenceStats read_npz(const std::string& path) {
    std::error_code status_error;
    if (!std::filesystem::exists(path, status_error)) throw UserError(path + ": no such file");
    if (!std::filesystem::is_regular_file(path, status_error)) throw UserError(path + ": not a regular file");
    int error_code = 0;
    ZipArchive archive(zip_open(path.c_str(), ZIP_RDONLY, &error_code), zip_discard);
    if (!archive) throw UserError(path + ": not a readable .npz (zip) archive: " + zip_error_text(error_code));
    ReferenceStats stats;
    stats.mu = decode_npy(read_zip_entry(archive.get(), path, "mu.npy"), path + ": entry 'mu.npy'");
    stats.sigma = decode_npy(read_zip_entry(archive.get(), path, "sigma.npy"), path + ": entry 'sigma.npy'");
    check_shapes(stats.mu, stats.sigma, path);
    stats.n = 0;  // pytorch-fid's layout does not record N
    return stats;
}

// Flushes PATH to disk so the rename that follows publishes complete data.
void sync_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0 || ::fsync(fd) != 0) {
        int error_number = errno;
        if (fd >= 0) ::close(fd);
        throw UserError("cannot write " + path + ": " + std::strerror(error_number));
    }
    ::close(fd);
}

void write_npz(const std::string& path, const at::Tensor& mu, const at::Tensor& sigma) {
    // Written beside PATH, then renamed over it: readers see the old file or the complete new one.
    const std::string temp_path = path + ".tmp";
    std::error_code ignored;
    std::filesystem::remove(temp_path, ignored);
    int error_code = 0;
    ZipArchive archive(zip_open(temp_path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error_code), zip_discard);
    if (!archive) throw UserError("cannot write " + path + ": " + zip_error_text(error_code));
    // libzip reads the buffers at zip_close, so they live until then.
    const std::vector<std::pair<std::string, std::string>> entries = {{"mu.npy", encode_npy(mu)},
                                                                      {"sigma.npy", encode_npy(sigma)}};
    for (const auto& [name, bytes] : entries) {
        zip_source_t* source = zip_source_buffer(archive.get(), bytes.data(), bytes.size(), 0);
        zip_int64_t index =
            source == nullptr ? -1 : zip_file_add(archive.get(), name.c_str(), source, ZIP_FL_OVERWRITE);
        if (index < 0) {
            if (source != nullptr) zip_source_free(source);
            throw UserError("cannot write " + path + ": " + zip_strerror(archive.get()));
        }
        // Stored, not deflated, like numpy.savez (pytorch-fid's writer).
        zip_set_file_compression(archive.get(), static_cast<zip_uint64_t>(index), ZIP_CM_STORE, 0);
    }
    if (zip_close(archive.get()) != 0) {
        std::string reason = zip_strerror(archive.get());
        std::filesystem::remove(temp_path, ignored);
        throw UserError("cannot write " + path + ": " + reason);
    }
    archive.release();  // zip_close freed it
    sync_file(temp_path);
    std::error_code rename_error;
    std::filesystem::rename(temp_path, path, rename_error);
    if (rename_error) {
        std::filesystem::remove(temp_path, ignored);
        throw UserError("cannot write " + path + ": cannot rename " + temp_path + " into place (" +
                        rename_error.message() + ")");
    }
}

int64_t parse_count(const std::string& text, const std::string& path) {
    bool digits = !text.empty() && text.size() <= 18 &&
                  std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); });
    if (!digits)
        throw UserError(path + ": metadata '" + kCountKey + "' must be a non-negative integer, got '" + text + "'");
    return std::stoll(text);
}

}  // namespace

void write_reference_stats(const std::string& path, const ReferenceStats& stats) {
    check_shapes(stats.mu, stats.sigma, "cannot write " + path);
    if (stats.n < 0)
        throw UserError("cannot write " + path + ": n must be non-negative, got " + std::to_string(stats.n));
    at::Tensor mu = cpu_double(stats.mu), sigma = cpu_double(stats.sigma);
    if (is_npz_path(path)) {
        write_npz(path, mu, sigma);  // the format has no room for n or metadata
        return;
    }
    std::map<std::string, std::string> metadata = stats.metadata;
    metadata[kCountKey] = std::to_string(stats.n);  // the field, not a stale metadata entry, is the truth
    write_safetensors(path, {{kMeanName, mu}, {kCovarianceName, sigma}}, metadata);
}

ReferenceStats read_reference_stats(const std::string& path) {
    if (is_npz_path(path)) return read_npz(path);
    TensorFile file = read_safetensors(path);
    for (const char* name : {kMeanName, kCovarianceName}) {
        if (file.tensors.count(name) == 0) {
            throw UserError(path + ": tensor '" + name + "' is missing (reference statistics hold mu and sigma)");
        }
    }
    ReferenceStats stats;
    check_shapes(file.tensors.at(kMeanName), file.tensors.at(kCovarianceName), path);
    stats.mu = cpu_double(file.tensors.at(kMeanName));
    stats.sigma = cpu_double(file.tensors.at(kCovarianceName));
    stats.metadata = file.metadata;
    auto count = stats.metadata.find(kCountKey);
    if (count != stats.metadata.end()) {
        stats.n = parse_count(count->second, path);
        stats.metadata.erase(count);
    }
    return stats;
}

}  // namespace onestep
