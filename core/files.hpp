// Whole-file writes that are atomic (temporary file, fsync, rename): a reader or a crash sees the
// old file or the complete new one. Used for configs, logs rewritten on resume, JSON records, CSV.
#pragma once
#include <string>

namespace onestep {

// Throws UserError naming PATH and the OS reason when it cannot be written; leaves no PATH.tmp.
void write_file_atomic(const std::string& path, const std::string& contents);

}  // namespace onestep
