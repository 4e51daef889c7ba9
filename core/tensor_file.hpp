// Tensor files in the safetensors format (8-byte little-endian header length, JSON header,
// raw little-endian data), written atomically. Used for export, data caches and teacher pairs.
//
//   onestep::write_safetensors("w.safetensors", {{"fc.weight", w}}, {{"config", yaml}});
//   auto file = onestep::read_safetensors("w.safetensors");   // file.tensors.at("fc.weight")
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>

namespace onestep {

struct TensorFile {
    std::map<std::string, at::Tensor> tensors;       // CPU, contiguous
    std::map<std::string, std::string> metadata;     // the "__metadata__" entry
};

// Supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL. Writes PATH.tmp, flushes,
// then renames over PATH, so PATH is either the old file or the complete new one.
// Throws UserError naming PATH when it cannot be written.
void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Throws UserError naming PATH (and the entry) when the file is missing, truncated or malformed.
TensorFile read_safetensors(const std::string& path);

}  // namespace onestep
