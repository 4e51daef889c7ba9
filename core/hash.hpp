// SHA-256 of files, recorded with every derived artefact (teacher pairs, metrics) so a number
// can be traced to the exact weights that produced it.
#pragma once
#include <string>

namespace onestep {

// Lower-case hex digest; UserError naming PATH when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace onestep
