// One milter connection's state machine, independent of sockets.
//
// The server feeds it decoded packets; it appends the replies to send. It
// negotiates only the steps mamori needs (envelope, headers, body) and asks
// Postfix not to wait for replies to them (SMFIP_NR_*), so a message costs two
// round trips: option negotiation (once per SMTP session) and end of message.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "mail/inspect.h"
#include "mail/milter_protocol.h"
#include "mail/policy.h"

namespace mamori::mail {

// Everything known about one decided message; the sink persists it.
struct VerdictRecord {
  int64_t time_micros = 0;
  std::string event_id;
  std::string queue_id;     // Postfix queue id ({i} macro), may be empty
  std::string auth_user;    // {auth_authen}, may be empty
  std::string client_addr;  // {client_addr}, may be empty
  Envelope envelope;
  Verdict verdict;
  ContentSummary content;
  uint64_t message_bytes = 0;
  std::string error;              // set when the action is tempfail
  int64_t release_at_micros = 0;  // for the 一時保留 delay
};

// Persists verdicts (audit log, hold metadata). Thread-safe. An error makes
// the session tempfail the message: nothing leaves without its audit record.
class VerdictSink {
 public:
  virtual ~VerdictSink() = default;
  virtual Status Record(const VerdictRecord& record) = 0;
};

// Tells senders what happened to their mail and takes their cancel requests
// (mail to policy.notice_cancel_address). Thread-safe; must not block the
// milter for long (queue the work).
class SenderDesk {
 public:
  virtual ~SenderDesk() = default;
  // Called after a recorded hold or Bcc conversion. `subject` is the raw
  // Subject header (may hold RFC 2047 words).
  virtual void Notify(const VerdictRecord& record, const std::string& subject) = 0;
  // `sender` asks to withdraw their held mail `event_id` ("" if the request
  // named none); the answer goes back to the sender by mail.
  virtual void Cancel(const std::string& sender, const std::string& event_id) = 0;
};

struct SessionDeps {
  const Policy* policy = nullptr;
  ContentInspector* inspector = nullptr;  // null: external mail is tempfailed
  VerdictSink* sink = nullptr;            // required
  const Clock* clock = &Clock::Real();
  std::function<std::string()> new_event_id;  // required
  SenderDesk* desk = nullptr;                 // optional: notices and cancel mails
  // Optional budget across all connections for buffered message bytes. When
  // set, a message that would push the total above max_total_buffered_bytes is
  // tempfailed (kResourceExhausted), so many large mails at once cannot
  // exhaust memory.
  std::atomic<uint64_t>* total_buffered = nullptr;
  uint64_t max_total_buffered_bytes = 0;
  // If true, Handle() leaves the end of message to DecideVerdict() and
  // FinishVerdict() (see there) instead of scanning and recording inline.
  bool defer_verdicts = false;
};

class Session {
 public:
  explicit Session(SessionDeps deps);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  // Handles one packet and appends replies to *out. A non-OK status is a
  // protocol violation: the connection must be closed (Postfix then applies
  // milter_default_action = tempfail).
  Status Handle(const milter::Packet& packet, std::string* out);
  // True once the MTA said QUIT.
  bool done() const { return done_; }

  // The end of message in two steps, for a server whose I/O threads must not
  // wait for a content scan or an audit fsync (with deps.defer_verdicts).
  // When Handle() returns with verdict_pending(), it appended nothing for the
  // end of message. Then call DecideVerdict() once, on any thread (it scans
  // and records the verdict, and may block), and afterwards FinishVerdict()
  // on the connection's thread, which appends the reply. No other call may
  // come in between: the MTA sends nothing until it has the reply.
  bool verdict_pending() const { return pending_.has_value(); }
  void DecideVerdict();
  void FinishVerdict(std::string* out);
  // Protocol flags agreed in OPTNEG (for tests and logs).
  uint32_t protocol_flags() const { return proto_; }

 private:
  void ResetMessage();
  // Accounts n more buffered bytes against the per-message and global budgets.
  bool Reserve(size_t n);
  void Reply(std::string* out, uint32_t nr_flag);
  void EndOfMessage(std::string* out);
  // Builds the verdict record (parsing, scanning, policy). Returns false if
  // *out already holds the whole reply (a sender's cancel request).
  bool PrepareVerdict(std::string* out, VerdictRecord* rec);
  // The reply to a verdict whose record was (or failed to be) persisted.
  void ReplyVerdict(const VerdictRecord& rec, const Status& recorded, std::string* out);
  std::string Macro(const std::string& name) const;

  SessionDeps deps_;
  bool negotiated_ = false;
  bool done_ = false;
  uint32_t proto_ = 0;
  uint32_t actions_ = 0;
  std::map<std::string, std::string> macros_;

  // Per message.
  std::string sender_;
  std::vector<std::string> rcpts_;
  std::string message_;  // reconstructed headers + body
  std::vector<std::string> to_cc_values_;
  std::string subject_;  // first Subject header, for the sender notice
  uint32_t to_count_ = 0, cc_count_ = 0, header_count_ = 0;
  bool in_body_ = false;
  Status message_error_;   // first budget overrun in this message
  uint64_t reserved_ = 0;  // bytes counted in *total_buffered

  struct PendingVerdict {
    // User-provided: clang 14 cannot default-construct a nested struct with
    // member initializers inside its enclosing class (std::optional::emplace).
    PendingVerdict() {}
    bool decided = false;
    bool replied = false;     // PrepareVerdict answered by itself
    std::string early_reply;  // ...with this
    VerdictRecord rec;
    Status recorded;
  };
  std::optional<PendingVerdict> pending_;
};

// 12-character event ids from libsodium's CSPRNG, e.g. "M7Q2K9XW4TPA".
std::string RandomEventId();

}  // namespace mamori::mail
