// Data-parallel training: the launcher's variables, the c10d collectives, the equivalence of two
// processes with one holding their global batch, rank failures, and resume with another world size.
#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/checkpoint.hpp"
#include "core/distributed.hpp"
#include "core/error.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using namespace onestep;
using Catch::Matchers::Contains;

namespace {

const std::string kCli = ONESTEP_TEST_CLI;

// Sets environment variables for one scope and restores them after.
class ScopedEnv {
  public:
    ScopedEnv(std::initializer_list<std::pair<std::string, const char*>> values) {
        for (const auto& [name, value] : values) {
            const char* old = std::getenv(name.c_str());
            saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
            if (value)
                ::setenv(name.c_str(), value, 1);
            else
                ::unsetenv(name.c_str());
        }
    }
    ~ScopedEnv() {
        for (const auto& [name, value] : saved_) {
            if (value)
                ::setenv(name.c_str(), value->c_str(), 1);
            else
                ::unsetenv(name.c_str());
        }
    }

  private:
    std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    ::close(fd);
    return ntohs(address.sin_port);
}

const std::string kRegressSettings =
    " --set data.name=toy:8gaussians --set data.toy_size=4000 --set batch_size=16 --set ckpt_every=10"
    " --set keep_checkpoints=0 --set log_every=5 --set optim.lr=0.01 --set dist.timeout_s=5";

std::string launch(int processes, const std::string& train_arguments) {
    return kCli + " launch -n " + std::to_string(processes) + " --master-port 0 -- train " + train_arguments;
}

int64_t json_world_size(const std::string& state_json) {
    return nlohmann::json::parse(state_json).value("world_size", int64_t{0});
}

// The pid the launcher printed for RANK ("launch: rank R pid P"), or 0.
pid_t launched_pid(const std::string& log_path, int rank) {
    std::smatch match;
    std::string text = test::read_text(log_path);
    std::regex pattern("launch: rank " + std::to_string(rank) + " pid ([0-9]+)");
    return std::regex_search(text, match, pattern) ? static_cast<pid_t>(std::stol(match[1])) : 0;
}

double relative_difference(const at::Tensor& a, const at::Tensor& b) {
    double scale = std::max(a.norm().item<double>(), 1e-12);
    return (a - b).norm().item<double>() / scale;
}

}  // namespace

TEST_CASE("the launcher's variables: none means one process, bad ones are named", "[unit]") {
    {
        ScopedEnv env({{"WORLD_SIZE", nullptr}, {"RANK", nullptr}});
        DistributedEnv single = distributed_env_from_environment();
        CHECK(single.world_size == 1);
        CHECK(single.rank == 0);
    }
    {
        ScopedEnv env({{"WORLD_SIZE", "2"}, {"RANK", nullptr}});
        CHECK_THAT(test::user_error_message([] { distributed_env_from_environment(); }), Contains("RANK"));
    }
    {
        ScopedEnv env({{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}});
        CHECK_THAT(test::user_error_message([] { distributed_env_from_environment(); }), Contains("RANK=2"));
    }
    {
        ScopedEnv env({{"WORLD_SIZE", "two"}});
        CHECK_THAT(test::user_error_message([] { distributed_env_from_environment(); }), Contains("WORLD_SIZE"));
    }
    {
        ScopedEnv env({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", nullptr}});
        CHECK_THAT(test::user_error_message([] { distributed_env_from_environment(); }), Contains("MASTER_PORT"));
    }
    {
        ScopedEnv env({{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                       {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "29400"}});
        DistributedEnv parsed = distributed_env_from_environment();
        CHECK(parsed.world_size == 4);
        CHECK(parsed.rank == 3);
        CHECK(parsed.local_rank == 1);
        CHECK(parsed.local_world_size == 2);
        CHECK(parsed.master_addr == "10.0.0.1");
        CHECK(parsed.master_port == 29400);
    }
}

TEST_CASE("a world of one needs no store and its collectives change nothing", "[unit]") {
    auto group = ProcessGroup::create(DistributedEnv{}, c10::Device(c10::kCPU), std::chrono::seconds(1));
    CHECK(group->world_size() == 1);
    CHECK(group->is_main());
    CHECK(group->backend_name() == "none");
    at::Tensor values = torch::arange(4, torch::kFloat);
    group->all_reduce_sum({values});
    group->broadcast({values});
    group->barrier();
    CHECK(torch::equal(values, torch::arange(4, torch::kFloat)));
    auto gathered = group->all_gather(values);
    REQUIRE(gathered.size() == 1);
    CHECK(torch::equal(gathered[0], values));
}

TEST_CASE("two Gloo ranks sum, broadcast and gather over 127.0.0.1", "[integration]") {
    int port = free_port();
    std::vector<std::string> failures(2);
    std::vector<std::vector<at::Tensor>> results(2);
    auto rank_main = [&](int rank) {
        try {
            DistributedEnv env;
            env.rank = rank;
            env.world_size = 2;
            env.master_addr = "127.0.0.1";
            env.master_port = port;
            auto group = ProcessGroup::create(env, c10::Device(c10::kCPU), std::chrono::seconds(20));
            at::Tensor sum = torch::full({3}, static_cast<float>(rank + 1));
            at::Tensor twice = torch::full({2, 2}, static_cast<double>(10 * (rank + 1)), torch::kDouble);
            group->all_reduce_sum({sum, twice});
            at::Tensor weights = torch::full({2, 3}, static_cast<float>(rank));
            at::Tensor counter = torch::full({1}, static_cast<int64_t>(rank + 7), torch::kInt64);
            at::Tensor mask = torch::full({2}, rank == 0, torch::kBool);
            group->broadcast({weights, counter, mask}, 0);
            auto gathered = group->all_gather(torch::full({2}, static_cast<float>(rank)));
            group->barrier();
            results[rank] = {sum, twice, weights, counter, mask, gathered[0], gathered[1]};
        } catch (const std::exception& error) {
            failures[rank] = error.what();
        }
    };
    std::thread first(rank_main, 0), second(rank_main, 1);
    first.join();
    second.join();
    REQUIRE(failures[0] == "");
    REQUIRE(failures[1] == "");
    for (int rank = 0; rank < 2; ++rank) {
        const auto& r = results[rank];
        CHECK(torch::equal(r[0], torch::full({3}, 3.0f)));
        CHECK(torch::equal(r[1], torch::full({2, 2}, 30.0, torch::kDouble)));
        CHECK(torch::equal(r[2], torch::zeros({2, 3})));
        CHECK(r[3].item<int64_t>() == 7);
        CHECK(r[4].all().item<bool>());
        CHECK(torch::equal(r[5], torch::zeros({2})));
        CHECK(torch::equal(r[6], torch::ones({2})));
    }
}

TEST_CASE("two ranks with batch B take the same 5 SGD steps as one process with batch 2B", "[integration]") {
    test::TempDir dir;
    // Linear scaling (base batch 16, global 32: rate x2) with a 2-step gradual warmup from 0.1.
    const std::string common =
        " --set data.name=toy:8gaussians --set data.toy_size=4000 --set steps=5 --set optim.name=sgd"
        " --set optim.momentum=0 --set optim.lr=0.1 --set optim.base_batch=16 --set optim.warmup_steps=2"
        " --set optim.grad_clip=0 --set ckpt_every=5 --set log_every=1 --set dist.timeout_s=30";
    auto one = test::run_command(kCli + " train test-deterministic --threads 1 --run-dir " + (dir / "one") +
                                 " --set batch_size=32" + common);
    INFO(one.output);
    REQUIRE(one.exit_code == 0);
    CHECK_THAT(one.output, Contains("learning rate 0.2 = optim.lr 0.1 x 2 (linear scaling: global batch 32"));
    auto two = test::run_command(launch(2, "test-deterministic --run-dir " + (dir / "two") + " --set batch_size=16" +
                                           common));
    INFO(two.output);
    REQUIRE(two.exit_code == 0);
    CHECK_THAT(two.output, Contains("batch 32 = 2 processes x 16, gloo"));
    // Warmup: 0.1 -> 0.15 -> 0.2 over the first two steps.
    CHECK(test::mean_log_value(dir / "two/log.jsonl", "lr", 0, 1) == Approx(0.15));
    CHECK(test::mean_log_value(dir / "two/log.jsonl", "lr", 1, 2) == Approx(0.2));
    CHECK(test::mean_log_value(dir / "two/log.jsonl", "loss", 0, 5) ==
          Approx(test::mean_log_value(dir / "one/log.jsonl", "loss", 0, 5)).epsilon(1e-5));

    Checkpoint single = load_checkpoint(dir / "one/checkpoints/latest.ckpt");
    Checkpoint pair = load_checkpoint(dir / "two/checkpoints/latest.ckpt");
    CHECK(pair.step == 5);
    CHECK(json_world_size(pair.state_json) == 2);
    int compared = 0;
    for (const auto& [name, tensor] : single.tensors) {
        if (name.rfind("net/", 0) != 0) continue;
        INFO(name);
        REQUIRE(pair.tensors.count(name) == 1);
        CHECK(relative_difference(tensor, pair.tensors.at(name)) <= 1e-6);
        ++compared;
    }
    CHECK(compared == 8);   // net and ema: two Linear layers each

    // The comparison can fail: one process with batch 16 ends elsewhere.
    auto half = test::run_command(kCli + " train test-deterministic --threads 1 --run-dir " + (dir / "half") +
                                  " --set batch_size=16" + common + " --set optim.base_batch=0");
    REQUIRE(half.exit_code == 0);
    Checkpoint smaller = load_checkpoint(dir / "half/checkpoints/latest.ckpt");
    CHECK(relative_difference(single.tensors.at("net/net/first.weight"), smaller.tensors.at("net/net/first.weight")) >
          1e-4);
}

TEST_CASE("a killed rank stops the other within the timeout; the checkpoint resumes on 1 or 2 ranks",
          "[integration]") {
    test::TempDir dir;
    int port = free_port();
    std::string run = dir / "run";
    auto rank_command = [&](int rank) {
        return "env MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " WORLD_SIZE=2 RANK=" +
               std::to_string(rank) + " LOCAL_RANK=" + std::to_string(rank) + " LOCAL_WORLD_SIZE=2 " + kCli +
               " train test-regress --run-dir " + run + kRegressSettings +
               " --set steps=2000 --set test.sleep_ms=30 > " + (dir / ("rank" + std::to_string(rank) + ".log")) +
               " 2>&1";
    };
    pid_t rank0 = test::spawn_shell(rank_command(0));
    pid_t rank1 = test::spawn_shell(rank_command(1));
    REQUIRE(test::wait_for_file(run + "/checkpoints/step-00000010.ckpt", 60));
    ::kill(rank1, SIGKILL);
    auto killed_at = std::chrono::steady_clock::now();
    CHECK(test::wait_exit(rank1) == 128 + SIGKILL);
    int status = test::wait_exit(rank0, 30);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
    std::string output = test::read_text(dir / "rank0.log");
    INFO(output);
    CHECK(status == 2);
    CHECK(seconds < 5 + 3);   // dist.timeout_s = 5, and a closed socket is noticed sooner
    CHECK_THAT(output, Contains("error: rank 0 of 2: "));
    CHECK_THAT(output, Contains("failed (another process stopped"));

    Checkpoint saved = load_checkpoint(run + "/checkpoints/latest.ckpt");   // valid: checksum and all
    CHECK(saved.step >= 10);
    CHECK(json_world_size(saved.state_json) == 2);
    int64_t next = saved.step + 10;
    auto single = test::run_command(kCli + " train test-regress --threads 1 --resume " + run +
                                    " --set test.sleep_ms=0 --set steps=" + std::to_string(next));
    INFO(single.output);
    REQUIRE(single.exit_code == 0);
    CHECK_THAT(single.output, Contains("resuming a run of 2 process(es), global batch 32, with 1 x 16"));
    CHECK(load_checkpoint(run + "/checkpoints/latest.ckpt").step == next);
    auto pair = test::run_command(launch(2, "test-regress --resume " + run + " --set test.sleep_ms=0 --set steps=" +
                                                std::to_string(next + 10)));
    INFO(pair.output);
    REQUIRE(pair.exit_code == 0);
    CHECK(load_checkpoint(run + "/checkpoints/latest.ckpt").step == next + 10);
}

TEST_CASE("launch stops every rank when one dies, and forwards SIGTERM so all stop at one step", "[integration]") {
    test::TempDir dir;
    std::string run_args = kRegressSettings + " --set steps=2000 --set test.sleep_ms=30";
    pid_t launcher = test::spawn_shell(launch(2, "test-regress --run-dir " + (dir / "killed") + run_args) + " > " +
                                 (dir / "killed.log") + " 2>&1");
    REQUIRE(test::wait_for_file(dir / "killed/checkpoints/step-00000010.ckpt", 60));
    pid_t rank0 = launched_pid(dir / "killed.log", 0);
    pid_t rank1 = launched_pid(dir / "killed.log", 1);
    REQUIRE(rank0 > 0);
    REQUIRE(rank1 > 0);
    ::kill(rank1, SIGKILL);
    int status = test::wait_exit(launcher, 30);
    std::string output = test::read_text(dir / "killed.log");
    INFO(output);
    CHECK(status == 2);
    CHECK_THAT(output, Contains("all ranks were stopped"));
    CHECK(::kill(rank0, 0) != 0);   // gone, not orphaned
    CHECK(load_checkpoint(dir / "killed/checkpoints/latest.ckpt").step >= 10);

    launcher = test::spawn_shell(launch(2, "test-regress --run-dir " + (dir / "term") + run_args) + " > " +
                           (dir / "term.log") + " 2>&1");
    REQUIRE(test::wait_for_file(dir / "term/checkpoints/step-00000010.ckpt", 60));
    ::kill(launcher, SIGTERM);
    status = test::wait_exit(launcher, 30);
    output = test::read_text(dir / "term.log");
    INFO(output);
    CHECK(status == 130);
    CHECK_THAT(output, Contains("Resume with: onestep train test-regress --resume"));
    CHECK(load_checkpoint(dir / "term/checkpoints/latest.ckpt").step >= 10);
}

TEST_CASE("a two-rank run stopped and resumed on two ranks equals an unbroken one", "[integration]") {
    test::TempDir dir;
    std::string settings = kRegressSettings + " --set steps=20";
    auto reference = test::run_command(launch(2, "test-regress --run-dir " + (dir / "reference") + settings));
    INFO(reference.output);
    REQUIRE(reference.exit_code == 0);
    auto first = test::run_command(launch(2, "test-regress --run-dir " + (dir / "broken") + settings +
                                                 " --stop-at-step 10"));
    INFO(first.output);
    REQUIRE(first.exit_code == 0);
    auto second = test::run_command(launch(2, "test-regress --resume " + (dir / "broken")));
    INFO(second.output);
    REQUIRE(second.exit_code == 0);
    test::require_identical_checkpoints(dir / "reference/checkpoints/latest.ckpt",
                                        dir / "broken/checkpoints/latest.ckpt");
}

TEST_CASE("a non-finite loss on one rank skips the step on every rank", "[integration]") {
    test::TempDir dir;
    auto result = test::run_command(launch(2, "test-regress --run-dir " + (dir / "nan") + kRegressSettings +
                                                  " --set steps=20 --set test.nan_from_step=12 --set test.nan_steps=3"
                                                  " --set test.nan_rank=1"));
    INFO(result.output);
    REQUIRE(result.exit_code == 0);
    CHECK_THAT(result.output, Contains("step 13: non-finite loss or gradient, step skipped (1 in a row)"));
    CHECK(test::mean_log_value(dir / "nan/log.jsonl", "skipped_total", 3, 4) == 3);
    CHECK(load_checkpoint(dir / "nan/checkpoints/latest.ckpt").step == 20);
}

TEST_CASE("launch refuses what it cannot run", "[integration]") {
    auto no_command = test::run_command(kCli + " launch -n 2");
    CHECK(no_command.exit_code != 0);
    auto not_train = test::run_command(kCli + " launch -n 2 -- sample --ckpt x");
    CHECK(not_train.exit_code == 2);
    CHECK_THAT(not_train.output, Contains("only `train`"));
    auto bad_count = test::run_command(kCli + " launch -n 0 -- train test-regress");
    CHECK(bad_count.exit_code == 2);
    CHECK_THAT(bad_count.output, Contains("-n 0"));
}
