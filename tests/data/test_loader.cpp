// The training loader: every epoch is a permutation fixed by (seed, epoch), prefetching changes
// nothing, seek() resumes bit for bit, ranks get disjoint shards, worker errors reach next().
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <set>

#include "data/dataset.hpp"
#include "data/loader.hpp"
#include "data_test_helpers.hpp"

using onestep::Batch;
using onestep::Loader;
using onestep::LoaderPosition;
using onestep::data_test::user_error_message;

namespace {

// Point I is (I, -I), so a batch shows which rows it holds.
std::shared_ptr<const onestep::Dataset> indexed_points(int64_t count) {
    auto data = std::make_shared<onestep::Dataset>();
    data->name = "indexed";
    data->is_image = false;
    auto index = torch::arange(count, torch::kFloat32);
    data->x = torch::stack({index, -index}, 1);
    data->y = torch::arange(count, torch::kInt64).remainder(5);
    data->num_classes = 5;
    data->class_names = {"a", "b", "c", "d", "e"};
    return data;
}

// 28x28 uint8 images with varied content, for the path through to_model_input.
std::shared_ptr<const onestep::Dataset> small_images(int64_t count) {
    auto data = std::make_shared<onestep::Dataset>();
    data->name = "small-images";
    data->x = torch::arange(count * 784, torch::kInt64)
                  .remainder(251)
                  .to(torch::kUInt8)
                  .reshape({count, 1, 28, 28});
    data->y = torch::arange(count, torch::kInt64).remainder(10);
    data->num_classes = 10;
    for (int label = 0; label < 10; ++label) data->class_names.push_back(std::to_string(label));
    return data;
}

std::vector<int64_t> rows_of(const Batch& batch) {
    auto rows = batch.x.select(1, 0).to(torch::kInt64);
    return std::vector<int64_t>(rows.data_ptr<int64_t>(), rows.data_ptr<int64_t>() + rows.numel());
}

std::vector<Batch> take(Loader& loader, int count) {
    std::vector<Batch> batches;
    for (int index = 0; index < count; ++index) batches.push_back(loader.next());
    return batches;
}

void check_same(const std::vector<Batch>& first, const std::vector<Batch>& second) {
    REQUIRE(first.size() == second.size());
    for (size_t index = 0; index < first.size(); ++index) {
        INFO("batch " << index);
        CHECK(torch::equal(first[index].x, second[index].x));
        CHECK(torch::equal(first[index].y, second[index].y));
    }
}

}   // namespace

TEST_CASE("each epoch is a fresh permutation fixed by seed and epoch", "[unit]") {
    auto data = indexed_points(103);
    Loader loader(data, 10, 7, 32);
    CHECK(loader.batches_per_epoch() == 10);   // the last 3 rows are dropped
    CHECK(loader.position().epoch == 0);
    CHECK(loader.position().batch == 0);

    std::vector<std::vector<int64_t>> epochs(2);
    for (int64_t epoch = 0; epoch < 2; ++epoch) {
        for (int64_t batch = 0; batch < 10; ++batch) {
            CHECK(loader.position().epoch == epoch);
            CHECK(loader.position().batch == batch);
            Batch next = loader.next();
            REQUIRE(next.x.sizes() == torch::IntArrayRef({10, 2}));
            CHECK(torch::equal(next.y, next.x.select(1, 0).to(torch::kInt64).remainder(5)));
            auto rows = rows_of(next);
            epochs[epoch].insert(epochs[epoch].end(), rows.begin(), rows.end());
        }
    }
    CHECK(loader.position().epoch == 2);
    CHECK(loader.position().batch == 0);
    for (const auto& rows : epochs) {
        std::set<int64_t> distinct(rows.begin(), rows.end());
        CHECK(distinct.size() == 100);
        CHECK(*distinct.rbegin() <= 102);
    }
    CHECK(epochs[0] != epochs[1]);

    Loader same_seed(data, 10, 7, 32);
    Loader other_seed(data, 10, 8, 32);
    auto first = take(same_seed, 10);
    CHECK(rows_of(first[0]) == std::vector<int64_t>(epochs[0].begin(), epochs[0].begin() + 10));
    CHECK(rows_of(other_seed.next()) != rows_of(first[0]));
    // Golden rows: the shuffle must not change between builds, platforms or libtorch versions.
    CHECK(rows_of(first[0]) == std::vector<int64_t>{75, 47, 2, 11, 63, 17, 82, 12, 88, 64});
}

TEST_CASE("prefetching gives the same batches as loading on the caller's thread", "[unit]") {
    auto data = small_images(40);
    Loader synchronous(data, 8, 11, 32, 0);
    Loader prefetched(data, 8, 11, 32, 2);
    Loader deep(data, 8, 11, 32, 7);
    auto expected = take(synchronous, 12);
    REQUIRE(expected[0].x.sizes() == torch::IntArrayRef({8, 1, 32, 32}));
    CHECK(expected[0].x.min().item<float>() == -1.0f);
    check_same(expected, take(prefetched, 12));
    check_same(expected, take(deep, 12));
}

TEST_CASE("seek resumes exactly where an unbroken loader would be", "[unit]") {
    auto data = small_images(45);
    for (int prefetch : {0, 3}) {
        INFO("prefetch " << prefetch);
        Loader unbroken(data, 6, 5, 32, prefetch);   // 7 batches per epoch
        auto expected = take(unbroken, 20);

        Loader resumed(data, 6, 5, 32, prefetch);
        take(resumed, 2);   // prefetched batches must be dropped by seek
        resumed.seek({1, 4});
        CHECK(resumed.position().epoch == 1);
        CHECK(resumed.position().batch == 4);
        check_same({expected.begin() + 11, expected.end()}, take(resumed, 9));

        // Back to an earlier position, and the end of an epoch meaning the next one's start.
        resumed.seek({0, 1});
        check_same({expected.begin() + 1, expected.begin() + 4}, take(resumed, 3));
        resumed.seek({1, 7});
        CHECK(resumed.position().epoch == 2);
        CHECK(resumed.position().batch == 0);
        check_same({expected.begin() + 14, expected.begin() + 16}, take(resumed, 2));

        CHECK_THAT(user_error_message([&] {
                       resumed.seek({0, 8});
                   }),
                   Catch::Contains("outside this loader's 7 batches per epoch"));
    }
}

TEST_CASE("ranks read disjoint shards that together form the single-process batch", "[unit]") {
    auto data = indexed_points(50);
    Loader single(data, 8, 2, 32, 0);        // global batch 8
    Loader rank0(data, 4, 2, 32, 2, 0, 2);   // 2 x 4
    Loader rank1(data, 4, 2, 32, 1, 1, 2);
    CHECK(rank0.batches_per_epoch() == 6);
    CHECK(single.batches_per_epoch() == 6);
    for (int epoch = 0; epoch < 2; ++epoch) {
        std::set<int64_t> seen0;
        std::set<int64_t> seen1;
        for (int batch = 0; batch < 6; ++batch) {
            auto whole = rows_of(single.next());
            auto part0 = rows_of(rank0.next());
            auto part1 = rows_of(rank1.next());
            CHECK(std::vector<int64_t>(whole.begin(), whole.begin() + 4) == part0);
            CHECK(std::vector<int64_t>(whole.begin() + 4, whole.end()) == part1);
            seen0.insert(part0.begin(), part0.end());
            seen1.insert(part1.begin(), part1.end());
        }
        CHECK(seen0.size() == 24);
        CHECK(seen1.size() == 24);
        for (int64_t row : seen0) CHECK(seen1.count(row) == 0);
    }
}

TEST_CASE("errors while making a batch reach next(), and bad sizes are refused", "[unit]") {
    auto data = small_images(20);
    for (int prefetch : {0, 2}) {
        INFO("prefetch " << prefetch);
        Loader loader(data, 4, 1, 16, prefetch);   // 28x28 images cannot become 16x16
        CHECK_THAT(user_error_message([&] { loader.next(); }), Catch::Contains("image_size 16"));
        CHECK_THAT(user_error_message([&] { loader.next(); }), Catch::Contains("image_size 16"));
        CHECK(loader.position().batch == 0);
    }
    CHECK_THAT(user_error_message([&] { Loader too_big(data, 8, 1, 32, 2, 0, 3); }),
               Catch::Contains("fewer than one global batch of 24"));
    CHECK_THAT(user_error_message([&] { Loader zero(data, 0, 1, 32); }),
               Catch::Contains("batch size is 0"));
}
