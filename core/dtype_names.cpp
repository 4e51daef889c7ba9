// Dtype names, tensor index entries and atomic/random-access file I/O shared by the
// safetensors reader/writer and the checkpoint.
#include "core/dtype_names.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.hpp"

// Tensor bytes are copied as they lie in memory and the formats are little-endian.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "onestep's file formats assume a little-endian host");

namespace onestep::detail {
namespace {

struct DtypeName {
    at::ScalarType dtype;
    const char* name;
};

constexpr DtypeName kDtypeNames[] = {
    {at::kDouble, "F64"}, {at::kFloat, "F32"}, {at::kHalf, "F16"},  {at::kBFloat16, "BF16"},
    {at::kLong, "I64"},   {at::kInt, "I32"},   {at::kShort, "I16"}, {at::kChar, "I8"},
    {at::kByte, "U8"},    {at::kBool, "BOOL"},
};

std::string os_reason(int error_number) { return std::strerror(error_number); }

}  // namespace

std::string dtype_to_name(at::ScalarType dtype, const std::string& what) {
    for (const auto& entry : kDtypeNames) {
        if (entry.dtype == dtype) return entry.name;
    }
    throw UserError(what + " has dtype " + std::string(c10::toString(dtype)) +
                    ", which cannot be stored (supported: " + supported_dtype_names() + ")");
}

bool dtype_from_name(const std::string& name, at::ScalarType* dtype) {
    for (const auto& entry : kDtypeNames) {
        if (name == entry.name) {
            *dtype = entry.dtype;
            return true;
        }
    }
    return false;
}

std::string supported_dtype_names() {
    std::string names;
    for (const auto& entry : kDtypeNames) {
        if (!names.empty()) names += ", ";
        names += entry.name;
    }
    return names;
}

nlohmann::ordered_json entry_to_json(const TensorEntry& entry) {
    nlohmann::ordered_json value;
    value["dtype"] = dtype_to_name(entry.dtype, "tensor '" + entry.name + "'");
    value["shape"] = entry.shape;
    value["data_offsets"] = {entry.begin, entry.end};
    return value;
}

TensorEntry entry_from_json(const std::string& name, const nlohmann::ordered_json& value,
                            const std::string& path) {
    const std::string where = path + ": tensor '" + name + "'";
    if (!value.is_object()) throw UserError(where + " is not a JSON object in the header");
    TensorEntry entry;
    entry.name = name;

    auto dtype = value.find("dtype");
    if (dtype == value.end() || !dtype->is_string()) throw UserError(where + " has no \"dtype\" string");
    if (!dtype_from_name(dtype->get<std::string>(), &entry.dtype)) {
        throw UserError(where + " has unknown dtype \"" + dtype->get<std::string>() +
                        "\" (supported: " + supported_dtype_names() + ")");
    }

    auto shape = value.find("shape");
    if (shape == value.end() || !shape->is_array()) throw UserError(where + " has no \"shape\" list");
    // Bytes are counted with overflow checks: a corrupted shape must not wrap around to a
    // plausible size.
    uint64_t bytes = c10::elementSize(entry.dtype);
    for (const auto& dim : *shape) {
        if (!dim.is_number_unsigned()) {
            throw UserError(where + " has shape " + shape->dump() + "; expected non-negative integers");
        }
        uint64_t size = dim.get<uint64_t>();
        if (size > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(bytes, size, &bytes)) {
            throw UserError(where + " has an impossibly large shape " + shape->dump());
        }
        entry.shape.push_back(static_cast<int64_t>(size));
    }

    auto offsets = value.find("data_offsets");
    if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
        throw UserError(where + " has no \"data_offsets\" pair of non-negative integers");
    }
    entry.begin = (*offsets)[0].get<uint64_t>();
    entry.end = (*offsets)[1].get<uint64_t>();
    if (entry.end < entry.begin) {
        throw UserError(where + " has data_offsets " + offsets->dump() + " that end before they begin");
    }
    if (entry.end - entry.begin != bytes) {
        throw UserError(where + " has data_offsets " + offsets->dump() + " spanning " +
                        std::to_string(entry.end - entry.begin) + " bytes, but its dtype and shape need " +
                        std::to_string(bytes));
    }
    return entry;
}

void check_entries_tile(std::vector<TensorEntry>& entries, uint64_t data_bytes,
                        const std::string& path) {
    std::sort(entries.begin(), entries.end(), [](const TensorEntry& a, const TensorEntry& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    uint64_t needed = 0;
    for (const auto& entry : entries) needed = std::max(needed, entry.end);
    if (needed > data_bytes) {
        throw UserError(path + " is truncated: header says " + std::to_string(needed) +
                        " bytes of data, file has " + std::to_string(data_bytes));
    }
    uint64_t position = 0;
    for (const auto& entry : entries) {
        if (entry.begin != position) {
            throw UserError(path + ": tensor '" + entry.name + "' starts at byte " + std::to_string(entry.begin) +
                            " of the data, expected " + std::to_string(position) +
                            (entry.begin < position ? " (it overlaps the tensor before it)"
                                                    : " (there is a gap before it)"));
        }
        position = entry.end;
    }
    if (position != data_bytes) {
        throw UserError(path + " has " + std::to_string(data_bytes - position) +
                        " bytes after the last tensor's data; the file is malformed");
    }
}

std::vector<TensorEntry> layout_entries(const std::vector<std::string>& names,
                                        const std::vector<at::Tensor>& tensors) {
    std::vector<TensorEntry> entries;
    uint64_t position = 0;
    for (size_t i = 0; i < names.size(); ++i) {
        TensorEntry entry;
        entry.name = names[i];
        entry.dtype = tensors[i].scalar_type();
        entry.shape = tensors[i].sizes().vec();
        entry.begin = position;
        entry.end = position + tensors[i].nbytes();
        position = entry.end;
        entries.push_back(std::move(entry));
    }
    return entries;
}

std::string dump_header(const nlohmann::ordered_json& header, const std::string& path) {
    try {
        return header.dump();
    } catch (const nlohmann::json::type_error& error) {
        throw UserError("cannot write " + path + ": a name or text field is not valid UTF-8 (" +
                        std::string(error.what()) + ")");
    }
}

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)), temp_path_(path_ + ".tmp") {
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("", errno);
}

AtomicFileWriter::~AtomicFileWriter() {
    if (fd_ >= 0) {
        ::close(fd_);
        ::unlink(temp_path_.c_str());
    }
}

void AtomicFileWriter::fail(const std::string& action, int error_number) {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
        ::unlink(temp_path_.c_str());
    }
    // Creating PATH.tmp fails for the same reasons PATH would, so only later steps name it.
    throw UserError("cannot write " + path_ + ": " + (action.empty() ? "" : action + " " + temp_path_ + " failed: ") +
                    os_reason(error_number));
}

void AtomicFileWriter::write(const void* data, size_t size) {
    TORCH_CHECK(fd_ >= 0, "AtomicFileWriter used after commit or failure");
    const char* bytes = static_cast<const char*>(data);
    while (size > 0) {
        ssize_t written = ::write(fd_, bytes, size);
        if (written < 0) {
            if (errno == EINTR) continue;
            fail("writing", errno);
        }
        bytes += written;
        size -= static_cast<size_t>(written);
    }
}

void AtomicFileWriter::commit() {
    TORCH_CHECK(fd_ >= 0, "AtomicFileWriter committed twice or after a failure");
    if (::fsync(fd_) != 0) fail("fsync of", errno);
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) {
        int error_number = errno;
        ::unlink(temp_path_.c_str());
        throw UserError("cannot write " + path_ + ": closing " + temp_path_ + " failed: " + os_reason(error_number));
    }
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
        int error_number = errno;
        ::unlink(temp_path_.c_str());
        throw UserError("cannot write " + path_ + ": " + os_reason(error_number));
    }
    // The rename itself is durable only once the folder is synced. Some filesystems refuse
    // fsync on folders; the file is already complete then, so that is not an error.
    std::string folder = std::filesystem::path(path_).parent_path().string();
    if (folder.empty()) folder = ".";
    int folder_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (folder_fd >= 0) {
        ::fsync(folder_fd);
        ::close(folder_fd);
    }
}

FileReader::FileReader(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw UserError("cannot read " + path_ + ": " + os_reason(errno));
    struct stat info {};
    if (::fstat(fd_, &info) != 0) {
        int error_number = errno;
        ::close(fd_);
        throw UserError("cannot read " + path_ + ": " + os_reason(error_number));
    }
    if (!S_ISREG(info.st_mode)) {
        ::close(fd_);
        throw UserError("cannot read " + path_ + ": not a regular file");
    }
    size_ = static_cast<uint64_t>(info.st_size);
}

FileReader::~FileReader() {
    if (fd_ >= 0) ::close(fd_);
}

void FileReader::read_at(uint64_t offset, void* out, size_t size) const {
    char* bytes = static_cast<char*>(out);
    while (size > 0) {
        ssize_t got = ::pread(fd_, bytes, size, static_cast<off_t>(offset));
        if (got < 0) {
            if (errno == EINTR) continue;
            throw UserError("cannot read " + path_ + ": " + os_reason(errno));
        }
        // The callers check sizes against the file size first, so this means the file shrank.
        if (got == 0) throw UserError(path_ + " is truncated: it ended while being read");
        bytes += got;
        offset += static_cast<uint64_t>(got);
        size -= static_cast<size_t>(got);
    }
}

std::string FileReader::read_string(uint64_t offset, size_t size) const {
    std::string text(size, '\0');
    read_at(offset, text.data(), size);
    return text;
}

at::Tensor FileReader::read_tensor(uint64_t offset, at::ScalarType dtype,
                                   const std::vector<int64_t>& shape) const {
    // Reading straight into a fresh tensor's storage: the tensor owns its memory and no
    // second copy of a large checkpoint is ever held.
    at::Tensor tensor = torch::empty(shape, torch::TensorOptions().dtype(dtype));
    if (tensor.nbytes() > 0) read_at(offset, tensor.data_ptr(), tensor.nbytes());
    return tensor;
}

void append_u32(std::string& out, uint32_t value) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void append_u64(std::string& out, uint64_t value) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint32_t decode_u32(const char* bytes) {
    uint32_t value = 0;
    for (int i = 3; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
    return value;
}

uint64_t decode_u64(const char* bytes) {
    uint64_t value = 0;
    for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
    return value;
}

}  // namespace onestep::detail
