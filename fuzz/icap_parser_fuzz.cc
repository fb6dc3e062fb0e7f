// Fuzzes the ICAP head parser, the encapsulated HTTP head parser, the chunked
// decoder (with ieof) and the body decoders (multipart, urlencoded, JSON, gzip, br).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "egress/body_decoder.h"
#include "egress/icap_protocol.h"

namespace {

class NullSink : public mamori::egress::ContentSink {
 public:
  mamori::Status BeginUnit(std::string_view) override { return mamori::Status::Ok(); }
  mamori::Status Text(std::string_view t) override {
    bytes += t.size();
    return mamori::Status::Ok();
  }
  mamori::Status EndUnit() override { return mamori::Status::Ok(); }
  size_t bytes = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mamori::egress;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  ProtocolLimits limits;
  limits.max_http_head_bytes = 4096;
  // Head, up to the blank line.
  size_t end = in.find("\r\n\r\n");
  std::string_view head = end == std::string_view::npos ? in : in.substr(0, end + 4);
  std::string_view rest = end == std::string_view::npos ? std::string_view() : in.substr(end + 4);
  auto req = ParseIcapHead(head, limits);
  if (req.ok()) {
    uint64_t hl = req->req_hdr_len + req->res_hdr_len;
    if (hl <= rest.size()) {
      if (req->has_req_hdr) {
        auto h = ParseHttpHead(rest.substr(0, req->req_hdr_len), true, limits);
        if (h.ok()) {
          (void)RequestHost(*h);
          (void)h->Serialize();
        }
      }
      if (req->has_res_hdr) {
        (void)ParseHttpHead(rest.substr(req->req_hdr_len, req->res_hdr_len), false, limits);
      }
      rest.remove_prefix(hl);
    }
  } else {
    (void)ParseHttpHead(head, true, limits);
  }
  // Chunked body, fed in uneven pieces, into a body decoder chosen by a byte.
  static const char* kTypes[] = {"multipart/form-data; boundary=b",
                                 "application/x-www-form-urlencoded", "application/json",
                                 "text/plain"};
  uint8_t sel = size ? data[0] : 0;
  NullSink sink;
  DecodeBudgets budgets;
  budgets.max_decoded_bytes = 1 << 20;
  static const char* kEncodings[] = {"", "gzip", "br", "deflate"};
  auto dec = BodyDecoder::Create(kTypes[sel & 3], kEncodings[(sel >> 2) & 3], budgets, &sink);
  if (!dec.ok()) return 0;
  ChunkedDecoder chunks(limits);
  size_t step = 1 + (sel >> 3);
  bool ok = true;
  for (size_t i = 0; i < rest.size() && ok; i += step) {
    std::string_view piece = rest.substr(i, step);
    while (ok) {
      auto ev = chunks.Next(&piece);
      if (!ev.ok()) {
        ok = false;
        break;
      }
      if (ev->kind == ChunkedDecoder::Kind::kData) {
        if (!(*dec)->Feed(ev->data).ok()) ok = false;
        continue;
      }
      if (ev->kind == ChunkedDecoder::Kind::kEnd) {
        (void)(*dec)->Finish();
        ok = false;
        break;
      }
      break;
    }
  }
  return 0;
}
