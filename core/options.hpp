// Options declared once (name, type, default, bounds, help) and the Config resolved from them:
// YAML files, `--set key=value` overrides, `--help` text and validation all come from here.
//
//   OptionTable table;
//   table.add_int("steps", 1000, 1, 100000000, "optimizer steps to run");
//   table.add_float("optim.lr", 2e-4, 0.0, 1.0, "peak learning rate");
//   Config config = resolve_config(table, "configs/fmnist/flow.yaml", {"optim.lr=1e-3"});
//   double lr = config.get_float("optim.lr");
#pragma once
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace onestep {

enum class OptionType { Int, Float, Bool, String, Choice, IntList, FloatList };

using OptionValue =
    std::variant<int64_t, double, bool, std::string, std::vector<int64_t>, std::vector<double>>;

struct OptionSpec {
    std::string key;                    // dotted, e.g. "optim.lr"
    OptionType type = OptionType::Int;
    OptionValue default_value;
    double min = -std::numeric_limits<double>::infinity();   // bounds for numbers and list items
    double max = std::numeric_limits<double>::infinity();
    std::vector<std::string> choices;   // OptionType::Choice
    std::string help;
};

class OptionTable {
  public:
    OptionTable& add_int(const std::string& key, int64_t value, double min, double max, const std::string& help);
    OptionTable& add_float(const std::string& key, double value, double min, double max, const std::string& help);
    OptionTable& add_bool(const std::string& key, bool value, const std::string& help);
    OptionTable& add_string(const std::string& key, const std::string& value, const std::string& help);
    OptionTable& add_choice(const std::string& key, const std::string& value,
                            const std::vector<std::string>& choices, const std::string& help);
    OptionTable& add_int_list(const std::string& key, const std::vector<int64_t>& value, double min,
                              double max, const std::string& help);
    OptionTable& add_float_list(const std::string& key, const std::vector<double>& value, double min,
                                double max, const std::string& help);
    // Adds every option of OTHER; a key declared twice is a programming error.
    OptionTable& merge(const OptionTable& other);

    const OptionSpec* find(const std::string& key) const;
    const std::vector<OptionSpec>& specs() const { return specs_; }
    // The known key closest to KEY by edit distance (empty if none is close).
    std::string closest_key(const std::string& key) const;
    // Help text: one block per option with type, default, bounds and meaning.
    std::string help_text() const;

  private:
    OptionTable& add(OptionSpec spec);
    std::vector<OptionSpec> specs_;
};

class Config {
  public:
    Config() = default;
    explicit Config(std::map<std::string, OptionValue> values) : values_(std::move(values)) {}

    int64_t get_int(const std::string& key) const;
    double get_float(const std::string& key) const;
    bool get_bool(const std::string& key) const;
    std::string get_string(const std::string& key) const;   // also Choice
    std::vector<int64_t> get_int_list(const std::string& key) const;
    std::vector<double> get_float_list(const std::string& key) const;
    bool has(const std::string& key) const { return values_.count(key) > 0; }
    const std::map<std::string, OptionValue>& values() const { return values_; }
    void set(const std::string& key, OptionValue value) { values_[key] = std::move(value); }

    // Nested YAML (dotted keys become maps), keys in sorted order; parses back to the same Config.
    std::string to_yaml() const;

  private:
    const OptionValue& at(const std::string& key) const;
    std::map<std::string, OptionValue> values_;
};

// Defaults from TABLE, then the YAML file (if not empty), then each "key=value" override in order.
// Every problem is a UserError naming the file (and line) or the override, the key, and the
// accepted type or range, suggesting the closest known key for unknown ones.
Config resolve_config(const OptionTable& table, const std::string& yaml_path,
                      const std::vector<std::string>& overrides);

// As above, but starting from the values of BASE (e.g. a resumed run's config) instead of defaults.
Config resolve_config_from(const OptionTable& table, const Config& base, const std::string& yaml_path,
                           const std::vector<std::string>& overrides);

// Parses a YAML text (the resolved config stored in a checkpoint) against TABLE. SOURCE names it in errors.
Config config_from_yaml_text(const OptionTable& table, const std::string& yaml_text, const std::string& source);

// "a,b,,c" -> {"a", "b", "c"}: the items of a comma-separated command-line list, empty ones
// dropped (KEEP_EMPTY keeps them, for callers that report them).
std::vector<std::string> split_list(const std::string& text, bool keep_empty = false);

// Text of a value as a user would write it: 0.0002, true, [1, 2, 2], fashion-mnist.
std::string format_value(const OptionValue& value);

}  // namespace onestep
