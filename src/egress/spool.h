// A bounded body spool: memory up to a limit, then an unlinked temp file.
//
// Used when the verdict must wait for the whole body (to block it) but the
// body must then be sent back to Squid unchanged, and for containers held
// for extraction. Never grows past max_bytes: exceeding it is
// ResourceExhausted, and the caller fails closed. Memory use also counts
// against a shared MemoryBudget when one is given: when the budget is used
// up, the spool moves to its file (disk_over_budget) or fails with
// ResourceExhausted.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "egress/memory_budget.h"

namespace mamori::egress {

class Spool {
 public:
  Spool(uint64_t memory_limit, uint64_t max_bytes, std::string dir, MemoryBudget* budget = nullptr,
        bool disk_over_budget = true)
      : memory_limit_(memory_limit),
        max_bytes_(max_bytes),
        dir_(std::move(dir)),
        budget_(budget),
        disk_over_budget_(disk_over_budget) {}
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  Status Append(std::string_view data);
  // Copies up to `n` bytes from `offset` into buf; returns the count (0 at end).
  Result<size_t> Read(uint64_t offset, char* buf, size_t n) const;
  // The whole content as one view (the file is memory-mapped, read-only);
  // valid until the next Append or Clear.
  Result<std::string_view> View();
  uint64_t size() const { return size_; }
  bool on_disk() const { return fd_ >= 0; }
  // Empties the spool (closes the file, returns memory to the budget);
  // reusable for the next body.
  void Clear();

 private:
  Status MoveToFile();
  void Unmap();
  uint64_t memory_limit_, max_bytes_;
  std::string dir_;
  MemoryBudget* budget_;
  bool disk_over_budget_;
  uint64_t reserved_ = 0;  // bytes of budget held
  std::string mem_;
  int fd_ = -1;
  uint64_t size_ = 0;
  void* map_ = nullptr;
  size_t map_len_ = 0;
};

}  // namespace mamori::egress
