// Internal plumbing shared by the extract sources. Not a public header: other
// components use extract.h only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "extract/extract.h"

namespace mamori::extract::internal {

// The state of one Extract* call: budgets, counters and the visitor.
class Walk {
 public:
  Walk(const Budgets& budgets, const Visitor& visit);

  const Budgets& budgets() const { return budgets_; }

  // Delivers a text unit. Returns non-OK when the walk must stop.
  Status Emit(const Unit& unit);
  // Delivers an error unit for `path`. Returns non-OK when the walk must stop.
  Status EmitError(const std::string& path, std::string_view format, const Status& error);
  // Reports a budget that concerns the whole input (time, total bytes, member
  // count) and aborts the rest of the walk: returns the abort status.
  Status Abort(const std::string& path, const Status& error);

  // Checks the wall-time budget; on excess reports and aborts.
  Status CheckTime(const std::string& path);
  // Accounts `n` more expanded bytes; on excess of the total budget reports and aborts.
  Status AddExpanded(const std::string& path, uint64_t n);
  // Accounts one more member; on excess of the member budget reports and aborts.
  Status AddMember(const std::string& path);

  bool aborted() const { return aborted_; }
  bool visitor_stopped() const { return visitor_stopped_; }
  uint64_t expanded() const { return expanded_; }

 private:
  const Budgets& budgets_;
  const Visitor& visit_;
  const Clock& clock_;
  int64_t start_micros_;
  uint64_t expanded_ = 0;
  uint64_t members_ = 0;
  bool aborted_ = false;
  bool visitor_stopped_ = false;
};

// The status every function returns once the walk was aborted (already reported).
Status AbortedStatus();

// Extracts one input or member of any format; the dispatcher. Returns non-OK
// only when the walk must stop (visitor stop or abort).
Status ExtractBytes(Walk& walk, const std::string& path, std::string_view name,
                    std::string_view data, uint32_t depth);

// ---- decoding (decode.cc) ----
struct Decoded {
  std::string_view text;  // UTF-8; points into the input or into *storage
  std::string encoding;   // e.g. "UTF-8", "SHIFT_JIS", "UTF-16LE"
  bool binary = false;    // not text at all
  uint64_t invalid = 0;   // sequences replaced by U+FFFD
};
// Detects the encoding (BOM, NUL pattern, UTF-8 validity, ISO-2022-JP escapes,
// uchardet, then Japanese-aware scoring) and decodes. `hint` is a declared
// charset (MIME, HTML meta) tried first when non-empty.
Decoded DecodeText(std::string_view data, std::string* storage, std::string_view hint = {});
// Converts from a named charset to UTF-8, replacing invalid sequences with
// U+FFFD (counted in *invalid). Shift_JIS is decoded as CP932 (Windows-31J).
Result<std::string> ConvertCharset(std::string_view data, std::string_view charset,
                                   uint64_t* invalid = nullptr);
bool IsValidUtf8(std::string_view s);
// IsValidUtf8 with at most this implementation (0 scalar, 1 SSSE3, 2 AVX2),
// or the best below it the CPU has; for tests, which check each one.
bool IsValidUtf8Using(std::string_view s, int level);
// ESC $ B / ESC $ @ / ESC ( J style escapes of ISO-2022-JP.
bool HasIso2022Escapes(std::string_view s);
// A display name: UTF-8 (CP932 names are converted), control characters replaced.
std::string CleanName(std::string_view raw);

// RFC 2045 base64; whitespace and other junk between characters is skipped,
// decoding stops at the first '='. Also accepts the base64url alphabet.
std::string Base64Decode(std::string_view in);
// Appends a code point as UTF-8.
void AppendUtf8(std::string* out, uint32_t cp);
// True when the data looks binary (NUL-heavy, not UTF-16).
bool LooksBinary(std::string_view data);

// ---- containers (archive.cc) ----
enum class ArchiveKind { kZip, kOther };
struct ZipEntryInfo {
  std::string name;  // raw bytes as stored
  uint64_t compressed = 0;
  uint64_t uncompressed = 0;
  bool encrypted = false;
  bool is_dir = false;
};
// Parses a zip's central directory (zip64 aware). Empty on failure.
std::vector<ZipEntryInfo> ReadZipDirectory(std::string_view data);
// Walks the members of an archive within the budgets. `want` selects members
// to read (others are passed over without reading); `fn` receives each member's
// cleaned name and bytes. Errors of single members are reported as error units.
using MemberFn = std::function<Status(const std::string& name, std::string_view bytes)>;
Status ForEachMember(Walk& walk, const std::string& path, std::string_view data, uint32_t depth,
                     ArchiveKind kind, const std::function<bool(const std::string&)>& want,
                     const MemberFn& fn);
// Extracts every member of an archive into units.
Status ExtractArchive(Walk& walk, const std::string& path, std::string_view data, uint32_t depth,
                      ArchiveKind kind, std::string_view name);

// ---- office, pdf, mail, text formats ----
enum class OoxmlKind { kNone, kDocx, kXlsx, kPptx };
OoxmlKind DetectOoxml(std::string_view zip_data, std::string_view name);
Status ExtractOoxml(Walk& walk, const std::string& path, std::string_view data, uint32_t depth,
                    OoxmlKind kind);
Status ExtractPdf(Walk& walk, const std::string& path, std::string_view data, uint32_t depth);
Status ExtractMime(Walk& walk, const std::string& path, std::string_view data, uint32_t depth);
bool LooksLikeMime(std::string_view data);

// Text formats, on already decoded UTF-8.
enum class TextFormat { kText, kCsv, kTsv, kJson, kHtml };
TextFormat DetectTextFormat(std::string_view name, std::string_view utf8);
// Emits the unit(s) for decoded text of the given format.
Status EmitText(Walk& walk, const std::string& path, std::string_view utf8,
                const std::string& encoding, TextFormat format);
// Rewrites CSV so quoted newlines and delimiters do not split records or fields
// (same byte length; they become spaces).
void NeutralizeQuoted(std::string* csv, char delimiter);
// Renders JSON as "key.path[3].name: value" lines. False if not JSON.
bool JsonToLines(std::string_view json, std::string* out, uint32_t max_depth);
// Strips HTML: text in *main, tables with a header row as TSV in *tables.
void HtmlToText(std::string_view html, std::string* main, std::vector<std::string>* tables);

// Lower-case extension of a name, without the dot ("" if none).
std::string Extension(std::string_view name);

}  // namespace mamori::extract::internal
