// Helpers shared by the tests.
#include "support.hpp"

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/checkpoint.hpp"
#include "core/error.hpp"
#include "core/files.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

extern char** environ;

namespace fs = std::filesystem;

namespace onestep::test {

int spawn_shell(const std::string& command_line) {
    pid_t pid = 0;
    std::string line = "exec " + command_line;
    const char* argv[] = {"/bin/sh", "-c", line.c_str(), nullptr};
    REQUIRE(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) == 0);
    return pid;
}

int wait_exit(int pid, double seconds) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool wait_for_file(const std::string& path, double seconds) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
        if (fs::exists(path)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

TempDir::TempDir() {
    std::random_device device;
    for (int attempt = 0; attempt < 100; ++attempt) {
        auto candidate = fs::temp_directory_path() /
                         ("onestep-test-" + std::to_string(::getpid()) + "-" + std::to_string(device()));
        if (fs::create_directory(candidate)) {
            path_ = candidate.string();
            return;
        }
    }
    throw std::runtime_error("cannot create a temporary directory");
}

TempDir::~TempDir() {
    remove_tree(path_);
}

CommandResult run_command(const std::string& command_line) {
    CommandResult result;
    FILE* pipe = ::popen((command_line + " 2>&1").c_str(), "r");
    if (pipe == nullptr) throw std::runtime_error("popen failed for: " + command_line);
    std::array<char, 4096> buffer{};
    size_t count = 0;
    while ((count = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), count);
    int status = ::pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

void write_text(const std::string& path, const std::string& text) {
    auto parent = fs::path(path).parent_path();
    if (!parent.empty()) fs::create_directories(parent);
    std::ofstream out(path, std::ios::binary);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

std::string user_error_message(const std::function<void()>& action) {
    try {
        action();
    } catch (const onestep::UserError& error) {
        return error.what();
    }
    return "no UserError was thrown";
}

double mean_log_value(const std::string& log_path, const std::string& key, size_t first, size_t last) {
    std::ifstream in(log_path);
    std::string line;
    std::vector<double> values;
    while (std::getline(in, line)) {
        auto record = nlohmann::json::parse(line);
        if (record.contains(key)) values.push_back(record.at(key).get<double>());
    }
    REQUIRE(values.size() >= last);
    double sum = 0;
    for (size_t i = first; i < last; ++i) sum += values[i];
    return sum / static_cast<double>(last - first);
}

void require_identical_checkpoints(const std::string& a, const std::string& b) {
    Checkpoint left = load_checkpoint(a);
    Checkpoint right = load_checkpoint(b);
    REQUIRE(left.step == right.step);
    REQUIRE(left.tensors.size() == right.tensors.size());
    for (const auto& [name, tensor] : left.tensors) {
        if (name.rfind("optim/", 0) == 0) continue;
        INFO("tensor " << name);
        REQUIRE(right.tensors.count(name) == 1);
        CHECK(torch::equal(tensor, right.tensors.at(name)));
    }
}

std::string toy_train_command(const std::string& method, const std::string& run_dir, const std::string& extra) {
    return std::string(ONESTEP_BINARY) + " train " + method + " --threads 2 --config " + ONESTEP_SOURCE_DIR +
           "/configs/toy2d/" + method + ".yaml --run-dir " + run_dir + " " + extra;
}

void write_square_images(const std::string& folder) {
    for (int cls = 0; cls < 2; ++cls)
        for (int i = 0; i < 4; ++i)
            write_text(folder + "/c" + std::to_string(cls) + "/" + std::to_string(i) + ".pgm",
                       "P5 8 8 255\n" + std::string(64, static_cast<char>(cls ? 200 : 40)));
}

void require_exact_toy_resume(const std::string& method, const std::string& run, const std::string& settings,
                              int stop_at, const std::string& reference_checkpoint) {
    auto first = run_command(toy_train_command(method, run, settings + " --stop-at-step " + std::to_string(stop_at)));
    INFO(first.output);
    REQUIRE(first.exit_code == 0);
    auto second = run_command(std::string(ONESTEP_BINARY) + " train " + method + " --threads 2 --resume " + run);
    INFO(second.output);
    REQUIRE(second.exit_code == 0);
    require_identical_checkpoints(reference_checkpoint, run + "/checkpoints/latest.ckpt");
}

}  // namespace onestep::test
