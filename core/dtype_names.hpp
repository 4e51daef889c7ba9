// Internal to core: what the two binary tensor containers (safetensors files and checkpoints)
// share — dtype names, the {"dtype", "shape", "data_offsets"} index entry, raw file I/O.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace onestep::detail {

// "F32" for float32 and so on (the safetensors spelling). Throws UserError saying that WHAT
// has an unsupported dtype when there is no name for it.
std::string dtype_to_name(at::ScalarType dtype, const std::string& what);

// False when NAME is not one of the supported names.
bool dtype_from_name(const std::string& name, at::ScalarType* dtype);

// "F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL", for error messages.
std::string supported_dtype_names();

// One tensor's place in a data section; the byte range is relative to the section start.
struct TensorEntry {
    std::string name;
    at::ScalarType dtype = at::kFloat;
    std::vector<int64_t> shape;
    uint64_t begin = 0;
    uint64_t end = 0;
};

// {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}
nlohmann::ordered_json entry_to_json(const TensorEntry& entry);

// Validates one index entry (object, known dtype, non-negative shape, two offsets whose span
// matches shape x item size); throws UserError naming PATH and the entry.
TensorEntry entry_from_json(const std::string& name, const nlohmann::ordered_json& value,
                            const std::string& path);

// Sorts ENTRIES by offset and checks that they tile [0, data_bytes) exactly: a range past the
// end means the file is truncated; gaps or overlaps mean it is malformed.
void check_entries_tile(std::vector<TensorEntry>& entries, uint64_t data_bytes,
                        const std::string& path);

// Lays out TENSORS (already CPU and contiguous) one after another in map order.
std::vector<TensorEntry> layout_entries(const std::vector<std::string>& names,
                                        const std::vector<at::Tensor>& tensors);

// Serialises JSON for a file header; text that is not UTF-8 becomes a UserError naming PATH.
std::string dump_header(const nlohmann::ordered_json& header, const std::string& path);

// Writes PATH.tmp, then commit() fsyncs it, renames it over PATH and fsyncs the folder, so a
// crash leaves either the old file or the complete new one. Destroyed without commit(), it
// removes PATH.tmp. Every failure is a UserError naming PATH and the OS reason.
class AtomicFileWriter {
  public:
    explicit AtomicFileWriter(std::string path);
    ~AtomicFileWriter();
    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

    void write(const void* data, size_t size);
    void commit();

  private:
    [[noreturn]] void fail(const std::string& action, int error_number);

    std::string path_;
    std::string temp_path_;
    int fd_ = -1;
};

// Random-access reads of a regular file; failures are UserErrors naming PATH.
class FileReader {
  public:
    explicit FileReader(std::string path);
    ~FileReader();
    FileReader(const FileReader&) = delete;
    FileReader& operator=(const FileReader&) = delete;

    uint64_t size() const { return size_; }
    const std::string& path() const { return path_; }
    void read_at(uint64_t offset, void* out, size_t size) const;
    std::string read_string(uint64_t offset, size_t size) const;
    // A new CPU tensor of DTYPE and SHAPE filled with the SIZE bytes at OFFSET.
    at::Tensor read_tensor(uint64_t offset, at::ScalarType dtype,
                           const std::vector<int64_t>& shape) const;

  private:
    std::string path_;
    int fd_ = -1;
    uint64_t size_ = 0;
};

// Little-endian integers in file headers.
void append_u32(std::string& out, uint32_t value);
void append_u64(std::string& out, uint64_t value);
uint32_t decode_u32(const char* bytes);
uint64_t decode_u64(const char* bytes);

}  // namespace onestep::detail
