// Process-wide runtime settings: intra-op threads, device choice, and SIGINT/SIGTERM as a
// polite "stop after this step" request during training.
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <string>

namespace onestep {

// libgomp reads OMP_WAIT_POLICY once, when it is loaded; its default (spinning workers) fights
// OpenBLAS's own threads and made small models up to 3x slower on 2 cores. When the variable is
// unset this sets it to PASSIVE and re-executes the program (same pid, same arguments); call it
// first thing in main(). Returns normally when nothing needs doing or exec fails.
void reexec_with_passive_openmp(char** argv);

// Keeps memory that libtorch frees inside glibc's heap instead of returning it to the system
// (no mmap for large blocks, no trimming): each training step reallocates the same large
// activation buffers, and the page faults of fresh mappings cost 5-20% of a step on 2 cores.
// The price is a footprint that does not shrink after its peak. Call early in main().
void keep_freed_memory();

// Sets libtorch's intra-op threads; THREADS <= 0 means the machine's cores (Debian's libtorch
// defaults to 1). Returns the count in force.
int set_thread_count(int threads);

// The process's peak resident memory (VmHWM of /proc/self/status) in bytes; 0 where unknown.
int64_t peak_resident_bytes();

// "cpu" or "cuda" (or "cuda:N"); "cuda" without a CUDA build or device is a UserError.
c10::Device parse_device(const std::string& text);

// While a StopSignalScope lives, SIGINT and SIGTERM set a flag instead of killing the process;
// a second signal of the same kind kills at once.
class StopSignalScope {
  public:
    StopSignalScope();
    ~StopSignalScope();
    StopSignalScope(const StopSignalScope&) = delete;
    StopSignalScope& operator=(const StopSignalScope&) = delete;
};
bool stop_requested();
int stop_signal();   // the signal received (0 if none)

}  // namespace onestep
