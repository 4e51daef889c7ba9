// XGBoost C API wrapper: handle ownership and error translation, nothing else.
// Array-interface JSON passes raw buffers without copies (XGBoost 1.7 format, version 3).
#include "tabular/xgb.hpp"

#include <xgboost/c_api.h>

#include <cmath>
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace onestep::tabular::xgb {
namespace {

void check(int status, const char* call) {
    if (status != 0) throw std::runtime_error(std::string("XGBoost ") + call + ": " + XGBGetLastError());
}

std::string array_interface(const float* data, size_t rows, size_t columns) {
    return "{\"data\":[" + std::to_string(reinterpret_cast<std::uintptr_t>(data)) + ",true],\"shape\":[" +
           std::to_string(rows) + "," + std::to_string(columns) + "],\"typestr\":\"<f4\",\"version\":3}";
}

}  // namespace

std::string version() {
    int major = 0, minor = 0, patch = 0;
    XGBoostVersion(&major, &minor, &patch);
    return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

DMatrix::DMatrix(const float* values, size_t rows, size_t columns) {
    check(XGDMatrixCreateFromMat(values, rows, columns, NAN, &handle_), "XGDMatrixCreateFromMat");
}

namespace {

// The iterator state XGBoost's C callbacks see. Exceptions must not cross the C boundary, so
// they are kept and rethrown once XGBoost returns.
struct CallbackState {
    BatchSource* source = nullptr;
    DMatrixHandle proxy = nullptr;
    std::exception_ptr error;
};

void reset_callback(DataIterHandle handle) {
    auto* state = static_cast<CallbackState*>(handle);
    try {
        state->source->reset();
    } catch (...) {
        state->error = std::current_exception();
    }
}

int next_callback(DataIterHandle handle) {
    auto* state = static_cast<CallbackState*>(handle);
    if (state->error) return 0;
    try {
        const float* inputs = nullptr;
        const float* labels = nullptr;
        size_t rows = 0;
        if (!state->source->next(inputs, labels, rows)) return 0;
        std::string data = array_interface(inputs, rows, state->source->columns());
        check(XGProxyDMatrixSetDataDense(state->proxy, data.c_str()), "XGProxyDMatrixSetDataDense");
        std::string label = array_interface(labels, rows, state->source->outputs());
        check(XGDMatrixSetInfoFromInterface(state->proxy, "label", label.c_str()), "XGDMatrixSetInfoFromInterface");
        return 1;
    } catch (...) {
        state->error = std::current_exception();
        return 0;
    }
}

}  // namespace

DMatrix DMatrix::from_batches(BatchSource& source, int max_bin, int threads, const DMatrix* reference) {
    CallbackState state;
    state.source = &source;
    check(XGProxyDMatrixCreate(&state.proxy), "XGProxyDMatrixCreate");
    std::string config = "{\"missing\": NaN, \"nthread\": " + std::to_string(threads) +
                         ", \"max_bin\": " + std::to_string(max_bin) + "}";
    DMatrix matrix;
    int status = XGQuantileDMatrixCreateFromCallback(&state, state.proxy, reference ? reference->handle() : nullptr,
                                                     reset_callback, next_callback, config.c_str(), &matrix.handle_);
    XGDMatrixFree(state.proxy);
    if (state.error) std::rethrow_exception(state.error);
    check(status, "XGQuantileDMatrixCreateFromCallback");
    return matrix;
}

DMatrix::DMatrix(DMatrix&& other) noexcept : handle_(other.handle_) { other.handle_ = nullptr; }

DMatrix::~DMatrix() {
    if (handle_) XGDMatrixFree(handle_);
}

void DMatrix::set_labels(const float* labels, size_t rows, size_t outputs) {
    std::string interface = array_interface(labels, rows, outputs);
    check(XGDMatrixSetInfoFromInterface(handle_, "label", interface.c_str()), "XGDMatrixSetInfoFromInterface");
}

size_t DMatrix::rows() const {
    bst_ulong count = 0;
    check(XGDMatrixNumRow(handle_, &count), "XGDMatrixNumRow");
    return count;
}

Booster::Booster(const DMatrix* train) {
    DMatrixHandle matrices[1] = {train ? train->handle() : nullptr};
    check(XGBoosterCreate(matrices, train ? 1 : 0, &handle_), "XGBoosterCreate");
}

Booster::Booster(Booster&& other) noexcept : handle_(other.handle_) { other.handle_ = nullptr; }

Booster::~Booster() {
    if (handle_) XGBoosterFree(handle_);
}

void Booster::set_params(const std::vector<std::pair<std::string, std::string>>& params) {
    for (const auto& [name, value] : params)
        check(XGBoosterSetParam(handle_, name.c_str(), value.c_str()), ("XGBoosterSetParam " + name).c_str());
}

void Booster::update(int round, const DMatrix& train) {
    check(XGBoosterUpdateOneIter(handle_, round, train.handle()), "XGBoosterUpdateOneIter");
}

int Booster::boosted_rounds() const {
    int rounds = 0;
    check(XGBoosterBoostedRounds(handle_, &rounds), "XGBoosterBoostedRounds");
    return rounds;
}

double Booster::evaluate(int round, const DMatrix& data) const {
    DMatrixHandle matrices[1] = {data.handle()};
    const char* names[1] = {"valid"};
    const char* result = nullptr;
    check(XGBoosterEvalOneIter(handle_, round, matrices, names, 1, &result), "XGBoosterEvalOneIter");
    // "[round]\tvalid-rmse:0.123"
    std::string text(result);
    size_t colon = text.find(':', text.find("valid-"));
    if (colon == std::string::npos) throw std::runtime_error("XGBoosterEvalOneIter: unexpected result '" + text + "'");
    return std::stod(text.substr(colon + 1));
}

Booster Booster::slice(int end) const {
    Booster out;
    XGBoosterFree(out.handle_);
    out.handle_ = nullptr;
    check(XGBoosterSlice(handle_, 0, end, 1, &out.handle_), "XGBoosterSlice");
    return out;
}

void Booster::set_attribute(const std::string& name, const std::string& value) {
    check(XGBoosterSetAttr(handle_, name.c_str(), value.c_str()), "XGBoosterSetAttr");
}

std::string Booster::attribute(const std::string& name) const {
    const char* value = nullptr;
    int found = 0;
    check(XGBoosterGetAttr(handle_, name.c_str(), &value, &found), "XGBoosterGetAttr");
    return found ? std::string(value) : std::string();
}

int Booster::targets() const {
    bst_ulong length = 0;
    const char* text = nullptr;
    check(XGBoosterSaveJsonConfig(handle_, &length, &text), "XGBoosterSaveJsonConfig");
    auto config = nlohmann::json::parse(std::string(text, static_cast<size_t>(length)));
    const auto& params = config.at("learner").at("learner_model_param");
    if (!params.contains("num_target")) return 1;
    return std::stoi(params.at("num_target").get<std::string>());
}

std::vector<float> Booster::predict(const float* values, size_t rows, size_t columns) const {
    std::string interface = array_interface(values, rows, columns);
    const char* config =
        "{\"type\":0,\"training\":false,\"cache_id\":0,\"iteration_begin\":0,\"iteration_end\":0,\"strict_shape\":false,"
        "\"missing\":NaN}";
    const bst_ulong* shape = nullptr;
    bst_ulong dimensions = 0;
    const float* result = nullptr;
    check(XGBoosterPredictFromDense(handle_, interface.c_str(), config, nullptr, &shape, &dimensions, &result),
          "XGBoosterPredictFromDense");
    size_t count = 1;
    for (bst_ulong d = 0; d < dimensions; ++d) count *= shape[d];
    return std::vector<float>(result, result + count);
}

void Booster::save(const std::string& path) const {
    check(XGBoosterSaveModel(handle_, path.c_str()), "XGBoosterSaveModel");
}

std::string Booster::to_ubj() const {
    bst_ulong length = 0;
    const char* bytes = nullptr;
    check(XGBoosterSaveModelToBuffer(handle_, R"({"format": "ubj"})", &length, &bytes), "XGBoosterSaveModelToBuffer");
    return std::string(bytes, static_cast<size_t>(length));
}

void Booster::load(const std::string& path) {
    check(XGBoosterLoadModel(handle_, path.c_str()), ("XGBoosterLoadModel " + path).c_str());
}

void Booster::load_buffer(const std::string& bytes) {
    check(XGBoosterLoadModelFromBuffer(handle_, bytes.data(), bytes.size()), "XGBoosterLoadModelFromBuffer");
}

}  // namespace onestep::tabular::xgb
