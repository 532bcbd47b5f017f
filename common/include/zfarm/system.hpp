// Small operating-system helpers shared by the programs. Thread-safe.
#pragma once

#include <string>

namespace zfarm {

// This host's name (gethostname), or "localhost" when it has none.
std::string host_name();

// The description of errno value `e` ("No such file or directory"), without
// strerror's shared buffer.
std::string errno_text(int e);

}  // namespace zfarm
