// Cumulative volume caps: bytes and individuals per key over a rolling window.
//
// GigaFile便 and similar services split a file into ~50 MB requests, so a
// per-request limit never fires. The tracker sums what each user sent (per
// destination, or in total) over a rolling window and refuses what would go
// past a cap. Check-and-add is atomic, so parallel chunks cannot all slip by.
//
// Persistence: a tracker opened with a journal (VolumeTracker::Open) appends
// every recorded addition to an append-only file and returns from CheckAndAdd
// only once it is written there. A restart, a crash or kill -9 therefore never
// forgets what a user already sent within the window (written bytes survive
// the process). fdatasync, for power loss, runs either before CheckAndAdd
// returns (sync_interval_ms 0; shared by concurrent callers) or for every
// batch of decisions at most sync_interval_ms later (a background thread). The file is compacted
// (rewritten from the live windows, then renamed over) when it grows, so its size follows the
// active windows. Format and failure handling: docs/egress.md "Cap persistence".
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
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

struct VolumeJournalOptions {
  std::string path;  // created (0600) if absent; one process at a time (flock)
  // Compact when the file is larger than this and than twice its size after
  // the previous compaction.
  uint64_t compact_min_bytes = 4ull << 20;
  // Hard budget: if the live windows alone need more, additions fail
  // (ResourceExhausted) and the caller blocks.
  uint64_t max_file_bytes = 256ull << 20;
  // 0: fdatasync before each CheckAndAdd returns (group commit; costs a sync
  // per upload). N > 0: fdatasync each batch of decisions within N ms, so a
  // power loss (not a crash or kill -9) can lose the last N ms of counts.
  int64_t sync_interval_ms = 100;
};

class VolumeTracker {
 public:
  // In memory only (tests, and tools that do not need restarts).
  explicit VolumeTracker(const Clock* clock, size_t max_keys = 1'000'000);
  ~VolumeTracker();
  VolumeTracker(const VolumeTracker&) = delete;
  VolumeTracker& operator=(const VolumeTracker&) = delete;

  // Opens (or creates) the journal, replays the entries still inside their
  // window and truncates a torn last record (a crash mid-append). Errors:
  // Unavailable (cannot open or lock: another process holds it), DataLoss
  // (a damaged record before the end: the message says how to recover),
  // ResourceExhausted (more keys than max_keys).
  static Result<std::unique_ptr<VolumeTracker>> Open(const Clock* clock,
                                                     const VolumeJournalOptions& options,
                                                     size_t max_keys = 1'000'000);

  // Usage of `key` within the last window_seconds.
  CapUsage Usage(const std::string& key, int64_t window_seconds);

  // If adding (bytes, individuals) keeps every check within its cap, records
  // it under every key and returns OK (durably, with a journal). Otherwise
  // records nothing and returns PermissionDenied naming the first cap
  // exceeded; *exceeded gets its index. ResourceExhausted if the tracker is
  // full; Unavailable if the journal cannot be written (from then on every
  // addition fails until restart). Callers block on any error (fail closed).
  Status CheckAndAdd(const std::vector<CapCheck>& checks, uint64_t bytes, uint64_t individuals,
                     size_t* exceeded = nullptr);

  // Checks without recording (for an early refusal before the body arrives).
  Status Check(const std::vector<CapCheck>& checks, uint64_t bytes, uint64_t individuals,
               size_t* exceeded = nullptr);

  size_t key_count();
  // Journal size in bytes (0 without a journal); for tests and stats.
  uint64_t journal_bytes();
  // Rewrites the journal from the live windows now (normally automatic).
  Status Compact();

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
  struct Journal;
  void Prune(Series& s, int64_t now_s);
  Status CheckLocked(const std::vector<CapCheck>& checks, uint64_t bytes, uint64_t individuals,
                     size_t* exceeded, int64_t now_s);
  void AddLocked(const std::string& key, int64_t window, int64_t second, uint64_t bytes,
                 uint64_t individuals);
  Status Sync(uint64_t seq);
  void SyncLoop();
  Status CompactLocked();  // sync_mu_ held

  const Clock* clock_;
  size_t max_keys_;
  std::mutex mu_;  // the series and the pending journal bytes
  std::unordered_map<std::string, Series> series_;
  int64_t last_sweep_ = 0;
  std::unique_ptr<Journal> journal_;
};

}  // namespace mamori::egress
