// Streaming decoding of HTTP bodies into text units for inspection.
//
// A BodyDecoder is fed the (chunk-decoded) HTTP body as it arrives and never
// holds the whole body: it undoes Content-Encoding (gzip, deflate or br, with
// an expansion budget), then splits by Content-Type:
//   multipart/form-data   one unit per part; a part's name and file name
//                         (from Content-Disposition) name the unit
//   x-www-form-urlencoded percent-decoded, one "name value" line per field
//   application/json      JSON string escapes (\n, \uXXXX) decoded
//   anything else         raw bytes as one unit
// and hands the text to a ContentSink (the detection engine in production).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mamori::egress {

// Receives the units of one body, in order: Begin, Text*, End, Begin, ...
class ContentSink {
 public:
  virtual ~ContentSink() = default;
  // `name` is a display name such as "form:file=list.csv" or "body".
  virtual Status BeginUnit(std::string_view name) = 0;
  virtual Status Text(std::string_view text) = 0;
  virtual Status EndUnit() = 0;
};

struct DecodeBudgets {
  uint64_t max_decoded_bytes = 1ull << 30;  // bytes handed to the sink, per body
  double max_gzip_ratio = 200.0;            // decoded / encoded, for gzip and br bombs
  size_t max_part_head_bytes = 16 * 1024;   // one multipart part's headers
  uint32_t max_parts = 10'000;              // parts in one multipart body
};

class BodyDecoder {
 public:
  virtual ~BodyDecoder() = default;
  // `content_type` and `content_encoding` are the HTTP header values (may be
  // empty). Other encodings (compress, zstd, stacked "gzip, br") are
  // Unimplemented: the caller decides per policy whether that blocks.
  static Result<std::unique_ptr<BodyDecoder>> Create(std::string_view content_type,
                                                     std::string_view content_encoding,
                                                     const DecodeBudgets& budgets,
                                                     ContentSink* sink);
  virtual Status Feed(std::string_view data) = 0;
  // Ends the body: flushes held-back bytes and closes the last unit. A
  // truncated gzip stream or multipart body is an error.
  virtual Status Finish() = 0;
  virtual uint64_t decoded_bytes() const = 0;
};

}  // namespace mamori::egress
