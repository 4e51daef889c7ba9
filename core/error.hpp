// Errors shown to users: one line that names the file, key or line, never a stack dump.
// Throw UserError at the edges (CLI, config, file readers); use TORCH_CHECK for internal invariants.
#pragma once
#include <stdexcept>
#include <string>

namespace onestep {

// An error caused by the user's input (a file, an option, a value). main() prints its
// message alone and exits with status 2.
class UserError : public std::runtime_error {
  public:
    explicit UserError(const std::string& message) : std::runtime_error(message) {}
};

// Thrown when training stops on request (SIGINT/SIGTERM) after saving; main() exits 130.
class Interrupted : public std::runtime_error {
  public:
    explicit Interrupted(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace onestep
