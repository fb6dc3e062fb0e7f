// Internal: turns a raw candidate span into a validated value.
#pragma once

#include <string>
#include <string_view>

#include "detect/ruleset_impl.h"

namespace MeCab {
class Tagger;
class Lattice;
}

namespace mamori::detect {

struct Validated {
  bool ok = false;
  size_t start = 0;           // value start, relative to the span given
  size_t end = 0;             // value end (exclusive), may extend past the span
  std::string normalized;     // canonical form, hashed for correlation
  bool structured = false;    // canonical grouping seen
  bool self_context = false;  // the value carries its own context (〒, 普通, T-prefix, 氏名：)
  std::string self_context_word;
  // The value is equally well something else (a JAN code that passes the
  // corporate check digit): only a header or a keyword within a few bytes counts.
  bool doubtful = false;
};

// Per-scanner state for validators that need it (MeCab tagger).
class ValidatorContext {
 public:
  explicit ValidatorContext(const RuleSetImpl& rules) : rules_(rules) {}
  ~ValidatorContext();
  // True if MeCab tags at least one token of `text` as a person name (人名), and
  // sets *name_start/*name_end to the byte range of the last run of such tokens.
  bool FindPersonName(std::string_view text, size_t* name_start, size_t* name_end);

 private:
  const RuleSetImpl& rules_;
  MeCab::Tagger* tagger_ = nullptr;
  MeCab::Lattice* lattice_ = nullptr;
};

// `text` holds the bytes around the candidate: the span is [span_start,
// span_end) and at least 16 bytes before and 256 after are included when the
// stream has them. `cell` is true when the span is a whole cell under a
// matching column header (lenient validation of names, addresses, dates).
Validated ValidateCandidate(const CompiledRule& rule, std::string_view text, size_t span_start,
                            size_t span_end, bool cell, ValidatorContext* vctx);

}  // namespace mamori::detect
