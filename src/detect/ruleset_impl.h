// Internal: the compiled form of the detection rules.
#pragma once

#include <hs/hs.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "detect/detect.h"

namespace MeCab {
class Model;
}

namespace mamori::detect {

enum class ValidatorKind {
  kNone,
  kMyNumber,
  kCorporateNumber,
  kLuhnCard,
  kDriversLicense,
  kPassport,
  kResidenceCard,
  kBankAccount,
  kDigitsOnly,
  kPhoneJp,
  kEmail,
  kPostalCode,
  kAddress,
  kPersonName,
  kDate,
};

struct Scores {
  double bare = 0.3;        // validated, no context, no structure
  double structured = 0.6;  // validated with the canonical grouping (4-4-4, 〒, ...)
  double context = 0.9;     // with a context keyword or column header
  double negative = 0.1;    // with a negative keyword nearer than any positive one
};

// One digit group of a numeric shape: a run of min..max digits.
struct DigitGroup {
  int min = 0, max = 0;
};

struct CompiledRule {
  RuleInfo info;
  // Numeric shapes, matched by the digit tokenizer instead of a regex: each is
  // a sequence of digit groups joined by single separators ([4,4,4] is
  // 1234-5678-9018; [12] is 123456789018).
  std::vector<std::vector<DigitGroup>> numeric;
  std::vector<std::string> numeric_prefixes;  // e.g. "T" for invoice numbers
  uint32_t letters_before = 0;                // letters right before the digits (passport: 2)
  uint32_t letters_after = 0;                 // letters right after (residence card: 2)
  // Western-date patterns that the digit tokenizer matches instead of
  // Vectorscan (kWesternDate* in rules.cc; a bit per pattern). In digit-heavy
  // text the "19"/"20" prefix made these the costliest Vectorscan patterns.
  uint8_t tokenized_dates = 0;
  ValidatorKind validator = ValidatorKind::kNone;
  Scores scores;
  bool context_required = false;
  bool column_type = false;           // a cell under a matching header is a value of this type
  uint32_t window_before = 80;        // bytes searched for context before a value
  uint32_t window_after = 60;         // bytes after
  uint32_t negative_window = 80;      // bytes searched for negative keywords, before or after
  std::vector<std::string> keywords;  // folded for matching
  std::vector<std::string> negative;  // folded
  std::vector<std::string> column_headers;  // folded
  std::vector<std::string> examples;
  std::vector<std::string> negative_examples;
  std::string source_file;
};

// Bits of CompiledRule::tokenized_dates: the year begins with ASCII "19"/"20"
// or with full-width "１９"/"２０".
constexpr uint8_t kDateAsciiCentury = 1;
constexpr uint8_t kDateWideCentury = 2;

// A pattern that starts with {ND} or {NL} matches one extra byte before the
// value (or the stream start); the scanner drops that byte.
enum class PrefixKind { kNone, kNotDigit, kNotLetter };

// What a Vectorscan pattern id stands for.
struct PatternEntry {
  int rule = -1;
  bool keyword = false;
  bool negative = false;  // a negative keyword
  PrefixKind prefix = PrefixKind::kNone;
  uint32_t keyword_len = 0;
};

class RuleSetImpl final : public RuleSet {
 public:
  static uint64_t NextSerial() {
    static std::atomic<uint64_t> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);
  }

  ~RuleSetImpl() override;
  const std::vector<RuleInfo>& rules() const override { return infos_; }
  const RuleInfo* Find(std::string_view type) const override;
  std::vector<std::string> CheckExamples() const override;

  std::vector<CompiledRule> compiled;
  std::vector<RuleInfo> infos_;
  std::vector<PatternEntry> patterns;
  hs_database_t* db = nullptr;  // stream mode, candidates + keywords
  // Unique for the life of the process (never reused, unlike an address), so a
  // thread can remember which databases its Vectorscan scratch already fits.
  const uint64_t serial = NextSerial();
  uint32_t max_candidate_width = 0;                  // bytes; bounded at load time
  std::shared_ptr<const RuleSet> self_for_examples;  // unused placeholder
  // MeCab model for person-name validation; null if MeCab has no dictionary.
  std::shared_ptr<MeCab::Model> mecab;
  std::string mecab_error;
};

}  // namespace mamori::detect
