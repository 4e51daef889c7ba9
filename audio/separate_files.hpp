// `onestep separate`: trained separators (one or an ensemble) applied to audio files chunk by
// chunk, writing one file per stem in the input's format and rate, with memory flat in length.
//
//   onestep::SeparateRequest request;
//   request.checkpoints = {"runs/sep"};
//   request.inputs = {"song.wav"};
//   request.out_dir = "stems";                 // stems/song/<stem>.wav
//   onestep::run_separate(request);
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

#include "audio/overlap_add.hpp"

namespace onestep {

struct SeparateRequest {
    std::vector<std::string> checkpoints;   // ensemble members (checkpoint files or run folders)
    std::vector<std::string> inputs;
    std::string out_dir;
    OverlapAddSettings settings;            // settings.chunk 0: the models' training chunk
    bool tta_swap = false, tta_polarity = false;
    std::vector<std::vector<double>> weights;   // [member][stem]; empty: equal
    std::vector<std::string> stems;         // write only these (empty: all)
    std::string residual;                   // this stem := mixture - the others
    bool mixture_consistency = false;
    std::string format;                     // "" : the input's own (wav-float when not writable)
    bool force = false;                     // allow chunks longer than the training chunk
    int64_t steps = 0;                      // flow separators' sampling steps (0: each model's default)
    c10::Device device = c10::Device(c10::kCPU);
};

// "1,1,1,1;2,1,1,1" -> rows per member; a UserError names the bad number.
std::vector<std::vector<double>> parse_weight_rows(const std::string& text);

// Every input is probed and every model loaded before anything is written; each track's stems
// appear together (written to temporary files, renamed at the end). Prints the real-time factor.
void run_separate(const SeparateRequest& request);

}  // namespace onestep
