// `onestep launch -n N -- train METHOD ...`: runs N copies of this binary on this machine with
// torchrun's variables set, forwards SIGINT/SIGTERM, and stops them all when one fails.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.hpp"
#include "core/error.hpp"

namespace onestep::cli {
namespace {

// Seconds the others get to stop after SIGTERM before SIGKILL.
constexpr double kStopGraceSeconds = 20.0;

struct LaunchArgs {
    int processes = 1;
    int master_port = 29500;
    std::vector<std::string> command;
};

volatile std::sig_atomic_t g_pending_signal = 0;

void remember_signal(int signal_number) { g_pending_signal = signal_number; }

// A port the kernel says is free now (the first rank binds it a moment later).
int free_local_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw UserError("launch: cannot open a socket to find a free port: " + std::string(std::strerror(errno)));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof address;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        ::close(fd);
        throw UserError("launch: cannot find a free port; give one with --master-port");
    }
    ::close(fd);
    return ntohs(address.sin_port);
}

pid_t spawn_rank(const std::string& binary, const std::vector<std::string>& command, int rank, int world, int port) {
    pid_t pid = ::fork();
    if (pid < 0) throw UserError("launch: fork failed: " + std::string(std::strerror(errno)));
    if (pid > 0) return pid;
    // The child: its own process group, so a terminal's Ctrl-C reaches it once (forwarded),
    // and SIGTERM when the launcher dies without cleaning up.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::setenv("MASTER_ADDR", "127.0.0.1", 1);
    ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
    ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
    ::setenv("RANK", std::to_string(rank).c_str(), 1);
    ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
    ::setenv("LOCAL_WORLD_SIZE", std::to_string(world).c_str(), 1);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const std::string& word : command) argv.push_back(const_cast<char*>(word.c_str()));
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    std::fprintf(stderr, "launch: cannot run %s: %s\n", binary.c_str(), std::strerror(errno));
    ::_exit(127);
}

int exit_status_of(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}

void run_launch(const LaunchArgs& args) {
    if (args.processes < 1) throw UserError("launch: -n " + std::to_string(args.processes) + " must be at least 1");
    if (args.command.empty())
        throw UserError("launch: give the command after --, e.g. `onestep launch -n 2 -- train flow --config "
                        "configs/toy2d/flow.yaml`");
    if (args.command.front() != "train")
        throw UserError("launch: only `train` runs on several processes, not '" + args.command.front() + "'");
    if (args.master_port < 0 || args.master_port > 65535)
        throw UserError("launch: --master-port " + std::to_string(args.master_port) + " is not a port (0: a free one)");
    int port = args.master_port == 0 ? free_local_port() : args.master_port;
    std::string binary = std::filesystem::read_symlink("/proc/self/exe").string();

    struct sigaction action {};
    action.sa_handler = remember_signal;
    sigemptyset(&action.sa_mask);
    struct sigaction old_int {}, old_term {};
    ::sigaction(SIGINT, &action, &old_int);
    ::sigaction(SIGTERM, &action, &old_term);

    std::fprintf(stderr, "launch: %d processes, rendezvous at 127.0.0.1:%d\n", args.processes, port);
    std::vector<pid_t> children;
    std::vector<int> statuses(args.processes, -1);
    for (int rank = 0; rank < args.processes; ++rank) {
        children.push_back(spawn_rank(binary, args.command, rank, args.processes, port));
        std::fprintf(stderr, "launch: rank %d pid %d\n", rank, static_cast<int>(children.back()));
    }
    std::fflush(stderr);

    auto signal_alive = [&](int signal_number) {
        for (size_t rank = 0; rank < children.size(); ++rank)
            if (statuses[rank] < 0) ::kill(children[rank], signal_number);
    };
    int running = args.processes;
    int failed_rank = -1;
    int failed_status = 0;
    int forwarded_signal = 0;
    std::chrono::steady_clock::time_point kill_deadline;
    bool stopping = false;
    while (running > 0) {
        if (g_pending_signal != 0) {
            forwarded_signal = g_pending_signal;
            g_pending_signal = 0;
            signal_alive(forwarded_signal);
        }
        int status = 0;
        pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            for (size_t rank = 0; rank < children.size(); ++rank) {
                if (children[rank] != pid) continue;
                statuses[rank] = exit_status_of(status);
                --running;
                if (statuses[rank] != 0 && failed_rank < 0 && forwarded_signal == 0) {
                    failed_rank = static_cast<int>(rank);
                    failed_status = statuses[rank];
                    if (running > 0) {
                        std::fprintf(stderr, "launch: rank %zu exited with status %d; stopping the others\n", rank,
                                     failed_status);
                        signal_alive(SIGTERM);
                        stopping = true;
                        kill_deadline = std::chrono::steady_clock::now() +
                                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                            std::chrono::duration<double>(kStopGraceSeconds));
                    }
                }
            }
            continue;
        }
        if (stopping && std::chrono::steady_clock::now() > kill_deadline) {
            signal_alive(SIGKILL);
            stopping = false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);

    if (failed_rank >= 0)
        throw UserError("launch: rank " + std::to_string(failed_rank) + " of " + std::to_string(args.processes) +
                        " failed (exit status " + std::to_string(failed_status) + "); all ranks were stopped");
    for (int rank = 0; rank < args.processes; ++rank) {
        if (statuses[rank] == 0) continue;
        if (forwarded_signal != 0)
            throw Interrupted("launch: stopped by signal " + std::to_string(forwarded_signal) +
                              " (forwarded to every rank)");
        throw UserError("launch: rank " + std::to_string(rank) + " exited with status " + std::to_string(statuses[rank]));
    }
}

}  // namespace

void add_launch_command(CLI::App& app) {
    auto args = std::make_shared<LaunchArgs>();
    CLI::App* command = app.add_subcommand(
        "launch", "run `train` on N local processes (data-parallel): onestep launch -n 2 -- train flow --config ...");
    command->add_option("-n,--processes", args->processes, "processes (ranks) to start")->capture_default_str();
    command->add_option("--master-port", args->master_port, "rendezvous port on 127.0.0.1 (0: any free port)")
        ->capture_default_str();
    command->add_option("command", args->command, "the command each rank runs, after --: train METHOD [options]")
        ->required();
    command->callback([args]() { run_launch(*args); });
}

}  // namespace onestep::cli
