// Safetensors reading and writing, byte-compatible with the reference implementation.
// Written here in plain C++ because no maintained safetensors C++ library is packaged in Debian.
#include "core/tensor_file.hpp"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/dtype_names.hpp"
#include "core/error.hpp"

namespace onestep {
namespace {

constexpr const char* kMetadataKey = "__metadata__";
// The reference implementation refuses headers above 100 MB; a larger length field means the
// file is not safetensors at all.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

}  // namespace

void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    // Everything that can be wrong with the input is checked before PATH.tmp exists.
    std::vector<std::string> names;
    std::vector<at::Tensor> contiguous;
    for (const auto& [name, tensor] : tensors) {
        if (name == kMetadataKey) {
            throw UserError("cannot write " + path + ": \"__metadata__\" is not a valid tensor name");
        }
        if (!tensor.defined()) throw UserError("cannot write " + path + ": tensor '" + name + "' is undefined");
        detail::dtype_to_name(tensor.scalar_type(), "cannot write " + path + ": tensor '" + name + "'");
        names.push_back(name);
        contiguous.push_back(tensor.detach().cpu().contiguous());
    }
    std::vector<detail::TensorEntry> entries = detail::layout_entries(names, contiguous);

    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
        header[kMetadataKey] = nlohmann::ordered_json::object();
        for (const auto& [key, value] : metadata) header[kMetadataKey][key] = value;
    }
    for (const auto& entry : entries) header[entry.name] = detail::entry_to_json(entry);
    std::string header_text = detail::dump_header(header, path);
    // The reference pads with spaces so that the data section starts 8-byte aligned.
    header_text.append((8 - header_text.size() % 8) % 8, ' ');

    std::string prefix;
    detail::append_u64(prefix, header_text.size());
    detail::AtomicFileWriter file(path);
    file.write(prefix.data(), prefix.size());
    file.write(header_text.data(), header_text.size());
    for (const auto& tensor : contiguous) {
        if (tensor.nbytes() > 0) file.write(tensor.data_ptr(), tensor.nbytes());
    }
    file.commit();
}

TensorFile read_safetensors(const std::string& path) {
    detail::FileReader file(path);
    if (file.size() < 8) {
        throw UserError(path + " is truncated: " + std::to_string(file.size()) +
                        " bytes, too short to be a safetensors file");
    }
    char prefix[8];
    file.read_at(0, prefix, 8);
    uint64_t header_bytes = detail::decode_u64(prefix);
    if (header_bytes > kMaxHeaderBytes) {
        throw UserError(path + " is not a safetensors file: its header length field says " +
                        std::to_string(header_bytes) + " bytes");
    }
    if (header_bytes > file.size() - 8) {
        throw UserError(path + " is truncated: header says " + std::to_string(header_bytes) +
                        " bytes of header, file has " + std::to_string(file.size() - 8) + " after the length field");
    }
    std::string header_text = file.read_string(8, header_bytes);
    if (header_text.empty() || header_text[0] != '{') {
        throw UserError(path + " is not a safetensors file: its header does not start with '{'");
    }
    nlohmann::ordered_json header;
    try {
        header = nlohmann::ordered_json::parse(header_text);
    } catch (const nlohmann::json::parse_error& error) {
        throw UserError(path + " is not a safetensors file: its header is not valid JSON (error at byte " +
                        std::to_string(error.byte) + ")");
    }
    if (!header.is_object()) throw UserError(path + " is not a safetensors file: its header is not a JSON object");

    TensorFile result;
    std::vector<detail::TensorEntry> entries;
    for (const auto& [key, value] : header.items()) {
        if (key == kMetadataKey) {
            if (!value.is_object()) throw UserError(path + ": \"__metadata__\" is not a JSON object");
            for (const auto& [meta_key, meta_value] : value.items()) {
                if (!meta_value.is_string()) {
                    throw UserError(path + ": metadata entry '" + meta_key + "' is not a string");
                }
                result.metadata[meta_key] = meta_value.get<std::string>();
            }
            continue;
        }
        entries.push_back(detail::entry_from_json(key, value, path));
    }
    const uint64_t data_start = 8 + header_bytes;
    detail::check_entries_tile(entries, file.size() - data_start, path);
    for (const auto& entry : entries) {
        result.tensors[entry.name] = file.read_tensor(data_start + entry.begin, entry.dtype, entry.shape);
    }
    return result;
}

}  // namespace onestep
