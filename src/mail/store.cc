#include "mail/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "mail/address.h"

#ifdef MAMORI_MAIL_HAVE_AUDIT
#include <filesystem>

#include "audit/audit.h"
#endif

namespace mamori::mail {
namespace {

using json = nlohmann::json;

std::string JoinJson(const std::vector<std::string>& v) { return json(v).dump(); }

std::vector<std::string> SplitJson(const char* s) {
  if (s == nullptr) return {};
  try {
    auto j = json::parse(s);
    return j.get<std::vector<std::string>>();
  } catch (const std::exception&) {
    return {};
  }
}

std::string Col(sqlite3_stmt* st, int i) {
  const unsigned char* t = sqlite3_column_text(st, i);
  return t ? reinterpret_cast<const char*>(t) : "";
}

HeldMail RowToHeld(sqlite3_stmt* st) {
  HeldMail m;
  m.event_id = Col(st, 0);
  m.queue_id = Col(st, 1);
  m.time_micros = sqlite3_column_int64(st, 2);
  m.sender_masked = Col(st, 3);
  m.sender_hash = Col(st, 4);
  m.recipient_domains = SplitJson(Col(st, 5).c_str());
  m.reasons = SplitJson(Col(st, 6).c_str());
  m.summary = Col(st, 7);
  m.release_at_micros = sqlite3_column_int64(st, 8);
  m.status = Col(st, 9);
  m.approvals = SplitJson(Col(st, 10).c_str());
  m.updated_micros = sqlite3_column_int64(st, 11);
  return m;
}

constexpr const char* kColumns =
    "event_id, queue_id, time_micros, sender_masked, sender_hash, recipient_domains, reasons, "
    "summary, release_at, status, approvals, updated";

class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql) {
    rc_ = sqlite3_prepare_v2(db, sql.c_str(), -1, &st_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(st_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return st_; }
  void Text(int i, const std::string& s) {
    sqlite3_bind_text(st_, i, s.c_str(), -1, SQLITE_TRANSIENT);
  }
  void Int(int i, int64_t v) { sqlite3_bind_int64(st_, i, v); }

 private:
  sqlite3_stmt* st_ = nullptr;
  int rc_;
};

Status DbError(sqlite3* db, const std::string& what) {
  return Unavailable("mail hold database: " + what + ": " + sqlite3_errmsg(db));
}

}  // namespace

std::string SummaryJson(const ContentSummary& c) {
  json j;
  j["scanned"] = c.scanned;
  j["types"] = c.types;
  j["my_numbers"] = c.my_numbers;
  j["individuals"] = c.individuals;
  j["units"] = c.units;
  j["unreadable"] = c.unreadable.size();
  j["not_inspected"] = c.not_inspected;
  return j.dump();
}

Result<std::unique_ptr<HoldStore>> HoldStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Unavailable("cannot open mail hold database " + path + ": " + msg +
                       " (check --state and its permissions)");
  }
  std::unique_ptr<HoldStore> s(new HoldStore(db));
  sqlite3_busy_timeout(db, 5000);
  RETURN_IF_ERROR(s->Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(s->Exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(
      s->Exec("CREATE TABLE IF NOT EXISTS held(event_id TEXT PRIMARY KEY, queue_id TEXT, "
              "time_micros INTEGER, sender_masked TEXT, sender_hash TEXT, recipient_domains TEXT, "
              "reasons TEXT, summary TEXT, release_at INTEGER, status TEXT, approvals TEXT, "
              "updated INTEGER)"));
  RETURN_IF_ERROR(s->Exec("CREATE INDEX IF NOT EXISTS held_queue ON held(queue_id)"));
  return s;
}

HoldStore::~HoldStore() { sqlite3_close(db_); }

Status HoldStore::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "?";
    sqlite3_free(err);
    return Unavailable("mail hold database: " + m);
  }
  return Status::Ok();
}

Status HoldStore::Insert(const HeldMail& m) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, std::string("INSERT INTO held(") + kColumns + ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
  if (!st.ok()) return DbError(db_, "prepare insert");
  st.Text(1, m.event_id);
  st.Text(2, m.queue_id);
  st.Int(3, m.time_micros);
  st.Text(4, m.sender_masked);
  st.Text(5, m.sender_hash);
  st.Text(6, JoinJson(m.recipient_domains));
  st.Text(7, JoinJson(m.reasons));
  st.Text(8, m.summary);
  st.Int(9, m.release_at_micros);
  st.Text(10, m.status.empty() ? "held" : m.status);
  st.Text(11, JoinJson(m.approvals));
  st.Int(12, m.updated_micros ? m.updated_micros : m.time_micros);
  if (sqlite3_step(st.get()) != SQLITE_DONE) return DbError(db_, "insert " + m.event_id);
  return Status::Ok();
}

Result<HeldMail> HoldStore::Find(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, std::string("SELECT ") + kColumns +
                   " FROM held WHERE event_id=?1 OR queue_id=?1 ORDER BY time_micros DESC LIMIT 1");
  if (!st.ok()) return DbError(db_, "prepare find");
  st.Text(1, id);
  int rc = sqlite3_step(st.get());
  if (rc == SQLITE_ROW) return RowToHeld(st.get());
  if (rc == SQLITE_DONE) {
    return NotFound("no held mail with event id or queue id '" + id + "' (see `mamori mail list`)");
  }
  return DbError(db_, "find");
}

Result<std::vector<HeldMail>> HoldStore::List(bool include_closed) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, std::string("SELECT ") + kColumns + " FROM held" +
                   (include_closed ? "" : " WHERE status='held'") + " ORDER BY time_micros");
  if (!st.ok()) return DbError(db_, "prepare list");
  std::vector<HeldMail> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) out.push_back(RowToHeld(st.get()));
  if (rc != SQLITE_DONE) return DbError(db_, "list");
  return out;
}

Result<std::vector<HeldMail>> HoldStore::DueForRelease(int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, std::string("SELECT ") + kColumns +
                   " FROM held WHERE status='held' AND release_at>0 AND release_at<=?1");
  if (!st.ok()) return DbError(db_, "prepare due");
  st.Int(1, now);
  std::vector<HeldMail> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) out.push_back(RowToHeld(st.get()));
  if (rc != SQLITE_DONE) return DbError(db_, "due");
  return out;
}

Result<std::vector<HeldMail>> HoldStore::Interrupted(int64_t before) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, std::string("SELECT ") + kColumns +
                   " FROM held WHERE status IN ('releasing','discarding') AND updated<=?1");
  if (!st.ok()) return DbError(db_, "prepare interrupted");
  st.Int(1, before);
  std::vector<HeldMail> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) out.push_back(RowToHeld(st.get()));
  if (rc != SQLITE_DONE) return DbError(db_, "interrupted");
  return out;
}

Result<size_t> HoldStore::AddApproval(const std::string& event_id, const std::string& user,
                                      int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  // One statement: SQLite runs it atomically against other processes too.
  Stmt st(db_,
          "UPDATE held SET approvals=json_insert(approvals,'$[#]',?1), updated=?2 "
          "WHERE event_id=?3 AND status='held' AND NOT EXISTS "
          "(SELECT 1 FROM json_each(held.approvals) WHERE value=?1)");
  if (!st.ok()) return DbError(db_, "prepare approve");
  st.Text(1, user);
  st.Int(2, now);
  st.Text(3, event_id);
  if (sqlite3_step(st.get()) != SQLITE_DONE) return DbError(db_, "approve");
  Stmt q(db_, "SELECT status, json_array_length(approvals) FROM held WHERE event_id=?1");
  if (!q.ok()) return DbError(db_, "prepare approvals");
  q.Text(1, event_id);
  int rc = sqlite3_step(q.get());
  if (rc == SQLITE_DONE) return NotFound("no held mail with event id " + event_id);
  if (rc != SQLITE_ROW) return DbError(db_, "approvals");
  if (Col(q.get(), 0) != "held") {
    return FailedPrecondition("mail " + event_id + " is " + Col(q.get(), 0) + ", not held");
  }
  return static_cast<size_t>(sqlite3_column_int64(q.get(), 1));
}

Result<bool> HoldStore::Transition(const std::string& event_id, const std::string& from,
                                   const std::string& to, int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "UPDATE held SET status=?1, updated=?2 WHERE event_id=?3 AND status=?4");
  if (!st.ok()) return DbError(db_, "prepare transition");
  st.Text(1, to);
  st.Int(2, now);
  st.Text(3, event_id);
  st.Text(4, from);
  if (sqlite3_step(st.get()) != SQLITE_DONE) return DbError(db_, "transition " + event_id);
  return sqlite3_changes(db_) == 1;
}

Status HoldStore::SetStatus(const std::string& event_id, const std::string& status, int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "UPDATE held SET status=?1, updated=?2 WHERE event_id=?3");
  if (!st.ok()) return DbError(db_, "prepare status");
  st.Text(1, status);
  st.Int(2, now);
  st.Text(3, event_id);
  if (sqlite3_step(st.get()) != SQLITE_DONE) return DbError(db_, "status");
  if (sqlite3_changes(db_) != 1) return NotFound("no held mail with event id " + event_id);
  return Status::Ok();
}

namespace {

std::string ResultName(Action a) {
  switch (a) {
    case Action::kAccept:
      return "allow";
    case Action::kHold:
      return "hold";
    case Action::kTempfail:
      return "error";
  }
  return "error";
}

std::string Join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

json Labels(const ContentSummary& c) {
  json l = json::object();
  l["types"] = c.types;
  l["individuals"] = c.individuals;
  l["my_numbers"] = c.my_numbers;
  l["scanned"] = c.scanned;
  return l;
}

json Extra(const VerdictRecord& r, const HashKey& key) {
  json e = json::object();
  e["queue_id"] = r.queue_id;
  e["sender_hash"] = key.Hash("email", r.envelope.sender);
  e["recipients"] = r.envelope.recipients.size();
  e["recipient_domains"] = r.verdict.recipient_domains;
  e["external_domains"] = r.verdict.external_domains;
  e["bcc_converted"] = r.verdict.bcc_convert;
  e["external_to_cc"] = r.verdict.external_to_cc;
  e["typo_domains"] = r.verdict.typo_domains;
  e["unreadable_parts"] = r.content.unreadable.size();
  e["not_inspected_parts"] = r.content.not_inspected;
  if (r.release_at_micros) e["release_at_micros"] = r.release_at_micros;
  if (!r.error.empty()) e["error"] = r.error;
  return e;
}

#ifdef MAMORI_MAIL_HAVE_AUDIT
class SharedAuditWriter : public AuditWriter {
 public:
  SharedAuditWriter(std::unique_ptr<audit::Log> log, HashKey key)
      : log_(std::move(log)), key_(key) {}
  Status Write(const std::string& action, const VerdictRecord& r, bool synced) override {
    audit::Record a;
    a.time_micros = r.time_micros;
    a.component = "mail";
    a.event_id = r.event_id;
    a.user = r.auth_user.empty() ? MaskEmail(r.envelope.sender) : r.auth_user;
    a.source_ip = r.client_addr;
    a.action = action;
    a.object = r.queue_id;
    a.destination = Join(r.verdict.recipient_domains, ",");
    a.bytes = r.message_bytes;
    a.result = ResultName(r.verdict.action);
    a.reason = Join(r.verdict.reasons, ",");
    a.labels = Labels(r.content);
    a.extra = Extra(r, key_);
    Result<uint64_t> seq = Status::Ok();
    if (synced) {
      seq = log_->Append(std::move(a));
    } else {
      std::promise<Result<uint64_t>> written;
      auto got = written.get_future();
      log_->AppendAsync(
          std::move(a), [&written](Result<uint64_t> r) { written.set_value(std::move(r)); },
          audit::Durability::kWritten);
      seq = got.get();
    }
    if (!seq.ok()) return seq.status().WithContext("writing the mail verdict to the audit log");
    return Status::Ok();
  }
  Status WriteAdmin(const std::string& action, const HeldMail& m, const std::string& user,
                    const std::string& result) override {
    audit::Record a;
    a.component = "mail";
    a.event_id = m.event_id;
    a.user = user;
    a.action = action;
    a.object = m.queue_id;
    a.destination = Join(m.recipient_domains, ",");
    a.result = result;
    a.reason = Join(m.reasons, ",");
    a.extra = json{{"sender", m.sender_masked}, {"approvals", m.approvals}};
    auto seq = log_->Append(std::move(a));
    if (!seq.ok()) return seq.status().WithContext("writing to the audit log");
    return Status::Ok();
  }

 private:
  std::unique_ptr<audit::Log> log_;
  HashKey key_;
};
#endif

// Fallback: one JSON object per line, fdatasync with group commit.
class JsonlAuditWriter : public AuditWriter {
 public:
  JsonlAuditWriter(int fd, const Clock* clock, HashKey key) : fd_(fd), clock_(clock), key_(key) {}
  ~JsonlAuditWriter() override {
    {
      std::lock_guard<std::mutex> l(syncer_mu_);
      stop_ = true;
    }
    syncer_cv_.notify_all();
    if (syncer_.joinable()) syncer_.join();
    (void)Sync();
    ::close(fd_);
  }
  Status Write(const std::string& action, const VerdictRecord& r, bool synced) override {
    json j = {{"time_micros", r.time_micros},
              {"component", "mail"},
              {"event_id", r.event_id},
              {"user", r.auth_user.empty() ? MaskEmail(r.envelope.sender) : r.auth_user},
              {"source_ip", r.client_addr},
              {"action", action},
              {"object", r.queue_id},
              {"destination", Join(r.verdict.recipient_domains, ",")},
              {"bytes", r.message_bytes},
              {"result", ResultName(r.verdict.action)},
              {"reason", Join(r.verdict.reasons, ",")},
              {"labels", Labels(r.content)},
              {"extra", Extra(r, key_)}};
    return Append(j.dump() + "\n", synced);
  }
  Status WriteAdmin(const std::string& action, const HeldMail& m, const std::string& user,
                    const std::string& result) override {
    json j = {{"time_micros", clock_->NowMicros()},
              {"component", "mail"},
              {"event_id", m.event_id},
              {"user", user},
              {"action", action},
              {"object", m.queue_id},
              {"destination", Join(m.recipient_domains, ",")},
              {"result", result},
              {"reason", Join(m.reasons, ",")},
              {"extra", {{"sender", m.sender_masked}, {"approvals", m.approvals}}}};
    return Append(j.dump() + "\n");
  }

 private:
  Status Append(const std::string& line, bool synced = true) {
    uint64_t my_seq;
    {
      std::lock_guard<std::mutex> lock(write_mu_);
      if (!failed_.ok()) return failed_;
      size_t off = 0;
      while (off < line.size()) {
        ssize_t n = ::write(fd_, line.data() + off, line.size() - off);
        if (n < 0) {
          if (errno == EINTR) continue;
          failed_ = Unavailable(std::string("audit log write failed: ") + strerror(errno));
          return failed_;
        }
        off += static_cast<size_t>(n);
      }
      my_seq = ++written_;
    }
    if (!synced) {
      ScheduleSync();
      return Status::Ok();
    }
    return SyncTo(my_seq);
  }

  // Syncs everything written so far (group commit: one fdatasync covers every
  // line written before it started).
  Status Sync() {
    uint64_t target;
    {
      std::lock_guard<std::mutex> l(write_mu_);
      if (!failed_.ok()) return failed_;
      target = written_;
    }
    return SyncTo(target);
  }
  Status SyncTo(uint64_t my_seq) {
    std::lock_guard<std::mutex> lock(sync_mu_);
    if (synced_ >= my_seq) return Status::Ok();  // someone else's sync covered us
    uint64_t target;
    {
      std::lock_guard<std::mutex> l2(write_mu_);
      target = written_;
    }
    if (::fdatasync(fd_) != 0) {
      std::lock_guard<std::mutex> l2(write_mu_);
      failed_ = Unavailable(std::string("audit log fdatasync failed: ") + strerror(errno));
      return failed_;
    }
    synced_ = target;
    return Status::Ok();
  }

  // Lines written but not synced are synced within kWrittenSyncDelay by a
  // background thread (started on first use, woken once per window).
  static constexpr auto kWrittenSyncDelay = std::chrono::milliseconds(100);
  void ScheduleSync() {
    std::lock_guard<std::mutex> l(syncer_mu_);
    if (!syncer_.joinable()) syncer_ = std::thread([this] { SyncLoop(); });
    if (sync_due_) return;
    sync_due_ = std::chrono::steady_clock::now() + kWrittenSyncDelay;
    syncer_cv_.notify_one();
  }
  void SyncLoop() {
    std::unique_lock<std::mutex> l(syncer_mu_);
    while (!stop_) {
      if (!sync_due_) {
        syncer_cv_.wait(l);
        continue;
      }
      if (std::chrono::steady_clock::now() < *sync_due_) {
        syncer_cv_.wait_until(l, *sync_due_);
        continue;
      }
      sync_due_.reset();
      l.unlock();
      (void)Sync();  // a failure is kept in failed_: later writes are refused
      l.lock();
    }
  }

  int fd_;
  const Clock* clock_;
  HashKey key_;
  std::mutex write_mu_, sync_mu_;
  uint64_t written_ = 0, synced_ = 0;
  Status failed_;
  std::mutex syncer_mu_;
  std::condition_variable syncer_cv_;
  std::optional<std::chrono::steady_clock::time_point> sync_due_;
  bool stop_ = false;
  std::thread syncer_;
};

}  // namespace

Result<std::unique_ptr<AuditWriter>> OpenAuditWriter(const AuditOptions& o, const HashKey& key) {
#ifdef MAMORI_MAIL_HAVE_AUDIT
  if (!o.signing_key.empty()) {
    audit::LogOptions lo;
    lo.path = o.log_path;
    lo.clock = o.clock;
    lo.signing_key_path = o.signing_key;
    auto log = audit::Log::Open(lo);
    if (!log.ok()) return log.status().WithContext("opening the audit log " + o.log_path);
    return std::unique_ptr<AuditWriter>(new SharedAuditWriter(std::move(*log), key));
  }
#endif
  int fd = ::open(o.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Unavailable("cannot open the mail audit log " + o.log_path + ": " + strerror(errno));
  }
  return std::unique_ptr<AuditWriter>(new JsonlAuditWriter(fd, o.clock, key));
}

Status StoreSink::Record(const VerdictRecord& r) {
  if (r.verdict.action == Action::kHold) {
    HeldMail m;
    m.event_id = r.event_id;
    m.queue_id = r.queue_id;
    m.time_micros = r.time_micros;
    m.sender_masked = r.envelope.sender.empty() ? "<>" : MaskEmail(r.envelope.sender);
    m.sender_hash = key_.Hash("email", r.envelope.sender);
    m.recipient_domains = r.verdict.recipient_domains;
    m.reasons = r.verdict.reasons;
    if (!r.verdict.typo_domains.empty()) {
      for (const auto& t : r.verdict.typo_domains) m.reasons.push_back("typo:" + t);
    }
    m.summary = SummaryJson(r.content);
    m.release_at_micros = r.release_at_micros;
    m.status = "held";
    RETURN_IF_ERROR(holds_->Insert(m));
  }
  const bool clean_accept = r.verdict.action == Action::kAccept && !r.verdict.bcc_convert &&
                            r.verdict.reasons.empty() && r.content.types.empty() &&
                            r.content.unreadable.empty() && r.content.not_inspected == 0 &&
                            r.error.empty();
  return audit_->Write("mail.send", r, /*synced=*/sync_every_verdict_ || !clean_accept);
}

}  // namespace mamori::mail
