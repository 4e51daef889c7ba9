// Threads, devices and stop signals.
#include "core/runtime.hpp"

#include <torch/torch.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <thread>

#include "core/error.hpp"

namespace onestep {
namespace {

std::atomic<int> received_signal{0};
struct sigaction previous_int {};
struct sigaction previous_term {};

void on_stop_signal(int signal_number) {
    if (received_signal.load() == signal_number) {
        // A second identical signal: the user insists; fall back to the default action.
        std::signal(signal_number, SIG_DFL);
        std::raise(signal_number);
        return;
    }
    received_signal.store(signal_number);
}

}  // namespace

void reexec_with_passive_openmp(char** argv) {
    if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    ::execv("/proc/self/exe", argv);
}

void keep_freed_memory() {
#ifdef __GLIBC__
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, -1);
#endif
}

int64_t peak_resident_bytes() {
    std::FILE* status = std::fopen("/proc/self/status", "r");
    if (!status) return 0;
    char line[256];
    long long kib = 0;
    while (std::fgets(line, sizeof line, status))
        if (std::sscanf(line, "VmHWM: %lld kB", &kib) == 1) break;
    std::fclose(status);
    return static_cast<int64_t>(kib) * 1024;
}

int set_thread_count(int threads) {
    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    torch::set_num_threads(threads);
    return threads;
}

c10::Device parse_device(const std::string& text) {
    if (text == "cpu") return c10::Device(c10::kCPU);
    if (text.rfind("cuda", 0) == 0) {
        if (!torch::cuda::is_available())
            throw UserError("--device " + text + ": this build of libtorch has no usable CUDA device; use --device cpu");
        try {
            return c10::Device(text);
        } catch (const c10::Error&) {
            throw UserError("--device " + text + ": expected cuda or cuda:N");
        }
    }
    throw UserError("--device " + text + ": expected cpu or cuda");
}

StopSignalScope::StopSignalScope() {
    received_signal.store(0);
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &previous_int);
    sigaction(SIGTERM, &action, &previous_term);
}

StopSignalScope::~StopSignalScope() {
    sigaction(SIGINT, &previous_int, nullptr);
    sigaction(SIGTERM, &previous_term, nullptr);
}

bool stop_requested() { return received_signal.load() != 0; }
int stop_signal() { return received_signal.load(); }

}  // namespace onestep
