// Step-pure batches of teacher pairs.
#include "distill/pairs_source.hpp"

#include <torch/torch.h>

#include <random>

#include "core/error.hpp"
#include "data/random_streams.hpp"

namespace onestep {

PairsSource::PairsSource(TeacherPairs pairs, int64_t batch_size, uint64_t seed)
    : pairs_(std::move(pairs)), batch_size_(batch_size), seed_(seed) {}

DataShape PairsSource::shape() const {
    DataShape shape;
    shape.sample_shape.assign(pairs_.z.sizes().begin() + 1, pairs_.z.sizes().end());
    shape.num_classes = pairs_.num_classes;
    shape.class_names = pairs_.class_names;
    return shape;
}

Batch PairsSource::batch(int64_t step, int rank, int world) {
    const int64_t n = pairs_.z.size(0);
    std::vector<int64_t> rows(static_cast<size_t>(batch_size_));
    for (int64_t j = 0; j < batch_size_; ++j) {
        int64_t global = (step * world + rank) * batch_size_ + j;
        rows[static_cast<size_t>(j)] = permutation(global / n)[static_cast<size_t>(global % n)];
    }
    at::Tensor index = torch::tensor(rows, torch::kLong);
    Batch batch;
    batch.x = pairs_.x.index_select(0, index).to(torch::kFloat);
    batch.noise = pairs_.z.index_select(0, index).to(torch::kFloat);
    batch.y = pairs_.y.index_select(0, index);
    return batch;
}

const std::vector<int64_t>& PairsSource::permutation(int64_t epoch) {
    if (epoch != epoch_) {
        const int64_t n = pairs_.z.size(0);
        order_.resize(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) order_[static_cast<size_t>(i)] = i;
        std::mt19937_64 engine(data_sources::splitmix64(seed_ ^ data_sources::splitmix64(static_cast<uint64_t>(epoch))));
        for (int64_t i = n - 1; i > 0; --i)   // Fisher-Yates
            std::swap(order_[static_cast<size_t>(i)], order_[data_sources::uniform_below(engine, static_cast<uint64_t>(i + 1))]);
        epoch_ = epoch;
    }
    return order_;
}

TeacherPairs read_training_pairs(const std::string& path, const std::string& key, int64_t batch_size) {
    if (path.empty())
        throw UserError(key + " is not set: make pairs with `onestep sample --ckpt TEACHER --pairs N --out FILE`, then "
                        "pass --set " + key + "=FILE");
    TeacherPairs pairs = read_teacher_pairs(path);
    if (pairs.z.size(0) < batch_size)
        throw UserError(path + " holds " + std::to_string(pairs.z.size(0)) + " pairs, fewer than batch_size " +
                        std::to_string(batch_size));
    return pairs;
}

}  // namespace onestep
