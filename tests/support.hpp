// Helpers shared by the tests: a fresh temporary directory per test and running the CLI binary.
#pragma once
#include <functional>
#include <string>

namespace onestep::test {

// A new empty directory under the system temp dir, removed when the object dies.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

struct CommandResult {
    int exit_code = -1;
    std::string output;   // stdout and stderr together
};

// Runs a shell command line, capturing stdout+stderr.
CommandResult run_command(const std::string& command_line);

// Writes TEXT to PATH (creating parent folders).
void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

// Runs ACTION and returns the message of the onestep::UserError it throws, or "no UserError was
// thrown" (which no expected message contains). Other exceptions escape and fail the test.
std::string user_error_message(const std::function<void()>& action);

}  // namespace onestep::test
