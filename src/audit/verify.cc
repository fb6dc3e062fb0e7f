// Verify: reads a whole log and locates every kind of damage it can see.
#include <algorithm>
#include <deque>
#include <unordered_map>

#include "audit/audit.h"
#include "audit/format.h"

namespace mamori::audit {

using internal::Entry;
using internal::LineReader;

std::string_view ProblemKindName(ProblemKind kind) {
  switch (kind) {
    case ProblemKind::kMalformed:
      return "malformed";
    case ProblemKind::kHashMismatch:
      return "hash_mismatch";
    case ProblemKind::kChainBroken:
      return "chain_broken";
    case ProblemKind::kMissingSeq:
      return "missing_seq";
    case ProblemKind::kReordered:
      return "reordered";
    case ProblemKind::kBadSignature:
      return "bad_signature";
    case ProblemKind::kWrongKey:
      return "wrong_key";
    case ProblemKind::kBadCheckpoint:
      return "bad_checkpoint";
    case ProblemKind::kTruncated:
      return "truncated";
    case ProblemKind::kHeadMismatch:
      return "head_mismatch";
  }
  return "unknown";
}

namespace {

std::string Range(uint64_t a, uint64_t b) {
  return a == b ? "record " + std::to_string(a)
                : "records " + std::to_string(a) + ".." + std::to_string(b);
}

struct Gap {
  size_t problem;  // index into problems, or SIZE_MAX if not listed
  uint64_t from, to;
};

}  // namespace

Result<VerifyReport> Verify(const VerifyOptions& options) {
  if (!options.public_key.valid())
    return InvalidArgument("a public key is needed to verify checkpoints (`--pubkey FILE`)");
  Env* env = options.env ? options.env : Env::Default();
  ASSIGN_OR_RETURN(auto file, env->NewSequentialFile(options.log_path));
  LineReader lines(std::move(file), options.max_line_bytes);
  const std::string want_key = options.public_key.Hex();

  std::optional<Entry> anchor;
  if (options.anchor_checkpoint) {
    std::string a = *options.anchor_checkpoint;
    while (!a.empty() && (a.back() == '\n' || a.back() == '\r' || a.back() == ' ')) a.pop_back();
    auto parsed = internal::ParseLine(a);
    if (!parsed.ok() || parsed->kind != Entry::kCheckpoint || parsed->hash != parsed->computed)
      return InvalidArgument("the anchor is not a checkpoint line from an audit log" +
                             (parsed.ok() ? std::string() : ": " + parsed.status().message()));
    if (parsed->key != want_key || !internal::CheckpointSignatureValid(*parsed, options.public_key))
      return InvalidArgument("the anchor checkpoint is not signed by the given public key");
    anchor = std::move(parsed).value();
  }
  bool anchor_found = false;

  VerifyReport rep;
  rep.last_hash = internal::kGenesisHash;
  size_t dropped = 0;
  auto add = [&](ProblemKind kind, const LineReader::Line& l, uint64_t seq, std::string msg) {
    if (rep.problems.size() >= options.max_problems) {
      ++dropped;
      return SIZE_MAX;
    }
    rep.problems.push_back(Problem{kind, l.number, l.offset, seq, std::move(msg)});
    return rep.problems.size() - 1;
  };

  std::string prev_hash = internal::kGenesisHash, prev_computed = internal::kGenesisHash;
  bool prev_unknown = false;
  uint64_t max_seq = 0;
  std::vector<Gap> gaps;
  std::optional<std::string> head_hash_found;
  // Recent entries by hash, to tell a moved entry from a foreign one.
  struct Seen {
    uint64_t line, seq;
    bool record;
  };
  std::unordered_map<std::string, Seen> recent;
  std::deque<std::string> recent_order;
  constexpr size_t kRecent = 4096;

  while (true) {
    auto next = lines.Next();
    if (!next.ok()) {
      if (next.status().code() != StatusCode::kResourceExhausted) return next.status();
      // An over-long line is damage, not an I/O problem; it ends what we can read.
      LineReader::Line l;
      l.number = 0;
      add(ProblemKind::kMalformed, l, 0,
          next.status().message() + " (after record " + std::to_string(max_seq) +
              "); verification stops here");
      break;
    }
    if (!next->has_value()) break;
    const LineReader::Line& l = **next;
    std::string at = "line " + std::to_string(l.number) + ", offset " + std::to_string(l.offset);
    if (!l.terminated) {
      rep.torn_tail_bytes = l.text.size();
      break;
    }
    auto parsed = internal::ParseLine(l.text);
    if (!parsed.ok()) {
      add(ProblemKind::kMalformed, l, 0,
          "malformed entry at " + at + " (after record " + std::to_string(max_seq) +
              "): " + parsed.status().message());
      prev_unknown = true;
      rep.ends_with_checkpoint = false;
      continue;
    }
    Entry e = std::move(parsed).value();
    const bool is_record = e.kind == Entry::kRecord;
    std::string where = is_record ? "record " + std::to_string(e.seq) + " (" + at + ")"
                                  : "checkpoint at seq " + std::to_string(e.seq) + " (" + at + ")";
    bool line_problem = false;
    bool checkpoint_valid = false;

    if (e.hash != e.computed) {
      add(ProblemKind::kHashMismatch, l, e.seq,
          where + ": hash mismatch: the entry was modified after it was written");
      line_problem = true;
    }

    if (is_record) {
      uint64_t expect = max_seq + 1;
      if (e.seq > expect) {
        size_t idx =
            line_problem
                ? SIZE_MAX
                : add(ProblemKind::kMissingSeq, l, e.seq,
                      where + ": missing seq: " + Range(expect, e.seq - 1) + " deleted before it");
        gaps.push_back(Gap{idx, expect, e.seq - 1});
        line_problem = true;
      } else if (e.seq < expect) {
        auto gap = std::find_if(gaps.begin(), gaps.end(),
                                [&](const Gap& g) { return e.seq >= g.from && e.seq <= g.to; });
        if (gap != gaps.end()) {
          if (gap->problem != SIZE_MAX) {
            Problem& p = rep.problems[gap->problem];
            if (p.kind == ProblemKind::kMissingSeq) {
              p.kind = ProblemKind::kReordered;
              p.message = "record " + std::to_string(p.seq) + " (line " + std::to_string(p.line) +
                          ", offset " + std::to_string(p.offset) +
                          "): reordered: " + Range(gap->from, gap->to) +
                          " should come before it but " +
                          (gap->from == gap->to ? "appears" : "appear") + " later in the file";
            }
          }
          if (!line_problem)
            add(ProblemKind::kReordered, l, e.seq,
                where + ": reordered: it appears after record " + std::to_string(max_seq));
        } else if (!line_problem) {
          add(ProblemKind::kReordered, l, e.seq,
              where + ": reordered or duplicated: seq " + std::to_string(e.seq) +
                  " was already seen; the previous record is " + std::to_string(max_seq));
        }
        line_problem = true;
      }
      if (e.seq > max_seq) max_seq = e.seq;
    } else if (e.seq != max_seq && !line_problem) {
      add(ProblemKind::kBadCheckpoint, l, e.seq,
          where + ": the checkpoint names seq " + std::to_string(e.seq) +
              " but the last record before it is " + std::to_string(max_seq));
      line_problem = true;
    }

    if (!prev_unknown && e.prev != prev_hash && e.prev != prev_computed && !line_problem) {
      auto it = recent.find(e.prev);
      if (it != recent.end()) {
        add(ProblemKind::kReordered, l, e.seq,
            where + ": reordered or inserted: its predecessor is the " +
                (it->second.record ? "record " : "checkpoint at seq ") +
                std::to_string(it->second.seq) + " at line " + std::to_string(it->second.line) +
                ", not the line before it");
      } else {
        add(ProblemKind::kChainBroken, l, e.seq,
            where +
                ": chain broken: its prev hash does not match the entry before it (an "
                "entry was removed or replaced there)");
      }
      line_problem = true;
    }

    if (!is_record && !line_problem) {
      if (e.key != want_key) {
        add(ProblemKind::kWrongKey, l, e.seq,
            where + ": signed by key " + e.key.substr(0, 16) + "..., not by the given public key " +
                want_key.substr(0, 16) + "...");
      } else if (!internal::CheckpointSignatureValid(e, options.public_key)) {
        add(ProblemKind::kBadSignature, l, e.seq,
            "bad signature on checkpoint at seq " + std::to_string(e.seq) + " (" + at + ")");
      } else {
        checkpoint_valid = true;
      }
    }

    if (anchor && !is_record && e.hash == anchor->hash && !line_problem) anchor_found = true;
    if (is_record) {
      ++rep.records;
      ++rep.records_after_last_checkpoint;
      rep.last_seq = e.seq;
      rep.last_hash = e.hash;
      if (options.head && e.seq == options.head->seq && !head_hash_found) head_hash_found = e.hash;
    } else {
      ++rep.checkpoints;
      if (checkpoint_valid) {
        rep.last_checkpoint_seq = e.seq;
        rep.last_checkpoint_micros = e.time_micros;
        rep.records_after_last_checkpoint = 0;
      }
    }
    rep.ends_with_checkpoint = !is_record && checkpoint_valid;
    for (const std::string* h : {&e.hash, &e.computed}) {
      if (recent.emplace(*h, Seen{l.number, e.seq, is_record}).second) recent_order.push_back(*h);
    }
    while (recent_order.size() > kRecent) {
      recent.erase(recent_order.front());
      recent_order.pop_front();
    }
    prev_hash = e.hash;
    prev_computed = e.computed;
    prev_unknown = false;
  }

  if (options.head && options.head->seq > 0) {
    LineReader::Line end;
    end.number = 0;
    if (options.head->seq > max_seq) {
      add(ProblemKind::kTruncated, end, max_seq,
          "truncated after seq " + std::to_string(max_seq) + ": the head anchor names record " +
              std::to_string(options.head->seq) + ", so " + Range(max_seq + 1, options.head->seq) +
              " were removed from the end");
    } else if (!head_hash_found || *head_hash_found != options.head->hash) {
      add(ProblemKind::kHeadMismatch, end, options.head->seq,
          "record " + std::to_string(options.head->seq) +
              ": hash differs from the head anchor: the log was rewritten up to that record");
    }
  }
  if (anchor && !anchor_found) {
    LineReader::Line end;
    end.number = 0;
    if (anchor->seq >= max_seq) {
      add(ProblemKind::kTruncated, end, max_seq,
          "truncated after seq " + std::to_string(max_seq) + ": the anchored checkpoint (signed " +
              FormatRfc3339Micros(anchor->time_micros) + ") covers seq " +
              std::to_string(anchor->seq) +
              (anchor->seq > max_seq ? ", so " + Range(max_seq + 1, anchor->seq) + " were removed"
                                     : " but is missing from the end of the log"));
    } else {
      add(ProblemKind::kHeadMismatch, end, anchor->seq,
          "the anchored checkpoint at seq " + std::to_string(anchor->seq) +
              " is not in the log: the log was rewritten up to it or the checkpoint removed");
    }
  }
  if (dropped > 0) {
    rep.problems.back().message += " (and " + std::to_string(dropped) + " more problems)";
  }
  return rep;
}

std::string VerifyReport::ToString() const {
  std::string out;
  if (ok()) {
    out = "OK: " + std::to_string(records) + " records";
    if (records > 0) out += " (last seq " + std::to_string(last_seq) + ")";
    out += ", " + std::to_string(checkpoints) +
           (checkpoints == 1 ? " checkpoint\n" : " checkpoints\n");
    if (checkpoints > 0 && last_checkpoint_seq > 0) {
      out += "last signed checkpoint covers seq " + std::to_string(last_checkpoint_seq) + " at " +
             FormatRfc3339Micros(last_checkpoint_micros) + "\n";
    }
    if (records_after_last_checkpoint > 0) {
      out += "note: " + std::to_string(records_after_last_checkpoint) +
             " records after the last checkpoint are covered only by the hash chain (a log "
             "still open, or stopped without Close); compare with a stored head to detect "
             "truncation there\n";
    }
    out += "head: " + std::to_string(last_seq) + ":" + last_hash + "\n";
  } else {
    out = "FAIL: " + std::to_string(problems.size()) + " problem" +
          (problems.size() == 1 ? "" : "s") + "\n";
    for (const auto& p : problems) out += p.message + "\n";
  }
  if (torn_tail_bytes > 0) {
    out += "warning: the last line is torn (" + std::to_string(torn_tail_bytes) +
           " bytes without a newline after record " + std::to_string(last_seq) +
           "): a crash during append; it was never acknowledged, and reopening the log drops "
           "it and records the recovery\n";
  }
  return out;
}

}  // namespace mamori::audit
