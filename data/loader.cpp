// The training loader: batch (epoch, b) is a pure function of the seed, so prefetching,
// resuming and sharding never change which rows a step sees.
#include "data/loader.hpp"

#include <torch/torch.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.hpp"
#include "data/random_streams.hpp"

namespace onestep {

namespace {

using data_sources::splitmix64;
using data_sources::uniform_below;

// Fisher-Yates over a generator seeded from (seed, epoch) only.
std::vector<int64_t> epoch_permutation(uint64_t seed, int64_t epoch, int64_t count) {
    std::mt19937_64 engine(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(epoch)));
    std::vector<int64_t> order(static_cast<size_t>(count));
    for (int64_t index = 0; index < count; ++index) order[index] = index;
    for (int64_t index = count - 1; index > 0; --index) {
        const auto other =
            static_cast<int64_t>(uniform_below(engine, static_cast<uint64_t>(index) + 1));
        std::swap(order[index], order[other]);
    }
    return order;
}

LoaderPosition advance(LoaderPosition position, int64_t batches_per_epoch) {
    if (++position.batch >= batches_per_epoch) {
        position.batch = 0;
        ++position.epoch;
    }
    return position;
}

}   // namespace

struct Loader::Impl {
    std::shared_ptr<const Dataset> dataset;
    int64_t batch_size = 0;
    uint64_t seed = 0;
    int64_t image_size = 0;
    int prefetch = 0;
    int rank = 0;
    int world = 1;
    int64_t batches_per_epoch = 0;

    // Used by whichever thread makes batches: the worker, or next() when prefetch is 0.
    int64_t permutation_epoch = -1;
    std::vector<int64_t> permutation;

    mutable std::mutex mutex;
    std::condition_variable changed;
    struct Item {
        Batch batch;
        std::exception_ptr error;
    };
    std::deque<Item> queue;         // batches made ahead, in order from `next_position`
    LoaderPosition next_position;   // what next() returns next
    std::exception_ptr failure;     // a batch that could not be made; rethrown until seek()
    bool stopping = false;
    std::thread worker;

    Batch make_batch(LoaderPosition position) {
        if (permutation_epoch != position.epoch) {
            permutation = epoch_permutation(seed, position.epoch, dataset->size());
            permutation_epoch = position.epoch;
        }
        // Rank r takes rows [r*B, (r+1)*B) of the global batch of B*world rows.
        const int64_t start = (position.batch * world + rank) * batch_size;
        auto rows =
            torch::from_blob(permutation.data() + start, {batch_size}, torch::kInt64).clone();
        Batch batch;
        batch.x = to_model_input(*dataset, dataset->x.index_select(0, rows), image_size);
        batch.y = dataset->y.index_select(0, rows);
        return batch;
    }

    // Makes batches from POSITION on, staying at most `prefetch` batches ahead of next().
    void run_worker(LoaderPosition position) {
        while (true) {
            {
                std::unique_lock<std::mutex> lock(mutex);
                changed.wait(lock,
                             [&] { return stopping || static_cast<int>(queue.size()) < prefetch; });
                if (stopping) return;
            }
            Item item;
            try {
                item.batch = make_batch(position);
            } catch (...) {
                item.error = std::current_exception();
            }
            std::lock_guard<std::mutex> lock(mutex);
            if (stopping) return;
            const bool failed = static_cast<bool>(item.error);
            queue.push_back(std::move(item));
            position = advance(position, batches_per_epoch);
            changed.notify_all();
            if (failed) return;   // the same batch would fail again; next() rethrows
        }
    }

    void start() {
        if (prefetch <= 0) return;
        stopping = false;
        worker = std::thread([this, position = next_position] { run_worker(position); });
    }

    void stop() {
        {
            std::lock_guard<std::mutex> lock(mutex);
            stopping = true;
        }
        changed.notify_all();
        if (worker.joinable()) worker.join();
        queue.clear();
    }
};

Loader::Loader(std::shared_ptr<const Dataset> dataset, int64_t batch_size, uint64_t seed,
               int64_t image_size, int prefetch, int rank, int world)
    : impl_(std::make_unique<Impl>()) {
    TORCH_CHECK(dataset != nullptr && dataset->x.defined() && dataset->y.defined(),
                "Loader needs a loaded dataset");
    TORCH_CHECK(world >= 1 && rank >= 0 && rank < world, "Loader: rank ", rank,
                " is outside world size ", world);
    if (batch_size < 1) {
        throw UserError("batch size is " + std::to_string(batch_size) + "; it must be at least 1");
    }
    if (prefetch < 0) {
        throw UserError("prefetch is " + std::to_string(prefetch) +
                        "; it must be 0 (load on the training thread) or more");
    }
    const int64_t global_batch = batch_size * world;
    if (dataset->size() < global_batch) {
        throw UserError("dataset '" + dataset->name + "' has " + std::to_string(dataset->size()) +
                        " rows, fewer than one global batch of " + std::to_string(global_batch) +
                        " (batch size " + std::to_string(batch_size) + " x " +
                        std::to_string(world) + " processes); use a smaller batch size");
    }
    impl_->dataset = std::move(dataset);
    impl_->batch_size = batch_size;
    impl_->seed = seed;
    impl_->image_size = image_size;
    impl_->prefetch = prefetch;
    impl_->rank = rank;
    impl_->world = world;
    impl_->batches_per_epoch = impl_->dataset->size() / global_batch;
    impl_->start();
}

Loader::~Loader() { impl_->stop(); }

Batch Loader::next() {
    Impl& impl = *impl_;
    if (impl.prefetch <= 0) {
        if (impl.failure) std::rethrow_exception(impl.failure);
        Batch batch;
        try {
            batch = impl.make_batch(impl.next_position);
        } catch (...) {
            impl.failure = std::current_exception();
            throw;
        }
        std::lock_guard<std::mutex> lock(impl.mutex);
        impl.next_position = advance(impl.next_position, impl.batches_per_epoch);
        return batch;
    }

    std::unique_lock<std::mutex> lock(impl.mutex);
    if (impl.failure) std::rethrow_exception(impl.failure);
    impl.changed.wait(lock, [&] { return !impl.queue.empty(); });
    Impl::Item item = std::move(impl.queue.front());
    impl.queue.pop_front();
    if (item.error) {
        impl.failure = item.error;
        std::rethrow_exception(item.error);
    }
    impl.next_position = advance(impl.next_position, impl.batches_per_epoch);
    impl.changed.notify_all();
    return std::move(item.batch);
}

LoaderPosition Loader::position() const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->next_position;
}

void Loader::seek(LoaderPosition position) {
    if (position.epoch < 0 || position.batch < 0 || position.batch > impl_->batches_per_epoch) {
        throw UserError("data position (epoch " + std::to_string(position.epoch) + ", batch " +
                        std::to_string(position.batch) + ") is outside this loader's " +
                        std::to_string(impl_->batches_per_epoch) +
                        " batches per epoch; was it saved with another batch size or dataset?");
    }
    if (position.batch == impl_->batches_per_epoch) position = {position.epoch + 1, 0};
    impl_->stop();
    impl_->failure = nullptr;
    impl_->next_position = position;
    impl_->start();
}

int64_t Loader::batches_per_epoch() const { return impl_->batches_per_epoch; }

}   // namespace onestep
