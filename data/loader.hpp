// The training loader: shuffles from the run's seed (one permutation per epoch, a pure function
// of seed and epoch), batches, converts with to_model_input, and prefetches on a background
// thread. Its position (epoch, batch) is saved in checkpoints, so a resumed run sees exactly
// the batches an unbroken run would have seen.
//
//   onestep::Loader loader(data, 64, /*seed=*/1, /*image_size=*/32);
//   onestep::Batch b = loader.next();      // b.x float [64,1,32,32], b.y int64 [64]
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>

#include "data/dataset.hpp"

namespace onestep {

struct Batch {
    at::Tensor x;
    at::Tensor y;
    at::Tensor targets;   // what self-sourced data trains towards (separators: stems [B, K, C, T])
    at::Tensor noise;     // teacher pairs: the noise each x was generated from
};

struct LoaderPosition {
    int64_t epoch = 0;
    int64_t batch = 0;   // index of the next batch within the epoch
};

class Loader {
  public:
    // Every epoch drops the last incomplete global batch. With world > 1 each rank takes its
    // own contiguous slice (batch_size rows) of every global batch of batch_size*world rows.
    Loader(std::shared_ptr<const Dataset> dataset, int64_t batch_size, uint64_t seed,
           int64_t image_size, int prefetch = 2, int rank = 0, int world = 1);
    ~Loader();
    Loader(const Loader&) = delete;
    Loader& operator=(const Loader&) = delete;

    Batch next();
    LoaderPosition position() const;    // where the next call to next() reads from
    void seek(LoaderPosition position); // drops prefetched batches, restarts there
    int64_t batches_per_epoch() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace onestep
