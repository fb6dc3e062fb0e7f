// Injected time, so tests that depend on time are exact.
#pragma once

#include <chrono>
#include <cstdint>

namespace mamori {

// Thread-safe. Implementations must be monotonic-agnostic: NowMicros() is wall time.
class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds since the Unix epoch (UTC).
  virtual int64_t NowMicros() const = 0;
  // The process-wide real clock.
  static const Clock& Real();
};

// A clock that only moves when told to; for tests.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_micros = 0) : now_(start_micros) {}
  int64_t NowMicros() const override { return now_; }
  void Advance(int64_t micros) { now_ += micros; }
  void Set(int64_t micros) { now_ = micros; }

 private:
  int64_t now_;
};

}  // namespace mamori
