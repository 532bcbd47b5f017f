#include "reorder_buffer.hpp"

namespace zfarm::sink {

bool reorder_buffer::hold(proto::result&& r) {
    const std::uint64_t id = r.id;
    if (held_.contains(id)) return false;
    const std::size_t n = footprint(r);
    held_.emplace(id, std::move(r));
    bytes_ += n;
    return true;
}

std::vector<std::uint64_t> reorder_buffer::ids() const {
    std::vector<std::uint64_t> out;
    out.reserve(held_.size());
    for (const auto& [id, r] : held_)
        out.push_back(id);
    return out;
}

std::size_t reorder_buffer::footprint(const proto::result& r) noexcept {
    // The map node and the strings' heap buffers.
    return sizeof(proto::result) + 64 + r.job.capacity() + r.worker.capacity() +
           r.output.capacity() + r.error.capacity() + r.kind.capacity();
}

}  // namespace zfarm::sink
