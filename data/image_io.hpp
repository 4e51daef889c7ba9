// Pictures people look at: labelled sample grids, 2-D scatter plots and loss curves, as PNG
// through OpenCV. All writers are atomic (temporary file, rename) and throw UserError naming
// the path when it cannot be written.
//
//   onestep::write_image_grid("grid.png", images, labels, {"T-shirt", ...});
//   onestep::plot_log_curves("runs/x/log.jsonl", "runs/x/samples/loss.png");
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace onestep {

// images: float [N,C,H,W] in [-1,1] (C = 1 or 3). labels: int64 [N] or undefined; when defined
// each cell gets its class name (or number) above it. columns <= 0: about square.
void write_image_grid(const std::string& path, const at::Tensor& images,
                      const at::Tensor& labels = at::Tensor(),
                      const std::vector<std::string>& class_names = {}, int64_t columns = 0,
                      int64_t scale = 2);

// points: float [N,2]. labels colour the points when defined. reference (optional, [M,2])
// is drawn in light grey underneath, e.g. real data behind samples.
void write_scatter(const std::string& path, const at::Tensor& points,
                   const at::Tensor& labels = at::Tensor(),
                   const at::Tensor& reference = at::Tensor(), const std::string& title = "");

struct Series {
    std::string name;
    std::vector<double> x;
    std::vector<double> y;
};

// A line chart with axes, ticks, a legend and a title; log_y for losses spanning decades, log_x
// for step counts such as 1, 2, 4, ..., 128.
void write_line_plot(const std::string& path, const std::vector<Series>& series,
                     const std::string& title, const std::string& x_label, bool log_y, bool log_x = false);

// Reads log.jsonl (one JSON object per line with "step" and numeric fields) and plots every
// field whose name contains "loss" against the step. Lines that are not JSON are an error
// naming the file and line.
void plot_log_curves(const std::string& log_path, const std::string& png_path);

}  // namespace onestep
