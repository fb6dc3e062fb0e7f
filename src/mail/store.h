// Persistent state of the mail guard: the audit trail of every verdict and
// the metadata of held mail (why, who, when), keyed by event id and Postfix
// queue id. On-disk format: docs/mail.md.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/redact.h"
#include "common/status.h"
#include "mail/session.h"

struct sqlite3;

namespace mamori::mail {

// One held message as stored in STATE/mail.db.
struct HeldMail {
  std::string event_id;
  std::string queue_id;
  int64_t time_micros = 0;
  std::string sender_masked;  // MaskEmail(sender)
  std::string sender_hash;    // keyed hash of the sender address
  std::vector<std::string> recipient_domains;
  std::vector<std::string> reasons;
  std::string summary;            // JSON: types, individuals, my_numbers
  int64_t release_at_micros = 0;  // 一時保留: released automatically then
  // "held"; "releasing"/"discarding" while an action is under way (a crash
  // leaves them for HoldWorkflow::Recover); "released", "discarded", or
  // "gone" (no longer in Postfix's queue, e.g. tempfailed after a milter crash).
  std::string status;
  std::vector<std::string> approvals;  // users who approved release
  int64_t updated_micros = 0;
};

// SQLite database of held mail. Thread-safe (one connection behind a mutex).
class HoldStore {
 public:
  static Result<std::unique_ptr<HoldStore>> Open(const std::string& path);
  ~HoldStore();
  Status Insert(const HeldMail& m);
  // By event id or queue id.
  Result<HeldMail> Find(const std::string& id);
  Result<std::vector<HeldMail>> List(bool include_closed);
  // Held delay-only mail whose release time has come.
  Result<std::vector<HeldMail>> DueForRelease(int64_t now_micros);
  // Rows in "releasing" or "discarding" last updated at or before `before`.
  Result<std::vector<HeldMail>> Interrupted(int64_t before_micros);
  // Adds `user` to the approvals of a mail still "held", atomically (one SQL
  // statement, so concurrent approvers in other processes are never lost).
  // Returns the number of distinct approvals now recorded.
  Result<size_t> AddApproval(const std::string& event_id, const std::string& user, int64_t now);
  // Compare-and-set: moves the row from `from` to `to`. Returns false (and
  // changes nothing) if its status was not `from`: someone else acted first.
  Result<bool> Transition(const std::string& event_id, const std::string& from,
                          const std::string& to, int64_t now);
  // Unconditional; for tests and repairs.
  Status SetStatus(const std::string& event_id, const std::string& status, int64_t now);

 private:
  explicit HoldStore(sqlite3* db) : db_(db) {}
  Status Exec(const std::string& sql);
  sqlite3* db_;
  std::mutex mu_;
};

// Writes verdicts to the audit log; abstract so tests can see records.
class AuditWriter {
 public:
  virtual ~AuditWriter() = default;
  // Durable when it returns OK. With synced = false it returns once the
  // record is written (a crash or kill -9 of the process loses nothing) and
  // syncs it within 100 ms; a sync that fails then fails the writer, so every
  // later Write is refused.
  virtual Status Write(const std::string& action, const VerdictRecord& r, bool synced = true) = 0;
  // For release/discard/approve from the CLI.
  virtual Status WriteAdmin(const std::string& action, const HeldMail& m, const std::string& user,
                            const std::string& result) = 0;
};

struct AuditOptions {
  std::string log_path;     // the shared audit log (src/audit) or a JSONL file
  std::string signing_key;  // Ed25519 key for the shared audit log
  const Clock* clock = &Clock::Real();
};
// The shared tamper-evident log (src/audit) when mamori is built with it, else
// an fsynced JSONL file with the same fields.
Result<std::unique_ptr<AuditWriter>> OpenAuditWriter(const AuditOptions& options,
                                                     const HashKey& key);

// The session's sink: hold metadata first, then the audit record.
class StoreSink : public VerdictSink {
 public:
  // sync_every_verdict = false: a clean accept (no personal data found, no
  // finding of any rule, nothing unreadable or not inspected, no error)
  // returns once its record is written; holds, Bcc conversions, tempfails and
  // anything with findings always wait for the fsync (`mamori milter
  // --audit-sync`).
  StoreSink(HoldStore* holds, AuditWriter* audit, const HashKey& key,
            bool sync_every_verdict = true)
      : holds_(holds), audit_(audit), key_(key), sync_every_verdict_(sync_every_verdict) {}
  Status Record(const VerdictRecord& r) override;

 private:
  HoldStore* holds_;
  AuditWriter* audit_;
  HashKey key_;
  bool sync_every_verdict_;
};

// JSON summary of the personal data found (types, counts); no values.
std::string SummaryJson(const ContentSummary& c);

}  // namespace mamori::mail
