#pragma once
// Pending work ordered by (tick, stage): deliveries of delayed spikes, predicted threshold
// crossings, scheduled source spikes, population updates and readout observations.
#include <cstdint>
#include <queue>
#include <vector>

#include "sim/time.hpp"

namespace quantal {

struct Event {
    enum class Kind : std::uint8_t {
        deliver, // a delayed spike reaches its projection's synapses (index = projection)
        wake,    // a neuron is due without input: predicted crossing or source spike (index = population)
        update,  // a population received zero-delay input this tick (index = population)
        observe, // read the readout populations after every stage of this tick
    };
    Tick tick;
    std::uint32_t stage;
    Kind kind;
    std::uint32_t index;
    std::uint32_t neuron;
    std::uint64_t group = 0; // sparse: the delay group of the source's row

};

class EventQueue {
public:
    void push(const Event& e) { heap_.push(e); }
    bool empty() const { return heap_.empty(); }
    const Event& top() const { return heap_.top(); }
    void pop() { heap_.pop(); }
    void clear() { heap_ = {}; }
    std::size_t size() const { return heap_.size(); }

private:
    struct Later {
        bool operator()(const Event& a, const Event& b) const {
            return a.tick != b.tick ? a.tick > b.tick : a.stage > b.stage;
        }
    };
    std::priority_queue<Event, std::vector<Event>, Later> heap_;
};

} // namespace quantal
