// Cumulative volume caps: bytes and individuals per key over a rolling window.
//
// GigaFile便 and similar services split a file into ~50 MB requests, so a
// per-request limit never fires. The tracker sums what each user sent (per
// destination, or in total) over a rolling window and refuses what would go
// past a cap. Check-and-add is atomic, so parallel chunks cannot all slip by.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace mamori::egress {

struct CapCheck {
  std::string key;  // e.g. "hourly|alice|gigafile.nu"
  int64_t window_seconds = 0;
  uint64_t max_bytes = 0;        // 0 = unlimited
  uint64_t max_individuals = 0;  // 0 = unlimited
  std::string name;              // the cap's name, for the reason
};

struct CapUsage {
  uint64_t bytes = 0;
  uint64_t individuals = 0;
};

class VolumeTracker {
 public:
  explicit VolumeTracker(const Clock* clock, size_t max_keys = 1'000'000)
      : clock_(clock), max_keys_(max_keys) {}

  // Usage of `key` within the last window_seconds.
  CapUsage Usage(const std::string& key, int64_t window_seconds);

  // If adding (bytes, individuals) keeps every check within its cap, records
  // it under every key and returns OK. Otherwise records nothing and returns
  // PermissionDenied naming the first cap exceeded; *exceeded gets its index.
  // ResourceExhausted if the tracker is full (fail closed).
  Status CheckAndAdd(const std::vector<CapCheck>& checks, uint64_t bytes, uint64_t individuals,
                     size_t* exceeded = nullptr);

  // Checks without recording (for an early refusal before the body arrives).
  Status Check(const std::vector<CapCheck>& checks, uint64_t bytes, uint64_t individuals,
               size_t* exceeded = nullptr);

  size_t key_count();

 private:
  struct Entry {
    int64_t second;
    uint64_t bytes;
    uint64_t individuals;
  };
  struct Series {
    std::deque<Entry> entries;
    int64_t window = 0;
    CapUsage total;
  };
  void Prune(Series& s, int64_t now_s);
  Status CheckLocked(const std::vector<CapCheck>& checks, uint64_t bytes, uint64_t individuals,
                     size_t* exceeded, int64_t now_s);
  const Clock* clock_;
  size_t max_keys_;
  std::mutex mu_;
  std::unordered_map<std::string, Series> series_;
  int64_t last_sweep_ = 0;
};

}  // namespace mamori::egress
