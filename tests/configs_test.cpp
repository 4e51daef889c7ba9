// Every shipped config resolves against its method's declared options (so each runs as shipped).
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

#include "core/files.hpp"
#include "core/registry.hpp"
#include "core/trainer.hpp"

namespace fs = std::filesystem;
using namespace onestep;

TEST_CASE("every shipped config resolves against its method's options", "[unit]") {
    register_builtin_methods();
    int checked = 0;
    const fs::path configs = fs::path(ONESTEP_SOURCE_DIR) / "configs";
    for (const std::string& relative : list_files_recursive(configs.string())) {
        const fs::path path = configs / relative;
        if (path.extension() != ".yaml") continue;
        // configs/<dataset>/<method>[-variant].yaml (the longest registered prefix: "score-mismatch-quick");
        // configs/stems/<network>[-variant].yaml are separators, configs/stems/flow-separator[-variant].yaml flow separators
        std::string method = path.stem().string();
        std::set<std::string> names;
        for (const MethodInfo* info : registered_methods()) names.insert(info->name);
        while (!names.count(method) && method.find('-') != std::string::npos) method = method.substr(0, method.rfind('-'));
        if (path.parent_path().filename() == "stems") {
#if !ONESTEP_WITH_AUDIO
            continue;   // the separator is part of the audio build
#endif
            if (!names.count(method)) method = "separator";
        }
        INFO(path.string());
        const MethodInfo& info = find_method(method);
        CHECK_NOTHROW(resolve_config(training_options(info), path.string(), {}));
        ++checked;
    }
    CHECK(checked >= 5);
}
