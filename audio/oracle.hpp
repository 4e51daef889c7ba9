// Oracle baselines for a stem test set (audio spec §8): the mixture as every stem's estimate,
// the mixture divided by K, the ideal ratio mask |S_k| / sum_j |S_j| on a 4096/1024 STFT, and the
// best fixed equaliser: one real gain per stem and frequency bin, fitted by least squares on other
// songs (a separator that does not beat it has learnt no more than an EQ).
// Each writes estimate folders and is scored by the separation evaluator, so the baselines get
// exactly the metrics a model gets.
//
//   onestep::OracleRequest request{"data/stems/test", "runs/oracle", {"mix", "mix-k", "irm"}};
//   onestep::run_oracle_baselines(request);   // runs/oracle/<method>/<song>/<stem>.wav + scores/
#pragma once
#include <string>
#include <vector>

#include "audio/separation_eval.hpp"

namespace onestep {

struct OracleRequest {
    std::string reference_dir;          // <song>/{mixture,<stem>}.wav
    std::string out_dir;
    std::vector<std::string> methods;   // of "mix", "mix-k", "irm", "eq"
    std::string fit_dir;                // songs the "eq" gains are fitted on (a training split)
    SeparationEvalRequest scoring;      // metrics and options of the evaluator (dirs are set here)
};

// "mix,mix-k,irm,eq" -> the list, or a UserError naming the accepted methods.
std::vector<std::string> oracle_methods_from_list(const std::string& list);

// Writes OUT/<method>/<song>/<stem>.wav (float WAV) for every method, then scores each into
// OUT/scores/<method>/ with the evaluator, printing one table per method.
void run_oracle_baselines(const OracleRequest& request);

}  // namespace onestep
