// Option declarations, config resolution (defaults -> YAML -> --set) and validation.
#include "core/options.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "core/error.hpp"
#include <c10/util/Exception.h>

namespace onestep {
namespace {

const char* type_name(OptionType type) {
    switch (type) {
        case OptionType::Int: return "integer";
        case OptionType::Float: return "number";
        case OptionType::Bool: return "true/false";
        case OptionType::String: return "text";
        case OptionType::Choice: return "choice";
        case OptionType::IntList: return "list of integers";
        case OptionType::FloatList: return "list of numbers";
    }
    return "?";
}

size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> previous(b.size() + 1), current(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) previous[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        current[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
        }
        std::swap(previous, current);
    }
    return previous[b.size()];
}

std::string format_number(double value) {
    if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
    std::ostringstream out;
    out << std::setprecision(10) << value;
    std::string text = out.str();
    // Keep floats recognisable as floats in YAML (1 -> 1.0).
    if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
    return text;
}

std::string range_text(const OptionSpec& spec) {
    auto bound = [&](double v) {
        if (spec.type == OptionType::Int || spec.type == OptionType::IntList) {
            if (std::isinf(v)) return std::string(v > 0 ? "inf" : "-inf");
            return std::to_string(static_cast<int64_t>(v));
        }
        return format_number(v);
    };
    return "[" + bound(spec.min) + ", " + bound(spec.max) + "]";
}

std::string trim(const std::string& text) {
    size_t begin = text.find_first_not_of(" \t\r\n");
    if (begin == std::string::npos) return "";
    size_t end = text.find_last_not_of(" \t\r\n");
    return text.substr(begin, end - begin + 1);
}

// Where a value came from, for error messages: "configs/a.yaml line 4" or "--set optim.lr=x".
struct Origin {
    std::string text;
};

bool parse_int_text(const std::string& raw, int64_t& out) {
    std::string text = trim(raw);
    if (text.empty()) return false;
    try {
        size_t used = 0;
        long long value = std::stoll(text, &used, 10);
        if (used == text.size()) {
            out = value;
            return true;
        }
        // Allow integer-valued scientific notation such as 1e4.
        double as_double = std::stod(text, &used);
        if (used == text.size() && std::floor(as_double) == as_double && std::fabs(as_double) < 9.0e18) {
            out = static_cast<int64_t>(as_double);
            return true;
        }
    } catch (const std::exception&) {
    }
    return false;
}

bool parse_float_text(const std::string& raw, double& out) {
    std::string text = trim(raw);
    if (text.empty()) return false;
    try {
        size_t used = 0;
        out = std::stod(text, &used);
        return used == text.size() && std::isfinite(out);
    } catch (const std::exception&) {
        return false;
    }
}

bool parse_bool_text(const std::string& raw, bool& out) {
    std::string text = trim(raw);
    std::transform(text.begin(), text.end(), text.begin(), ::tolower);
    if (text == "true" || text == "yes" || text == "on" || text == "1") return out = true, true;
    if (text == "false" || text == "no" || text == "off" || text == "0") return out = false, true;
    return false;
}

void check_bounds(const OptionSpec& spec, double value, const Origin& origin) {
    if (value < spec.min || value > spec.max) {
        std::ostringstream message;
        message << origin.text << ": value " << format_number(value) << " of '" << spec.key
                << "' is out of range; accepted " << range_text(spec);
        throw UserError(message.str());
    }
}

[[noreturn]] void type_error(const OptionSpec& spec, const std::string& text, const Origin& origin) {
    std::string expected = type_name(spec.type);
    if (spec.type == OptionType::Choice) {
        expected = "one of";
        for (const auto& choice : spec.choices) expected += " " + choice;
    }
    throw UserError(origin.text + ": '" + spec.key + "' expects " + expected + ", got '" + text + "'");
}

// Parses one scalar text or a list of scalar texts into the option's type, with bounds.
OptionValue parse_value(const OptionSpec& spec, const std::vector<std::string>& items, bool is_list,
                        const Origin& origin) {
    auto joined = [&]() {
        std::string all;
        for (size_t i = 0; i < items.size(); ++i) all += (i ? ", " : "") + items[i];
        return is_list ? "[" + all + "]" : all;
    };
    bool wants_list = spec.type == OptionType::IntList || spec.type == OptionType::FloatList;
    if (is_list && !wants_list) type_error(spec, joined(), origin);
    if (!wants_list && items.size() != 1) type_error(spec, joined(), origin);
    switch (spec.type) {
        case OptionType::Int: {
            int64_t value = 0;
            if (!parse_int_text(items[0], value)) type_error(spec, items[0], origin);
            check_bounds(spec, static_cast<double>(value), origin);
            return value;
        }
        case OptionType::Float: {
            double value = 0;
            if (!parse_float_text(items[0], value)) type_error(spec, items[0], origin);
            check_bounds(spec, value, origin);
            return value;
        }
        case OptionType::Bool: {
            bool value = false;
            if (!parse_bool_text(items[0], value)) type_error(spec, items[0], origin);
            return value;
        }
        case OptionType::String: return trim(items[0]);
        case OptionType::Choice: {
            std::string value = trim(items[0]);
            if (std::find(spec.choices.begin(), spec.choices.end(), value) == spec.choices.end())
                type_error(spec, value, origin);
            return value;
        }
        case OptionType::IntList: {
            std::vector<int64_t> values;
            for (const auto& item : items) {
                int64_t value = 0;
                if (!parse_int_text(item, value)) type_error(spec, joined(), origin);
                check_bounds(spec, static_cast<double>(value), origin);
                values.push_back(value);
            }
            return values;
        }
        case OptionType::FloatList: {
            std::vector<double> values;
            for (const auto& item : items) {
                double value = 0;
                if (!parse_float_text(item, value)) type_error(spec, joined(), origin);
                check_bounds(spec, value, origin);
                values.push_back(value);
            }
            return values;
        }
    }
    type_error(spec, joined(), origin);
}

const OptionSpec& require_known(const OptionTable& table, const std::string& key, const Origin& origin) {
    const OptionSpec* spec = table.find(key);
    if (spec != nullptr) return *spec;
    std::string message = origin.text + ": unknown key '" + key + "'";
    std::string suggestion = table.closest_key(key);
    if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
    message += "; `--help` lists every key";
    throw UserError(message);
}

// Walks a YAML map, turning nested maps into dotted keys.
void apply_yaml_node(const OptionTable& table, const YAML::Node& node, const std::string& prefix,
                     const std::string& source, std::map<std::string, OptionValue>& values) {
    for (const auto& entry : node) {
        std::string name;
        try {
            name = entry.first.as<std::string>();
        } catch (const YAML::Exception&) {
            throw UserError(source + " line " + std::to_string(entry.first.Mark().line + 1) +
                            ": keys must be plain names");
        }
        std::string key = prefix.empty() ? name : prefix + "." + name;
        const YAML::Node& value = entry.second;
        Origin origin{source + " line " + std::to_string(value.Mark().line + 1)};
        if (value.IsMap() && table.find(key) == nullptr) {
            apply_yaml_node(table, value, key, source, values);
            continue;
        }
        const OptionSpec& spec = require_known(table, key, origin);
        if (value.IsNull()) throw UserError(origin.text + ": '" + key + "' has no value");
        if (value.IsMap()) type_error(spec, "a mapping", origin);
        std::vector<std::string> items;
        if (value.IsSequence()) {
            for (const auto& item : value) {
                if (!item.IsScalar()) type_error(spec, "a nested list", origin);
                items.push_back(item.Scalar());
            }
        } else {
            items.push_back(value.Scalar());
        }
        values[key] = parse_value(spec, items, value.IsSequence(), origin);
    }
}

void apply_yaml_text(const OptionTable& table, const std::string& text, const std::string& source,
                     std::map<std::string, OptionValue>& values) {
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::ParserException& error) {
        throw UserError(source + " line " + std::to_string(error.mark.line + 1) + ": malformed YAML: " + error.msg);
    }
    if (root.IsNull()) return;   // an empty file sets nothing
    if (!root.IsMap()) throw UserError(source + ": expected a mapping of keys to values at the top level");
    apply_yaml_node(table, root, "", source, values);
}

void apply_override(const OptionTable& table, const std::string& assignment,
                    std::map<std::string, OptionValue>& values) {
    Origin origin{"--set " + assignment};
    size_t equals = assignment.find('=');
    if (equals == std::string::npos || equals == 0)
        throw UserError(origin.text + ": expected key=value, e.g. --set optim.lr=0.001");
    std::string key = trim(assignment.substr(0, equals));
    std::string text = trim(assignment.substr(equals + 1));
    const OptionSpec& spec = require_known(table, key, origin);
    bool is_list = spec.type == OptionType::IntList || spec.type == OptionType::FloatList;
    std::vector<std::string> items;
    if (is_list) {
        std::string body = text;
        if (!body.empty() && body.front() == '[' && body.back() == ']') body = body.substr(1, body.size() - 2);
        items = split_list(body, /*keep_empty=*/true);
    } else {
        items.push_back(text);
    }
    values[key] = parse_value(spec, items, is_list, origin);
}

std::string read_file_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UserError(path + ": cannot open config file (" + std::strerror(errno) + ")");
    std::stringstream buffer;
    buffer << in.rdbuf();
    if (in.bad()) throw UserError(path + ": cannot read config file");
    return buffer.str();
}

}  // namespace

OptionTable& OptionTable::add(OptionSpec spec) {
    if (find(spec.key) != nullptr) throw std::logic_error("option declared twice: " + spec.key);
    specs_.push_back(std::move(spec));
    return *this;
}

OptionTable& OptionTable::add_int(const std::string& key, int64_t value, double min, double max,
                                  const std::string& help) {
    return add({key, OptionType::Int, value, min, max, {}, help});
}
OptionTable& OptionTable::add_float(const std::string& key, double value, double min, double max,
                                    const std::string& help) {
    return add({key, OptionType::Float, value, min, max, {}, help});
}
OptionTable& OptionTable::add_bool(const std::string& key, bool value, const std::string& help) {
    return add({key, OptionType::Bool, value, 0, 1, {}, help});
}
OptionTable& OptionTable::add_string(const std::string& key, const std::string& value, const std::string& help) {
    return add({key, OptionType::String, value, 0, 0, {}, help});
}
OptionTable& OptionTable::add_choice(const std::string& key, const std::string& value,
                                     const std::vector<std::string>& choices, const std::string& help) {
    return add({key, OptionType::Choice, value, 0, 0, choices, help});
}
OptionTable& OptionTable::add_int_list(const std::string& key, const std::vector<int64_t>& value, double min,
                                       double max, const std::string& help) {
    return add({key, OptionType::IntList, value, min, max, {}, help});
}
OptionTable& OptionTable::add_float_list(const std::string& key, const std::vector<double>& value, double min,
                                         double max, const std::string& help) {
    return add({key, OptionType::FloatList, value, min, max, {}, help});
}

OptionTable& OptionTable::merge(const OptionTable& other) {
    for (const auto& spec : other.specs_) add(spec);
    return *this;
}

const OptionSpec* OptionTable::find(const std::string& key) const {
    for (const auto& spec : specs_)
        if (spec.key == key) return &spec;
    return nullptr;
}

std::string OptionTable::closest_key(const std::string& key) const {
    std::string best;
    size_t best_distance = std::max<size_t>(3, key.size() / 3) + 1;
    for (const auto& spec : specs_) {
        // Compare whole keys and also the last component, so "lr" finds "optim.lr".
        size_t distance = edit_distance(key, spec.key);
        size_t dot = spec.key.rfind('.');
        if (dot != std::string::npos) distance = std::min(distance, edit_distance(key, spec.key.substr(dot + 1)) + 1);
        if (distance < best_distance) {
            best_distance = distance;
            best = spec.key;
        }
    }
    return best;
}

std::string OptionTable::help_text() const {
    std::ostringstream out;
    for (const auto& spec : specs_) {
        out << "  " << spec.key << " (" << type_name(spec.type);
        if (spec.type == OptionType::Choice) {
            out << ":";
            for (const auto& choice : spec.choices) out << " " << choice;
        }
        bool numeric = spec.type == OptionType::Int || spec.type == OptionType::Float ||
                       spec.type == OptionType::IntList || spec.type == OptionType::FloatList;
        if (numeric && (std::isfinite(spec.min) || std::isfinite(spec.max))) out << ", range " << range_text(spec);
        out << ", default " << format_value(spec.default_value) << ")\n      " << spec.help << "\n";
    }
    return out.str();
}

const OptionValue& Config::at(const std::string& key) const {
    auto found = values_.find(key);
    TORCH_CHECK(found != values_.end(), "config has no key '", key, "'");
    return found->second;
}

int64_t Config::get_int(const std::string& key) const { return std::get<int64_t>(at(key)); }
double Config::get_float(const std::string& key) const { return std::get<double>(at(key)); }
bool Config::get_bool(const std::string& key) const { return std::get<bool>(at(key)); }
std::string Config::get_string(const std::string& key) const { return std::get<std::string>(at(key)); }
std::vector<int64_t> Config::get_int_list(const std::string& key) const {
    return std::get<std::vector<int64_t>>(at(key));
}
std::vector<double> Config::get_float_list(const std::string& key) const {
    return std::get<std::vector<double>>(at(key));
}

std::string format_value(const OptionValue& value) {
    struct Formatter {
        std::string operator()(int64_t v) const { return std::to_string(v); }
        std::string operator()(double v) const { return format_number(v); }
        std::string operator()(bool v) const { return v ? "true" : "false"; }
        std::string operator()(const std::string& v) const { return v; }
        std::string operator()(const std::vector<int64_t>& v) const {
            std::string text = "[";
            for (size_t i = 0; i < v.size(); ++i) text += (i ? ", " : "") + std::to_string(v[i]);
            return text + "]";
        }
        std::string operator()(const std::vector<double>& v) const {
            std::string text = "[";
            for (size_t i = 0; i < v.size(); ++i) text += (i ? ", " : "") + format_number(v[i]);
            return text + "]";
        }
    };
    return std::visit(Formatter{}, value);
}

std::string Config::to_yaml() const {
    YAML::Emitter out;
    out << YAML::BeginMap;
    std::vector<std::string> open;   // the dotted prefix components currently open
    for (const auto& [key, value] : values_) {
        std::vector<std::string> parts;
        std::stringstream stream(key);
        std::string part;
        while (std::getline(stream, part, '.')) parts.push_back(part);
        size_t common = 0;
        while (common < open.size() && common + 1 < parts.size() && open[common] == parts[common]) ++common;
        while (open.size() > common) {
            out << YAML::EndMap;
            open.pop_back();
        }
        for (size_t i = common; i + 1 < parts.size(); ++i) {
            out << YAML::Key << parts[i] << YAML::Value << YAML::BeginMap;
            open.push_back(parts[i]);
        }
        out << YAML::Key << parts.back() << YAML::Value;
        if (std::holds_alternative<std::vector<int64_t>>(value) || std::holds_alternative<std::vector<double>>(value)) {
            out << YAML::Flow << YAML::BeginSeq;
            if (auto* ints = std::get_if<std::vector<int64_t>>(&value))
                for (auto v : *ints) out << v;
            if (auto* floats = std::get_if<std::vector<double>>(&value))
                for (auto v : *floats) out << format_number(v);
            out << YAML::EndSeq;
        } else if (std::holds_alternative<std::string>(value)) {
            out << YAML::DoubleQuoted << std::get<std::string>(value);
        } else {
            out << format_value(value);
        }
    }
    while (!open.empty()) {
        out << YAML::EndMap;
        open.pop_back();
    }
    out << YAML::EndMap;
    return std::string(out.c_str()) + "\n";
}

Config resolve_config_from(const OptionTable& table, const Config& base, const std::string& yaml_path,
                           const std::vector<std::string>& overrides) {
    std::map<std::string, OptionValue> values = base.values();
    for (const auto& spec : table.specs())
        if (values.count(spec.key) == 0) values[spec.key] = spec.default_value;
    if (!yaml_path.empty()) apply_yaml_text(table, read_file_text(yaml_path), yaml_path, values);
    for (const auto& assignment : overrides) apply_override(table, assignment, values);
    return Config(std::move(values));
}

Config resolve_config(const OptionTable& table, const std::string& yaml_path,
                      const std::vector<std::string>& overrides) {
    return resolve_config_from(table, Config(), yaml_path, overrides);
}

Config config_from_yaml_text(const OptionTable& table, const std::string& yaml_text, const std::string& source) {
    std::map<std::string, OptionValue> values;
    for (const auto& spec : table.specs()) values[spec.key] = spec.default_value;
    apply_yaml_text(table, yaml_text, source, values);
    return Config(std::move(values));
}

std::vector<std::string> split_list(const std::string& text, bool keep_empty) {
    std::vector<std::string> items;
    std::stringstream stream(text);
    std::string item;
    while (std::getline(stream, item, ','))
        if (keep_empty || !item.empty()) items.push_back(item);
    return items;
}

}  // namespace onestep
