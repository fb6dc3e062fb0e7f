// The file layer under the audit log, injectable like leveldb's Env.
//
// Production code uses Env::Default() (POSIX). Tests wrap it in a
// FaultInjectionEnv to make writes or syncs fail with ENOSPC/EIO at an exact
// point, which is how the fail-closed behaviour is tested deterministically.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mamori::audit {

// A file opened for appending. Not thread-safe; the Log serialises access.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends all of data (retries short writes). On error some prefix of data
  // may have reached the file.
  virtual Status Append(std::string_view data) = 0;
  // Makes everything appended so far durable (fdatasync).
  virtual Status Sync() = 0;
  // Cuts the file to `size` bytes (used to drop a torn tail on recovery).
  virtual Status Truncate(uint64_t size) = 0;
  virtual Status Close() = 0;
};

// A file read from the start. Not thread-safe.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Reads up to n bytes into buf; returns 0 at end of file.
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
};

class Env {
 public:
  virtual ~Env() = default;
  virtual Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) = 0;
  // Opens path for appending, creating it with `mode` if absent. The parent
  // directory is fsynced when the file is created.
  virtual Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path,
                                                                  int mode) = 0;
  virtual bool FileExists(const std::string& path) = 0;
  // The process-wide POSIX implementation.
  static Env* Default();
};

// Wraps another Env and injects failures. Thread-safe.
class FaultInjectionEnv : public Env {
 public:
  explicit FaultInjectionEnv(Env* base) : base_(base) {}

  // After `bytes_ok` more bytes have been appended successfully, every Append
  // fails with errno `err` (e.g. ENOSPC, EIO); a write straddling the limit
  // writes the allowed prefix first (a short write, as a full disk does).
  void FailWritesAfter(uint64_t bytes_ok, int err);
  // Every Sync fails with errno `err` (e.g. EIO) from now on.
  void FailSyncs(int err);
  // Stops injecting failures.
  void Heal();

  uint64_t syncs() const { return syncs_.load(); }

  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path,
                                                          int mode) override;
  bool FileExists(const std::string& path) override;

 private:
  friend class FaultyWritableFile;
  Env* base_;
  std::mutex mu_;
  bool write_limit_set_ = false;
  uint64_t write_budget_ = 0;
  int write_errno_ = 0;
  int sync_errno_ = 0;
  std::atomic<uint64_t> syncs_{0};
};

// Wraps another Env and holds every Sync until Release(), so a test can look
// at a log, or stop a server, while a commit is in flight. Thread-safe.
class GatedSyncEnv : public Env {
 public:
  explicit GatedSyncEnv(Env* base) : base_(base) {}
  // Lets every held and later Sync through.
  void Release();
  // Waits (up to 30 s) until `n` syncs have started; false on timeout.
  bool WaitSyncsStarted(uint64_t n);
  uint64_t started();

  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path,
                                                          int mode) override;
  bool FileExists(const std::string& path) override;

 private:
  friend class GatedWritableFile;
  Env* base_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  uint64_t started_ = 0;
};

}  // namespace mamori::audit
