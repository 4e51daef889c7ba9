// The checkpoint: one self-describing file holding everything a run needs to resume, sample
// or evaluate. Layout (all little-endian):
//   "ONESTEPC" | u32 format version | u64 header bytes | JSON header | payload | u32 CRC-32 of
//   header+payload | "ONESTEPE"
// The JSON header holds the method, the resolved config, the step, a free-form "state" object
// and the index of every tensor (dtype, shape, byte range in the payload). Written atomically.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace onestep {

constexpr uint32_t kCheckpointFormatVersion = 1;

struct Checkpoint {
    uint32_t format_version = kCheckpointFormatVersion;
    std::string method;                        // registry name, e.g. "flow"
    std::string config_yaml;                   // the resolved config
    int64_t step = 0;
    std::string state_json = "{}";             // trainer state: data position, counters, ...
    std::map<std::string, at::Tensor> tensors; // "net/<module>/<param>", "ema/...", "optim/<name>" (uint8 blob), "rng/cpu", ...
};

// Atomic: writes PATH.tmp, fsyncs, renames. Throws UserError naming PATH if it cannot write.
void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);

// Verifies magic, version, sizes and CRC; a truncated or corrupted file is a UserError naming
// PATH and what is wrong. Never modifies the file.
Checkpoint load_checkpoint(const std::string& path);

// Only the header (method, config, step, state), without reading the tensors' data.
Checkpoint peek_checkpoint(const std::string& path);

// Every tensor's shape, by name, from the header alone.
std::map<std::string, std::vector<int64_t>> peek_tensor_shapes(const std::string& path);

// Byte blobs (serialised optimizer states, RNG states) travel as 1-D uint8 tensors.
at::Tensor bytes_to_tensor(const std::string& bytes);
std::string tensor_to_bytes(const at::Tensor& tensor);

}  // namespace onestep
