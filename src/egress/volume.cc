#include "egress/volume.h"

namespace mamori::egress {

void VolumeTracker::Prune(Series& s, int64_t now_s) {
  while (!s.entries.empty() && s.entries.front().second <= now_s - s.window) {
    s.total.bytes -= s.entries.front().bytes;
    s.total.individuals -= s.entries.front().individuals;
    s.entries.pop_front();
  }
}

CapUsage VolumeTracker::Usage(const std::string& key, int64_t window_seconds) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = series_.find(key);
  if (it == series_.end()) return {};
  it->second.window = window_seconds;
  Prune(it->second, clock_->NowMicros() / 1'000'000);
  return it->second.total;
}

Status VolumeTracker::CheckLocked(const std::vector<CapCheck>& checks, uint64_t bytes,
                                  uint64_t individuals, size_t* exceeded, int64_t now_s) {
  for (size_t i = 0; i < checks.size(); ++i) {
    const CapCheck& c = checks[i];
    CapUsage u;
    auto it = series_.find(c.key);
    if (it != series_.end()) {
      it->second.window = c.window_seconds;
      Prune(it->second, now_s);
      u = it->second.total;
    }
    bool over_bytes = c.max_bytes > 0 && u.bytes + bytes > c.max_bytes;
    bool over_people = c.max_individuals > 0 && u.individuals + individuals > c.max_individuals;
    if (over_bytes || over_people) {
      if (exceeded) *exceeded = i;
      return PermissionDenied(
          "cap '" + c.name + "' exceeded: " +
          (over_bytes ? std::to_string(u.bytes) + " + " + std::to_string(bytes) + " bytes > " +
                            std::to_string(c.max_bytes)
                      : std::to_string(u.individuals) + " + " + std::to_string(individuals) +
                            " individuals > " + std::to_string(c.max_individuals)) +
          " within " + std::to_string(c.window_seconds) + "s");
    }
  }
  return Status::Ok();
}

Status VolumeTracker::Check(const std::vector<CapCheck>& checks, uint64_t bytes,
                            uint64_t individuals, size_t* exceeded) {
  std::lock_guard<std::mutex> l(mu_);
  return CheckLocked(checks, bytes, individuals, exceeded, clock_->NowMicros() / 1'000'000);
}

Status VolumeTracker::CheckAndAdd(const std::vector<CapCheck>& checks, uint64_t bytes,
                                  uint64_t individuals, size_t* exceeded) {
  std::lock_guard<std::mutex> l(mu_);
  int64_t now_s = clock_->NowMicros() / 1'000'000;
  RETURN_IF_ERROR(CheckLocked(checks, bytes, individuals, exceeded, now_s));
  // Sweep empty series now and then so memory follows the active users.
  if (now_s - last_sweep_ >= 60) {
    last_sweep_ = now_s;
    for (auto it = series_.begin(); it != series_.end();) {
      Prune(it->second, now_s);
      it = it->second.entries.empty() ? series_.erase(it) : std::next(it);
    }
  }
  size_t new_keys = 0;
  for (const auto& c : checks) new_keys += series_.count(c.key) ? 0 : 1;
  if (series_.size() + new_keys > max_keys_) {
    return ResourceExhausted("volume tracker holds " + std::to_string(series_.size()) +
                             " keys, its budget; raise it or shorten cap windows");
  }
  for (const auto& c : checks) {
    Series& s = series_[c.key];
    s.window = c.window_seconds;
    if (!s.entries.empty() && s.entries.back().second == now_s) {
      s.entries.back().bytes += bytes;
      s.entries.back().individuals += individuals;
    } else {
      s.entries.push_back({now_s, bytes, individuals});
    }
    s.total.bytes += bytes;
    s.total.individuals += individuals;
  }
  return Status::Ok();
}

size_t VolumeTracker::key_count() {
  std::lock_guard<std::mutex> l(mu_);
  return series_.size();
}

}  // namespace mamori::egress
