// One byte budget for every body the service holds in memory at once.
//
// Each transaction may hold its body (the spool) and a container waiting for
// extraction (zip, xlsx, PDF) in memory; many concurrent large uploads would
// otherwise add up to more than the machine has. Holders reserve bytes here
// before they grow in memory. When the budget is used up, a holder either
// moves to a temporary file or fails, as the destination category says
// (`over_memory_budget: disk | block`). Thread-safe, lock-free.
#pragma once

#include <atomic>
#include <cstdint>

namespace mamori::egress {

class MemoryBudget {
 public:
  explicit MemoryBudget(uint64_t limit) : limit_(limit) {}
  // Reserves n bytes if that keeps the total within the limit.
  bool TryReserve(uint64_t n) {
    const uint64_t lim = limit();
    uint64_t used = used_.load(std::memory_order_relaxed);
    do {
      if (used > lim || n > lim - used) return false;
    } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
    return true;
  }
  void Release(uint64_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }
  // A lower limit takes effect for new reservations; existing ones stay.
  void set_limit(uint64_t limit) { limit_.store(limit, std::memory_order_relaxed); }
  uint64_t limit() const { return limit_.load(std::memory_order_relaxed); }
  uint64_t used() const { return used_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> limit_;
  std::atomic<uint64_t> used_{0};
};

}  // namespace mamori::egress
