// SIGINT/SIGTERM handling shared by the three programs.
//
// install_stop_handlers() makes SIGINT and SIGTERM increment a counter instead
// of killing the process (no SA_RESTART, so blocking calls return EINTR). Main
// loops poll with short timeouts and read stop_requests(): 1 means "finish
// gracefully", 2 or more means "abandon what you are doing". Async-signal-safe.
#pragma once

namespace zfarm {

void install_stop_handlers();
int stop_requests() noexcept;
// For tests and embedding: behave as if a signal had arrived.
void request_stop() noexcept;

}  // namespace zfarm
