// `onestep separate`: trained separators applied to audio files (see audio/separate_files.hpp).
#include <torch/torch.h>

#include <sstream>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/options.hpp"
#include "core/runtime.hpp"
#if ONESTEP_WITH_AUDIO
#include "audio/separate_files.hpp"
#endif

namespace onestep::cli {

void add_separate_command(CLI::App& app) {
#if ONESTEP_WITH_AUDIO
    struct Args {
        SeparateRequest request;
        std::string checkpoints, window = "triangle", tta, weights, stems, device = "cpu";
        int threads = 0;
    };
    auto args = std::make_shared<Args>();
    CLI::App* command = app.add_subcommand("separate", "split audio files into stems with trained separators");
    command->add_option("--ckpt", args->checkpoints, "checkpoint or run folder; A,B,... for an ensemble")->required();
    command->add_option("inputs", args->request.inputs, "audio files (.wav, .flac, .ogg)")->required();
    command->add_option("--out", args->request.out_dir, "writes OUT/<track>/<stem>.<ext>")->required();
    command->add_option("--overlap", args->request.settings.overlap, "chunk overlap in [0, 0.9]")->capture_default_str();
    command->add_option("--window", args->window, "triangle or fade")->capture_default_str();
    command->add_option("--chunk", args->request.settings.chunk, "chunk frames (0: the training chunk)");
    args->request.settings.chunk = 0;
    command->add_option("--batch", args->request.settings.batch, "chunks per forward pass")->capture_default_str();
    command->add_option("--tta", args->tta, "test-time augmentation: swap, polarity or swap,polarity");
    command->add_option("--weights", args->weights, "ensemble weights per model and stem: 1,1,1,1;2,1,1,1");
    command->add_option("--stems", args->stems, "write only these stems: vocals,drums");
    command->add_option("--residual", args->request.residual, "this stem becomes the mixture minus the others");
    command->add_flag("--mixture-consistency", args->request.mixture_consistency,
                      "spread the residual evenly so the stems sum to the input");
    command->add_option("--format", args->request.format,
                        "wav-pcm16, wav-pcm24, wav-float, flac-pcm16, flac-pcm24, ogg-vorbis (default: the input's)");
    command->add_flag("--force", args->request.force, "allow --chunk longer than the training chunk");
    command->add_option("--steps", args->request.steps,
                        "flow separators: sampling steps, a power of two up to flow.max_steps (0: the model's default)");
    command->add_option("--device", args->device, "cpu or cuda")->capture_default_str();
    command->add_option("--threads", args->threads, "intra-op threads (0: all cores)")->capture_default_str();
    command->callback([args]() {
        set_thread_count(args->threads);
        SeparateRequest request = args->request;
        request.device = parse_device(args->device);
        request.settings.window = overlap_window_from_name(args->window);
        request.checkpoints = split_list(args->checkpoints);
        request.stems = split_list(args->stems);
        for (const auto& variant : split_list(args->tta)) {
            if (variant == "swap") request.tta_swap = true;
            else if (variant == "polarity") request.tta_polarity = true;
            else throw UserError("--tta: unknown variant '" + variant + "' (accepted: swap, polarity)");
        }
        request.weights = parse_weight_rows(args->weights);
        run_separate(request);
    });
#else
    (void)app;
#endif
}

}  // namespace onestep::cli
