#include "failure_halt.hpp"

namespace zfarm::ventilator {

bool failure_halt::on_failed(const std::vector<std::uint64_t>& failed) {
    if (!enabled_ || failed.empty()) return false;
    const bool starts = !first_;
    if (starts) first_ = failed.front();
    failed_.insert(failed.begin(), failed.end());
    return starts;
}

}  // namespace zfarm::ventilator
