#include "egress/icap_protocol.h"

#include <gtest/gtest.h>

namespace mamori::egress {
namespace {

ProtocolLimits L() { return ProtocolLimits{}; }

TEST(EgressIcapProtocol, ParsesReqmodWithPreview) {
  std::string head =
      "REQMOD icap://127.0.0.1:1344/reqmod ICAP/1.0\r\n"
      "Host: 127.0.0.1:1344\r\nDate: x\r\nEncapsulated: req-hdr=0, req-body=137\r\n"
      "Preview: 4096\r\nAllow: 204, trailers\r\nX-Client-IP: 127.0.0.1\r\n\r\n";
  auto r = ParseIcapHead(head, L());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->method, IcapMethod::kReqmod);
  EXPECT_EQ(r->service, "reqmod");
  ASSERT_TRUE(r->preview.has_value());
  EXPECT_EQ(*r->preview, 4096u);
  EXPECT_TRUE(r->allow_204);
  EXPECT_FALSE(r->allow_206);
  EXPECT_TRUE(r->has_req_hdr);
  EXPECT_EQ(r->req_hdr_len, 137u);
  EXPECT_TRUE(r->has_body);
  EXPECT_EQ(FindHeader(r->headers, "x-client-ip").value_or(""), "127.0.0.1");
}

TEST(EgressIcapProtocol, ParsesNullBodyAndRespmod) {
  auto r = ParseIcapHead(
      "REQMOD icap://h/reqmod ICAP/1.0\r\nEncapsulated: req-hdr=0, null-body=50\r\n\r\n", L());
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_body);
  EXPECT_EQ(r->req_hdr_len, 50u);
  auto s = ParseIcapHead(
      "RESPMOD icap://h/respmod ICAP/1.0\r\nEncapsulated: req-hdr=0, res-hdr=30, res-body=90\r\n"
      "Connection: close\r\n\r\n",
      L());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->req_hdr_len, 30u);
  EXPECT_EQ(s->res_hdr_len, 60u);
  EXPECT_FALSE(s->keep_alive);
}

TEST(EgressIcapProtocol, RejectsBadHeads) {
  EXPECT_FALSE(ParseIcapHead("GET / HTTP/1.1\r\n\r\n", L()).ok());
  EXPECT_EQ(ParseIcapHead("FOO icap://h/x ICAP/1.0\r\n\r\n", L()).status().code(),
            StatusCode::kUnimplemented);
  EXPECT_FALSE(
      ParseIcapHead("REQMOD icap://h/reqmod ICAP/1.0\r\n\r\n", L()).ok());  // no Encapsulated
  EXPECT_FALSE(
      ParseIcapHead("REQMOD icap://h/r ICAP/1.0\r\nEncapsulated: req-hdr=10, req-body=5\r\n\r\n",
                    L())
          .ok());
  EXPECT_FALSE(ParseIcapHead(
                   "REQMOD icap://h/r ICAP/1.0\r\nEncapsulated: req-body=0, req-hdr=5\r\n\r\n", L())
                   .ok());
  EXPECT_FALSE(
      ParseIcapHead(
          "REQMOD icap://h/r ICAP/1.0\r\nEncapsulated: req-hdr=0, req-body=9999999\r\n\r\n", L())
          .ok());
  EXPECT_FALSE(ParseIcapHead("REQMOD icap://h/r ICAP/1.0\r\nPreview: x\r\n"
                             "Encapsulated: req-hdr=0, null-body=5\r\n\r\n",
                             L())
                   .ok());
  ProtocolLimits small;
  small.max_icap_head_bytes = 10;
  EXPECT_EQ(ParseIcapHead("OPTIONS icap://h/reqmod ICAP/1.0\r\n\r\n", small).status().code(),
            StatusCode::kResourceExhausted);
}

TEST(EgressIcapProtocol, HttpHeadAndHost) {
  auto h = ParseHttpHead(
      "POST https://Upload.GigaFile.nu:443/upload_chunk.php HTTP/1.1\r\nHost: x\r\n"
      "Content-Length: 10\r\n\r\n",
      true, L());
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(RequestHost(*h), "upload.gigafile.nu");
  auto c = ParseHttpHead("CONNECT [::1]:443 HTTP/1.1\r\n\r\n", true, L());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(RequestHost(*c), "::1");
  auto o = ParseHttpHead("POST /x HTTP/1.1\r\nHost: Example.COM.:8080\r\n\r\n", true, L());
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(RequestHost(*o), "example.com");
  auto res = ParseHttpHead("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", false, L());
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->Serialize(), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
  EXPECT_FALSE(ParseHttpHead("POST /x HTTP/1.1\r\nBad Header\r\n\r\n", true, L()).ok());
  EXPECT_FALSE(ParseHttpHead("HTTP/1.1 abc OK\r\n\r\n", false, L()).ok());
}

// Feeds `wire` to a decoder in pieces of `step` bytes; returns the data and ieof.
std::pair<std::string, bool> DecodeAll(std::string_view wire, size_t step, Status* err) {
  ChunkedDecoder d(ProtocolLimits{});
  std::string out;
  for (size_t i = 0; i < wire.size(); i += step) {
    std::string_view in = wire.substr(i, step);
    while (true) {
      auto ev = d.Next(&in);
      if (!ev.ok()) {
        *err = ev.status();
        return {out, false};
      }
      if (ev->kind == ChunkedDecoder::Kind::kData) {
        out.append(ev->data);
        continue;
      }
      if (ev->kind == ChunkedDecoder::Kind::kEnd) return {out, ev->ieof};
      break;
    }
  }
  *err = InvalidArgument("incomplete");
  return {out, false};
}

TEST(EgressIcapProtocol, ChunkedDecodingAtEverySplit) {
  std::string wire = "5\r\nhello\r\n1a; x=y\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
  for (size_t step = 1; step <= wire.size(); ++step) {
    Status err;
    auto [data, ieof] = DecodeAll(wire, step, &err);
    ASSERT_TRUE(err.ok()) << step << " " << err.ToString();
    EXPECT_EQ(data, "helloabcdefghijklmnopqrstuvwxyz");
    EXPECT_FALSE(ieof);
  }
}

TEST(EgressIcapProtocol, IeofOnEmptyBody) {
  Status err;
  auto [data, ieof] = DecodeAll("0; ieof\r\n\r\n", 3, &err);
  ASSERT_TRUE(err.ok()) << err.ToString();
  EXPECT_TRUE(data.empty());
  EXPECT_TRUE(ieof);
  auto [d2, ieof2] = DecodeAll("3\r\nabc\r\n0;ieof\r\n\r\n", 100, &err);
  EXPECT_EQ(d2, "abc");
  EXPECT_TRUE(ieof2);
}

TEST(EgressIcapProtocol, ChunkedErrors) {
  Status err;
  DecodeAll("zz\r\nabc\r\n0\r\n\r\n", 100, &err);
  EXPECT_EQ(err.code(), StatusCode::kInvalidArgument);
  err = Status();
  DecodeAll("3\r\nabcX\r\n0\r\n\r\n", 100, &err);
  EXPECT_EQ(err.code(), StatusCode::kInvalidArgument);
  err = Status();
  DecodeAll(std::string(5000, '1') + "\r\n", 100, &err);
  EXPECT_EQ(err.code(), StatusCode::kResourceExhausted);
  err = Status();
  DecodeAll("ffffffffffffffffff\r\n", 100, &err);
  EXPECT_FALSE(err.ok());
}

TEST(EgressIcapProtocol, AppendChunk) {
  std::string out;
  AppendChunk(&out, std::string(300, 'a'));
  EXPECT_EQ(out.substr(0, 5), "12c\r\n");
  AppendChunk(&out, "");
  EXPECT_EQ(out.size(), 5u + 300 + 2);
}

}  // namespace
}  // namespace mamori::egress
