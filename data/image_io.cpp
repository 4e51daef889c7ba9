// Sample grids, scatter plots and line charts drawn with OpenCV (imgproc + imgcodecs) and
// written atomically: encode to a temporary file beside the target, then rename.
#include "data/image_io.hpp"

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <unistd.h>

#include "core/error.hpp"

namespace fs = std::filesystem;

namespace onestep {
namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr int kGridGap = 2;
// Room for one line of kCaptionFontScale text: about 9 px of capitals plus descenders.
constexpr int kCaptionHeight = 14;
constexpr double kCaptionFontScale = 0.36;
constexpr double kTickFontScale = 0.4;
constexpr double kTitleFontScale = 0.55;
const cv::Scalar kWhite(255, 255, 255);
const cv::Scalar kBlack(0, 0, 0);
const cv::Scalar kAxisGrey(90, 90, 90);
const cv::Scalar kGridGrey(232, 232, 232);
const cv::Scalar kReferenceGrey(205, 205, 205);

// matplotlib's "tab10" palette (in OpenCV's BGR order): distinct and familiar.
const cv::Scalar kPalette[] = {
    {180, 119, 31}, {14, 127, 255}, {44, 160, 44},   {40, 39, 214},  {189, 103, 148},
    {75, 86, 140},  {194, 119, 227}, {127, 127, 127}, {34, 189, 188}, {207, 190, 23},
};
constexpr int64_t kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

cv::Scalar palette_colour(int64_t index) {
    int64_t slot = index % kPaletteSize;
    return kPalette[slot < 0 ? slot + kPaletteSize : slot];
}

std::string shape_text(const at::Tensor& tensor) {
    std::string text = "[";
    for (int64_t i = 0; i < tensor.dim(); ++i) text += (i ? "," : "") + std::to_string(tensor.size(i));
    return text + "]";
}

// imwrite picks the encoder from the extension, so the temporary name keeps it
// (PATH.tmp.png). Opening the temporary file first yields the OS's reason on failure,
// which imwrite does not report.
void write_image_atomically(const std::string& path, const cv::Mat& image) {
    std::string extension = fs::path(path).extension().string();
    if (extension.empty()) extension = ".png";
    const std::string temp_path = path + ".tmp" + extension;
    int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw UserError("cannot write " + path + ": " + std::strerror(errno));
    ::close(fd);
    bool written = false;
    std::string reason = "OpenCV cannot encode a '" + extension + "' image";
    try {
        written = cv::imwrite(temp_path, image);
    } catch (const cv::Exception& error) {
        reason += " (" + error.msg + ")";
    }
    if (!written) {
        ::unlink(temp_path.c_str());
        throw UserError("cannot write " + path + ": " + reason);
    }
    if (::rename(temp_path.c_str(), path.c_str()) != 0) {
        int error_number = errno;
        ::unlink(temp_path.c_str());
        throw UserError("cannot write " + path + ": " + std::strerror(error_number));
    }
}

cv::Size text_size(const std::string& text, double font_scale) {
    int baseline = 0;
    return cv::getTextSize(text, kFont, font_scale, 1, &baseline);
}

void put_text(cv::Mat& canvas, const std::string& text, cv::Point origin, double font_scale,
              const cv::Scalar& colour = kBlack) {
    cv::putText(canvas, text, origin, kFont, font_scale, colour, 1, cv::LINE_AA);
}

// Text centred on X with its baseline at Y.
void put_text_centred(cv::Mat& canvas, const std::string& text, int x, int y, double font_scale,
                      const cv::Scalar& colour = kBlack) {
    put_text(canvas, text, {x - text_size(text, font_scale).width / 2, y}, font_scale, colour);
}

// The longest prefix of TEXT that fits in WIDTH pixels.
std::string fit_text(const std::string& text, int width, double font_scale) {
    std::string fitted = text;
    while (!fitted.empty() && text_size(fitted, font_scale).width > width) fitted.pop_back();
    return fitted;
}

// 1, 2 or 5 times a power of ten, near RAW: steps people read at a glance.
double nice_step(double raw) {
    double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    double fraction = raw / magnitude;
    double nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
    return nice * magnitude;
}

std::vector<double> linear_ticks(double low, double high, int target_count) {
    double step = nice_step((high - low) / target_count);
    std::vector<double> ticks;
    if (!std::isfinite(step) || step <= 0) return ticks;
    double first = std::ceil(low / step - 1e-9);
    // The cap guards against spans too narrow for double precision at the values' magnitude.
    for (int64_t i = 0; i <= 4 * target_count + 2; ++i) {
        double value = (first + i) * step;
        if (value > high + step * 1e-9) break;
        // Snap values like 2.7e-17 to a clean 0.
        ticks.push_back(std::abs(value) < step * 1e-9 ? 0.0 : value);
    }
    return ticks;
}

std::string format_number(double value, const char* format) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, format, value);
    std::string text = buffer;
    // "1e+06" -> "1e6", "1e-05" -> "1e-5": shorter tick labels.
    auto exponent = text.find('e');
    if (exponent != std::string::npos) {
        std::string mantissa = text.substr(0, exponent);
        std::string power = text.substr(exponent + 1);
        bool negative = !power.empty() && power[0] == '-';
        if (!power.empty() && (power[0] == '+' || power[0] == '-')) power.erase(0, 1);
        power.erase(0, std::min(power.find_first_not_of('0'), power.size() - 1));
        text = mantissa + "e" + (negative ? "-" : "") + power;
    }
    return text;
}

std::string tick_label(double value, double step) {
    if (value == 0) return "0";
    double magnitude = std::abs(value);
    if (magnitude >= 1e5 || magnitude < 1e-3) return format_number(value, "%.3g");
    int decimals = std::clamp(static_cast<int>(std::ceil(-std::log10(step) - 1e-9)), 0, 6);
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
    return buffer;
}

// A value range that is never empty: a constant or single value gets room around it.
std::pair<double, double> padded_range(double low, double high, double padding_fraction) {
    if (high - low <= std::max(std::abs(high), std::abs(low)) * 1e-9) {
        double half = std::max(std::abs(low) * 0.1, 0.5);
        return {low - half, high + half};
    }
    double padding = (high - low) * padding_fraction;
    return {low - padding, high + padding};
}

// A plot area with data ranges; y may be log10 of the data (ranges are then in decades).
struct Axes {
    cv::Rect area;
    double x_low = 0, x_high = 1, y_low = 0, y_high = 1;
    bool log_x = false, log_y = false;

    // Positions in axis units (decades on a log axis) to pixel columns and rows.
    double column(double x) const { return area.x + (x - x_low) / (x_high - x_low) * area.width; }
    double row(double y_position) const {
        return area.y + area.height - (y_position - y_low) / (y_high - y_low) * area.height;
    }
    cv::Point2d to_pixel(double x, double y) const {
        return {column(log_x ? std::log10(x) : x), row(log_y ? std::log10(y) : y)};
    }
    // Fixed-point coordinates keep anti-aliased lines smooth at sub-pixel positions.
    static cv::Point fixed(const cv::Point2d& point) {
        return {static_cast<int>(std::lround(point.x * 16)), static_cast<int>(std::lround(point.y * 16))};
    }
};

struct Tick {
    double position;   // in axis units (log10 for a log axis)
    std::string label;
};

std::vector<Tick> linear_axis_ticks(double low, double high, int target_count) {
    std::vector<Tick> ticks;
    std::vector<double> values = linear_ticks(low, high, target_count);
    double step = values.size() > 1 ? values[1] - values[0] : nice_step((high - low) / target_count);
    for (double value : values) ticks.push_back({value, tick_label(value, step)});
    return ticks;
}

// Decades first; 2x and 5x (then every integer multiple) when a range spans too few decades
// to show at least three ticks, and plain linear ticks when it spans less than one step.
std::vector<Tick> log_axis_ticks(double low_decade, double high_decade) {
    const std::vector<std::vector<int>> multiple_sets = {{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
    std::vector<Tick> ticks;
    for (const auto& multiples : multiple_sets) {
        ticks.clear();
        for (int decade = static_cast<int>(std::floor(low_decade)); decade <= static_cast<int>(std::ceil(high_decade));
             ++decade) {
            for (int multiple : multiples) {
                double value = multiple * std::pow(10.0, decade);
                double position = std::log10(value);
                if (position < low_decade - 1e-9 || position > high_decade + 1e-9) continue;
                std::string label;
                if (decade >= -3 && decade <= 4) {
                    label = tick_label(value, std::pow(10.0, decade));
                } else {
                    label = format_number(value, "%.0e");
                }
                ticks.push_back({position, label});
            }
        }
        if (ticks.size() >= 3) break;
    }
    // Many decades: label every other one so the labels do not collide.
    if (ticks.size() > 12) {
        std::vector<Tick> thinned;
        for (size_t i = 0; i < ticks.size(); i += 2) thinned.push_back(ticks[i]);
        ticks = thinned;
    }
    if (ticks.size() < 2) {
        ticks.clear();
        double low = std::pow(10.0, low_decade), high = std::pow(10.0, high_decade);
        for (const Tick& tick : linear_axis_ticks(low, high, 4)) {
            if (tick.position > 0) ticks.push_back({std::log10(tick.position), tick.label});
        }
    }
    return ticks;
}

// Grid lines, the frame, tick marks and tick labels.
void draw_axes(cv::Mat& canvas, const Axes& axes, const std::vector<Tick>& x_ticks, const std::vector<Tick>& y_ticks) {
    const cv::Rect& area = axes.area;
    for (const Tick& tick : x_ticks) {
        int x = static_cast<int>(std::lround(axes.column(tick.position)));
        cv::line(canvas, {x, area.y}, {x, area.y + area.height}, kGridGrey, 1);
        cv::line(canvas, {x, area.y + area.height}, {x, area.y + area.height + 4}, kAxisGrey, 1);
        put_text_centred(canvas, tick.label, x, area.y + area.height + 18, kTickFontScale);
    }
    for (const Tick& tick : y_ticks) {
        int y = static_cast<int>(std::lround(axes.row(tick.position)));
        cv::line(canvas, {area.x, y}, {area.x + area.width, y}, kGridGrey, 1);
        cv::line(canvas, {area.x - 4, y}, {area.x, y}, kAxisGrey, 1);
        cv::Size size = text_size(tick.label, kTickFontScale);
        put_text(canvas, tick.label, {area.x - 7 - size.width, y + size.height / 2}, kTickFontScale);
    }
    cv::rectangle(canvas, area, kAxisGrey, 1);
}

// A boxed legend in the top-right corner of the plot area: a colour swatch and a name per row.
void draw_legend(cv::Mat& canvas, const cv::Rect& area, const std::vector<std::pair<std::string, cv::Scalar>>& rows,
                 bool swatch_is_line) {
    if (rows.empty()) return;
    constexpr int kRowHeight = 16, kSwatch = 18, kPadding = 6;
    int text_width = 0;
    for (const auto& row : rows) text_width = std::max(text_width, text_size(row.first, kTickFontScale).width);
    int width = kPadding * 3 + kSwatch + text_width;
    int height = kPadding * 2 + kRowHeight * static_cast<int>(rows.size()) - 4;
    cv::Rect box(area.x + area.width - width - 8, area.y + 8, width, height);
    cv::rectangle(canvas, box, kWhite, cv::FILLED);
    cv::rectangle(canvas, box, kAxisGrey, 1);
    for (size_t i = 0; i < rows.size(); ++i) {
        int middle = box.y + kPadding + static_cast<int>(i) * kRowHeight + 5;
        int left = box.x + kPadding;
        if (swatch_is_line) {
            cv::line(canvas, {left, middle}, {left + kSwatch, middle}, rows[i].second, 2, cv::LINE_AA);
        } else {
            cv::circle(canvas, {left + kSwatch / 2, middle}, 4, rows[i].second, cv::FILLED, cv::LINE_AA);
        }
        put_text(canvas, rows[i].first, {left + kSwatch + kPadding, middle + 4}, kTickFontScale);
    }
}

at::Tensor as_double_rows(const at::Tensor& points) { return points.detach().cpu().to(torch::kDouble).contiguous(); }

}  // namespace

void write_image_grid(const std::string& path, const at::Tensor& images, const at::Tensor& labels,
                      const std::vector<std::string>& class_names, int64_t columns, int64_t scale) {
    const std::string what = "image grid " + path;
    if (!images.defined() || images.dim() != 4 || (images.size(1) != 1 && images.size(1) != 3) ||
        images.size(0) == 0 || images.size(2) == 0 || images.size(3) == 0) {
        throw UserError(what + ": expected images of shape [N,1|3,H,W] with N > 0, got " +
                        (images.defined() ? shape_text(images) : std::string("none")));
    }
    if (scale < 1) throw UserError(what + ": scale must be at least 1, got " + std::to_string(scale));
    const int64_t count = images.size(0), channels = images.size(1);
    if (labels.defined() && (labels.dim() != 1 || labels.size(0) != count)) {
        throw UserError(what + ": expected labels of shape [" + std::to_string(count) + "], got " + shape_text(labels));
    }
    if (columns <= 0) columns = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(count))));
    columns = std::min(columns, count);
    const int64_t rows = (count + columns - 1) / columns;
    const int cell_width = static_cast<int>(images.size(3) * scale);
    const int cell_height = static_cast<int>(images.size(2) * scale);
    const int caption_height = labels.defined() ? kCaptionHeight : 0;
    const int width = static_cast<int>(columns) * (cell_width + kGridGap) - kGridGap;
    const int height = static_cast<int>(rows) * (caption_height + cell_height + kGridGap) - kGridGap;

    // [-1,1] -> 0..255; NaN (a diverged sample) shows as black instead of undefined bytes.
    at::Tensor pixels = ((torch::nan_to_num(images.detach().cpu().to(torch::kFloat), -1.0).clamp(-1, 1) + 1) * 127.5)
                            .round()
                            .to(torch::kUInt8)
                            .permute({0, 2, 3, 1})
                            .contiguous();
    at::Tensor label_values = labels.defined() ? labels.detach().cpu().to(torch::kLong).contiguous() : at::Tensor();

    const int mat_type = channels == 1 ? CV_8UC1 : CV_8UC3;
    cv::Mat canvas(height, width, mat_type, kWhite);
    for (int64_t i = 0; i < count; ++i) {
        const int x = static_cast<int>(i % columns) * (cell_width + kGridGap);
        const int y = static_cast<int>(i / columns) * (caption_height + cell_height + kGridGap);
        cv::Mat image(static_cast<int>(images.size(2)), static_cast<int>(images.size(3)), mat_type,
                      pixels[i].data_ptr<uint8_t>());
        cv::Mat cell;
        cv::resize(image, cell, cv::Size(cell_width, cell_height), 0, 0, cv::INTER_NEAREST);
        if (channels == 3) cv::cvtColor(cell, cell, cv::COLOR_RGB2BGR);
        cell.copyTo(canvas(cv::Rect(x, y + caption_height, cell_width, cell_height)));
        if (label_values.defined()) {
            int64_t label = label_values.data_ptr<int64_t>()[i];
            std::string name = label >= 0 && label < static_cast<int64_t>(class_names.size())
                                   ? class_names[static_cast<size_t>(label)]
                                   : std::to_string(label);
            name = fit_text(name, cell_width - 2, kCaptionFontScale);
            put_text_centred(canvas, name, x + cell_width / 2, y + caption_height - 4, kCaptionFontScale);
        }
    }
    write_image_atomically(path, canvas);
}

void write_scatter(const std::string& path, const at::Tensor& points, const at::Tensor& labels,
                   const at::Tensor& reference, const std::string& title) {
    const std::string what = "scatter plot " + path;
    if (!points.defined() || points.dim() != 2 || points.size(1) != 2 || points.size(0) == 0) {
        throw UserError(what + ": expected points of shape [N,2] with N > 0, got " +
                        (points.defined() ? shape_text(points) : std::string("none")));
    }
    const int64_t count = points.size(0);
    if (labels.defined() && (labels.dim() != 1 || labels.size(0) != count)) {
        throw UserError(what + ": expected labels of shape [" + std::to_string(count) + "], got " + shape_text(labels));
    }
    if (reference.defined() && (reference.dim() != 2 || reference.size(1) != 2)) {
        throw UserError(what + ": expected reference points of shape [M,2], got " + shape_text(reference));
    }
    at::Tensor xy = as_double_rows(points);
    at::Tensor reference_xy = reference.defined() ? as_double_rows(reference) : torch::zeros({0, 2}, torch::kDouble);
    at::Tensor label_values = labels.defined() ? labels.detach().cpu().to(torch::kLong).contiguous() : at::Tensor();

    double x_low = INFINITY, x_high = -INFINITY, y_low = INFINITY, y_high = -INFINITY;
    for (const at::Tensor* rows : {&xy, &reference_xy}) {
        const double* data = rows->data_ptr<double>();
        for (int64_t i = 0; i < rows->size(0); ++i) {
            double x = data[2 * i], y = data[2 * i + 1];
            if (!std::isfinite(x) || !std::isfinite(y)) continue;
            x_low = std::min(x_low, x), x_high = std::max(x_high, x);
            y_low = std::min(y_low, y), y_high = std::max(y_high, y);
        }
    }
    if (!std::isfinite(x_low)) throw UserError(what + ": none of the points is finite");

    // Equal scales on both axes, so circles in the data look like circles.
    constexpr int kSize = 512, kLeft = 58, kTop = 36, kPlot = 430;
    auto [x0, x1] = padded_range(x_low, x_high, 0.05);
    auto [y0, y1] = padded_range(y_low, y_high, 0.05);
    double span = std::max(x1 - x0, y1 - y0);
    double x_middle = (x0 + x1) / 2, y_middle = (y0 + y1) / 2;
    Axes axes;
    axes.area = cv::Rect(kLeft, kTop, kPlot, kPlot);
    axes.x_low = x_middle - span / 2, axes.x_high = x_middle + span / 2;
    axes.y_low = y_middle - span / 2, axes.y_high = y_middle + span / 2;

    cv::Mat canvas(kSize, kSize, CV_8UC3, kWhite);
    draw_axes(canvas, axes, linear_axis_ticks(axes.x_low, axes.x_high, 6),
              linear_axis_ticks(axes.y_low, axes.y_high, 6));

    auto draw_points = [&](const at::Tensor& rows, double radius, auto colour_of) {
        const double* data = rows.data_ptr<double>();
        for (int64_t i = 0; i < rows.size(0); ++i) {
            double x = data[2 * i], y = data[2 * i + 1];
            if (!std::isfinite(x) || !std::isfinite(y)) continue;
            cv::circle(canvas, Axes::fixed(axes.to_pixel(x, y)), static_cast<int>(radius * 16), colour_of(i),
                       cv::FILLED, cv::LINE_AA, 4);
        }
    };
    draw_points(reference_xy, 1.5, [](int64_t) { return kReferenceGrey; });
    std::map<int64_t, cv::Scalar> seen_labels;
    draw_points(xy, 2.5, [&](int64_t i) {
        if (!label_values.defined()) return kPalette[0];
        int64_t label = label_values.data_ptr<int64_t>()[i];
        return seen_labels[label] = palette_colour(label);
    });
    cv::rectangle(canvas, axes.area, kAxisGrey, 1);
    // A legend only when each label has its own colour.
    if (!seen_labels.empty() && static_cast<int64_t>(seen_labels.size()) <= kPaletteSize) {
        std::vector<std::pair<std::string, cv::Scalar>> rows;
        for (const auto& [label, colour] : seen_labels) rows.emplace_back(std::to_string(label), colour);
        draw_legend(canvas, axes.area, rows, false);
    }
    if (!title.empty()) {
        put_text_centred(canvas, fit_text(title, kSize - 10, kTitleFontScale), kSize / 2, 24, kTitleFontScale);
    }
    write_image_atomically(path, canvas);
}

void write_line_plot(const std::string& path, const std::vector<Series>& series, const std::string& title,
                     const std::string& x_label, bool log_y, bool log_x) {
    const std::string what = "line plot " + path;
    if (series.empty()) throw UserError(what + ": expected at least one series, got none");
    auto usable = [log_x, log_y](double x, double y) {
        return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0) && (!log_x || x > 0);
    };
    double x_low = INFINITY, x_high = -INFINITY, y_low = INFINITY, y_high = -INFINITY;
    for (const Series& line : series) {
        if (line.x.size() != line.y.size()) {
            throw UserError(what + ": series '" + line.name + "' has " + std::to_string(line.x.size()) +
                            " x values and " + std::to_string(line.y.size()) + " y values; expected as many of each");
        }
        for (size_t i = 0; i < line.x.size(); ++i) {
            if (!usable(line.x[i], line.y[i])) continue;
            double x = log_x ? std::log10(line.x[i]) : line.x[i];
            double y = log_y ? std::log10(line.y[i]) : line.y[i];
            x_low = std::min(x_low, x), x_high = std::max(x_high, x);
            y_low = std::min(y_low, y), y_high = std::max(y_high, y);
        }
    }
    if (!std::isfinite(x_low)) {
        throw UserError(what + ": no point to draw (every value is empty, NaN or infinite" +
                        std::string(log_x || log_y ? ", or not positive on a log scale)" : ")"));
    }

    constexpr int kWidth = 800, kHeight = 500, kLeft = 72, kRight = 24, kTop = 40, kBottom = 56;
    Axes axes;
    axes.area = cv::Rect(kLeft, kTop, kWidth - kLeft - kRight, kHeight - kTop - kBottom);
    axes.log_x = log_x;
    axes.log_y = log_y;
    std::tie(axes.x_low, axes.x_high) = padded_range(x_low, x_high, 0.02);
    std::tie(axes.y_low, axes.y_high) = padded_range(y_low, y_high, 0.05);

    cv::Mat canvas(kHeight, kWidth, CV_8UC3, kWhite);
    std::vector<Tick> y_ticks =
        log_y ? log_axis_ticks(axes.y_low, axes.y_high) : linear_axis_ticks(axes.y_low, axes.y_high, 6);
    std::vector<Tick> x_ticks =
        log_x ? log_axis_ticks(axes.x_low, axes.x_high) : linear_axis_ticks(axes.x_low, axes.x_high, 8);
    draw_axes(canvas, axes, x_ticks, y_ticks);

    std::vector<std::pair<std::string, cv::Scalar>> legend;
    for (size_t s = 0; s < series.size(); ++s) {
        const Series& line = series[s];
        const cv::Scalar colour = palette_colour(static_cast<int64_t>(s));
        legend.emplace_back(line.name, colour);
        // Unusable points break the line; a point with no usable neighbour is drawn as a dot.
        std::vector<cv::Point> run;
        auto flush = [&]() {
            if (run.size() == 1) cv::circle(canvas, run[0], 3 * 16, colour, cv::FILLED, cv::LINE_AA, 4);
            if (run.size() > 1) cv::polylines(canvas, run, false, colour, 2, cv::LINE_AA, 4);
            run.clear();
        };
        for (size_t i = 0; i < line.x.size(); ++i) {
            if (!usable(line.x[i], line.y[i])) {
                flush();
                continue;
            }
            run.push_back(Axes::fixed(axes.to_pixel(line.x[i], line.y[i])));
        }
        flush();
    }
    cv::rectangle(canvas, axes.area, kAxisGrey, 1);
    draw_legend(canvas, axes.area, legend, true);
    if (!title.empty()) {
        put_text_centred(canvas, fit_text(title, kWidth - 20, kTitleFontScale), kWidth / 2, 26, kTitleFontScale);
    }
    std::string x_text = x_label;
    const char* scales = log_x && log_y ? "x and y" : log_x ? "x" : log_y ? "y" : nullptr;
    if (scales) x_text += (x_text.empty() ? "(" : "   (") + std::string(scales) + ": log scale)";
    if (!x_text.empty()) {
        put_text_centred(canvas, x_text, axes.area.x + axes.area.width / 2, kHeight - 12, kTickFontScale + 0.05);
    }
    write_image_atomically(path, canvas);
}

void plot_log_curves(const std::string& log_path, const std::string& png_path) {
    std::ifstream in(log_path);
    if (!in) throw UserError("cannot read " + log_path + ": " + std::strerror(errno));
    std::vector<Series> series;
    std::map<std::string, size_t> index_of;
    std::string text;
    for (int64_t line_number = 1; std::getline(in, text); ++line_number) {
        if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
        nlohmann::json record;
        try {
            record = nlohmann::json::parse(text);
        } catch (const nlohmann::json::parse_error& error) {
            throw UserError(log_path + ":" + std::to_string(line_number) + ": not a JSON line (error at column " +
                            std::to_string(error.byte) + ")");
        }
        if (!record.is_object()) {
            throw UserError(log_path + ":" + std::to_string(line_number) + ": expected a JSON object, got " +
                            record.type_name());
        }
        // Records without a step (run headers, final summaries) have no place on the x axis.
        auto step = record.find("step");
        if (step == record.end() || !step->is_number()) continue;
        for (const auto& [key, value] : record.items()) {
            if (key.find("loss") == std::string::npos || !value.is_number()) continue;
            auto [slot, inserted] = index_of.emplace(key, series.size());
            if (inserted) series.push_back(Series{key, {}, {}});
            series[slot->second].x.push_back(step->get<double>());
            series[slot->second].y.push_back(value.get<double>());
        }
    }
    if (in.bad()) throw UserError("cannot read " + log_path + ": " + std::strerror(errno));
    if (series.empty()) {
        throw UserError(log_path + " has no numeric field whose name contains \"loss\" on a line with a \"step\"");
    }
    // A log scale once losses span two decades or more; it needs every value positive.
    double low = INFINITY, high = -INFINITY;
    for (const Series& line : series) {
        for (double y : line.y) {
            if (!std::isfinite(y)) continue;
            low = std::min(low, y), high = std::max(high, y);
        }
    }
    bool log_y = low > 0 && std::isfinite(high) && high / low >= 100;
    std::string run_name = fs::path(log_path).parent_path().filename().string();
    write_line_plot(png_path, series, run_name.empty() ? "loss curves" : "loss curves: " + run_name, "step", log_y);
}

}  // namespace onestep
