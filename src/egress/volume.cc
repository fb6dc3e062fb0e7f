#include "egress/volume.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <thread>

namespace mamori::egress {
namespace {

// Journal layout (docs/egress.md): the magic line, then records
//   u32 payload length, u32 CRC-32 of the payload, payload
//   payload = i64 second, u64 bytes, u64 individuals, u32 key count,
//             then per key: i64 window seconds, u32 key length, key bytes
// all little-endian. One record is one decision (all its keys), so a torn
// record loses the whole decision, never half of it.
constexpr std::string_view kMagic = "mamori-caps 1\n";
constexpr uint32_t kMaxPayload = 1u << 20;
constexpr size_t kRecordHead = 8;

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetLe(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}
uint32_t Crc(std::string_view s) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

struct KeyWindow {
  const std::string* key;
  int64_t window;
};

// Appends one framed record to *out; ResourceExhausted if it is too big.
Status EncodeRecord(int64_t second, uint64_t bytes, uint64_t individuals,
                    const std::vector<KeyWindow>& keys, std::string* out) {
  std::string p;
  PutU64(&p, static_cast<uint64_t>(second));
  PutU64(&p, bytes);
  PutU64(&p, individuals);
  PutU32(&p, static_cast<uint32_t>(keys.size()));
  for (const auto& k : keys) {
    PutU64(&p, static_cast<uint64_t>(k.window));
    PutU32(&p, static_cast<uint32_t>(k.key->size()));
    p += *k.key;
    if (p.size() > kMaxPayload) {
      return ResourceExhausted("cap record is larger than " + std::to_string(kMaxPayload) +
                               " bytes (user or site names too long)");
    }
  }
  PutU32(out, static_cast<uint32_t>(p.size()));
  PutU32(out, Crc(p));
  out->append(p);
  return Status::Ok();
}

struct Decoded {
  int64_t second;
  uint64_t bytes, individuals;
  std::vector<std::pair<int64_t, std::string>> keys;
};

// Parses a payload whose CRC matched; false if its structure is invalid.
bool DecodePayload(std::string_view p, Decoded* d) {
  if (p.size() < 28) return false;
  d->second = static_cast<int64_t>(GetLe(p.data(), 8));
  d->bytes = GetLe(p.data() + 8, 8);
  d->individuals = GetLe(p.data() + 16, 8);
  uint32_t n = static_cast<uint32_t>(GetLe(p.data() + 24, 4));
  size_t off = 28;
  d->keys.clear();
  for (uint32_t i = 0; i < n; ++i) {
    if (p.size() - off < 12) return false;
    int64_t window = static_cast<int64_t>(GetLe(p.data() + off, 8));
    uint32_t len = static_cast<uint32_t>(GetLe(p.data() + off + 8, 4));
    off += 12;
    if (p.size() - off < len) return false;
    d->keys.emplace_back(window, std::string(p.substr(off, len)));
    off += len;
  }
  return off == p.size();
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t w = ::write(fd, data.data(), data.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      return Unavailable("cannot write cap journal " + path + ": " + std::strerror(errno));
    data.remove_prefix(static_cast<size_t>(w));
  }
  return Status::Ok();
}

Status SyncFd(int fd, const std::string& path) {
  if (::fdatasync(fd) != 0) {
    return Unavailable("cannot sync cap journal " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status SyncDir(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Unavailable("cannot open directory " + dir + ": " + std::strerror(errno));
  int rc = ::fsync(dfd);
  ::close(dfd);
  if (rc != 0) return Unavailable("cannot sync directory " + dir + ": " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace

struct VolumeTracker::Journal {
  VolumeJournalOptions opt;
  int fd = -1;
  // Guarded by the tracker's mu_.
  std::string pending;  // encoded records not yet written
  uint64_t appended_seq = 0;
  Status failed;
  // Guarded by sync_mu.
  std::mutex sync_mu;
  uint64_t durable_seq = 0;  // written (and synced, with sync_interval_ms 0)
  bool dirty = false;        // written but not synced yet
  bool stop = false;
  std::condition_variable sync_cv;
  std::thread syncer;
  uint64_t file_bytes = 0;
  uint64_t compact_at = 0;
  ~Journal() {
    if (fd >= 0) ::close(fd);
  }
};

VolumeTracker::VolumeTracker(const Clock* clock, size_t max_keys)
    : clock_(clock), max_keys_(max_keys) {}

VolumeTracker::~VolumeTracker() {
  if (!journal_ || !journal_->syncer.joinable()) return;
  {
    std::lock_guard<std::mutex> sl(journal_->sync_mu);
    journal_->stop = true;
  }
  journal_->sync_cv.notify_all();
  journal_->syncer.join();
}

// Batched fdatasync for sync_interval_ms > 0.
void VolumeTracker::SyncLoop() {
  Journal& j = *journal_;
  std::unique_lock<std::mutex> sl(j.sync_mu);
  while (true) {
    j.sync_cv.wait_for(sl, std::chrono::milliseconds(j.opt.sync_interval_ms),
                       [&] { return j.stop; });
    if (j.dirty) {
      j.dirty = false;
      // Sync a duplicate without the lock, so appends do not wait for the
      // disk. If a compaction replaces the file meanwhile, it synced the new
      // one itself; syncing the old one is harmless.
      int fd = ::dup(j.fd);
      sl.unlock();
      Status st =
          fd >= 0 ? SyncFd(fd, j.opt.path)
                  : Unavailable("cannot dup the cap journal: " + std::string(std::strerror(errno)));
      if (fd >= 0) ::close(fd);
      if (!st.ok()) {
        std::lock_guard<std::mutex> l(mu_);
        j.failed = st;
      }
      sl.lock();
    }
    if (j.stop) return;
  }
}

Result<std::unique_ptr<VolumeTracker>> VolumeTracker::Open(const Clock* clock,
                                                           const VolumeJournalOptions& options,
                                                           size_t max_keys) {
  if (options.path.empty()) return InvalidArgument("cap journal path is empty");
  auto t = std::make_unique<VolumeTracker>(clock, max_keys);
  auto j = std::make_unique<Journal>();
  j->opt = options;
  const std::string& path = options.path;
  j->fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (j->fd < 0) {
    return Unavailable("cannot open cap journal " + path + ": " + std::strerror(errno) +
                       " (check --cap-journal and the directory's owner)");
  }
  if (::flock(j->fd, LOCK_EX | LOCK_NB) != 0) {
    return Unavailable("cap journal " + path +
                       " is locked by another process (is another mamori icap running?)");
  }
  struct stat st {};
  if (::fstat(j->fd, &st) != 0) {
    return Unavailable("cannot stat cap journal " + path + ": " + std::strerror(errno));
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > 2 * options.max_file_bytes + kMaxPayload) {
    return ResourceExhausted("cap journal " + path + " is " + std::to_string(size) +
                             " bytes, over twice its budget; it was not written by this "
                             "version, or max_file_bytes was lowered");
  }
  std::string data(size, '\0');
  size_t got = 0;
  while (got < size) {
    ssize_t r = ::pread(j->fd, data.data() + got, size - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Unavailable("cannot read cap journal " + path + ": " + std::strerror(errno));
    got += static_cast<size_t>(r);
  }
  uint64_t good = 0;  // bytes known to be whole
  bool rewrite_magic = false;
  if (data.size() < kMagic.size() && kMagic.substr(0, data.size()) == data) {
    rewrite_magic = true;  // new file, or a crash while creating it
  } else if (data.compare(0, kMagic.size(), kMagic) != 0) {
    return DataLoss("file " + path +
                    " is not a mamori cap journal (bad first line); point --cap-journal at "
                    "another path or move the file aside");
  } else {
    good = kMagic.size();
  }
  int64_t now_s = clock->NowMicros() / 1'000'000;
  Decoded d;
  uint64_t replayed = 0;
  while (!rewrite_magic && good < data.size()) {
    size_t left = data.size() - good;
    bool torn = false, bad = false;
    uint32_t len = 0;
    if (left < kRecordHead) {
      torn = true;
    } else {
      len = static_cast<uint32_t>(GetLe(data.data() + good, 4));
      uint32_t crc = static_cast<uint32_t>(GetLe(data.data() + good + 4, 4));
      if (len > kMaxPayload) {
        bad = true;
      } else if (left - kRecordHead < len) {
        torn = true;
      } else {
        std::string_view p(data.data() + good + kRecordHead, len);
        bad = Crc(p) != crc || !DecodePayload(p, &d);
        // A damaged last record is a torn append, not corruption.
        if (bad && good + kRecordHead + len == data.size()) torn = true;
      }
    }
    // A crash can also leave a zero-filled tail (size extended, data lost).
    if (bad && data.find_first_not_of('\0', good) == std::string::npos) torn = true;
    if (torn) break;
    if (bad) {
      return DataLoss("cap journal " + path + " is damaged at byte " + std::to_string(good) +
                      " (not at its end, so not a crash); move it aside to restart the cap "
                      "windows from zero, and keep it for investigation");
    }
    for (const auto& [window, key] : d.keys) {
      if (d.second <= now_s - window) continue;  // outside its window already
      if (!t->series_.count(key) && t->series_.size() >= max_keys) {
        return ResourceExhausted("cap journal " + path + " holds more than " +
                                 std::to_string(max_keys) + " keys, the tracker's budget");
      }
      t->AddLocked(key, window, d.second, d.bytes, d.individuals);
    }
    ++replayed;
    good += kRecordHead + len;
  }
  if (rewrite_magic || good < data.size()) {
    // Drop the torn tail so the next append starts on a record boundary.
    if (::ftruncate(j->fd, static_cast<off_t>(rewrite_magic ? 0 : good)) != 0) {
      return Unavailable("cannot truncate the torn end of cap journal " + path + ": " +
                         std::strerror(errno));
    }
    if (rewrite_magic) {
      RETURN_IF_ERROR(WriteAll(j->fd, kMagic, path));
      good = kMagic.size();
    }
    RETURN_IF_ERROR(SyncFd(j->fd, path));
    if (rewrite_magic) RETURN_IF_ERROR(SyncDir(path));
  }
  j->file_bytes = good;
  j->compact_at = options.compact_min_bytes;
  t->journal_ = std::move(j);
  if (t->journal_->file_bytes > t->journal_->compact_at) RETURN_IF_ERROR(t->Compact());
  if (options.sync_interval_ms > 0) {
    VolumeTracker* raw = t.get();
    t->journal_->syncer = std::thread([raw] { raw->SyncLoop(); });
  }
  return t;
}

void VolumeTracker::Prune(Series& s, int64_t now_s) {
  while (!s.entries.empty() && s.entries.front().second <= now_s - s.window) {
    s.total.bytes -= s.entries.front().bytes;
    s.total.individuals -= s.entries.front().individuals;
    s.entries.pop_front();
  }
}

void VolumeTracker::AddLocked(const std::string& key, int64_t window, int64_t second,
                              uint64_t bytes, uint64_t individuals) {
  Series& s = series_[key];
  s.window = window;
  // Same second (or a clock that stepped back): merge, which keeps the amount
  // in the window at least as long.
  if (!s.entries.empty() && s.entries.back().second >= second) {
    s.entries.back().bytes += bytes;
    s.entries.back().individuals += individuals;
  } else {
    s.entries.push_back({second, bytes, individuals});
  }
  s.total.bytes += bytes;
  s.total.individuals += individuals;
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
  uint64_t seq = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (journal_ && !journal_->failed.ok()) return journal_->failed;
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
    if (journal_ && !checks.empty()) {
      std::vector<KeyWindow> keys;
      for (const auto& c : checks) keys.push_back({&c.key, c.window_seconds});
      RETURN_IF_ERROR(EncodeRecord(now_s, bytes, individuals, keys, &journal_->pending));
      seq = ++journal_->appended_seq;
    }
    for (const auto& c : checks) AddLocked(c.key, c.window_seconds, now_s, bytes, individuals);
  }
  if (seq > 0) return Sync(seq);
  return Status::Ok();
}

// Group commit: the first caller writes and syncs everything pending; callers
// whose record it covered return without another fdatasync.
Status VolumeTracker::Sync(uint64_t seq) {
  Journal& j = *journal_;
  std::lock_guard<std::mutex> sl(j.sync_mu);
  if (j.durable_seq >= seq) return Status::Ok();
  std::string buf;
  uint64_t upto;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!j.failed.ok()) return j.failed;
    buf.swap(j.pending);
    upto = j.appended_seq;
  }
  Status st = WriteAll(j.fd, buf, j.opt.path);
  if (st.ok() && j.opt.sync_interval_ms <= 0) st = SyncFd(j.fd, j.opt.path);
  if (!st.ok()) {
    std::lock_guard<std::mutex> l(mu_);
    j.failed = st;
    return st;
  }
  j.file_bytes += buf.size();
  j.durable_seq = upto;
  j.dirty = j.opt.sync_interval_ms > 0;
  if (j.file_bytes > j.compact_at) return CompactLocked();
  return Status::Ok();
}

Status VolumeTracker::Compact() {
  if (!journal_) return Status::Ok();
  std::lock_guard<std::mutex> sl(journal_->sync_mu);
  return CompactLocked();
}

Status VolumeTracker::CompactLocked() {
  Journal& j = *journal_;
  std::string snap(kMagic);
  uint64_t upto;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!j.failed.ok()) return j.failed;
    int64_t now_s = clock_->NowMicros() / 1'000'000;
    for (auto it = series_.begin(); it != series_.end();) {
      Prune(it->second, now_s);
      if (it->second.entries.empty()) {
        it = series_.erase(it);
        continue;
      }
      std::vector<KeyWindow> key = {{&it->first, it->second.window}};
      for (const Entry& e : it->second.entries) {
        Status st = EncodeRecord(e.second, e.bytes, e.individuals, key, &snap);
        if (!st.ok()) {
          j.failed = st;
          return st;
        }
      }
      ++it;
    }
    if (snap.size() > j.opt.max_file_bytes) {
      j.failed = ResourceExhausted("cap journal needs " + std::to_string(snap.size()) +
                                   " bytes for the live windows, over " + "its budget of " +
                                   std::to_string(j.opt.max_file_bytes) +
                                   "; raise it or shorten the cap windows");
      return j.failed;
    }
    // The snapshot holds everything pending too: it replaces those writes.
    j.pending.clear();
    upto = j.appended_seq;
  }
  const std::string tmp = j.opt.path + ".compact";
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  Status st;
  if (fd < 0) st = Unavailable("cannot create " + tmp + ": " + std::strerror(errno));
  if (st.ok() && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    st = Unavailable("cannot lock " + tmp + ": " + std::strerror(errno));
  }
  if (st.ok()) st = WriteAll(fd, snap, tmp);
  if (st.ok()) st = SyncFd(fd, tmp);
  if (st.ok() && ::rename(tmp.c_str(), j.opt.path.c_str()) != 0) {
    st = Unavailable("cannot rename " + tmp + " over " + j.opt.path + ": " + std::strerror(errno));
  }
  if (st.ok()) st = SyncDir(j.opt.path);
  if (!st.ok()) {
    if (fd >= 0) ::close(fd);
    std::lock_guard<std::mutex> l(mu_);
    j.failed = st;
    return st;
  }
  ::close(j.fd);
  j.fd = fd;
  j.file_bytes = snap.size();
  j.compact_at = std::max<uint64_t>(j.opt.compact_min_bytes, 2 * snap.size());
  j.durable_seq = upto;
  j.dirty = false;  // the new file was synced
  return Status::Ok();
}

size_t VolumeTracker::key_count() {
  std::lock_guard<std::mutex> l(mu_);
  return series_.size();
}

uint64_t VolumeTracker::journal_bytes() {
  if (!journal_) return 0;
  std::lock_guard<std::mutex> sl(journal_->sync_mu);
  return journal_->file_bytes;
}

}  // namespace mamori::egress
