// ICAP/1.0 (RFC 3507) message parsing, without I/O.
//
// The server reads an ICAP head (up to the blank line), then the encapsulated
// HTTP header blocks whose lengths come from the Encapsulated header, then an
// HTTP/1.1-chunked body. These pieces are parsed here so that they can be
// unit-tested and fuzzed without sockets. Every parser has a budget; input
// over budget is an error (kResourceExhausted), never a silent truncation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace mamori::egress {

struct ProtocolLimits {
  size_t max_icap_head_bytes = 64 * 1024;   // ICAP request line + headers
  size_t max_http_head_bytes = 256 * 1024;  // one encapsulated HTTP header block
  size_t max_header_count = 256;            // headers in one block
  size_t max_chunk_line_bytes = 4096;       // "1f4; ieof\r\n"
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive ASCII comparison of header names.
bool HeaderNameEquals(std::string_view a, std::string_view b);
// First value of header `name`, or nullopt.
std::optional<std::string_view> FindHeader(const HeaderList& headers, std::string_view name);
// Removes every header named `name`; returns how many were removed.
size_t RemoveHeader(HeaderList& headers, std::string_view name);

// One entry of the Encapsulated header, e.g. {"req-body", 412}.
struct EncapsulatedPart {
  std::string name;  // req-hdr, res-hdr, req-body, res-body, null-body, opt-body
  uint64_t offset = 0;
};

enum class IcapMethod { kOptions, kReqmod, kRespmod };

struct IcapRequest {
  IcapMethod method = IcapMethod::kOptions;
  std::string uri;      // icap://host:port/service?query
  std::string service;  // path of the URI without the leading '/', e.g. "reqmod"
  HeaderList headers;
  std::vector<EncapsulatedPart> encapsulated;
  std::optional<uint64_t> preview;  // Preview: n, if sent
  bool allow_204 = false;           // Allow: 204 sent
  bool allow_206 = false;           // Allow: 206 sent
  bool keep_alive = true;           // false when Connection: close

  // Byte lengths of the encapsulated header blocks, derived from offsets.
  uint64_t req_hdr_len = 0;
  uint64_t res_hdr_len = 0;
  bool has_req_hdr = false;
  bool has_res_hdr = false;
  bool has_body = false;  // req-body or res-body present (chunked body follows)
};

// Parses the ICAP head: everything up to and including the blank line.
// `head` must end with "\r\n\r\n" (the server finds the blank line first).
Result<IcapRequest> ParseIcapHead(std::string_view head, const ProtocolLimits& limits);

// Parses "req-hdr=0, req-body=412" into parts; offsets must be increasing and
// the body part (if any) must be last.
Result<std::vector<EncapsulatedPart>> ParseEncapsulated(std::string_view value);

// An HTTP request or response head (start line and headers).
struct HttpHead {
  bool is_request = true;
  // Request: method, target, version. Response: version, status code, reason.
  std::string method, target, version;
  int status = 0;
  std::string reason;
  HeaderList headers;

  // Serialises the head back to wire form, ending with the blank line.
  std::string Serialize() const;
};

// Parses an HTTP head block (start line, headers, blank line).
Result<HttpHead> ParseHttpHead(std::string_view block, bool is_request,
                               const ProtocolLimits& limits);

// The host a request is for: the authority of an absolute target, the
// CONNECT target, or the Host header. Lowercased, without port or brackets.
std::string RequestHost(const HttpHead& request);

// Incremental decoder for an ICAP chunked body (HTTP/1.1 chunked framing plus
// the ICAP "ieof" chunk extension on the last chunk).
class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(const ProtocolLimits& limits) : limits_(limits) {}

  enum class Kind { kNeedMore, kData, kEnd };
  struct Event {
    Kind kind = Kind::kNeedMore;
    std::string_view data;  // for kData: points into the caller's input
    bool ieof = false;      // for kEnd: the zero chunk carried "ieof"
  };

  // Consumes bytes from the front of *input and returns the next event.
  // kNeedMore means *input was consumed entirely and more bytes are needed.
  // After kEnd the decoder is reset and ready for the next body.
  Result<Event> Next(std::string_view* input);

  // True while in the middle of a body (between the first byte and kEnd).
  bool in_body() const { return state_ != State::kSize || !line_.empty(); }
  void Reset();

 private:
  enum class State { kSize, kData, kDataCrlf, kTrailer };
  const ProtocolLimits limits_;
  State state_ = State::kSize;
  std::string line_;  // partial size line or trailer line
  uint64_t remaining_ = 0;
  bool last_ieof_ = false;
};

// Encodes one chunk ("<hex>\r\n<data>\r\n") into *out.
void AppendChunk(std::string* out, std::string_view data);

}  // namespace mamori::egress
