// The process group of a data-parallel run: torchrun's environment variables, c10d's TCPStore
// rendezvous and its Gloo (CPU) or NCCL (CUDA) collectives, behind one small interface.
//
//   DistributedEnv env = distributed_env_from_environment();   // WORLD_SIZE unset: world 1
//   auto group = ProcessGroup::create(env, device, std::chrono::seconds(60));
//   group->all_reduce_sum({grads});   // in place on every rank
//   if (group->rank() == 0) save();  group->barrier();
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace onestep {

// What a launcher (torchrun, `onestep launch`, a SLURM wrapper) tells each process.
struct DistributedEnv {
    int rank = 0;               // RANK
    int world_size = 1;         // WORLD_SIZE
    int local_rank = 0;         // LOCAL_RANK: the device index on its machine
    int local_world_size = 1;   // LOCAL_WORLD_SIZE: processes sharing this machine's cores
    std::string master_addr;    // MASTER_ADDR: where rank 0 serves the rendezvous store
    int master_port = 0;        // MASTER_PORT
};

// Reads the variables above; WORLD_SIZE unset or 1 gives a single process and needs none of the
// others. A malformed or inconsistent value is a UserError naming the variable.
DistributedEnv distributed_env_from_environment();

// A c10d process group, or nothing at all for a single process (every call is then a no-op).
// Collective failures (a peer died, the timeout passed) become UserError naming this rank.
class ProcessGroup {
  public:
    // World size 1: no store, no sockets. Otherwise rank 0 serves a TCPStore on MASTER_PORT,
    // every rank connects within TIMEOUT, and collectives time out after TIMEOUT as well.
    static std::unique_ptr<ProcessGroup> create(const DistributedEnv& env, const c10::Device& device,
                                                std::chrono::milliseconds timeout);
    ~ProcessGroup();
    ProcessGroup(const ProcessGroup&) = delete;
    ProcessGroup& operator=(const ProcessGroup&) = delete;

    int rank() const;
    int world_size() const;
    bool is_main() const { return rank() == 0; }
    const std::string& backend_name() const;   // "gloo", "nccl" or "none"

    // Sums each tensor over the ranks, in place (tensors must be contiguous); all are started
    // before any is waited for, so several buckets overlap.
    void all_reduce_sum(const std::vector<at::Tensor>& tensors);
    // Copies ROOT's tensors into every rank's, in place (any shapes and dtypes: flattened into
    // one buffer per dtype).
    void broadcast(const std::vector<at::Tensor>& tensors, int root = 0);
    // Every rank's TENSOR (same shape on all), in rank order.
    std::vector<at::Tensor> all_gather(const at::Tensor& tensor);
    void barrier();

  private:
    struct Impl;
    explicit ProcessGroup(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace onestep
