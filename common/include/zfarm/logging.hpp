// Logging to stderr (never stdout: results may go there) and counted drops of
// bad input, logged once per sender so a flood of garbage cannot flood the log.
//
// drop_counter is owned by the thread that owns the receiving socket.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

namespace zfarm {

// Sets up the default spdlog logger: stderr, "HH:MM:SS.mmm PROGRAM LEVEL msg".
// verbosity: -1 quiet (errors only), 0 info, 1 debug, 2 trace.
void init_logging(std::string_view program, int verbosity);

class drop_counter {
  public:
    // Counts one dropped frame; logs a warning the first time `sender` sends
    // something bad (at most k_max_senders distinct senders are remembered).
    void drop(std::string_view socket, std::string_view sender, std::string_view reason);
    std::uint64_t count() const noexcept { return count_; }

  private:
    static constexpr std::size_t k_max_senders = 1024;
    std::uint64_t count_ = 0;
    std::unordered_set<std::string> warned_;
};

}  // namespace zfarm
