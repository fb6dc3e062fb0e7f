// Internal: the on-disk entry format of the audit log (see docs/audit.md).
//
//   line  := hash SP body LF
//   hash  := 64 lowercase hex = BLAKE2b-256("mamori.audit.v1\n" || body)
//   body  := one JSON object, no LF; "k":"r" (record) or "k":"c" (checkpoint)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "audit/audit.h"
#include "audit/env.h"
#include "common/status.h"

namespace mamori::audit::internal {

inline constexpr size_t kHashHexLen = 64;
// The prev-hash of the first entry.
extern const std::string kGenesisHash;

// Hex BLAKE2b-256 of an entry body.
std::string HashBody(std::string_view body);
std::string ToHex(std::string_view raw);
// Parses exactly 2*n lowercase or uppercase hex characters into raw bytes.
std::optional<std::string> FromHex(std::string_view hex);

// The record fields after "k","seq","prev","t", as a JSON fragment starting
// with ',' (serialised outside the log's lock). Invalid UTF-8 is replaced.
std::string SerializeRecordFields(const Record& r);
// A whole record body.
std::string RecordBody(uint64_t seq, std::string_view prev, int64_t time_micros,
                       std::string_view fields);
// The message a checkpoint signs.
std::string CheckpointMessage(uint64_t seq, std::string_view prev, int64_t time_micros);
std::string CheckpointBody(uint64_t seq, std::string_view prev, int64_t time_micros,
                           const SigningKey& key);
// hash + ' ' + body + '\n'
std::string MakeLine(std::string_view body, std::string* hash_out);

struct Entry {
  enum Kind { kRecord, kCheckpoint } kind = kRecord;
  std::string hash;      // as stored on the line
  std::string computed;  // HashBody(body)
  uint64_t seq = 0;
  std::string prev;
  int64_t time_micros = 0;
  Record record;    // kRecord
  std::string key;  // kCheckpoint: signer's public key, hex
  std::string sig;  // kCheckpoint: signature, hex
};

// Parses one line (without its LF). Returns InvalidArgument describing what
// is malformed. Does not compare hash and computed: the caller does.
Result<Entry> ParseLine(std::string_view line);

// Verifies a checkpoint entry's signature with `key`.
bool CheckpointSignatureValid(const Entry& e, const PublicKey& key);

// Splits a file into lines with a budget per line. Streams; memory is bounded
// by max_line_bytes.
class LineReader {
 public:
  LineReader(std::unique_ptr<SequentialFile> file, size_t max_line_bytes)
      : file_(std::move(file)), max_line_(max_line_bytes) {}

  struct Line {
    std::string text;  // without LF
    uint64_t offset = 0;
    uint64_t number = 0;     // 1-based
    bool terminated = true;  // false: the file ended without LF (torn tail)
  };
  // Next line, nullopt at end of file. A line longer than the budget is a
  // ResourceExhausted error.
  Result<std::optional<Line>> Next();

 private:
  Status Fill();
  std::unique_ptr<SequentialFile> file_;
  size_t max_line_;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
  uint64_t offset_ = 0;
  uint64_t number_ = 0;
};

// Strict chain walker used by Log::Open and Reader: the first problem is a
// DataLoss error naming the line.
class ChainWalker {
 public:
  // Feeds one terminated line; returns the parsed entry.
  Result<Entry> Feed(const LineReader::Line& line);
  uint64_t last_seq() const { return last_seq_; }
  const std::string& last_hash() const { return last_hash_; }  // last entry
  const std::string& last_record_hash() const { return last_record_hash_; }
  int64_t last_checkpoint_micros() const { return last_checkpoint_micros_; }
  uint64_t records_since_checkpoint() const { return records_since_checkpoint_; }

 private:
  uint64_t last_seq_ = 0;
  std::string last_hash_ = kGenesisHash;
  std::string last_record_hash_ = kGenesisHash;
  int64_t last_checkpoint_micros_ = 0;
  uint64_t records_since_checkpoint_ = 0;
};

}  // namespace mamori::audit::internal
