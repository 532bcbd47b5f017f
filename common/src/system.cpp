#include "zfarm/system.hpp"

#include <unistd.h>

#include <cstring>

namespace zfarm {

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
    return buf;
}

std::string errno_text(int e) {
    const char* d = strerrordesc_np(e);
    return d ? d : "error " + std::to_string(e);
}

}  // namespace zfarm
