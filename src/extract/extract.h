// Turns files, archives, office documents, PDFs and mails into UTF-8 text
// units for the detection engine.
//
// One input may hold many units: a zip holds members, an xlsx holds sheets, a
// mail holds parts. Each unit arrives at the visitor with a display path
// (`outer.zip!inner/file.csv`, `book.xlsx!Sheet1`) and its decoded text.
// Nothing is skipped silently: a member that cannot be read or that exceeds a
// budget is reported to the visitor as an error unit, and the walk continues.
//
// Contract (see docs/extract.md):
// - Every failure reaches the visitor as an error unit (non-OK `error`, empty
//   text). Extract* returns non-OK only when the visitor returned non-OK.
// - A budget of one member (size, ratio, depth, encryption) fails that member
//   only. A budget of the whole input (time, total expanded bytes, member
//   count) is reported once, and the rest of the input is not inspected.
// - Binary data that is not a known format becomes an OK unit with format
//   "binary" (or "image") and empty text, so callers can list what was not
//   inspected; it is not an error.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"

namespace mamori::extract {

struct Budgets {
  uint64_t max_file_bytes = 1ull << 30;      // one input or member, before decoding
  uint64_t max_expanded_bytes = 4ull << 30;  // everything expanded from one input
  uint32_t max_depth = 8;                    // nesting of containers
  double max_ratio = 200.0;                  // expanded / compressed, per member
  uint32_t max_members = 100'000;            // members in one input
  uint64_t max_seconds = 120;                // wall time for one input
  const Clock* clock = nullptr;              // time source; nullptr: Clock::Real()
};

// What one unit of text is.
struct Unit {
  std::string path;  // display path, members joined with '!'
  // "text", "csv", "tsv", "json", "html", "html-table", "docx", "xlsx", "pptx",
  // "pdf", "pdf-no-text", "eml-headers", "binary", "image"; on error units also
  // "encrypted", "budget", "archive", "xml", ... (see docs/extract.md).
  std::string format;
  std::string encoding;   // the source encoding that was decoded, e.g. "SHIFT_JIS"
  std::string_view text;  // UTF-8, valid only during the visitor call
  // 0 for plain text; ',' '\t' ';' or '|' when the first line is a header row
  // whose cells name the columns (CSV, TSV, xlsx sheets and HTML tables as TSV).
  char field_delimiter = 0;
  // Optional: maps (1-based line in `text`, 0-based field) to a location such
  // as "Sheet1!C7" for spreadsheets. Empty function: no cell locations.
  std::function<std::string(uint64_t line, int32_t field)> locate;
};

// The display path of a finding at (line, field) of a unit: "book.xlsx!Sheet1!C7"
// when the unit has cell locations (locate() gives "Sheet1!C7" and replaces the
// sheet component of unit.path), else unit.path.
std::string LocationPath(const Unit& unit, uint64_t line, int32_t field);

// Whether a unit has no text to inspect: an image, a PDF without a text layer
// (scanned pages) or an unknown binary format. Such content is never "clean":
// a photo of a My Number card is personal data that no pattern sees.
bool HasNoTextToInspect(const Unit& unit);

// Called once per text unit, or once per failure with a non-OK status and the
// path of what failed (the unit's text is then empty). Returning a non-OK
// status stops the walk and is returned by Extract*.
using Visitor = std::function<Status(const Unit& unit, const Status& error)>;

// Extracts a file on disk. Plain UTF-8 files are memory-mapped, not copied.
Status ExtractFile(const std::string& path, const Budgets& budgets, const Visitor& visit);

// Extracts an in-memory buffer (an upload, an attachment). `name` is used for
// type detection by extension and as the display path.
Status ExtractBuffer(std::string_view name, std::string_view data, const Budgets& budgets,
                     const Visitor& visit);

// Whether an input that starts with `head` (its first 8 bytes, or all of it if
// shorter) is a container whose raw bytes hide its text: zip (and Office Open
// XML), PDF, gzip, bzip2, xz, 7z or OLE2 (legacy Office). Such an input must be
// extracted (ExtractBuffer / ExtractFile) before it is scanned.
bool IsContainer(std::string_view head);

// Whether text that starts with `head` must be decoded before it is scanned:
// a UTF-16/32 byte order mark, NUL bytes (UTF-16 without a mark, or binary),
// ISO-2022-JP escapes, or bytes that are not UTF-8 (Shift_JIS, EUC-JP). A
// sequence cut by the end of `head` is not held against it. Such input goes
// through ExtractBuffer, which detects and converts the encoding; scanning its
// raw bytes would miss every Japanese keyword and name.
bool NeedsDecoding(std::string_view head);

// The field delimiter a streaming scanner should use for a file of this name
// (detect::ScanOptions::field_delimiter): ',' for .csv, '\t' for .tsv, else 0.
// The header row then gives each column its context, as extraction does.
char FieldDelimiterForName(std::string_view name);

// Decodes text of unknown encoding to UTF-8 (BOM, then uchardet, then a
// Japanese-aware fallback). Sets *encoding to the detected name. Invalid
// sequences become U+FFFD; binary data (not text) is kInvalidArgument.
Result<std::string> DecodeToUtf8(std::string_view data, std::string* encoding);

}  // namespace mamori::extract
