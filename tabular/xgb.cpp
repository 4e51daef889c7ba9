// XGBoost C API wrapper: handle ownership and error translation, nothing else.
// Array-interface JSON passes raw buffers without copies (XGBoost 1.7 format, version 3).
#include "tabular/xgb.hpp"

#include <xgboost/c_api.h>

#include <cmath>
#include <cstdint>
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

}  // namespace onestep::tabular::xgb
