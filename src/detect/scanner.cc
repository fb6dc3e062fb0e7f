// The streaming scanner: Vectorscan prefilter, validation, context, positions.
//
// Stream model. Bytes are appended to buf_, which holds the stream from
// buf_base_ to data_end_. Vectorscan (stream mode, leftmost start of match)
// reports candidate spans and keyword hits with absolute offsets. A line
// walker assigns each candidate its line, column, field and record once its
// line is complete, and types the cells of delimited text by column header.
// A candidate settles (is validated and scored) once the bytes after it that
// its context window needs have arrived, or at Finish(). Settled findings are
// released in stream order once no later candidate can overlap them.
#include <hs/hs.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "detect/detect.h"
#include "detect/ruleset_impl.h"
#include "detect/text.h"
#include "detect/validate.h"
#include "detect/validators.h"

namespace mamori::detect {
namespace {

constexpr uint64_t kMaxLineBytes = 64 * 1024;  // longer lines are walked in pieces
constexpr uint64_t kSettleMargin = 256;        // bytes after a value its validator may read
constexpr uint64_t kMaxCellBytes = 256;        // longer cells are not typed by header

struct KeywordHit {
  uint64_t start, end;
  int rule;
  bool negative;
};

// Keyword hits, oldest first, in a vector whose front moves: the lookups are
// binary searches, and over a deque's segmented iterators they were a
// twentieth of the scan on keyword-dense CSV.
class KeywordQueue {
 public:
  using iterator = std::vector<KeywordHit>::iterator;
  using const_iterator = std::vector<KeywordHit>::const_iterator;
  iterator begin() { return hits_.begin() + static_cast<long>(head_); }
  iterator end() { return hits_.end(); }
  const_iterator begin() const { return hits_.begin() + static_cast<long>(head_); }
  const_iterator end() const { return hits_.end(); }
  size_t size() const { return hits_.size() - head_; }
  bool empty() const { return size() == 0; }
  const KeywordHit& front() const { return hits_[head_]; }
  void push_back(const KeywordHit& k) { hits_.push_back(k); }
  // Compacts once the dropped front is most of the storage, so each hit is
  // moved O(1) times on average. Invalidates iterators.
  void pop_front() {
    if (++head_ >= 1024 && head_ * 2 >= hits_.size()) {
      hits_.erase(hits_.begin(), hits_.begin() + static_cast<long>(head_));
      head_ = 0;
    }
  }

 private:
  std::vector<KeywordHit> hits_;
  size_t head_ = 0;
};

struct Candidate {
  uint64_t start = 0, end = 0;
  int rule = -1;
  bool cell = false;  // a whole cell typed by its column header
  bool positioned = false;
  uint64_t line = 0;
  uint32_t column = 0;
  int32_t field = -1;
  uint64_t record = 0;
  // The header column whose text is context for this rule, or -1. An index,
  // not the text: candidates are sorted and moved by the hundred thousand.
  int32_t header_context = -1;
  bool header_negative = false;
  bool header_foreign = false;  // the column's header names another type
};

struct HeaderColumn {
  std::string text;                 // as written
  std::vector<int> context_rules;   // rules for which this header is context
  std::vector<int> negative_rules;  // rules for which it is negative context
  int typed_rule = -1;              // column_type rule whose cells this column holds
};

Confidence ConfidenceOf(double score) {
  return score >= 0.8 ? Confidence::kHigh : score >= 0.5 ? Confidence::kMedium : Confidence::kLow;
}

bool ContainsWord(const std::string& folded, const std::vector<std::string>& words) {
  for (const auto& w : words)
    if (!w.empty() && folded.find(w) != std::string::npos) return true;
  return false;
}

// Splits one line of delimited text into [start, end) byte ranges of its
// fields, honouring double quotes. Ranges exclude the quotes.
size_t NextDelimiter(std::string_view line, size_t from, char delim) {
  if (from >= line.size()) return line.size();
  const void* hit = std::memchr(line.data() + from, delim, line.size() - from);
  return hit ? static_cast<size_t>(static_cast<const char*>(hit) - line.data()) : line.size();
}

// Appends the field that starts at *i and moves *i past its delimiter.
// Returns false after the line's last field.
bool NextField(std::string_view line, char delim, size_t* pos,
               std::vector<std::pair<size_t, size_t>>* out) {
  size_t i = *pos;
  {  // one field
    size_t start = i, end;
    if (i < line.size() && line[i] == '"') {
      size_t j = i + 1;
      while (j < line.size()) {
        if (line[j] == '"') {
          if (j + 1 < line.size() && line[j + 1] == '"') {
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      start = i + 1;
      end = std::min(j, line.size());
      i = j < line.size() ? j + 1 : j;
      i = NextDelimiter(line, i, delim);
    } else {
      i = NextDelimiter(line, i, delim);
      end = i;
    }
    // Trim spaces and a trailing CR.
    while (start < end && (line[start] == ' ' || (line[start] == '\t' && delim != '\t'))) ++start;
    while (end > start && (line[end - 1] == ' ' || line[end - 1] == '\r')) --end;
    out->emplace_back(start, end);
    *pos = i + 1;  // past the delimiter
    return i < line.size();
  }
}

void SplitFields(std::string_view line, char delim, std::vector<std::pair<size_t, size_t>>* out) {
  out->clear();
  size_t i = 0;
  while (NextField(line, delim, &i, out)) {
  }
}

// Bit masks of ASCII digits and of 0xEF bytes (the lead byte of full-width
// digits) over s, 64 bytes at a time, each block classified once. On
// number-heavy CSV a digit run starts every few bytes, and classifying the
// bytes again from every run's start was a third of the tokenizer's time.
class DigitBlocks {
 public:
  explicit DigitBlocks(std::string_view s) : s_(s) {}

  // The first position at or after i holding an ASCII digit or an 0xEF
  // byte (which may start a full-width digit), or s.size().
  size_t NextDigitOrEf(size_t i) {
    while (i < s_.size()) {
      Load(i);
      uint64_t m = (digits_ | efs_) >> (i - base_);
      if (m) return i + static_cast<size_t>(__builtin_ctzll(m));
      i = base_ + 64;
    }
    return s_.size();
  }

  // The number of ASCII digits in a row from position i.
  size_t DigitRun(size_t i) {
    size_t n = 0;
    while (i < s_.size()) {
      Load(i);
      size_t off = i - base_;
      uint64_t m = ~digits_ >> off;  // bits past the data are non-digits
      if (m) return n + static_cast<size_t>(__builtin_ctzll(m));
      n += 64 - off;
      i = base_ + 64;
    }
    return n;
  }

 private:
  void Load(size_t i) {
    size_t block = i & ~size_t{63};
    if (block == base_) return;
    base_ = block;
    digits_ = efs_ = 0;
    const char* p = s_.data() + block;
    size_t k = 0;
    size_t n = std::min<size_t>(64, s_.size() - block);
#if defined(__SSE2__)
    const __m128i lo = _mm_set1_epi8('0' - 1), hi = _mm_set1_epi8('9' + 1);
    const __m128i ef = _mm_set1_epi8(static_cast<char>(0xEF));
    for (; k + 16 <= n; k += 16) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k));
      // Bytes >= 0x80 are negative as signed and fail the first compare.
      __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, lo), _mm_cmplt_epi8(v, hi));
      digits_ |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(digit))) << k;
      efs_ |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, ef))))
              << k;
    }
#endif
    for (; k < n; ++k) {
      unsigned char c = static_cast<unsigned char>(p[k]);
      if (c >= '0' && c <= '9') digits_ |= uint64_t{1} << k;
      if (c == 0xEF) efs_ |= uint64_t{1} << k;
    }
  }

  std::string_view s_;
  size_t base_ = SIZE_MAX;
  uint64_t digits_ = 0, efs_ = 0;
};

// One group of digits in a token: s[start, end), `digits` of them (ASCII or
// full-width). 64-bit fields throughout, so no narrow store is read back wide.
struct TokenGroup {
  size_t start, end;
  int64_t digits;
};
constexpr size_t kMaxTokenGroups = 12;  // a token with more groups ends there
struct TokenGroups {
  std::array<TokenGroup, kMaxTokenGroups> g;
  size_t n = 0;
  void clear() { n = 0; }
  void Add(size_t start, size_t end, int64_t digits) {
    TokenGroup& x = g[n++];
    x.start = start;
    x.end = end;
    x.digits = digits;
  }
  size_t size() const { return n; }
  const TokenGroup& operator[](size_t i) const { return g[i]; }
  const TokenGroup* begin() const { return g.data(); }
  const TokenGroup* end() const { return g.data() + n; }
};

class ScannerImpl final : public Scanner {
 public:
  ScannerImpl(std::shared_ptr<const RuleSet> holder, const RuleSetImpl& rs, const HashKey& key,
              ScanOptions opt)
      : holder_(std::move(holder)), rs_(rs), key_(key), opt_(std::move(opt)), vctx_(rs) {
    enabled_.assign(rs_.compiled.size(), opt_.types.empty());
    for (const auto& t : opt_.types)
      for (size_t i = 0; i < rs_.compiled.size(); ++i)
        if (rs_.compiled[i].info.type == t) enabled_[i] = true;
    for (const auto& r : rs_.compiled) {
      max_window_before_ = std::max<uint64_t>(max_window_before_, r.window_before);
      settle_after_ = std::max<uint64_t>(settle_after_, r.window_after);
    }
    settle_after_ = std::max(settle_after_, kSettleMargin);
    for (const auto& pe : rs_.patterns)
      if (pe.keyword) max_keyword_len_ = std::max<uint64_t>(max_keyword_len_, pe.keyword_len);
    early_drop_.assign(rs_.compiled.size(), false);
    header_context_.assign(rs_.compiled.size(), false);
    positive_keywords_held_.assign(rs_.compiled.size(), 0);
    early_drop_unseparated_.assign(rs_.compiled.size(), false);
    for (size_t i = 0; i < rs_.compiled.size(); ++i) {
      const CompiledRule& r = rs_.compiled[i];
      early_drop_[i] = NeedsKeywordToReport(r);
      // For these validators a value is "structured" exactly when its digits
      // have a separator, so one group of digits can only score `bare`; a
      // corporate number also gives itself context with a "T" before it
      // (Offer() tells whether it found one). A bank account or a postal code
      // gives itself context only through words its regex pattern matches
      // (普通, 〒) or as 14 digits in 4-3-7 groups: never as one group of
      // digits from the tokenizer (on order exports, 7-digit order numbers).
      bool structured_is_separator = r.validator == ValidatorKind::kMyNumber ||
                                     r.validator == ValidatorKind::kDriversLicense ||
                                     r.validator == ValidatorKind::kLuhnCard ||
                                     r.validator == ValidatorKind::kCorporateNumber ||
                                     r.validator == ValidatorKind::kBankAccount ||
                                     r.validator == ValidatorKind::kPostalCode;
      // Settle() scores these validators' candidates next to a negative
      // keyword at the rule's negative score even without positive context;
      // where that score is reportable (--min-confidence low) only Settle()
      // can decide.
      early_drop_unseparated_[i] =
          structured_is_separator && !r.letters_before && !r.letters_after &&
          (r.context_required || ConfidenceOf(r.scores.bare) < opt_.min_confidence) &&
          ConfidenceOf(r.scores.negative) < opt_.min_confidence;
    }
    for (size_t i = 0; i < rs_.compiled.size(); ++i) {
      if (enabled_[i] && rs_.compiled[i].tokenized_dates) {
        has_numeric_ = true;
        date_rules_.push_back({static_cast<int>(i), rs_.compiled[i].tokenized_dates});
      }
      if (!enabled_[i] || rs_.compiled[i].numeric.empty()) continue;
      has_numeric_ = true;
      for (const auto& shape : rs_.compiled[i].numeric) {
        if (shape.empty() || shape.size() > kMaxShapeGroups) continue;
        for (int d = shape[0].min; d <= shape[0].max && d <= kMaxGroupDigits; ++d)
          shapes_by_start_[shape.size()][d].push_back({static_cast<int>(i), &shape});
      }
    }
  }

  ~ScannerImpl() override {
    if (stream_) hs_close_stream(stream_, nullptr, nullptr, nullptr);  // no callback: no scratch
  }

  // Scratch is needed only during a scan call, so one per thread serves every
  // scanner on that thread; allocating it per stream cost ~150 µs each. It is
  // looked up at every call, not kept: a scanner may be fed from another
  // thread than the one that created it (an ICAP transaction is a coroutine
  // that resumes on any I/O thread), and keeping the creator's scratch made
  // two threads scan with one scratch ("Vectorscan stream scan failed").
  //
  // hs_alloc_scratch re-validates the whole database (a CRC over its bytecode,
  // ~170k instructions) even when the scratch already fits, and that was half
  // the milter's CPU per message. So each thread remembers the serials of the
  // rule sets its scratch was fitted to; growing it for one keeps it fitting
  // the others.
  Result<hs_scratch_t*> ThreadScratch() {
    thread_local struct ScratchCache {
      hs_scratch_t* scratch = nullptr;
      std::vector<uint64_t> fitted;  // rule-set serials; a handful at most
      ~ScratchCache() {
        if (scratch) hs_free_scratch(scratch);
      }
    } cache;
    for (uint64_t serial : cache.fitted)
      if (serial == rs_.serial) return cache.scratch;
    if (hs_alloc_scratch(rs_.db, &cache.scratch) != HS_SUCCESS)
      return Internal("Vectorscan scratch allocation failed");
    // Bounded: a long-lived thread that outlives many reloads forgets the
    // oldest serials (they only cost one more hs_alloc_scratch if seen again).
    if (cache.fitted.size() >= 16) cache.fitted.erase(cache.fitted.begin());
    cache.fitted.push_back(rs_.serial);
    return cache.scratch;
  }

  Status Init() {
    // Allocated now, so the first scan call does not pay for it.
    if (auto scratch = ThreadScratch(); !scratch.ok()) return scratch.status();
    if (hs_open_stream(rs_.db, 0, &stream_) != HS_SUCCESS)
      return Internal("Vectorscan stream open failed");
    return Status::Ok();
  }

  Status Feed(std::string_view chunk) override {
    if (!error_.ok()) return error_;
    if (finished_) return error_ = FailedPrecondition("Feed() after Finish()");
    if (borrowed_) return error_ = FailedPrecondition("Feed() on a whole-buffer scanner");
    if (data_end_ + chunk.size() > opt_.max_bytes) {
      return error_ = ResourceExhausted("stream exceeds the scan budget of " +
                                        std::to_string(opt_.max_bytes) + " bytes");
    }
    // data_end_ only ever covers bytes Vectorscan has seen.
    auto scratch = ThreadScratch();
    if (!scratch.ok()) return error_ = scratch.status();
    for (size_t off = 0, len; off < chunk.size(); off += len) {
      len = SliceLength(chunk.size() - off);
      buf_.append(chunk.substr(off, len));
      view_ = buf_;
      data_end_ += len;
      if (hs_scan_stream(stream_, chunk.data() + off, static_cast<unsigned>(len), 0, *scratch,
                         &OnMatch, this) != HS_SUCCESS) {
        return error_ = Internal("Vectorscan stream scan failed");
      }
      Process(/*finishing=*/false);
      if (!error_.ok()) return error_;
    }
    return error_;
  }

  Status Finish() override {
    if (!error_.ok()) return error_;
    if (finished_) return Status::Ok();
    finished_ = true;
    auto scratch = ThreadScratch();
    if (!scratch.ok()) return error_ = scratch.status();
    if (hs_close_stream(stream_, *scratch, &OnMatch, this) != HS_SUCCESS)
      return error_ = Internal("Vectorscan stream close failed");
    stream_ = nullptr;
    Process(/*finishing=*/true);
    return error_;
  }

  // Scans a whole buffer that outlives the call, in place: the same slices
  // and the same Process() steps as Feed(), without copying the bytes into
  // buf_ (at hundreds of MB/s the copy and its fresh pages cost ~10%).
  // Bytes are scanned and processed in slices, so that a huge chunk cannot
  // grow the match lists unboundedly. Delimited text starts with small slices
  // until its header row is known: only then can the digit tokenizer drop
  // the hard negatives no column makes personal (DroppedBeforeWalk).
  size_t SliceLength(size_t remaining) const {
    constexpr size_t kSlice = 4 << 20, kBeforeHeader = 64 << 10;
    return std::min(remaining, opt_.field_delimiter && !header_done_ ? kBeforeHeader : kSlice);
  }

  Status ScanWhole(std::string_view text) {
    if (text.size() > opt_.max_bytes)
      return error_ = ResourceExhausted("stream exceeds the scan budget of " +
                                        std::to_string(opt_.max_bytes) + " bytes");
    borrowed_ = true;
    view_ = text;
    auto scratch = ThreadScratch();
    if (!scratch.ok()) return error_ = scratch.status();
    for (size_t off = 0, len; off < text.size(); off += len) {
      len = SliceLength(text.size() - off);
      data_end_ += len;
      if (hs_scan_stream(stream_, text.data() + off, static_cast<unsigned>(len), 0, *scratch,
                         &OnMatch, this) != HS_SUCCESS) {
        return error_ = Internal("Vectorscan stream scan failed");
      }
      Process(/*finishing=*/false);
      if (!error_.ok()) return error_;
    }
    return Finish();
  }

  std::vector<Finding> TakeFindings() override {
    std::vector<Finding> out;
    out.swap(out_);
    return out;
  }

  uint64_t bytes_scanned() const override { return data_end_; }

 private:
  static int OnMatch(unsigned int id, unsigned long long from, unsigned long long to, unsigned int,
                     void* ctx) {
    auto* self = static_cast<ScannerImpl*>(ctx);
    const PatternEntry& p = self->rs_.patterns[id];
    if (!self->enabled_[p.rule]) return 0;
    if (p.keyword) {
      self->keywords_.push_back({to - p.keyword_len, to, p.rule, p.negative});
      if (!p.negative) ++self->positive_keywords_held_[p.rule];
    } else {
      self->raw_.push_back({from, to, static_cast<int>(id)});
    }
    return 0;
  }

  struct RawMatch {
    uint64_t from, to;
    int pattern;
  };

  std::string_view Bytes(uint64_t a, uint64_t b) const {
    a = std::max(a, buf_base_);
    b = std::min(b, data_end_);
    if (a >= b) return {};
    return view_.substr(a - buf_base_, b - a);
  }

  // Digit at s[i] (ASCII or full-width); sets *len.
  static bool DigitAt(std::string_view s, size_t i, size_t* len) {
    unsigned char c = s[i];
    if (c >= '0' && c <= '9') {
      *len = 1;
      return true;
    }
    if (c == 0xEF && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xBC &&
        static_cast<unsigned char>(s[i + 2]) >= 0x90 &&
        static_cast<unsigned char>(s[i + 2]) <= 0x99) {
      *len = 3;
      return true;
    }
    return false;
  }
  // Separator between digit groups at s[i]; sets *len and *paren.
  static bool SeparatorAt(std::string_view s, size_t i, size_t* len, bool* paren) {
    unsigned char c = s[i];
    if (c < 0x80) {  // most digit runs end at an ASCII byte (',' in CSV): no decoding
      *paren = c == '(' || c == ')';
      *len = 1;
      return *paren || c == ' ' || c == '-' || c == '.';
    }
    size_t n = 0;
    uint32_t cp = DecodeAt(s, i, &n);
    *paren = cp == '(' || cp == ')' || cp == 0xFF08 || cp == 0xFF09;
    if (*paren || IsSeparatorCp(cp)) {
      *len = n;
      return true;
    }
    return false;
  }

  // The digit tokenizer: finds runs of digit groups joined by single
  // separators, and offers every contiguous run of groups that has a rule's
  // numeric shape as a candidate. It replaces digit-class regexes, which are
  // the slowest thing a DFA can be asked to do on number-heavy text.
  void TokenizeNumbers(bool finishing) {
    if (!has_numeric_) return;
    std::string_view s = Bytes(tok_pos_, data_end_);
    size_t limit = s.size();
    size_t i = 0;
    // At most kMaxTokenGroups groups, filled in place: building each group on
    // the stack and copying it into a vector stalled on store forwarding (a
    // 4-byte store read back as 8, two 8-byte stores read back as 16), a
    // fifth of the tokenizer's time on dated CSV rows.
    TokenGroups groups;
    DigitBlocks blocks(s);
    while (i < limit) {
      // Skip to the next digit: ASCII digits or the 0xEF lead of a full-width one.
      i = blocks.NextDigitOrEf(i);
      if (i >= limit) break;
      size_t dl;
      if (!DigitAt(s, i, &dl)) {
        if (i + 3 > limit && !finishing) break;  // a full-width digit may be arriving
        ++i;
        continue;
      }
      // Most numbers in CSV are one group of ASCII digits ended by a byte
      // that can neither join another group nor follow a year (',' ';' ':'):
      // offer that group without the general reader below, which treats it
      // exactly so.
      if (dl == 1) {
        size_t run = blocks.DigitRun(i);
        size_t end = i + run;
        if (end + 6 < limit) {
          unsigned char c = s[end];
          if (c < 0x80 && c != ' ' && c != '-' && c != '.' && c != '(' && c != ')' && c != '/') {
            OfferOneGroup(s, i, end);
            i = end;
            continue;
          }
        }
      }
      // Read the token.
      groups.clear();
      size_t pos = i;
      bool open = false;        // ran into the end of the data mid-token
      bool maybe_date = false;  // a group of 4+ digits before a date separator (or the end)
      while (true) {
        const size_t group_start = pos;
        int64_t digits = 0;
        while (pos < s.size()) {
          size_t run = blocks.DigitRun(pos);
          pos += run;
          digits += static_cast<int64_t>(run);
          if (pos < s.size() && static_cast<unsigned char>(s[pos]) == 0xEF &&
              DigitAt(s, pos, &dl)) {
            pos += dl;  // a full-width digit
            ++digits;
            continue;
          }
          break;
        }
        groups.Add(group_start, pos, digits);
        if (digits >= 4 && !date_rules_.empty()) maybe_date |= MayBeYearEnd(s, pos);
        if (pos + 6 >= s.size() && !finishing) {
          open = true;
          break;
        }
        // One separator, or two when one of them is a parenthesis: "(03) 1234".
        size_t sl, sl2, after = pos;
        bool paren, paren2;
        if (pos < s.size() && SeparatorAt(s, pos, &sl, &paren)) {
          after = pos + sl;
          if (after < s.size() && !DigitAt(s, after, &dl) && SeparatorAt(s, after, &sl2, &paren2) &&
              (paren || paren2)) {
            after += sl2;
          }
        }
        if (after != pos && after < s.size() && DigitAt(s, after, &dl) &&
            groups.size() < kMaxTokenGroups) {
          pos = after;
          continue;
        }
        break;
      }
      if (!open && maybe_date) open = !FindDates(s, groups, finishing);
      if (open) break;  // wait for more data
      OfferShapes(s, groups);
      i = pos;
    }
    tok_pos_ += i;
  }

  // Western dates (the tokenized patterns of a date rule) whose year is the
  // last four digits of a group, with a non-digit byte or the stream start
  // before it ({ND}). Returns false, adding nothing, if a match may continue
  // past the data so far.
  // Whether a date separator (/ - . 年 ／ －) may follow a year ending at s[at].
  static bool MayBeYearEnd(std::string_view s, size_t at) {
    if (at >= s.size()) return true;  // not known yet
    unsigned char c = s[at];
    return c == '/' || c == '-' || c == '.' || c == 0xE5 || c == 0xEF;
  }

  bool FindDates(std::string_view s, const TokenGroups& groups, bool finishing) {
    const size_t first_new = unpositioned_.size();
    for (const TokenGroup& g : groups) {
      if (g.digits < 4 || !MayBeYearEnd(s, g.end)) continue;
      // Back four digits from the group's end (a full-width digit ends in 0x90..0x99).
      size_t at = g.end;
      for (int k = 0; k < 4; ++k) at -= s[at - 1] >= '0' && s[at - 1] <= '9' ? 1 : 3;
      uint64_t abs = tok_pos_ + at;
      if (at > g.start) {
        if (s[at - 1] >= '0' && s[at - 1] <= '9') continue;  // {ND}: part of a longer number
      } else if (abs > 0) {
        std::string_view b = Bytes(abs - 1, abs);  // the tokenizer leaves groups there only
        if (b.empty() || (b[0] >= '0' && b[0] <= '9')) continue;
      }
      for (const auto& [rule, kinds] : date_rules_) {
        // A date that would be dropped wherever it ends is not matched at all
        // (every line of an order export has one). Assuming the longest match
        // only widens the keyword search, so this never drops what would stay.
        if (DroppedBeforeWalk(rule, abs, abs + kMaxWesternDateBytes, /*only_bare=*/false)) continue;
        for (uint8_t kind : {kDateAsciiCentury, kDateWideCentury}) {
          if (!(kinds & kind)) continue;
          size_t ends[3];
          int n = WesternDateEnds(s, at, kind == kDateWideCentury, finishing, ends);
          if (n < 0) {
            unpositioned_.resize(first_new);
            return false;
          }
          // As the {ND} regex path did: a match from stream offset 0 whose
          // first byte is 0xEF kept that byte.
          uint64_t start = abs == 1 && Bytes(0, 1) == "\xEF" ? 0 : abs;
          for (int e = 0; e < n; ++e) {
            Candidate c;
            c.start = start;
            c.end = tok_pos_ + ends[e];
            c.rule = rule;
            if (!DroppedBeforeWalk(c, /*only_bare=*/false)) unpositioned_.push_back(std::move(c));
          }
        }
      }
    }
    return true;
  }

  // `ascii`: s[a, b) is known to be ASCII digits only (one group, no full-width digit).
  static bool PassesChecksum(ValidatorKind kind, std::string_view s, size_t a, size_t b,
                             bool ascii) {
    switch (kind) {
      case ValidatorKind::kMyNumber:
      case ValidatorKind::kCorporateNumber:
      case ValidatorKind::kLuhnCard:
      case ValidatorKind::kDriversLicense:
        break;
      default:
        return true;
    }
    // Plain ASCII digits (most numbers) go to the validator as they are;
    // otherwise the digits are gathered without allocating (at most 19).
    char buf[24];
    std::string_view d;
    if (ascii) {
      d = s.substr(a, b - a);
    } else {
      size_t len = 0;
      for (size_t i = a; i < b && len < sizeof buf;) {
        unsigned char c = s[i];
        if (c >= '0' && c <= '9') {
          buf[len++] = static_cast<char>(c);
          ++i;
        } else if (c == 0xEF && i + 2 < b + 1 && static_cast<unsigned char>(s[i + 1]) == 0xBC &&
                   static_cast<unsigned char>(s[i + 2]) >= 0x90 &&
                   static_cast<unsigned char>(s[i + 2]) <= 0x99) {
          buf[len++] = static_cast<char>('0' + (static_cast<unsigned char>(s[i + 2]) - 0x90));
          i += 3;
        } else {
          i += Utf8SeqLen(c);
        }
      }
      d = std::string_view(buf, len);
    }
    switch (kind) {
      case ValidatorKind::kMyNumber:
        return IsValidMyNumber(d);
      case ValidatorKind::kCorporateNumber:
        return IsValidCorporateNumber(d);
      case ValidatorKind::kLuhnCard:
        return IsLuhnValid(d) && !CardBrand(d).empty();
      case ValidatorKind::kDriversLicense:
        return IsValidDriversLicense(d);
      default:
        return true;
    }
  }

  void OfferShapes(std::string_view s, const TokenGroups& groups) {
    for (size_t a = 0; a < groups.size(); ++a) {
      if (groups[a].digits > kMaxGroupDigits) continue;
      for (size_t b = a; b < groups.size() && b - a < kMaxShapeGroups; ++b) {
        size_t n = b - a + 1;
        // The shapes with n groups, flattened in rule order. A rule offers at
        // most one candidate per run: the first of its shapes that fits and
        // passes; a failed check digit ends that rule's turn.
        int done_rule = -1;
        for (const ShapeRef& ref : shapes_by_start_[n][groups[a].digits]) {
          if (ref.rule == done_rule) continue;
          const auto& shape = *ref.shape;
          bool fits = true;
          for (size_t k = 0; k < n && fits; ++k)
            fits = groups[a + k].digits >= shape[k].min && groups[a + k].digits <= shape[k].max;
          if (!fits) continue;
          bool ascii =
              a == b && groups[a].end - groups[a].start == static_cast<size_t>(groups[a].digits);
          if (Offer(ref.rule, s, groups[a].start, groups[b].end, ascii, /*separated=*/b > a))
            done_rule = ref.rule;
        }
      }
    }
  }

  // OfferShapes for a token of one group of ASCII digits, s[start, end).
  void OfferOneGroup(std::string_view s, size_t start, size_t end) {
    size_t digits = end - start;
    if (digits > static_cast<size_t>(kMaxGroupDigits)) return;
    int done_rule = -1;
    for (const ShapeRef& ref : shapes_by_start_[1][digits]) {  // one group: they all fit
      if (ref.rule != done_rule &&
          Offer(ref.rule, s, start, end, /*ascii=*/true, /*separated=*/false))
        done_rule = ref.rule;
    }
  }

  // Offers s[start, end), which has one of `rule_index`'s shapes, as a
  // candidate if its check digit passes. Returns whether the rule's turn for
  // this run of groups is over (a failed check digit, or a candidate made).
  // `separated`: the digits are in more than one group (1234-5678-9018).
  bool Offer(int rule_index, std::string_view s, size_t start, size_t end, bool ascii,
             bool separated) {
    const CompiledRule& rule = rs_.compiled[static_cast<size_t>(rule_index)];
    // One group of digits that nothing can give context (no prefix or letters
    // can make it more than bare) is dropped whatever its check digit says:
    // decided before the check digit and the candidate (most numbers of an
    // order export end here).
    if (!separated && rule.numeric_prefixes.empty() && !rule.letters_before &&
        !rule.letters_after &&
        DroppedBeforeWalk(rule_index, tok_pos_ + start, tok_pos_ + end, /*only_bare=*/true))
      return true;
    // Check digits first: nine in ten random numbers stop here.
    if (!PassesChecksum(rule.validator, s, start, end, ascii)) return true;
    Candidate c;
    c.start = tok_pos_ + start;
    c.end = tok_pos_ + end;
    c.rule = rule_index;
    if ((rule.letters_before || rule.letters_after) && !Lettered(rule, &c)) return false;
    // An invoice registration number: "T" (and a separator) before the digits.
    // (The bytes before the token may precede tok_pos_, so look them up absolutely.)
    uint64_t abs = c.start;
    std::string_view before = Bytes(abs > 16 ? abs - 16 : 0, abs);
    for (const auto& prefix : rule.numeric_prefixes) {
      size_t at = before.size();
      size_t sl, n1 = 0;
      bool paren;
      if (at > 0) {
        DecodeBefore(before, at, &n1);
        if (n1 && SeparatorAt(before, at - n1, &sl, &paren) && !paren) at -= n1;
      }
      if (at >= prefix.size() && before.substr(at - prefix.size(), prefix.size()) == prefix) {
        c.start = abs - (before.size() - at) - prefix.size();
        break;
      }
    }
    const bool prefixed = c.start != tok_pos_ + start;  // "T1234..."
    if (!DroppedBeforeWalk(c, /*only_bare=*/!separated && !prefixed))
      unpositioned_.push_back(std::move(c));
    return true;
  }

  // Passport and residence-card shapes: letters right before (and after) the
  // digits, optionally across one separator ("TK1234567", "AB 12345678 CD").
  bool Lettered(const CompiledRule& rule, Candidate* c) {
    auto letter = [](uint32_t cp) { return IsAsciiLetterCp(FoldWidth(cp)); };
    if (rule.letters_before) {
      std::string_view before = Bytes(c->start > 32 ? c->start - 32 : 0, c->start);
      size_t at = before.size(), n = 0;
      uint32_t cp = DecodeBefore(before, at, &n);
      if (n && IsSeparatorCp(FoldWidth(cp))) at -= n;
      for (uint32_t k = 0; k < rule.letters_before; ++k) {
        cp = DecodeBefore(before, at, &n);
        if (!n || !letter(cp)) return false;
        at -= n;
      }
      cp = DecodeBefore(before, at, &n);
      if (n && letter(cp)) return false;  // more letters: a word, not a code
      c->start -= before.size() - at;
    }
    if (rule.letters_after) {
      std::string_view after = Bytes(c->end, c->end + 32);
      size_t at = 0, n = 0;
      if (at < after.size()) {
        uint32_t cp = DecodeAt(after, at, &n);
        if (IsSeparatorCp(FoldWidth(cp))) at += n;
      }
      for (uint32_t k = 0; k < rule.letters_after; ++k) {
        if (at >= after.size()) return false;
        uint32_t cp = DecodeAt(after, at, &n);
        if (!letter(cp)) return false;
        at += n;
      }
      c->end += at;
    }
    return true;
  }

  void Process(bool finishing) {
    // Keep keyword hits ordered by end offset (Vectorscan reports them nearly so).
    if (!std::is_sorted(keywords_.begin() + static_cast<long>(keywords_sorted_), keywords_.end(),
                        [](const KeywordHit& a, const KeywordHit& b) { return a.end < b.end; })) {
      std::sort(keywords_.begin() + static_cast<long>(keywords_sorted_), keywords_.end(),
                [](const KeywordHit& a, const KeywordHit& b) { return a.end < b.end; });
    }
    std::inplace_merge(keywords_.begin(), keywords_.begin() + static_cast<long>(keywords_sorted_),
                       keywords_.end(),
                       [](const KeywordHit& a, const KeywordHit& b) { return a.end < b.end; });
    keywords_sorted_ = keywords_.size();
    // 0. Numeric candidates from the digit tokenizer.
    const size_t leftover = unpositioned_.size();  // sorted by the last call
    TokenizeNumbers(finishing);
    const size_t tokenized = unpositioned_.size();
    // 1. Turn raw matches into candidates (drop the {ND} prefix byte).
    for (const auto& m : raw_) {
      const PatternEntry& p = rs_.patterns[m.pattern];
      Candidate c;
      c.start = m.from;
      c.end = m.to;
      c.rule = p.rule;
      if (p.prefix != PrefixKind::kNone) {
        // At the stream start the '^' branch may have matched: then there is no extra byte.
        unsigned char first =
            m.from >= buf_base_ ? static_cast<unsigned char>(view_[m.from - buf_base_]) : 0;
        bool letter = (first >= 'A' && first <= 'Z') || (first >= 'a' && first <= 'z');
        bool digit = first >= '0' && first <= '9';
        bool value_start = first == 0xEF || (p.prefix == PrefixKind::kNotDigit ? digit : letter);
        if (!(m.from == 0 && value_start)) c.start += 1;
      }
      if (c.start >= c.end) continue;
      unpositioned_.push_back(std::move(c));
    }
    raw_.clear();
    // Sort by start as three runs: leftovers (sorted), tokenizer candidates
    // (nearly sorted), pattern matches (ordered by end). Sorting the whole
    // vector of fat Candidates cost a tenth of the scan on number-heavy text.
    // (start, end, rule): a total order, so duplicates are adjacent for unique().
    auto by_start = [](const Candidate& a, const Candidate& b) {
      return a.start != b.start ? a.start < b.start
             : a.end != b.end   ? a.end < b.end
                                : a.rule < b.rule;
    };
    auto first = unpositioned_.begin();
    auto mid1 = first + static_cast<long>(leftover), mid2 = first + static_cast<long>(tokenized);
    if (!std::is_sorted(mid1, mid2, by_start)) std::sort(mid1, mid2, by_start);
    if (!std::is_sorted(mid2, unpositioned_.end(), by_start))
      std::sort(mid2, unpositioned_.end(), by_start);
    std::inplace_merge(first, mid1, mid2, by_start);
    std::inplace_merge(first, mid2, unpositioned_.end(), by_start);
    // Identical spans of one rule from different patterns: keep one.
    unpositioned_.erase(std::unique(unpositioned_.begin(), unpositioned_.end(),
                                    [](const Candidate& a, const Candidate& b) {
                                      return a.start == b.start && a.end == b.end &&
                                             a.rule == b.rule;
                                    }),
                        unpositioned_.end());

    // 2. Walk complete lines; position candidates; type cells.
    Walk(finishing);

    // 3. Settle candidates whose context has arrived.
    uint64_t horizon =
        finishing ? UINT64_MAX : (data_end_ > settle_after_ ? data_end_ - settle_after_ : 0);
    std::vector<Candidate> still;
    for (auto& c : pending_) {
      if (c.end <= horizon) {
        Settle(c);
      } else {
        still.push_back(std::move(c));
      }
    }
    pending_.swap(still);
    if (!error_.ok()) return;

    // 4. Release findings that no later candidate can overlap.
    uint64_t frontier = finishing ? UINT64_MAX : std::min(walker_offset_, tok_pos_);
    for (const auto& c : pending_) frontier = std::min(frontier, c.start);
    for (const auto& c : unpositioned_) frontier = std::min(frontier, c.start);
    Release(frontier);

    // 5. Forget what no one needs any more.
    uint64_t keep = std::min({frontier, walker_offset_, tok_pos_});
    keep = keep > max_window_before_ + 64 ? keep - max_window_before_ - 64 : 0;
    while (!keywords_.empty() && keywords_.front().end < keep) {
      if (!keywords_.front().negative) --positive_keywords_held_[keywords_.front().rule];
      keywords_.pop_front();
    }
    keywords_sorted_ = keywords_.size();
    uint64_t tail = rs_.max_candidate_width + 64;
    uint64_t byte_keep = std::min(keep, data_end_ > tail ? data_end_ - tail : 0);
    if (!borrowed_ && (byte_keep > buf_base_ + (1 << 20) || (finishing && byte_keep > buf_base_))) {
      buf_.erase(0, byte_keep - buf_base_);
      buf_base_ = byte_keep;
      view_ = buf_;
    }
  }

  // Processes every complete line (or a long line in pieces), positioning the
  // candidates that start in it.
  void Walk(bool finishing) {
    size_t next_cand = 0;
    while (walker_offset_ < data_end_) {
      std::string_view rest = Bytes(walker_offset_, data_end_);
      const char* nl = static_cast<const char*>(std::memchr(rest.data(), '\n', rest.size()));
      uint64_t seg_end;
      bool complete;
      if (nl) {
        seg_end = walker_offset_ + static_cast<uint64_t>(nl - rest.data());
        complete = true;
      } else if (finishing) {
        seg_end = data_end_;
        complete = true;
      } else if (rest.size() > kMaxLineBytes + rs_.max_candidate_width + 64) {
        // A very long line: walk what cannot be part of a future candidate.
        seg_end = data_end_ - rs_.max_candidate_width - 64;
        complete = false;
      } else {
        break;
      }
      // Numeric candidates on this line may still be on their way.
      if (!finishing && has_numeric_ && tok_pos_ <= seg_end) break;
      std::string_view seg = Bytes(walker_offset_, seg_end);
      bool first_segment = walker_col_chars_ == 0 && !walker_mid_line_;

      // Header row of delimited text: the first of the first five lines that
      // looks like one (title rows above it are ordinary text).
      bool is_header_line = false;
      if (opt_.field_delimiter && !header_done_) {
        if (header_acc_.size() < kMaxLineBytes) header_acc_.append(seg);
        if (complete) is_header_line = TryHeader();
      }
      // Paragraph records in plain text.
      bool blank = first_segment && complete &&
                   seg.find_first_not_of(" \t\r\xE3\x80\x80") == std::string_view::npos;
      if (!opt_.field_delimiter) {
        if (blank) {
          if (in_record_) ++record_;
          in_record_ = false;
        } else {
          in_record_ = true;
        }
      }
      uint64_t record = opt_.field_delimiter ? walker_line_ - 1 : record_;

      auto& fields = fields_;  // reused: one allocation per scanner, not per line
      fields.clear();
      // Cells are split only as far as a candidate needs: most candidates
      // sit in the first columns of a row.
      const bool have_fields = opt_.field_delimiter && first_segment && complete;
      size_t split_at = 0;
      bool split_done = !have_fields;
      // Until a second or later field starts after rel, or the line ends: the
      // lookup below then decides as it would on the whole row.
      auto fields_past = [&](size_t rel) {
        while (!split_done && (fields.size() < 2 || fields.back().first <= rel))
          split_done = !NextField(seg, opt_.field_delimiter, &split_at, &fields);
      };

      // Position the candidates that start in this segment. They come sorted
      // by start, so columns are counted on from the previous candidate, not
      // from the line start (prose paragraphs are long lines).
      uint64_t counted_to = walker_offset_, counted_chars = 0;
      while (next_cand < unpositioned_.size() && unpositioned_[next_cand].start <= seg_end) {
        Candidate& c = unpositioned_[next_cand];
        if (c.start < walker_offset_) {  // should not happen; be safe
          c.start = walker_offset_;
        }
        c.line = walker_line_;
        c.record = record;
        if (have_fields && !header_.empty() && walker_line_ > header_line_) {
          size_t rel = c.start - walker_offset_;
          fields_past(rel);
          for (size_t f = 0; f < fields.size(); ++f) {
            if (rel >= fields[f].first && rel <= fields[f].second) {
              c.field = static_cast<int32_t>(f);
              break;
            }
            if (f + 1 < fields.size() && rel < fields[f + 1].first) {
              c.field = static_cast<int32_t>(f);
              break;
            }
          }
          AttachHeader(&c);
        }
        c.positioned = true;
        // A header cell is a label, not a value. A value under a header that
        // is negative for its rule (注文番号 over 12 digits) would settle at the
        // rule's negative score; below --min-confidence it is dropped here,
        // before validation, as Settle() would drop it.
        bool below = c.header_negative &&
                     ConfidenceOf(rs_.compiled[c.rule].scores.negative) < opt_.min_confidence;
        if (!is_header_line && !below) {
          // The column, counted only for candidates that go on.
          if (c.start < counted_to) counted_to = walker_offset_, counted_chars = 0;
          counted_chars += CountChars(Bytes(counted_to, c.start));
          counted_to = c.start;
          c.column = static_cast<uint32_t>(walker_col_chars_ + counted_chars + 1);
          pending_.push_back(std::move(c));
        }
        ++next_cand;
      }

      // Cells typed by their column header.
      if (opt_.field_delimiter && header_done_ && !is_header_line && walker_line_ > header_line_ &&
          typed_columns_) {
        fields_past(SIZE_MAX);
        for (size_t f = 0; f < fields.size() && f < header_.size(); ++f) {
          int rule = header_.at(f).typed_rule;
          if (rule < 0 || !enabled_[rule]) continue;
          auto [a, b] = fields[f];
          if (a >= b || b - a > kMaxCellBytes) continue;
          Candidate c;
          c.start = walker_offset_ + a;
          c.end = walker_offset_ + b;
          c.rule = rule;
          c.cell = true;
          c.positioned = true;
          c.line = walker_line_;
          c.column = static_cast<uint32_t>(CountChars(seg.substr(0, a)) + 1);
          c.field = static_cast<int32_t>(f);
          c.record = record;
          AttachHeader(&c);
          pending_.push_back(std::move(c));
        }
      }

      if (complete) {
        walker_offset_ = seg_end + (nl ? 1 : 0);
        ++walker_line_;
        walker_col_chars_ = 0;
        walker_mid_line_ = false;
        if (!nl) break;  // finishing without a final newline
      } else {
        walker_col_chars_ += CountChars(seg);
        walker_offset_ = seg_end;
        walker_mid_line_ = true;
      }
    }
    unpositioned_.erase(unpositioned_.begin(),
                        unpositioned_.begin() + static_cast<long>(next_cand));
  }

  // Returns true if the line in header_acc_ is the header row: at least two
  // non-empty cells, most of them without digits.
  bool TryHeader() {
    std::vector<std::pair<size_t, size_t>> cells;
    SplitFields(header_acc_, opt_.field_delimiter, &cells);
    size_t non_empty = 0, with_digits = 0;
    for (auto [a, b] : cells) {
      if (a >= b) continue;
      ++non_empty;
      std::string_view cell = std::string_view(header_acc_).substr(a, b - a);
      if (cell.find_first_of("0123456789") != std::string_view::npos) ++with_digits;
    }
    if (non_empty < 2 || with_digits * 2 > non_empty) {
      header_acc_.clear();
      if (walker_line_ >= 5) header_done_ = true;  // no header: plain rows
      return false;
    }
    header_line_ = walker_line_;
    ParseHeader(cells);
    return true;
  }

  void ParseHeader(const std::vector<std::pair<size_t, size_t>>& cells) {
    header_done_ = true;
    for (auto [a, b] : cells) {
      HeaderColumn col;
      col.text = header_acc_.substr(a, b - a);
      std::string folded = FoldForMatch(col.text);
      for (size_t r = 0; r < rs_.compiled.size(); ++r) {
        const auto& rule = rs_.compiled[r];
        if (ContainsWord(folded, rule.negative)) {
          col.negative_rules.push_back(static_cast<int>(r));
        } else if (ContainsWord(folded, rule.column_headers)) {
          col.context_rules.push_back(static_cast<int>(r));
          header_context_[r] = true;
          if (rule.column_type && col.typed_rule < 0) col.typed_rule = static_cast<int>(r);
        }
      }
      typed_columns_ |= col.typed_rule >= 0;
      header_.push_back(std::move(col));
    }
    header_acc_.clear();
  }

  void AttachHeader(Candidate* c) {
    if (c->field < 0 || static_cast<size_t>(c->field) >= header_.size()) return;
    const HeaderColumn& col = header_[c->field];
    if (std::find(col.context_rules.begin(), col.context_rules.end(), c->rule) !=
        col.context_rules.end())
      c->header_context = c->field;
    if (std::find(col.negative_rules.begin(), col.negative_rules.end(), c->rule) !=
        col.negative_rules.end())
      c->header_negative = true;
    // A header that names another type is authoritative over nearby keywords.
    if (c->header_context < 0 && !col.context_rules.empty()) c->header_foreign = true;
  }

  // Whether a positive keyword of `rule` ends or starts within [from, to).
  bool PositiveKeywordNear(int rule, uint64_t from, uint64_t to) const {
    auto it = std::lower_bound(keywords_.begin(), keywords_.end(), from,
                               [](const KeywordHit& k, uint64_t v) { return k.end < v; });
    for (; it != keywords_.end() && it->start < to; ++it)
      if (it->rule == rule && !it->negative) return true;
    return false;
  }

  // A candidate that can only reach --min-confidence with a keyword nearby
  // (a bare date scores 0.2) and has none, even in a window wider than
  // Settle's, would be dropped after validation; drop it before. Validators
  // that can supply their own context (T+13, 普通預金, 〒, 様) are excluded.
  bool CannotReachMinConfidence(const CompiledRule& rule, const Candidate& c) const {
    if (c.cell || c.header_context >= 0) return false;
    if (!NeedsKeywordToReport(rule)) return false;
    return !KeywordInReach(c.rule, c.start, c.end);
  }

  // Whether a finding of `rule` outside a typed or labelled cell reaches
  // --min-confidence only with one of its keywords nearby.
  bool NeedsKeywordToReport(const CompiledRule& rule) const {
    switch (rule.validator) {
      case ValidatorKind::kCorporateNumber:
      case ValidatorKind::kBankAccount:
      case ValidatorKind::kPostalCode:
      case ValidatorKind::kPersonName:
        return false;
      default:
        break;
    }
    double best_without_context = std::max(rule.scores.bare, rule.scores.structured);
    return rule.context_required || ConfidenceOf(best_without_context) < opt_.min_confidence;
  }

  // CannotReachMinConfidence, decided when the tokenizer makes the candidate,
  // so that the hard negatives of number-heavy CSV (order numbers that pass a
  // check digit, the date on every order line) skip positioning, column
  // counting and header lookup. Only when the answer cannot change later: no
  // column header of this file (known once the header row is found) gives
  // the rule context, and every keyword that could fall in the window has
  // already been reported. Otherwise the candidate goes on, and Settle asks.
  // `only_bare`: without context the candidate can only score its rule's
  // bare score (one group of digits, no prefix).
  bool DroppedBeforeWalk(const Candidate& c, bool only_bare) const {
    return DroppedBeforeWalk(c.rule, c.start, c.end, only_bare);
  }
  bool DroppedBeforeWalk(int rule_index, uint64_t start, uint64_t end, bool only_bare) const {
    if (!early_drop_[rule_index] && (!only_bare || !early_drop_unseparated_[rule_index]))
      return false;
    if (opt_.field_delimiter && (!header_done_ || header_context_[rule_index])) return false;
    const CompiledRule& rule = rs_.compiled[rule_index];
    if (end + rule.window_after + kKeywordMargin + max_keyword_len_ > data_end_) return false;
    // Most such rules have no keyword anywhere in the held text: skip the search.
    return positive_keywords_held_[rule_index] == 0 || !KeywordInReach(rule_index, start, end);
  }

  static constexpr uint64_t kKeywordMargin = 64;
  bool KeywordInReach(int rule_index, uint64_t start, uint64_t end) const {
    const CompiledRule& rule = rs_.compiled[rule_index];
    uint64_t margin = kKeywordMargin;
    uint64_t from = start > rule.window_before + margin ? start - rule.window_before - margin : 0;
    return PositiveKeywordNear(rule_index, from, end + rule.window_after + margin);
  }

  void Settle(const Candidate& c) {
    const CompiledRule& rule = rs_.compiled[c.rule];
    if (CannotReachMinConfidence(rule, c)) return;
    uint64_t ctx_from = c.start > 80 ? c.start - 80 : 0;
    std::string_view text = Bytes(ctx_from, c.end + kSettleMargin);
    if (ctx_from < buf_base_) ctx_from = buf_base_;
    if (c.start < ctx_from || c.end > ctx_from + text.size()) return;  // bytes gone: cannot happen
    Validated v =
        ValidateCandidate(rule, text, c.start - ctx_from, c.end - ctx_from, c.cell, &vctx_);
    if (!v.ok) return;
    uint64_t start = ctx_from + v.start, end = ctx_from + v.end;

    // Context: the nearest positive and negative keyword for this rule.
    std::vector<std::string> words;
    if (c.header_context >= 0) words.push_back(header_[c.header_context].text);
    int64_t best_pos = INT64_MAX, best_neg = INT64_MAX;
    std::string pos_word, neg_word;
    // keywords_ is ordered by end offset: start at the first one in the window.
    uint64_t window_start = std::max<uint64_t>(rule.window_before, rule.negative_window) + 8;
    window_start = start > window_start ? start - window_start : 0;
    auto first = std::lower_bound(keywords_.begin(), keywords_.end(), window_start,
                                  [](const KeywordHit& k, uint64_t v) { return k.end < v; });
    for (auto it = first; it != keywords_.end(); ++it) {
      const KeywordHit& k = *it;
      if (k.start > end + rule.window_after + 64) break;
      if (k.rule != c.rule) continue;
      int64_t d;
      if (k.end <= start) {
        d = static_cast<int64_t>(start - k.end);
        if (d > rule.window_before) continue;
      } else if (k.start >= end) {
        d = static_cast<int64_t>(k.start - end);
        if (d > rule.window_after) continue;
        d += 8;  // a word after the value weighs less than one before it
      } else {
        d = 0;
      }
      std::string w(Bytes(k.start, k.end));
      if (k.negative && d > static_cast<int64_t>(rule.negative_window)) continue;
      if (k.negative) {
        if (d < best_neg) best_neg = d, neg_word = w;
      } else if (d < best_pos) {
        best_pos = d, pos_word = w;
      }
    }
    if ((v.doubtful && best_pos > 16) || c.header_foreign) best_pos = INT64_MAX, pos_word.clear();
    bool header_positive = c.header_context >= 0;
    bool positive = header_positive || best_pos != INT64_MAX || v.self_context || c.cell;
    bool negative = c.header_negative || (!header_positive && best_neg < best_pos);
    if (!pos_word.empty()) words.push_back(pos_word);
    if (v.self_context) words.push_back(v.self_context_word);
    double score;
    if (negative) {
      score = rule.scores.negative;
      if (!neg_word.empty()) words.push_back("!" + neg_word);
    } else if (positive) {
      score = rule.scores.context;
    } else if (rule.context_required) {
      return;
    } else {
      score = v.structured ? rule.scores.structured : rule.scores.bare;
    }
    Finding f;
    f.type = rule.info.type;
    f.offset = start;
    f.length = static_cast<uint32_t>(end - start);
    f.line = c.line;
    if (start >= c.start) {
      f.column = c.column + static_cast<uint32_t>(CountChars(Bytes(c.start, start)));
    } else {
      f.column = c.column - static_cast<uint32_t>(CountChars(Bytes(start, c.start)));
    }
    f.field = c.field;
    f.record = c.record;
    f.score = score;
    f.confidence = ConfidenceOf(score);
    if (f.confidence < opt_.min_confidence) return;
    f.risk = rule.info.risk;
    std::sort(words.begin(), words.end());
    words.erase(std::unique(words.begin(), words.end()), words.end());
    f.context = std::move(words);
    // Masked and hashed on release: about half of the settled findings lose
    // an overlap to a better one (a date's shorter ends, a number read as
    // two types), and the keyed hash is most of a finding's cost.
    settled_.push_back({std::move(f), std::string(Bytes(start, end)), std::move(v.normalized),
                        rule.validator == ValidatorKind::kEmail});
  }

  // A settled finding before its value is masked and hashed.
  struct Settled {
    Finding f;
    std::string raw;         // the value's bytes
    std::string normalized;  // what the keyed hash is of
    bool email = false;
  };

  // Resolves overlaps among settled findings (the higher score wins; then the
  // longer value) and releases those that end before `frontier`.
  void Release(uint64_t frontier) {
    if (settled_.empty()) return;
    std::sort(settled_.begin(), settled_.end(), [](const Settled& x, const Settled& y) {
      const Finding &a = x.f, &b = y.f;
      return a.offset != b.offset ? a.offset < b.offset : a.length > b.length;
    });
    std::vector<Settled> kept;
    for (auto& s : settled_) {
      const Finding& f = s.f;
      if (!kept.empty() && f.offset < kept.back().f.offset + kept.back().f.length) {
        const Finding& k = kept.back().f;
        bool better = f.score > k.score || (f.score == k.score && f.length > k.length);
        if (better) kept.back() = std::move(s);
        continue;
      }
      kept.push_back(std::move(s));
    }
    settled_.clear();
    for (auto& s : kept) {
      Finding& f = s.f;
      if (f.offset + f.length + rs_.max_candidate_width < frontier || frontier == UINT64_MAX) {
        if (emitted_ >= opt_.max_findings) {
          error_ = ResourceExhausted("more than " + std::to_string(opt_.max_findings) +
                                     " findings in one stream (raise --max-findings)");
          return;
        }
        ++emitted_;
        f.masked = s.email ? MaskEmail(s.raw) : MaskValue(s.raw);
        f.hash = key_.Hash(f.type, s.normalized);
        if (opt_.keep_values) f.value = std::move(s.raw);
        out_.push_back(std::move(f));
      } else {
        settled_.push_back(std::move(s));
      }
    }
  }

  std::shared_ptr<const RuleSet> holder_;
  const RuleSetImpl& rs_;
  const HashKey& key_;
  ScanOptions opt_;
  ValidatorContext vctx_;
  std::vector<bool> enabled_;
  hs_stream_t* stream_ = nullptr;
  Status error_;
  bool finished_ = false;

  std::vector<std::pair<size_t, size_t>> fields_;  // Walk's cells of the current line
  std::string buf_;        // streaming: the bytes from buf_base_ to data_end_
  std::string_view view_;  // what Bytes() reads: buf_, or the caller's buffer
  bool borrowed_ = false;  // view_ is the caller's whole buffer (ScanWhole)
  uint64_t buf_base_ = 0;
  uint64_t data_end_ = 0;
  uint64_t max_window_before_ = 0;
  uint64_t max_keyword_len_ = 0;
  std::vector<bool> early_drop_;                  // per rule: NeedsKeywordToReport
  std::vector<bool> early_drop_unseparated_;      // per rule: the same for a single group of digits
  std::vector<bool> header_context_;              // per rule: a column header of this file names it
  std::vector<uint32_t> positive_keywords_held_;  // per rule: its positive hits in keywords_
  uint64_t settle_after_ = 0;

  std::vector<RawMatch> raw_;
  KeywordQueue keywords_;
  size_t keywords_sorted_ = 0;  // keywords_[0, keywords_sorted_) is ordered by end
  std::vector<Candidate> unpositioned_;
  std::vector<Candidate> pending_;
  std::vector<Settled> settled_;
  std::vector<Finding> out_;
  uint64_t emitted_ = 0;

  uint64_t walker_offset_ = 0;
  uint64_t tok_pos_ = 0;      // the digit tokenizer has read up to here
  bool has_numeric_ = false;  // the digit tokenizer runs (numeric shapes or dates)
  std::vector<std::pair<int, uint8_t>> date_rules_;  // enabled rules with tokenized dates
  static constexpr size_t kMaxShapeGroups = 8;
  struct ShapeRef {
    int rule;
    const std::vector<DigitGroup>* shape;
  };
  static constexpr int kMaxGroupDigits = 19;  // the loader's limit for one group
  // Enabled rules' numeric shapes by their number of groups and the digit
  // count of their first group, in rule order: most digit runs fit none.
  std::array<std::array<std::vector<ShapeRef>, kMaxGroupDigits + 1>, kMaxShapeGroups + 1>
      shapes_by_start_;
  uint64_t walker_line_ = 1;
  uint64_t walker_col_chars_ = 0;
  bool walker_mid_line_ = false;
  uint64_t record_ = 0;
  bool in_record_ = false;

  bool header_done_ = false;
  uint64_t header_line_ = UINT64_MAX;  // line of the header row, once found
  bool typed_columns_ = false;
  std::string header_acc_;
  std::vector<HeaderColumn> header_;
};

}  // namespace

Result<std::unique_ptr<Scanner>> Scanner::Create(std::shared_ptr<const RuleSet> rules,
                                                 const HashKey& key, ScanOptions options) {
  if (!rules) return InvalidArgument("Scanner::Create needs a rule set");
  const auto* impl = dynamic_cast<const RuleSetImpl*>(rules.get());
  if (!impl) return InvalidArgument("rule set was not loaded by RuleSet::Load*");
  if (options.field_delimiter && options.field_delimiter != ',' &&
      options.field_delimiter != '\t' && options.field_delimiter != ';' &&
      options.field_delimiter != '|')
    return InvalidArgument("field_delimiter must be ',', '\\t', ';' or '|'");
  for (const auto& t : options.types)
    if (!impl->Find(t))
      return InvalidArgument("unknown type '" + t + "' (see `mamori rules list`)");
  auto scanner = std::make_unique<ScannerImpl>(rules, *impl, key, std::move(options));
  RETURN_IF_ERROR(scanner->Init());
  return std::unique_ptr<Scanner>(std::move(scanner));
}

Result<std::vector<Finding>> ScanText(std::shared_ptr<const RuleSet> rules, const HashKey& key,
                                      std::string_view text, const ScanOptions& options) {
  ASSIGN_OR_RETURN(auto scanner, Scanner::Create(std::move(rules), key, options));
  auto* impl = static_cast<ScannerImpl*>(scanner.get());
  RETURN_IF_ERROR(impl->ScanWhole(text));
  return scanner->TakeFindings();
}

std::string_view ConfidenceName(Confidence c) {
  switch (c) {
    case Confidence::kLow:
      return "low";
    case Confidence::kMedium:
      return "medium";
    case Confidence::kHigh:
      return "high";
  }
  return "low";
}

Result<Confidence> ParseConfidence(std::string_view name) {
  if (name == "low") return Confidence::kLow;
  if (name == "medium") return Confidence::kMedium;
  if (name == "high") return Confidence::kHigh;
  return InvalidArgument("confidence must be low, medium or high, not '" + std::string(name) + "'");
}

std::string_view RiskName(Risk r) {
  switch (r) {
    case Risk::kLow:
      return "low";
    case Risk::kMedium:
      return "medium";
    case Risk::kHigh:
      return "high";
  }
  return "medium";
}

std::vector<std::string> RuleSetImpl::CheckExamples() const {
  std::vector<std::string> failures;
  // A rule set that shares this one's compiled state without owning it.
  std::shared_ptr<const RuleSet> self(std::shared_ptr<const RuleSet>{}, this);
  HashKey key;
  for (const auto& r : compiled) {
    auto check = [&](const std::string& example, bool must_match) {
      ScanOptions opt;
      opt.min_confidence = Confidence::kLow;
      auto found = ScanText(self, key, example, opt);
      if (!found.ok()) {
        failures.push_back(r.source_file +
                           ": scanning example failed: " + found.status().ToString());
        return;
      }
      bool matched = false;
      for (const auto& f : *found)
        if (f.type == r.info.type && f.confidence >= Confidence::kMedium) matched = true;
      if (matched != must_match) {
        failures.push_back(
            r.source_file + " (" + r.info.type +
            "): " + (must_match ? "example not found: " : "negative example matched: ") + example);
      }
    };
    for (const auto& e : r.examples) check(e, true);
    for (const auto& e : r.negative_examples) check(e, false);
  }
  return failures;
}

}  // namespace mamori::detect
