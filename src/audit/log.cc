// Log: appending with a hash chain, group commit and signed checkpoints.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "audit/audit.h"
#include "audit/format.h"
#include "common/file_util.h"

namespace mamori::audit {

using internal::ChainWalker;
using internal::LineReader;

namespace {
constexpr size_t kMaxRecordBytesCap = 512 * 1024;  // well under the reader's line budget
constexpr int kMaxLabelDepth = 32;
// Overlapping fdatasyncs: while one commits, the next batch is written and its
// sync queued behind it. More than two in flight only adds syncs.
#ifndef MAMORI_AUDIT_MAX_SYNCS
#define MAMORI_AUDIT_MAX_SYNCS 2
#endif
constexpr int kMaxSyncsInFlight = MAMORI_AUDIT_MAX_SYNCS;
#ifndef MAMORI_AUDIT_COMMIT_THREADS
#define MAMORI_AUDIT_COMMIT_THREADS 1
#endif
constexpr int kCommitThreads = MAMORI_AUDIT_COMMIT_THREADS;

int Depth(const nlohmann::json& j, int limit) {
  if (limit < 0) return 0;
  int best = 0;
  if (j.is_object() || j.is_array()) {
    for (const auto& v : j) {
      best = std::max(best, Depth(v, limit - 1));
      if (best > limit) break;
    }
    return best + 1;
  }
  return 0;
}
}  // namespace

class Log::Impl {
 public:
  LogOptions opts;
  Env* env = nullptr;
  std::shared_ptr<const SigningKey> key;
  std::unique_ptr<WritableFile> file;
  uint64_t recovered_tail = 0;

  mutable std::mutex mu;
  std::condition_variable cv;
  // Chain state (entries queued or written), guarded by mu.
  uint64_t next_seq = 1;
  std::string last_hash = internal::kGenesisHash;  // last queued entry
  uint64_t records_since_checkpoint = 0;
  int64_t last_checkpoint_micros = 0;
  // Group commit. Entries get tickets in chain order; one thread at a time
  // writes the pending batch, and a thread whose entry is written but not yet
  // covered by an fdatasync starts one. Syncs may overlap (the next batch is
  // written while the previous one syncs); each covers everything written
  // before it started.
  struct Mark {
    uint64_t ticket = 0;
    uint64_t size = 0;
    Head head{0, internal::kGenesisHash};
  };
  std::string pending;  // lines not yet written
  uint64_t pending_last_ticket = 0;
  uint64_t pending_last_seq = 0;
  std::string pending_last_record_hash;
  uint64_t next_ticket = 1;  // one per entry
  bool writing = false;
  Mark written;                 // end of what write() has put in the file
  Mark durable;                 // end of what an fdatasync has covered
  uint64_t sync_requested = 0;  // highest ticket an in-flight or finished sync covers
  int syncs_in_flight = 0;
  Status failed;
  bool truncated_after_failure = false;
  bool closed = false;
  // AppendAsync: entries waiting for durability, in ticket order, and the
  // commit thread(s) that write, sync and deliver them. One by default: a
  // second overlapped syncs but cost more context switches than it saved
  // behind Squid (docs/audit.md).
  struct AsyncEntry {
    uint64_t ticket = 0;  // the record's, or the checkpoint's chained after it
    uint64_t seq = 0;
    bool copy_pending = false;  // a checkpoint still to copy to checkpoint_copy_path
    bool copy_claimed = false;
    bool written_is_enough = false;  // Durability::kWritten
    std::string checkpoint_line;
    AppendCallback done;
  };
  std::deque<AsyncEntry> async_queue;
  uint64_t async_claimed = 0;  // highest ticket a commit thread waits for
  std::vector<std::thread> committers;
  std::condition_variable committer_cv;
  bool stop_committers = false;  // Close() started: AppendAsync refuses

  // When records answered on write (kWritten) are to be synced by a commit
  // thread; unset while none waits. Guarded by mu.
  std::optional<std::chrono::steady_clock::time_point> sync_due;

  // Makes sure a commit thread will sync what is written within the delay;
  // wakes it only when no sync was scheduled yet (once per window, not per
  // record). mu held.
  void ScheduleWrittenSyncLocked() {
    StartCommittersLocked();
    if (sync_due) return;
    sync_due = std::chrono::steady_clock::now() +
               std::chrono::microseconds(opts.written_sync_delay_micros);
    committer_cv.notify_one();
  }

  void StartCommittersLocked() {
    if (!committers.empty()) return;
    for (int i = 0; i < kCommitThreads; ++i) committers.emplace_back([this] { CommitLoop(); });
  }

  void CommitLoop() {
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      if (async_queue.empty() || async_queue.back().ticket <= async_claimed) {
        // What is queued is claimed by the other thread, which delivers it.
        if (sync_due && failed.ok() && !closed) {
          if (std::chrono::steady_clock::now() < *sync_due && !stop_committers) {
            committer_cv.wait_until(lock, *sync_due);
            continue;
          }
          sync_due.reset();
          (void)WaitDurable(lock, written.ticket);  // an error is in `failed`
          continue;
        }
        sync_due.reset();
        if (stop_committers) return;
        committer_cv.wait(lock);
        continue;
      }
      const uint64_t target = async_queue.back().ticket;
      async_claimed = target;
      std::vector<std::pair<uint64_t, std::string>> copies;
      bool sync_needed = false;
      for (auto& e : async_queue) {
        if (e.ticket > target) break;
        if (!e.written_is_enough || e.copy_pending) sync_needed = true;
        if (e.copy_pending && !e.copy_claimed) {
          e.copy_claimed = true;
          copies.emplace_back(e.ticket, e.checkpoint_line);
        }
      }
      Status st;
      for (const auto& [ticket, line] : copies) {
        st = CheckpointDurable(lock, ticket, line);
        if (!st.ok()) break;
        for (auto& e : async_queue)
          if (e.ticket == ticket) e.copy_pending = false;
      }
      if (st.ok()) {
        if (sync_needed) {
          (void)WaitDurable(lock, target);  // an error is in `failed`
        } else {
          (void)WaitWritten(lock, target);
          if (!sync_due)
            sync_due = std::chrono::steady_clock::now() +
                       std::chrono::microseconds(opts.written_sync_delay_micros);
        }
      }
      DeliverLocked(lock);
    }
  }

  // Writes what is queued up to `ticket` without syncing it. mu held via lock.
  Status WaitWritten(std::unique_lock<std::mutex>& lock, uint64_t ticket) {
    while (written.ticket < ticket) {
      if (!failed.ok()) return failed;
      if (!writing && !pending.empty()) {
        WriteBatchLocked(lock, nullptr);
        continue;
      }
      cv.wait(lock);  // another thread is writing; WakeLocked notifies cv
    }
    return Status::Ok();
  }

  // Calls `done` for every queued entry that is durable (in order), or for
  // all of them with the error once the log failed. mu held via lock; it is
  // released while the callbacks run.
  void DeliverLocked(std::unique_lock<std::mutex>& lock) {
    std::vector<std::pair<AppendCallback, Result<uint64_t>>> ready;
    while (!async_queue.empty()) {
      AsyncEntry& e = async_queue.front();
      // A synced record stays good if the log fails later; a written one is
      // only answered while the log is healthy (its sync is still to come).
      const bool reached = e.written_is_enough ? e.ticket <= written.ticket && failed.ok()
                                               : e.ticket <= durable.ticket;
      if (reached && !e.copy_pending) {
        ready.emplace_back(std::move(e.done), e.seq);
      } else if (!failed.ok()) {
        ready.emplace_back(std::move(e.done), failed);
      } else {
        break;
      }
      async_queue.pop_front();
    }
    if (ready.empty()) return;
    lock.unlock();
    for (auto& [done, result] : ready) done(std::move(result));
    lock.lock();
  }

  // Checks and serialises a record for the chain (no lock needed).
  Result<std::string> RecordFields(Record& record) {
    if (record.time_micros == 0) record.time_micros = opts.clock->NowMicros();
    if (record.event_id.empty()) record.event_id = NewEventId();
    if (Depth(record.labels, kMaxLabelDepth) > kMaxLabelDepth ||
        Depth(record.extra, kMaxLabelDepth) > kMaxLabelDepth)
      return InvalidArgument("audit record labels/extra nest deeper than " +
                             std::to_string(kMaxLabelDepth) + " levels");
    std::string fields = internal::SerializeRecordFields(record);
    if (fields.size() + 200 > opts.max_record_bytes)
      return ResourceExhausted(
          "audit record of " + std::to_string(fields.size()) + " bytes is over the budget of " +
          std::to_string(opts.max_record_bytes) + "; put less into labels/extra");
    return fields;
  }

  // Chains a record into the pending batch; returns its seq, and its ticket
  // in *ticket. mu held.
  uint64_t QueueRecordLocked(int64_t time_micros, const std::string& fields, uint64_t* ticket) {
    uint64_t seq = next_seq++;
    std::string body = internal::RecordBody(seq, last_hash, time_micros, fields);
    std::string hash;
    pending += internal::MakeLine(body, &hash);
    last_hash = hash;
    pending_last_seq = seq;
    pending_last_record_hash = hash;
    *ticket = pending_last_ticket = next_ticket++;
    ++records_since_checkpoint;
    return seq;
  }
  bool CheckpointDueLocked() const {
    return records_since_checkpoint >= opts.checkpoint_every_records ||
           opts.clock->NowMicros() - last_checkpoint_micros >= opts.checkpoint_every_micros;
  }

  // Background checkpoints for quiet periods.
  std::thread ticker;
  std::condition_variable ticker_cv;
  bool stop_ticker = false;

  void TickerLoop() {
    std::unique_lock<std::mutex> lock(mu);
    while (!stop_ticker) {
      ticker_cv.wait_for(lock, std::chrono::microseconds(opts.checkpoint_every_micros));
      if (stop_ticker || closed || !failed.ok()) continue;
      if (records_since_checkpoint > 0 &&
          opts.clock->NowMicros() - last_checkpoint_micros >= opts.checkpoint_every_micros) {
        std::string line;
        uint64_t ticket = QueueCheckpointLocked(&line);
        (void)CheckpointDurable(lock, ticket, line);  // a failure is reported to the next Append
      }
    }
  }

  void SetFailed(const Status& st) {
    if (!failed.ok()) return;
    failed =
        Status(st.code() == StatusCode::kFailedPrecondition ? StatusCode::kUnavailable : st.code(),
               "audit log " + opts.path + " failed and refuses further records: " + st.message());
    WakeLocked();  // every waiter returns the error
  }

  // Queues a checkpoint line over the current chain state. mu held.
  uint64_t QueueCheckpointLocked(std::string* line_out) {
    int64_t now = opts.clock->NowMicros();
    std::string body = internal::CheckpointBody(next_seq - 1, last_hash, now, *key);
    std::string hash;
    std::string line = internal::MakeLine(body, &hash);
    pending += line;
    *line_out = std::move(line);
    last_hash = hash;
    records_since_checkpoint = 0;
    last_checkpoint_micros = now;
    pending_last_ticket = next_ticket++;
    return pending_last_ticket;
  }

  // Waits for a queued checkpoint to be durable, then copies it to
  // opts.checkpoint_copy_path (atomically; newer copies win). mu held.
  std::mutex copy_mu;
  uint64_t copied_ticket = 0;
  Status CheckpointDurable(std::unique_lock<std::mutex>& lock, uint64_t ticket,
                           const std::string& line) {
    RETURN_IF_ERROR(WaitDurable(lock, ticket));
    if (opts.checkpoint_copy_path.empty()) return Status::Ok();
    lock.unlock();
    Status st;
    {
      std::lock_guard<std::mutex> c(copy_mu);
      if (ticket > copied_ticket) {
        st = WriteFileAtomic(opts.checkpoint_copy_path, line, 0644);
        if (st.ok()) copied_ticket = ticket;
      }
    }
    lock.lock();
    if (!st.ok()) {
      SetFailed(st.WithContext("copying the checkpoint to " + opts.checkpoint_copy_path));
      return failed;
    }
    return Status::Ok();
  }

  // Threads blocked in WaitDurable, by ticket. Each has its own condition
  // variable so that a state change wakes only the threads it concerns: those
  // it made durable, and one sleeper to take the next step (write the pending
  // batch or start a sync). A shared notify_all woke every waiter on every
  // write and sync; with 64 concurrent requests that was most of the CPU time
  // of an audited request (context switches), not the fdatasync itself.
  struct Waiter {
    enum State { kActive, kInIo, kSleeping };
    uint64_t ticket = 0;
    State state = kActive;
    std::condition_variable cv;
  };
  std::multimap<uint64_t, Waiter*> waiters;

  // Writes the pending batch (the caller checked !writing && !pending.empty()).
  // `self`, if set, is the waiter doing it. mu held via lock; released during
  // the write.
  void WriteBatchLocked(std::unique_lock<std::mutex>& lock, Waiter* self);

  // Whether some thread could take a step now. mu held.
  bool WorkAvailableLocked() const {
    if (!writing && !pending.empty()) return true;
    return written.ticket > sync_requested && syncs_in_flight < kMaxSyncsInFlight;
  }

  // Call after every change of the group-commit state, before mu is released.
  void WakeLocked() {
    cv.notify_all();  // Close() waits for the last write and sync (rarely waited on)
    if (!failed.ok()) {
      for (auto& [t, w] : waiters) w->cv.notify_one();
      return;
    }
    auto done_end = waiters.upper_bound(durable.ticket);
    for (auto it = waiters.begin(); it != done_end; ++it) it->second->cv.notify_one();
    if (!WorkAvailableLocked()) return;
    // A waiter that is awake and not in a write or sync re-checks the state
    // before it sleeps; otherwise wake the first sleeper. (At most three
    // waiters are in I/O: one writer and kMaxSyncsInFlight syncs.)
    for (auto it = done_end; it != waiters.end(); ++it) {
      if (it->second->state == Waiter::kActive) return;
      if (it->second->state == Waiter::kSleeping) {
        it->second->cv.notify_one();
        return;
      }
    }
  }

  // Waits until `ticket` is durable, writing the pending batch or starting
  // an fdatasync when no one else is. mu held via lock.
  Status WaitDurable(std::unique_lock<std::mutex>& lock, uint64_t ticket) {
    if (durable.ticket >= ticket) return Status::Ok();
    Waiter self;
    self.ticket = ticket;
    auto pos = waiters.emplace(ticket, &self);
    Status st = WaitDurableRegistered(lock, self);
    waiters.erase(pos);
    return st;
  }

  Status WaitDurableRegistered(std::unique_lock<std::mutex>& lock, Waiter& self) {
    const uint64_t ticket = self.ticket;
    while (true) {
      if (durable.ticket >= ticket) return Status::Ok();
      if (!failed.ok()) {
        if (!writing && !truncated_after_failure) {
          // Cut what may have reached the file after the last synced entry,
          // so the file ends at the last acknowledged entry (best effort; a
          // leftover torn tail is dropped by the next Open).
          truncated_after_failure = true;
          (void)file->Truncate(durable.size);
        }
        return failed;
      }
      if (!writing && !pending.empty()) {
        // Write everything queued (this entry, or later ones while this
        // entry's sync is in flight or waits for a free slot).
        WriteBatchLocked(lock, &self);
        continue;
      }
      if (written.ticket > sync_requested && syncs_in_flight < kMaxSyncsInFlight) {
        // Something written is not covered by a sync yet: start one. Syncs may
        // overlap (the next batch is written while the previous one commits);
        // each covers everything written before it started.
        Mark covers = written;
        sync_requested = covers.ticket;
        ++syncs_in_flight;
        self.state = Waiter::kInIo;
        WakeLocked();
        lock.unlock();
        Status st = file->Sync();
        lock.lock();
        self.state = Waiter::kActive;
        --syncs_in_flight;
        if (!st.ok()) {
          SetFailed(st);
        } else if (failed.ok() && covers.ticket > durable.ticket) {
          durable = covers;
        }
        WakeLocked();
        continue;
      }
      self.state = Waiter::kSleeping;
      self.cv.wait(lock);
      self.state = Waiter::kActive;
    }
  }
};

void Log::Impl::WriteBatchLocked(std::unique_lock<std::mutex>& lock, Waiter* self) {
  writing = true;
  std::string batch;
  batch.swap(pending);
  Mark after = written;
  after.ticket = pending_last_ticket;
  after.size += batch.size();
  if (pending_last_seq > after.head.seq)
    after.head = Head{pending_last_seq, pending_last_record_hash};
  if (self) self->state = Waiter::kInIo;
  WakeLocked();
  lock.unlock();
  Status st = file->Append(batch);
  lock.lock();
  if (self) self->state = Waiter::kActive;
  writing = false;
  if (st.ok()) {
    written = after;
  } else {
    SetFailed(st);
  }
  WakeLocked();
}

Log::Log(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Log::~Log() { (void)Close(); }

Result<std::unique_ptr<Log>> Log::Open(const LogOptions& options) {
  if (options.path.empty()) return InvalidArgument("LogOptions.path is empty");
  if (options.clock == nullptr) return InvalidArgument("LogOptions.clock is null");
  if (options.max_record_bytes > kMaxRecordBytesCap)
    return InvalidArgument("max_record_bytes is capped at " + std::to_string(kMaxRecordBytesCap));
  auto impl = std::make_unique<Impl>();
  impl->opts = options;
  impl->env = options.env ? options.env : Env::Default();
  if (options.signing_key) {
    impl->key = options.signing_key;
  } else {
    if (options.signing_key_path.empty())
      return InvalidArgument(
          "no checkpoint signing key: set LogOptions.signing_key_path (create "
          "one with `mamori audit keygen`)");
    auto key = SigningKey::Load(options.signing_key_path);
    if (!key.ok()) return key.status().WithContext("audit signing key");
    impl->key = std::make_shared<const SigningKey>(std::move(key).value());
  }

  // Read what is there and check the chain.
  ChainWalker walker;
  uint64_t valid_size = 0, torn = 0;
  if (impl->env->FileExists(options.path)) {
    ASSIGN_OR_RETURN(auto seq_file, impl->env->NewSequentialFile(options.path));
    LineReader reader(std::move(seq_file), 1 << 20);
    while (true) {
      auto line = reader.Next();
      if (!line.ok()) return line.status().WithContext("opening audit log " + options.path);
      if (!line->has_value()) break;
      const auto& l = **line;
      if (!l.terminated) {
        torn = l.text.size();
        break;
      }
      auto e = walker.Feed(l);
      if (!e.ok())
        return e.status().WithContext("audit log " + options.path +
                                      " is damaged or was tampered with; refusing to append");
      valid_size = l.offset + l.text.size() + 1;
    }
  }
  if (torn > 0 && !options.recover_torn_tail)
    return DataLoss("audit log " + options.path + " ends with a torn entry of " +
                    std::to_string(torn) + " bytes (a crash during append)");

  ASSIGN_OR_RETURN(impl->file, impl->env->NewAppendableFile(options.path, 0600));
  if (torn > 0) RETURN_IF_ERROR(impl->file->Truncate(valid_size));
  impl->recovered_tail = torn;
  impl->durable.size = valid_size;
  impl->next_seq = walker.last_seq() + 1;
  impl->last_hash = walker.last_hash();
  impl->records_since_checkpoint = walker.records_since_checkpoint();
  impl->last_checkpoint_micros = walker.last_checkpoint_micros() ? walker.last_checkpoint_micros()
                                                                 : options.clock->NowMicros();
  impl->durable.head = Head{walker.last_seq(), walker.last_record_hash()};
  impl->written = impl->durable;

  Impl* raw = impl.get();
  std::unique_ptr<Log> log(new Log(std::move(impl)));
  if (torn > 0) {
    Record r;
    r.component = "audit";
    r.action = "recover";
    r.result = "allow";
    r.reason = "torn_tail_dropped";
    r.extra = {{"dropped_bytes", torn}, {"after_seq", walker.last_seq()}};
    auto seq = log->Append(std::move(r));
    if (!seq.ok()) return seq.status();
  }
  if (options.background_checkpoints && options.checkpoint_every_micros > 0)
    raw->ticker = std::thread([raw] { raw->TickerLoop(); });
  return log;
}

Result<uint64_t> Log::Append(Record record) {
  Impl& d = *impl_;
  ASSIGN_OR_RETURN(std::string fields, d.RecordFields(record));
  std::unique_lock<std::mutex> lock(d.mu);
  if (!d.failed.ok()) return d.failed;
  if (d.closed) return FailedPrecondition("audit log " + d.opts.path + " is closed");
  uint64_t ticket = 0;
  uint64_t seq = d.QueueRecordLocked(record.time_micros, fields, &ticket);
  if (d.CheckpointDueLocked()) {
    std::string line;
    ticket = d.QueueCheckpointLocked(&line);
    Status st = d.CheckpointDurable(lock, ticket, line);
    if (!st.ok()) return st;
    return seq;
  }
  Status st = d.WaitDurable(lock, ticket);
  if (!st.ok()) return st;
  return seq;
}

void Log::AppendAsync(Record record, AppendCallback done, Durability durability) {
  Impl& d = *impl_;
  auto fields = d.RecordFields(record);
  if (!fields.ok()) return done(fields.status());
  std::unique_lock<std::mutex> lock(d.mu);
  Status refused;
  if (!d.failed.ok()) {
    refused = d.failed;
  } else if (d.closed || d.stop_committers) {
    refused = FailedPrecondition("audit log " + d.opts.path + " is closed");
  }
  if (!refused.ok()) {
    lock.unlock();
    return done(refused);
  }
  Impl::AsyncEntry e;
  e.seq = d.QueueRecordLocked(record.time_micros, *fields, &e.ticket);
  e.done = std::move(done);
  e.written_is_enough = durability == Durability::kWritten;
  if (d.CheckpointDueLocked()) {
    e.ticket = d.QueueCheckpointLocked(&e.checkpoint_line);
    e.copy_pending = !d.opts.checkpoint_copy_path.empty();
  }
  if (e.written_is_enough && e.checkpoint_line.empty() && d.async_queue.empty() && !d.writing) {
    // Nothing queued before it and nobody writing: write it here and answer
    // at once, without a hand-off to the commit thread and back; that thread
    // only syncs, once per delay window.
    d.WriteBatchLocked(lock, nullptr);
    if (d.failed.ok() && d.written.ticket >= e.ticket) {
      d.ScheduleWrittenSyncLocked();
      lock.unlock();
      return e.done(e.seq);
    }
    if (!d.failed.ok()) {
      Status failed = d.failed;
      lock.unlock();
      return e.done(failed);
    }
  }
  d.async_queue.push_back(std::move(e));
  d.StartCommittersLocked();
  d.committer_cv.notify_one();
}

Status Log::Checkpoint() {
  Impl& d = *impl_;
  std::unique_lock<std::mutex> lock(d.mu);
  if (!d.failed.ok()) return d.failed;
  if (d.closed) return FailedPrecondition("audit log " + d.opts.path + " is closed");
  if (d.records_since_checkpoint == 0) {
    // Nothing new; still wait for whatever is queued (it may end in a checkpoint).
    return d.WaitDurable(lock, d.next_ticket - 1);
  }
  std::string line;
  uint64_t ticket = d.QueueCheckpointLocked(&line);
  return d.CheckpointDurable(lock, ticket, line);
}

Status Log::Close() {
  Impl& d = *impl_;
  bool join = false;
  {
    std::unique_lock<std::mutex> lock(d.mu);
    if (d.closed) return Status::Ok();
    join = !d.stop_ticker;  // only the first closer joins the threads
    d.stop_ticker = true;
    d.ticker_cv.notify_all();
    d.stop_committers = true;  // no new async appends from here
  }
  if (join && d.ticker.joinable()) d.ticker.join();
  // The final checkpoint covers every queued async entry; the commit threads
  // then deliver them (or the error) and exit.
  Status st = Checkpoint();
  if (join) {
    {
      std::lock_guard<std::mutex> lock(d.mu);
      d.committer_cv.notify_all();
    }
    for (auto& t : d.committers) t.join();
    d.committers.clear();
  }
  std::unique_lock<std::mutex> lock(d.mu);
  if (d.closed) return Status::Ok();
  d.closed = true;
  d.cv.wait(lock, [&] { return !d.writing && d.syncs_in_flight == 0; });
  Status cst = d.file->Close();
  if (st.ok()) st = cst;
  return st;
}

Head Log::head() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->durable.head;
}

Status Log::status() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->failed;
}

uint64_t Log::recovered_tail_bytes() const { return impl_->recovered_tail; }

}  // namespace mamori::audit
