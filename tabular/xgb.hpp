// A small RAII layer over XGBoost's C API: dense matrices, boosters, training rounds,
// in-place prediction and model files. Every failing call throws with XGBGetLastError().
//
//   xgb::DMatrix train(inputs.data(), rows, columns);
//   train.set_labels(targets.data(), rows, outputs);       // 2-D labels: one model, many targets
//   xgb::Booster booster(&train);
//   booster.set_params({{"max_depth", "7"}});
//   for (int round = 0; round < 100; ++round) booster.update(round, train);
//   booster.save("model.ubj");
#pragma once
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

typedef void* DMatrixHandle;   // NOLINT: the C API's own spelling
typedef void* BoosterHandle;   // NOLINT

namespace onestep::tabular::xgb {

// "major.minor.patch" of the linked library.
std::string version();

// A source of row batches that XGBoost pulls through its iterator callbacks. Every pass after
// reset() must yield the same batches: the quantile matrix reads the data several times.
class BatchSource {
  public:
    virtual ~BatchSource() = default;
    virtual void reset() = 0;
    // The next batch: ROWS × columns inputs and ROWS × outputs labels, valid until the next call;
    // false at the end of a pass.
    virtual bool next(const float*& inputs, const float*& labels, size_t& rows) = 0;
    virtual size_t columns() const = 0;
    virtual size_t outputs() const = 0;
};

class DMatrix {
  public:
    // Copies ROWS × COLUMNS row-major floats; NaN cells are missing.
    DMatrix(const float* values, size_t rows, size_t columns);
    // A quantised matrix built batch by batch from SOURCE (XGQuantileDMatrixCreateFromCallback):
    // only one batch exists at a time besides XGBoost's 1-byte bin index. REFERENCE (a training
    // matrix) shares its bin cuts with a validation matrix.
    static DMatrix from_batches(BatchSource& source, int max_bin, int threads, const DMatrix* reference = nullptr);
    DMatrix(DMatrix&& other) noexcept;
    ~DMatrix();
    DMatrix(const DMatrix&) = delete;
    DMatrix& operator=(const DMatrix&) = delete;
    // ROWS × OUTPUTS row-major labels; OUTPUTS > 1 makes the booster multi-target.
    void set_labels(const float* labels, size_t rows, size_t outputs);
    size_t rows() const;
    DMatrixHandle handle() const { return handle_; }

  private:
    DMatrix() = default;
    DMatrixHandle handle_ = nullptr;
};

class Booster {
  public:
    // A booster for TRAIN (null: an empty booster to load a model into).
    explicit Booster(const DMatrix* train = nullptr);
    Booster(Booster&& other) noexcept;
    ~Booster();
    Booster(const Booster&) = delete;
    Booster& operator=(const Booster&) = delete;

    void set_params(const std::vector<std::pair<std::string, std::string>>& params);
    void update(int round, const DMatrix& train);
    int boosted_rounds() const;
    // The first metric's value on DATA after round ROUND (rmse for regression).
    double evaluate(int round, const DMatrix& data) const;
    // Rounds [0, END) as a new booster.
    Booster slice(int end) const;
    void set_attribute(const std::string& name, const std::string& value);
    std::string attribute(const std::string& name) const;   // empty when absent
    // Targets per row (learner_model_param.num_target; 1 for single-target boosters).
    int targets() const;
    // Predictions for ROWS × COLUMNS row-major inputs: ROWS × outputs floats, copied out of the
    // booster's buffer at once (the next call overwrites it).
    std::vector<float> predict(const float* values, size_t rows, size_t columns) const;
    // The format follows the extension (.ubj: UBJSON; .json: JSON).
    void save(const std::string& path) const;
    // The model in UBJSON, as save() would write it to a .ubj file.
    std::string to_ubj() const;
    void load(const std::string& path);
    void load_buffer(const std::string& bytes);

  private:
    BoosterHandle handle_ = nullptr;
};

}  // namespace onestep::tabular::xgb
