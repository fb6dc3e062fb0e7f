// The tamper-evident audit log (監査ログ), shared by vault, egress, mail and incident.
//
// Every event is one Record, appended to a file as one line. Each line carries
// the BLAKE2b-256 hash of the previous line (a hash chain) and a contiguous
// sequence number, so verification finds any modified, deleted, reordered or
// inserted line. Signed checkpoints (Ed25519) over (seq, chain hash, time) are
// chained into the same file every N records / T seconds and at Close, so a
// rewrite of everything up to a checkpoint needs the signing key. Truncation
// after the last checkpoint is only detectable against a head stored
// elsewhere (`mamori audit head`, Verify's `head`). The format and exactly
// what verification can and cannot detect are in docs/audit.md.
//
// Fail closed: Log::Append returns only after the record is durable (write +
// fdatasync, group commit). If a write or sync fails, Append returns an error,
// the log enters a failed state and every later Append fails until the log is
// reopened. The caller must then refuse the request it was recording.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/env.h"
#include "common/clock.h"
#include "common/status.h"

namespace mamori::audit {

// One event. Never put raw personal data in any field: use masked values or
// keyed hashes (common/redact.h).
struct Record {
  int64_t time_micros = 0;                   // set by Log::Append from the injected Clock if 0
  std::string component;                     // "vault", "egress", "mail", "incident", "scan"
  std::string event_id;                      // short unique id a user can quote to the help desk;
                                             // Log::Append fills one in (NewEventId) if empty
  std::string user, device, source_ip, org;  // who (org = contractor organisation, if any)
  std::string action;                        // "get", "put", "login", "upload", "mail.send", ...
  std::string object;       // object id or name hash (never a plaintext personal name)
  std::string destination;  // host or recipient domain for egress/mail
  uint64_t bytes = 0;
  std::string result;     // "allow", "deny", "hold", "block", "error"
  std::string reason;     // short machine-readable reason
  nlohmann::json labels;  // {"types":{"jp.my_number":3}, "individuals":50, "max_confidence":"high"}
  nlohmann::json extra;   // anything else, never raw personal data
};

// A record as read back from a log: its sequence number and entry hash.
struct StoredRecord {
  uint64_t seq = 0;
  std::string hash;  // hex BLAKE2b-256 of the entry line (what `head` prints)
  Record record;
};

// A 10-character random id in Crockford base32 ("7K2Q-9XMA4" style without the
// dash), e.g. for Record::event_id. Uses libsodium's CSPRNG.
std::string NewEventId();

// ---------------------------------------------------------------- keys

// Ed25519 public key that verifies checkpoints. Cheap to copy.
class PublicKey {
 public:
  static constexpr size_t kSize = 32;
  PublicKey() = default;
  // Parses 64 hex characters (surrounding whitespace ignored).
  static Result<PublicKey> FromHex(std::string_view hex);
  // Loads a public key file written by GenerateKeyPair / `mamori audit keygen`.
  static Result<PublicKey> Load(const std::string& path);
  std::string Hex() const;
  bool valid() const { return key_.size() == kSize; }
  bool Verify(std::string_view message, std::string_view signature) const;
  bool operator==(const PublicKey& o) const { return key_ == o.key_; }

 private:
  std::string key_;  // raw 32 bytes
};

// Ed25519 signing key. Kept in its own 0600 file, apart from the log and from
// the vault's data keys. Move-only; wiped on destruction.
class SigningKey {
 public:
  SigningKey();
  ~SigningKey();
  SigningKey(SigningKey&&) noexcept;
  SigningKey& operator=(SigningKey&&) noexcept;
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;

  // A fresh random key.
  static SigningKey Generate();
  // Loads a key file. Refuses a file readable or writable by group or others.
  static Result<SigningKey> Load(const std::string& path);
  const PublicKey& public_key() const { return public_; }
  // Detached 64-byte signature.
  std::string Sign(std::string_view message) const;
  // The file content: a header line and the 32-byte seed in hex.
  std::string Serialize() const;

 private:
  unsigned char secret_[64];
  PublicKey public_;
};

// Writes DIR/audit_signing.key (0600) and DIR/audit_signing.pub (0644).
// Refuses to overwrite an existing key. Returns the public key.
Result<PublicKey> GenerateKeyPair(const std::string& dir);
inline constexpr const char* kSigningKeyFile = "audit_signing.key";
inline constexpr const char* kPublicKeyFile = "audit_signing.pub";

// ---------------------------------------------------------------- head anchor

// The position of a record in the chain: store it somewhere the log's host
// cannot rewrite (another machine, a WORM bucket, a ticket) and give it to
// Verify to detect truncation after the last checkpoint.
struct Head {
  uint64_t seq = 0;                               // 0 = empty log
  std::string hash;                               // hex hash of the record entry with that seq
  std::string ToString() const;                   // "SEQ:HASH"
  static Result<Head> Parse(std::string_view s);  // parses "SEQ:HASH"
};

// ---------------------------------------------------------------- writing

struct LogOptions {
  std::string path;              // the log file; created with mode 0600 if absent
  std::string signing_key_path;  // Ed25519 key file from `mamori audit keygen`
  // Alternatively, the key itself (takes precedence over signing_key_path).
  std::shared_ptr<const SigningKey> signing_key;
  const Clock* clock = &Clock::Real();
  Env* env = nullptr;  // file layer; nullptr = Env::Default()
  // A signed checkpoint is chained after this many records...
  uint64_t checkpoint_every_records = 1000;
  // ...or on the first Append this long after the previous checkpoint.
  int64_t checkpoint_every_micros = 60LL * 1000 * 1000;
  // Also checkpoint from a background thread when records have waited this
  // long without one (a quiet log). The thread sleeps in real time and asks
  // the injected clock whether the interval has passed, so tests with a
  // FakeClock that does not move see no background checkpoints.
  bool background_checkpoints = true;
  // If set, every checkpoint line is also written (atomically, replacing the
  // previous one) to this file once it is durable in the log. Put it where
  // the log's host cannot roll it back (another volume, a mount synced
  // off-host); `mamori audit verify --anchor FILE` then detects truncation
  // after the last checkpoint. Failing to write it fails the log (closed).
  std::string checkpoint_copy_path;
  // Budget for one serialised record; a larger record is refused
  // (ResourceExhausted) and the log stays usable.
  size_t max_record_bytes = 64 * 1024;
  // When reopening a log whose last line was torn by a crash, drop the torn
  // bytes and chain a record (component "audit", action "recover") saying so.
  // If false, Open fails with DataLoss instead.
  bool recover_torn_tail = true;
  // For AppendAsync(..., Durability::kWritten): the longest a record that was
  // answered once written waits for its fdatasync (the commit thread syncs
  // earlier if a kSynced record comes along).
  int64_t written_sync_delay_micros = 100 * 1000;
};

// When AppendAsync's `done` runs.
enum class Durability {
  kSynced,   // once the record is on disk (fdatasync): survives a power loss
  kWritten,  // once it is in the file (write): survives a crash of the
             // process, not of the machine; it is synced within
             // LogOptions::written_sync_delay_micros, and a failed sync fails
             // the log (every later append is refused)
};

class Log {
 public:
  // Opens or creates the log. An existing file is read in full and its chain
  // checked (hashes, links, seq; not signatures); a broken chain fails with
  // DataLoss: investigate with `mamori audit verify`, never append to it.
  static Result<std::unique_ptr<Log>> Open(const LogOptions& options);
  ~Log();  // Close(), ignoring its error
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  // Appends a record and returns its sequence number (the first is 1) once it
  // is durable. Thread-safe; concurrent appends share one fdatasync (group
  // commit). An error means the record may not be stored: the caller must
  // refuse the request (fail closed). Errors: ResourceExhausted (record too
  // big; log still usable), Unavailable (write/sync failed; log now failed),
  // FailedPrecondition (log failed earlier or closed).
  Result<uint64_t> Append(Record record);

  // Append without blocking the caller: the record is chained and queued at
  // once, and `done` gets what Append would have returned once the record is
  // durable (or the log failed). `done` runs on one of the log's commit
  // threads (started on first use), or inside AppendAsync itself when the
  // record is refused before it is queued (too big, too deep, log failed or
  // closing). Concurrent async and blocking appends share fdatasyncs, so an
  // event loop can keep many decisions in one commit without a thread each.
  // `done` must be quick and must not call into this Log. Close() delivers
  // every pending `done` before it returns. Use it to answer a request only
  // after its record is durable, without holding an I/O thread meanwhile.
  // With Durability::kWritten, `done` runs once the record is written, not
  // yet synced (see Durability); records are still delivered in order.
  using AppendCallback = std::function<void(Result<uint64_t>)>;
  void AppendAsync(Record record, AppendCallback done, Durability durability = Durability::kSynced);

  // Chains a signed (Ed25519) checkpoint over the current head and makes it
  // durable. A no-op if nothing was appended since the last checkpoint.
  Status Checkpoint();

  // Writes a final checkpoint and closes the file. Later calls fail.
  Status Close();

  // The last durable record (seq 0 and the genesis hash if empty).
  Head head() const;
  // OK, or the error that put the log into the failed state.
  Status status() const;
  // Bytes of torn tail dropped by Open (0 if the last line was whole).
  uint64_t recovered_tail_bytes() const;

  class Impl;

 private:
  explicit Log(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------- reading

// Which records to return; empty fields match everything, set fields must be
// equal. Times are [since, until) in microseconds since the epoch.
struct Filter {
  std::optional<int64_t> since_micros, until_micros;
  std::string component, user, device, source_ip, org, action, destination, result;
  bool Matches(const Record& r) const;
};

struct ReaderOptions {
  std::string path;
  Env* env = nullptr;
  // Longest accepted line; a longer one is an error (never a silent skip).
  size_t max_line_bytes = 1 << 20;
};

// Streams the records of a log in order, checking the hash chain as it goes
// (not signatures: use Verify for that). Memory does not grow with the file.
class Reader {
 public:
  static Result<std::unique_ptr<Reader>> Open(const ReaderOptions& options, Filter filter = {});
  ~Reader();
  // The next matching record, std::nullopt at the end. A broken chain or a
  // malformed line is a DataLoss error that names the line. A torn last line
  // (crash during append) ends the stream quietly; torn_tail_bytes() says so.
  Result<std::optional<StoredRecord>> Next();
  uint64_t torn_tail_bytes() const;
  class Impl;

 private:
  explicit Reader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Calls fn for every matching record in order; stops at fn's first error.
Status Scan(const ReaderOptions& options, const Filter& filter,
            const std::function<Status(const StoredRecord&)>& fn);

// The head of a log file (last record), checking the chain on the way.
Result<Head> ReadHead(const ReaderOptions& options);

// ---------------------------------------------------------------- verifying

enum class ProblemKind {
  kMalformed,      // a line that is not a valid entry
  kHashMismatch,   // a line whose content does not match its hash (modified)
  kChainBroken,    // a line whose prev-hash does not name the line before it
  kMissingSeq,     // records missing (deleted) before this one
  kReordered,      // a record whose seq is lower than one already seen
  kBadSignature,   // a checkpoint whose signature does not verify
  kWrongKey,       // a checkpoint signed by another key than the one given
  kBadCheckpoint,  // a checkpoint whose seq/hash do not match the chain
  kTruncated,      // the log ends before the given head
  kHeadMismatch,   // the record at the head's seq has another hash
};
std::string_view ProblemKindName(ProblemKind kind);

struct Problem {
  ProblemKind kind;
  uint64_t line = 0;    // 1-based line number in the file (0 = end of file)
  uint64_t offset = 0;  // byte offset of the line
  uint64_t seq = 0;     // the record's seq (or the checkpoint's), 0 if unknown
  std::string message;  // "record 42 (line 43): hash mismatch ..."
};

struct VerifyOptions {
  std::string log_path;
  PublicKey public_key;
  std::optional<Head> head;  // an externally stored head to check against
  // A checkpoint line stored elsewhere (LogOptions::checkpoint_copy_path).
  // It must be signed by public_key; the log must contain it.
  std::optional<std::string> anchor_checkpoint;
  Env* env = nullptr;
  size_t max_line_bytes = 1 << 20;
  size_t max_problems = 100;  // stop listing after this many
};

struct VerifyReport {
  uint64_t records = 0, checkpoints = 0;
  uint64_t last_seq = 0;
  std::string last_hash;             // hash of the last record entry
  uint64_t last_checkpoint_seq = 0;  // seq covered by the last valid checkpoint
  int64_t last_checkpoint_micros = 0;
  uint64_t records_after_last_checkpoint = 0;  // not covered by any signature
  bool ends_with_checkpoint = false;           // clean Close()
  uint64_t torn_tail_bytes = 0;                // partial last line: a crash, not an error
  std::vector<Problem> problems;
  bool ok() const { return problems.empty(); }
  // Human-readable multi-line summary, "OK: ..." or one line per problem.
  std::string ToString() const;
};

// Reads the whole log and checks every line, link, seq and checkpoint
// signature. Tampering is reported in the VerifyReport; the Result is an
// error only if the file cannot be read.
Result<VerifyReport> Verify(const VerifyOptions& options);

// ---------------------------------------------------------------- export

// "2026-11-23T12:34:56.123456Z".
std::string FormatRfc3339Micros(int64_t micros);
// Parses RFC 3339 ("2026-11-23T12:34:56Z", fractional seconds and offsets
// allowed) or a plain date ("2026-11-23", midnight UTC).
Result<int64_t> ParseTime(std::string_view text);

// The record as a JSON object with fields time, component, event_id, user,
// device, source_ip, org, action, object, destination, bytes, result, reason,
// labels, extra (in that order). Invalid UTF-8 becomes U+FFFD.
nlohmann::ordered_json RecordToJson(const Record& r);
// One JSON object (no newline) with fields seq, time, component, event_id,
// user, device, source_ip, org, action, object, destination, bytes, result,
// reason, labels, extra, hash.
std::string ToJsonLine(const StoredRecord& r);
// One RFC 5424 syslog line (no newline): facility 13 (log audit), severity by
// result, APP-NAME "mamori", MSGID the component, structured data
// [mamori@32473 ...] with '"', '\' and ']' escaped.
std::string ToSyslogLine(const StoredRecord& r, std::string_view hostname);

}  // namespace mamori::audit
