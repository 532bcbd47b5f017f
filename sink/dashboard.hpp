// The dashboard page served at `/`: sink/dashboard.html, embedded at build
// time (sink/CMakeLists.txt generates dashboard_html.cpp from it).
#pragma once

#include <string_view>

namespace zfarm::sink {

std::string_view dashboard_html();

}  // namespace zfarm::sink
