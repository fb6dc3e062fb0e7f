// Postfix's own queue tools (postqueue, postsuper), run without a shell.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace mamori::mail {

struct QueueEntry {
  std::string queue_name;  // "hold", "deferred", "active", "incoming"
  std::string queue_id;
  int64_t arrival_time = 0;  // seconds since the epoch
  uint64_t message_size = 0;
  std::string sender;
  std::vector<std::string> recipients;
};

// Parses `postqueue -j` output (one JSON object per line).
Result<std::vector<QueueEntry>> ParsePostqueueJson(const std::string& text);

// True for a Postfix queue id (short or long form): [0-9A-Za-z]{5,40}.
bool ValidQueueId(const std::string& id);

class PostfixTools {
 public:
  // config_dir: the instance's config directory ("" = the default instance).
  explicit PostfixTools(std::string config_dir = "", std::string sbin_dir = "/usr/sbin")
      : config_dir_(std::move(config_dir)), sbin_(std::move(sbin_dir)) {}
  Result<std::vector<QueueEntry>> ListQueue() const;
  // postsuper -H ID, then postqueue -i ID so it is delivered now.
  Status Release(const std::string& queue_id) const;
  // postsuper -d ID hold
  Status DeleteHeld(const std::string& queue_id) const;

 private:
  Result<std::string> Run(std::vector<std::string> args) const;
  std::string config_dir_, sbin_;
};

// Runs argv[0] with arguments (no shell), capturing stdout and stderr up to
// max_output bytes each. A non-zero exit is kUnavailable with stderr attached.
// `input` (at most 60,000 bytes, so it fits in the pipe) is its stdin.
Result<std::string> RunProgram(const std::vector<std::string>& argv, size_t max_output = 64 << 20,
                               std::string_view input = {});

}  // namespace mamori::mail
