// Atomic whole-file writes through the same writer the tensor files use.
#include "core/files.hpp"

#include "core/dtype_names.hpp"

namespace onestep {

void write_file_atomic(const std::string& path, const std::string& contents) {
    detail::AtomicFileWriter writer(path);
    writer.write(contents.data(), contents.size());
    writer.commit();
}

}  // namespace onestep
