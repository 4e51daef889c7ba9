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

// Starts COMMAND_LINE under /bin/sh (exec'd, so the pid is the command's own) without waiting.
int spawn_shell(const std::string& command_line);
// The exit status of PID (128 + signal when killed); after SECONDS it is killed and -1 returned.
int wait_exit(int pid, double seconds = 600);
// True once PATH exists; false after SECONDS.
bool wait_for_file(const std::string& path, double seconds);

// `onestep train METHOD` with configs/toy2d/METHOD.yaml into RUN_DIR on 2 threads, then EXTRA.
std::string toy_train_command(const std::string& method, const std::string& run_dir, const std::string& extra);

// Trains METHOD's toy config into RUN with SETTINGS, stopping after STOP_AT steps, resumes it to
// the end, and requires the result to equal REFERENCE_CHECKPOINT (the same run uninterrupted).
void require_exact_toy_resume(const std::string& method, const std::string& run, const std::string& settings,
                              int stop_at, const std::string& reference_checkpoint);

// A tiny image folder at FOLDER: classes c0 (dark) and c1 (light), four flat 8x8 grey images each.
void write_square_images(const std::string& folder);

// Writes TEXT to PATH (creating parent folders).
void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

// Runs ACTION and returns the message of the onestep::UserError it throws, or "no UserError was
// thrown" (which no expected message contains). Other exceptions escape and fail the test.
std::string user_error_message(const std::function<void()>& action);

// Mean of KEY over the records [first, last) of a run's log.jsonl that have KEY (fails the test
// when fewer records exist).
double mean_log_value(const std::string& log_path, const std::string& key, size_t first, size_t last);

// Every tensor of the two checkpoints is equal (weights, EMA, random state) and so is the step.
// Optimizer blobs are left out of the byte comparison: libtorch keys their entries by in-memory
// addresses, which differ between processes; equal weights after resumed steps show they restored.
void require_identical_checkpoints(const std::string& a, const std::string& b);

}  // namespace onestep::test
