// Every c10d call of the project lives here, so a libtorch version difference (1.13's
// ProcessGroup against 2.x's Backend, TCPStoreOptions) touches this one file.
#include "core/distributed.hpp"

#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>
#include <torch/version.h>

#if defined(ONESTEP_WITH_GLOO)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(ONESTEP_WITH_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "core/error.hpp"

namespace onestep {

namespace {

// libtorch 2 moved the collectives of a concrete group onto c10d::Backend.
#if TORCH_VERSION_MAJOR >= 2
using C10dBackend = c10d::Backend;
#else
using C10dBackend = c10d::ProcessGroup;
#endif

int env_int(const char* name, int fallback, int minimum) {
    const char* text = std::getenv(name);
    if (text == nullptr || *text == '\0') return fallback;
    char* end = nullptr;
    errno = 0;
    long value = std::strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < minimum || value > 1000000)
        throw UserError(std::string("environment variable ") + name + "='" + text +
                        "' is not a whole number of at least " + std::to_string(minimum));
    return static_cast<int>(value);
}

std::string env_string(const char* name) {
    const char* text = std::getenv(name);
    return text == nullptr ? std::string() : std::string(text);
}

std::string seconds_text(std::chrono::milliseconds timeout) {
    char text[32];
    std::snprintf(text, sizeof text, "%g s", static_cast<double>(timeout.count()) / 1000.0);
    return text;
}

}  // namespace

DistributedEnv distributed_env_from_environment() {
    DistributedEnv env;
    env.world_size = env_int("WORLD_SIZE", 1, 1);
    if (env.world_size == 1) return env;
    if (std::getenv("RANK") == nullptr)
        throw UserError("environment variable RANK is not set, but WORLD_SIZE=" + std::to_string(env.world_size) +
                        " is; a launcher sets both (onestep launch, torchrun)");
    env.rank = env_int("RANK", 0, 0);
    if (env.rank >= env.world_size)
        throw UserError("environment variable RANK=" + std::to_string(env.rank) + " is outside WORLD_SIZE=" +
                        std::to_string(env.world_size));
    env.local_rank = env_int("LOCAL_RANK", 0, 0);
    env.local_world_size = env_int("LOCAL_WORLD_SIZE", 1, 1);
    env.master_addr = env_string("MASTER_ADDR");
    if (env.master_addr.empty())
        throw UserError("environment variable MASTER_ADDR is not set; with WORLD_SIZE=" +
                        std::to_string(env.world_size) + " it names the machine of rank 0");
    if (std::getenv("MASTER_PORT") == nullptr)
        throw UserError("environment variable MASTER_PORT is not set; with WORLD_SIZE=" +
                        std::to_string(env.world_size) + " it names rank 0's rendezvous port");
    env.master_port = env_int("MASTER_PORT", 0, 1);
    if (env.master_port > 65535)
        throw UserError("environment variable MASTER_PORT=" + std::to_string(env.master_port) + " is not a port");
    return env;
}

struct ProcessGroup::Impl {
    DistributedEnv env;
    std::chrono::milliseconds timeout{0};
    std::string backend_name = "none";
    c10::intrusive_ptr<c10d::Store> store;
    c10::intrusive_ptr<C10dBackend> backend;

    std::string where() const {
        return "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size);
    }

    // Runs a collective; a failure (a peer that died, the timeout) becomes a one-line UserError.
    template <typename Action>
    void guarded(const char* what, Action&& action) {
        try {
            action();
        } catch (const UserError&) {
            throw;
        } catch (const c10::Error& error) {
            fail(what, error.what_without_backtrace());
        } catch (const std::exception& error) {
            fail(what, error.what());
        }
    }

    [[noreturn]] void fail(const char* what, const std::string& detail) const {
        std::string first_line = detail.substr(0, detail.find('\n'));
        throw UserError(where() + ": " + what + " failed (another process stopped, or nothing arrived within " +
                        "dist.timeout_s = " + seconds_text(timeout) + "): " + first_line);
    }
};

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProcessGroup::~ProcessGroup() = default;

std::unique_ptr<ProcessGroup> ProcessGroup::create(const DistributedEnv& env, const c10::Device& device,
                                                   std::chrono::milliseconds timeout) {
    auto impl = std::make_unique<Impl>();
    impl->env = env;
    impl->timeout = timeout;
    if (env.world_size <= 1) return std::unique_ptr<ProcessGroup>(new ProcessGroup(std::move(impl)));

    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(env.master_port);
    store_options.isServer = env.rank == 0;
    store_options.numWorkers = static_cast<std::size_t>(env.world_size);
    store_options.waitWorkers = true;
    store_options.timeout = timeout;
    try {
        impl->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
    } catch (const std::exception& error) {
        const c10::Error* c10_error = dynamic_cast<const c10::Error*>(&error);
        std::string detail = c10_error ? c10_error->what_without_backtrace() : error.what();
        detail = detail.substr(0, detail.find('\n'));
        std::string address = env.master_addr + ":" + std::to_string(env.master_port);
        if (env.rank == 0)
            throw UserError(impl->where() + ": the rendezvous store on MASTER_PORT=" +
                            std::to_string(env.master_port) + " did not gather WORLD_SIZE=" +
                            std::to_string(env.world_size) + " processes within dist.timeout_s (" +
                            seconds_text(timeout) + "; is the port in use?): " + detail);
        throw UserError(impl->where() + ": cannot reach the rendezvous store at MASTER_ADDR:MASTER_PORT=" + address +
                        " within dist.timeout_s (" + seconds_text(timeout) + "): " + detail);
    }

    impl->guarded("joining the process group", [&] {
#if defined(ONESTEP_WITH_NCCL)
        if (device.is_cuda()) {
            auto options = c10d::ProcessGroupNCCL::Options::create();
            options->timeout = timeout;
            impl->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, env.rank, env.world_size, options);
            impl->backend_name = "nccl";
            return;
        }
#endif
        if (device.is_cuda())
            throw UserError("this build has no NCCL process group; train several processes with --device cpu");
#if defined(ONESTEP_WITH_GLOO)
        auto options = c10d::ProcessGroupGloo::Options::create(timeout);
        // Loopback rendezvous means one machine: keep Gloo on loopback too, whatever the
        // host name resolves to. GLOO_SOCKET_IFNAME picks the interface as in PyTorch.
        std::string interface = env_string("GLOO_SOCKET_IFNAME");
        if (!interface.empty())
            options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
        else if (env.master_addr == "localhost" || env.master_addr.rfind("127.", 0) == 0)
            options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
        else
            options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        options->threads = 2;
        impl->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world_size, options);
        impl->backend_name = "gloo";
#else
        throw UserError("this build has no Gloo process group (the Gloo headers were not found); "
                        "WORLD_SIZE > 1 needs it on the CPU");
#endif
    });
    return std::unique_ptr<ProcessGroup>(new ProcessGroup(std::move(impl)));
}

int ProcessGroup::rank() const { return impl_->env.rank; }
int ProcessGroup::world_size() const { return impl_->env.world_size; }
const std::string& ProcessGroup::backend_name() const { return impl_->backend_name; }

void ProcessGroup::all_reduce_sum(const std::vector<at::Tensor>& tensors) {
    if (!impl_->backend || tensors.empty()) return;
    impl_->guarded("all-reduce", [&] {
        std::vector<c10::intrusive_ptr<c10d::Work>> works;
        for (const at::Tensor& tensor : tensors) {
            TORCH_CHECK(tensor.is_contiguous(), "all_reduce_sum needs contiguous tensors");
            std::vector<at::Tensor> one{tensor};
            works.push_back(impl_->backend->allreduce(one));
        }
        for (auto& work : works) work->wait();
    });
}

void ProcessGroup::broadcast(const std::vector<at::Tensor>& tensors, int root) {
    if (!impl_->backend || tensors.empty()) return;
    torch::NoGradGuard no_grad;
    // One buffer per (dtype, device); Gloo has no bool, so bools travel as bytes.
    std::map<std::pair<int, std::string>, std::vector<at::Tensor>> groups;
    for (const at::Tensor& tensor : tensors)
        groups[{static_cast<int>(tensor.scalar_type()), tensor.device().str()}].push_back(tensor);
    impl_->guarded("broadcast", [&] {
        for (auto& [key, members] : groups) {
            std::vector<at::Tensor> pieces;
            for (const at::Tensor& tensor : members) {
                at::Tensor flat = tensor.detach().reshape({-1});
                pieces.push_back(flat.scalar_type() == at::kBool ? flat.to(at::kByte) : flat);
            }
            std::vector<at::Tensor> buffer{torch::cat(pieces)};
            c10d::BroadcastOptions options;
            options.rootRank = root;
            impl_->backend->broadcast(buffer, options)->wait();
            int64_t offset = 0;
            for (const at::Tensor& tensor : members) {
                int64_t count = tensor.numel();
                at::Tensor slice = buffer[0].slice(0, offset, offset + count).view(tensor.sizes());
                tensor.detach().copy_(slice.to(tensor.scalar_type()));
                offset += count;
            }
        }
    });
}

std::vector<at::Tensor> ProcessGroup::all_gather(const at::Tensor& tensor) {
    if (!impl_->backend) return {tensor.clone()};
    std::vector<std::vector<at::Tensor>> outputs(1);
    for (int index = 0; index < world_size(); ++index) outputs[0].push_back(torch::empty_like(tensor));
    std::vector<at::Tensor> inputs{tensor.contiguous()};
    impl_->guarded("all-gather", [&] { impl_->backend->allgather(outputs, inputs)->wait(); });
    return outputs[0];
}

void ProcessGroup::barrier() {
    if (!impl_->backend) return;
    impl_->guarded("barrier", [&] { impl_->backend->barrier()->wait(); });
}

}  // namespace onestep
