// Teacher pairs as training batches (SlimFlow's data, DMD's and MSD's regression set): epoch e
// visits the pairs in a permutation drawn from (seed, e), so a batch is a pure function of its
// step and a resumed run needs no loader state.
//
//   PairsSource pairs(read_teacher_pairs(path), batch_size, seed);
//   Batch batch = pairs.batch(step, rank, world);   // x = teacher output, noise = z, y = label
#pragma once
#include <cstdint>
#include <vector>

#include "core/method.hpp"
#include "samplers/teacher_pairs.hpp"

namespace onestep {

class PairsSource : public BatchSource {
  public:
    PairsSource(TeacherPairs pairs, int64_t batch_size, uint64_t seed);
    DataShape shape() const override;
    Batch batch(int64_t step, int rank, int world) override;
    const TeacherPairs& pairs() const { return pairs_; }

  private:
    const std::vector<int64_t>& permutation(int64_t epoch);

    TeacherPairs pairs_;
    int64_t batch_size_;
    uint64_t seed_;
    int64_t epoch_ = -1;
    std::vector<int64_t> order_;
};

// The pairs file named by option KEY for a run of BATCH_SIZE; UserError when KEY is empty (with
// the command that makes pairs) or the file holds fewer pairs than one batch.
TeacherPairs read_training_pairs(const std::string& path, const std::string& key, int64_t batch_size);

}  // namespace onestep
