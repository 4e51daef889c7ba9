// The checkpoint container: magic, version, JSON header, tensor payload, CRC-32, end magic.
// Saving is atomic; loading checks every size and the checksum before trusting the data.
#include "core/checkpoint.hpp"

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "core/dtype_names.hpp"
#include "core/error.hpp"

namespace onestep {
namespace {

constexpr char kStartMagic[] = "ONESTEPC";
constexpr char kEndMagic[] = "ONESTEPE";
constexpr uint64_t kMagicBytes = 8;
// start magic + u32 version + u64 header length
constexpr uint64_t kPrefixBytes = kMagicBytes + 4 + 8;
// u32 CRC + end magic
constexpr uint64_t kSuffixBytes = 4 + kMagicBytes;

// zlib's crc32 takes a 32-bit length, so large tensors go through in pieces.
uint32_t update_crc(uint32_t crc, const void* data, uint64_t size) {
    const auto* bytes = static_cast<const Bytef*>(data);
    constexpr uint64_t kChunk = 1u << 30;
    while (size > 0) {
        uInt piece = static_cast<uInt>(std::min(size, kChunk));
        crc = static_cast<uint32_t>(crc32(crc, bytes, piece));
        bytes += piece;
        size -= piece;
    }
    return crc;
}

struct ParsedHeader {
    Checkpoint checkpoint;               // everything but the tensors
    std::vector<detail::TensorEntry> entries;
    std::string header_text;
    uint64_t payload_bytes = 0;
};

[[noreturn]] void corrupted(const std::string& path, const std::string& what) {
    throw UserError(path + " is corrupted: " + what);
}

// Reads and checks everything up to the payload, plus the sizes and the end magic.
ParsedHeader read_header(const detail::FileReader& file) {
    const std::string& path = file.path();
    const uint64_t file_size = file.size();
    if (file_size == 0) throw UserError(path + " is truncated: the file is empty");
    std::string start = file.read_string(0, std::min(file_size, kMagicBytes));
    if (std::memcmp(start.data(), kStartMagic, start.size()) != 0) {
        throw UserError(path + " is not an onestep checkpoint (it does not start with \"ONESTEPC\")");
    }
    if (file_size < kPrefixBytes + kSuffixBytes) {
        throw UserError(path + " is truncated: " + std::to_string(file_size) +
                        " bytes, an onestep checkpoint has at least " + std::to_string(kPrefixBytes + kSuffixBytes));
    }
    std::string prefix = file.read_string(0, kPrefixBytes);
    ParsedHeader parsed;
    uint32_t version = detail::decode_u32(prefix.data() + kMagicBytes);
    if (version == 0) corrupted(path, "format version 0");
    if (version > kCheckpointFormatVersion) {
        throw UserError(path + " was written by a newer onestep (format " + std::to_string(version) +
                        ", this build reads <= " + std::to_string(kCheckpointFormatVersion) + ")");
    }
    parsed.checkpoint.format_version = version;

    uint64_t header_bytes = detail::decode_u64(prefix.data() + kMagicBytes + 4);
    const uint64_t room = file_size - kPrefixBytes - kSuffixBytes;
    if (header_bytes > room) {
        throw UserError(path + " is truncated: header says " + std::to_string(header_bytes) +
                        " bytes of header, file has room for " + std::to_string(room));
    }
    parsed.header_text = file.read_string(kPrefixBytes, header_bytes);

    nlohmann::ordered_json header;
    try {
        header = nlohmann::ordered_json::parse(parsed.header_text);
    } catch (const nlohmann::json::parse_error& error) {
        corrupted(path, "its header is not valid JSON (error at byte " + std::to_string(error.byte) + ")");
    }
    if (!header.is_object()) corrupted(path, "its header is not a JSON object");
    auto field = [&](const char* name) -> const nlohmann::ordered_json& {
        auto found = header.find(name);
        if (found == header.end()) corrupted(path, std::string("its header has no \"") + name + "\"");
        return *found;
    };
    const auto& method = field("method");
    const auto& config = field("config_yaml");
    const auto& step = field("step");
    const auto& state = field("state");
    const auto& payload = field("payload_bytes");
    const auto& tensors = field("tensors");
    if (!method.is_string()) corrupted(path, "\"method\" is not a string");
    if (!config.is_string()) corrupted(path, "\"config_yaml\" is not a string");
    if (!step.is_number_integer()) corrupted(path, "\"step\" is not an integer");
    if (!state.is_object()) corrupted(path, "\"state\" is not a JSON object");
    if (!payload.is_number_unsigned()) corrupted(path, "\"payload_bytes\" is not a non-negative integer");
    if (!tensors.is_object()) corrupted(path, "\"tensors\" is not a JSON object");
    parsed.checkpoint.method = method.get<std::string>();
    parsed.checkpoint.config_yaml = config.get<std::string>();
    parsed.checkpoint.step = step.get<int64_t>();
    parsed.checkpoint.state_json = state.dump();
    parsed.payload_bytes = payload.get<uint64_t>();

    const uint64_t available = room - header_bytes;
    if (parsed.payload_bytes > available) {
        throw UserError(path + " is truncated: header says " + std::to_string(parsed.payload_bytes) +
                        " bytes of tensor data, file has " + std::to_string(available));
    }
    if (parsed.payload_bytes < available) {
        corrupted(path, std::to_string(available - parsed.payload_bytes) + " unexpected bytes after the tensor data");
    }
    for (const auto& [name, value] : tensors.items()) {
        parsed.entries.push_back(detail::entry_from_json(name, value, path));
    }
    detail::check_entries_tile(parsed.entries, parsed.payload_bytes, path);

    std::string end = file.read_string(file_size - kMagicBytes, kMagicBytes);
    if (end != kEndMagic) corrupted(path, "the end marker \"ONESTEPE\" is missing");
    return parsed;
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint) {
    // Build the whole header first: a bad input fails before PATH.tmp exists.
    nlohmann::ordered_json state;
    try {
        state = nlohmann::ordered_json::parse(checkpoint.state_json.empty() ? "{}" : checkpoint.state_json);
    } catch (const nlohmann::json::parse_error& error) {
        TORCH_CHECK(false, "checkpoint state for ", path, " is not valid JSON: ", error.what());
    }
    TORCH_CHECK(state.is_object(), "checkpoint state for ", path, " is not a JSON object");

    std::vector<std::string> names;
    std::vector<at::Tensor> contiguous;
    for (const auto& [name, tensor] : checkpoint.tensors) {
        if (!tensor.defined()) throw UserError("cannot write " + path + ": tensor '" + name + "' is undefined");
        detail::dtype_to_name(tensor.scalar_type(), "cannot write " + path + ": tensor '" + name + "'");
        names.push_back(name);
        contiguous.push_back(tensor.detach().cpu().contiguous());
    }
    std::vector<detail::TensorEntry> entries = detail::layout_entries(names, contiguous);
    const uint64_t payload_bytes = entries.empty() ? 0 : entries.back().end;

    nlohmann::ordered_json header;
    header["method"] = checkpoint.method;
    header["config_yaml"] = checkpoint.config_yaml;
    header["step"] = checkpoint.step;
    header["state"] = std::move(state);
    header["payload_bytes"] = payload_bytes;
    header["tensors"] = nlohmann::ordered_json::object();
    for (const auto& entry : entries) header["tensors"][entry.name] = detail::entry_to_json(entry);
    const std::string header_text = detail::dump_header(header, path);

    std::string prefix(kStartMagic, kMagicBytes);
    detail::append_u32(prefix, kCheckpointFormatVersion);
    detail::append_u64(prefix, header_text.size());

    detail::AtomicFileWriter file(path);
    file.write(prefix.data(), prefix.size());
    file.write(header_text.data(), header_text.size());
    uint32_t crc = update_crc(static_cast<uint32_t>(crc32(0, Z_NULL, 0)), header_text.data(), header_text.size());
    for (const auto& tensor : contiguous) {
        if (tensor.nbytes() == 0) continue;
        file.write(tensor.data_ptr(), tensor.nbytes());
        crc = update_crc(crc, tensor.data_ptr(), tensor.nbytes());
    }
    std::string suffix;
    detail::append_u32(suffix, crc);
    suffix.append(kEndMagic, kMagicBytes);
    file.write(suffix.data(), suffix.size());
    file.commit();
}

Checkpoint load_checkpoint(const std::string& path) {
    detail::FileReader file(path);
    ParsedHeader parsed = read_header(file);
    uint32_t crc = update_crc(static_cast<uint32_t>(crc32(0, Z_NULL, 0)), parsed.header_text.data(),
                              parsed.header_text.size());
    const uint64_t payload_start = kPrefixBytes + parsed.header_text.size();
    // Entries are sorted by offset and tile the payload, so this checksums it in file order.
    for (const auto& entry : parsed.entries) {
        at::Tensor tensor = file.read_tensor(payload_start + entry.begin, entry.dtype, entry.shape);
        if (tensor.nbytes() > 0) crc = update_crc(crc, tensor.data_ptr(), tensor.nbytes());
        parsed.checkpoint.tensors[entry.name] = tensor;
    }
    std::string stored = file.read_string(payload_start + parsed.payload_bytes, 4);
    if (detail::decode_u32(stored.data()) != crc) corrupted(path, "checksum mismatch");
    return std::move(parsed.checkpoint);
}

Checkpoint peek_checkpoint(const std::string& path) {
    detail::FileReader file(path);
    return read_header(file).checkpoint;
}

std::map<std::string, std::vector<int64_t>> peek_tensor_shapes(const std::string& path) {
    detail::FileReader file(path);
    std::map<std::string, std::vector<int64_t>> shapes;
    for (const auto& entry : read_header(file).entries) shapes[entry.name] = entry.shape;
    return shapes;
}

at::Tensor bytes_to_tensor(const std::string& bytes) {
    at::Tensor tensor = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
    if (!bytes.empty()) std::memcpy(tensor.data_ptr<uint8_t>(), bytes.data(), bytes.size());
    return tensor;
}

std::string tensor_to_bytes(const at::Tensor& tensor) {
    TORCH_CHECK(tensor.defined() && tensor.scalar_type() == torch::kUInt8 && tensor.dim() == 1,
                "tensor_to_bytes expects a 1-D uint8 tensor");
    at::Tensor bytes = tensor.cpu().contiguous();
    return std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), static_cast<size_t>(bytes.numel()));
}

}  // namespace onestep
