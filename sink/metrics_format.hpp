// /metrics: a status_snapshot in the Prometheus text exposition format,
// version 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/):
// each metric family's # HELP and # TYPE lines, then its samples
// `name{label="value",...} value`; units in the names (_seconds, _total).
#pragma once

#include <string>
#include <string_view>

#include "status_snapshot.hpp"

namespace zfarm::sink {

inline constexpr std::string_view k_metrics_content_type =
    "text/plain; version=0.0.4; charset=utf-8";

// A label value as the format wants it: backslash, double quote and line
// feed escaped as \\, \" and \n; everything else as it is.
std::string escape_label_value(std::string_view v);

std::string format_metrics(const status_snapshot& s);

}  // namespace zfarm::sink
