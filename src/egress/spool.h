// A bounded body spool: memory up to a limit, then an unlinked temp file.
//
// Used when the verdict must wait for the whole body (to block it) but the
// body must then be sent back to Squid unchanged. Never grows past max_bytes:
// exceeding it is ResourceExhausted, and the caller fails closed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mamori::egress {

class Spool {
 public:
  Spool(uint64_t memory_limit, uint64_t max_bytes, std::string dir)
      : memory_limit_(memory_limit), max_bytes_(max_bytes), dir_(std::move(dir)) {}
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  Status Append(std::string_view data);
  // Copies up to `n` bytes from `offset` into buf; returns the count (0 at end).
  Result<size_t> Read(uint64_t offset, char* buf, size_t n) const;
  uint64_t size() const { return size_; }
  bool on_disk() const { return fd_ >= 0; }
  // Empties the spool (closes the file); reusable for the next body.
  void Clear();

 private:
  uint64_t memory_limit_, max_bytes_;
  std::string dir_;
  std::string mem_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace mamori::egress
