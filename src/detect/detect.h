// The detection engine: finds Japanese personal data in UTF-8 text.
//
// Flow: load a RuleSet once (rules are data, in rules/detect/*.yaml), then
// create one Scanner per text stream and Feed() it chunks. Candidates are found
// by a Vectorscan multi-pattern prefilter over raw UTF-8 (full-width digits and
// separators included), then validated (check digits, structure), then scored
// with context keywords seen near the candidate or in the column header.
//
// Budgets are errors, never a silent "no match": a stream that exceeds
// ScanOptions::max_findings or max_bytes fails with kResourceExhausted, and
// the caller must report it as incomplete.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/redact.h"
#include "common/status.h"

namespace mamori::detect {

enum class Confidence { kLow = 0, kMedium = 1, kHigh = 2 };
std::string_view ConfidenceName(Confidence c);
Result<Confidence> ParseConfidence(std::string_view name);

// How much harm a leaked value of a type can do; drives policy and the law.
enum class Risk { kLow = 0, kMedium = 1, kHigh = 2 };
std::string_view RiskName(Risk r);

// One detected value. Never holds the raw value unless ScanOptions::keep_values.
struct Finding {
  std::string type;     // stable type name, e.g. "jp.my_number"
  uint64_t offset = 0;  // byte offset of the value in the stream
  uint32_t length = 0;  // byte length of the value
  uint64_t line = 0;    // 1-based line in the decoded text
  uint32_t column = 0;  // 1-based column, in characters
  int32_t field = -1;   // 0-based field in a delimited row, -1 for plain text
  uint64_t record = 0;  // record (row or paragraph) the value belongs to
  Confidence confidence = Confidence::kLow;
  double score = 0;  // 0..1; confidence buckets are >=0.8 high, >=0.5 medium
  Risk risk = Risk::kMedium;
  std::string masked;                // e.g. "1234-****-**18"
  std::string hash;                  // keyed hash of the normalised value
  std::vector<std::string> context;  // context words seen (keywords, column header)
  std::string value;                 // raw value; empty unless keep_values
};

// Metadata about one detection rule, for listings and documentation.
struct RuleInfo {
  std::string type;
  std::string name;  // human name, Japanese and English
  Risk risk = Risk::kMedium;
  bool person_key = false;        // strong key for deduplicating people
  bool person_attribute = false;  // its presence means a record describes a person
};

// An immutable, compiled set of rules. Thread-safe: share one across threads.
class RuleSet {
 public:
  virtual ~RuleSet() = default;
  // Loads every *.yaml file in `dir`. Errors name the file and rule to fix.
  static Result<std::shared_ptr<const RuleSet>> LoadDirectory(const std::string& dir);
  // Loads the rules shipped with mamori (MAMORI_RULES_DIR env var, then the
  // install path, then the source tree).
  static Result<std::shared_ptr<const RuleSet>> LoadDefault();
  // Where LoadDefault() looks first; for error messages and `mamori rules`.
  static std::string DefaultDirectory();

  virtual const std::vector<RuleInfo>& rules() const = 0;
  virtual const RuleInfo* Find(std::string_view type) const = 0;

  // Runs every rule's `examples` (must be found at >= medium confidence) and
  // `negative_examples` (must not be). Returns one line per failure.
  virtual std::vector<std::string> CheckExamples() const = 0;
};

struct ScanOptions {
  Confidence min_confidence = Confidence::kMedium;
  std::vector<std::string> types;  // only these types; empty means all
  // 0 for plain text. ',' or '\t' for delimited text whose first row is a
  // header: the header of a column is context for every cell below it.
  char field_delimiter = 0;
  bool keep_values = false;
  uint64_t max_findings = 1'000'000;  // budget per stream
  uint64_t max_bytes = UINT64_MAX;    // budget per stream
};

class Scanner {
 public:
  virtual ~Scanner() = default;
  // REQUIRES: rules and key outlive the scanner. Not thread-safe: one per stream.
  static Result<std::unique_ptr<Scanner>> Create(std::shared_ptr<const RuleSet> rules,
                                                 const HashKey& key, ScanOptions options);
  // Feeds the next chunk. A value split across chunks is still found.
  virtual Status Feed(std::string_view chunk) = 0;
  // Ends the stream; findings still waiting for context are settled.
  virtual Status Finish() = 0;
  // Findings settled so far, in stream order; the scanner forgets them.
  virtual std::vector<Finding> TakeFindings() = 0;
  // Bytes fed so far.
  virtual uint64_t bytes_scanned() const = 0;
};

// Convenience: scans one complete buffer.
Result<std::vector<Finding>> ScanText(std::shared_ptr<const RuleSet> rules, const HashKey& key,
                                      std::string_view text, const ScanOptions& options = {});

// Estimates how many distinct people a set of findings exposes. Findings are
// grouped per record (row, paragraph); records that share a strong key (My
// Number, e-mail, phone, name + birth date) are the same person. Findings
// of low confidence are not counted: they are not evidence of a person.
// Thread-compatible. Memory grows with the number of person records.
class PersonCounter {
 public:
  explicit PersonCounter(std::shared_ptr<const RuleSet> rules);
  ~PersonCounter();
  PersonCounter(const PersonCounter&) = delete;
  PersonCounter& operator=(const PersonCounter&) = delete;
  // `unit` names the document or member the findings came from; records are
  // per unit. Findings may arrive in any order, and one unit's findings may
  // come in several calls in a row (batches from a streaming Scanner): they
  // are held until another unit is added or Estimate() is called, so a person
  // is never cut in two where a batch ends.
  void Add(std::string_view unit, const std::vector<Finding>& findings);
  uint64_t Estimate() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mamori::detect
