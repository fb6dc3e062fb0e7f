#include "egress/body_decoder.h"

#include <brotli/encode.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <vector>

namespace mamori::egress {
namespace {

struct Unit {
  std::string name, text;
  bool ended = false;
};

class Recorder : public ContentSink {
 public:
  Status BeginUnit(std::string_view name) override {
    units.push_back({std::string(name), "", false});
    return Status::Ok();
  }
  Status Text(std::string_view t) override {
    if (units.empty()) return Internal("text before unit");
    units.back().text.append(t);
    return Status::Ok();
  }
  Status EndUnit() override {
    units.back().ended = true;
    return Status::Ok();
  }
  std::vector<Unit> units;
};

// Decodes `body` fed in pieces of `step` bytes.
Status Decode(std::string_view type, std::string_view enc, std::string_view body, size_t step,
              Recorder* rec, DecodeBudgets budgets = {}) {
  auto d = BodyDecoder::Create(type, enc, budgets, rec);
  if (!d.ok()) return d.status();
  for (size_t i = 0; i < body.size(); i += step) RETURN_IF_ERROR((*d)->Feed(body.substr(i, step)));
  return (*d)->Finish();
}

std::string Gzip(std::string_view in) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(compressBound(in.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = in.size();
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = out.size();
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

const char kMultipart[] =
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"id\"\r\n\r\n"
    "abc123\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"顧客リスト.csv\"\r\n"
    "Content-Type: text/csv\r\n\r\n"
    "name,mynumber\r\n山田太郎,123456789018\r\n--XY-not-a-boundary\r\n"
    "\r\n--XyZ--\r\n";

TEST(EgressBodyDecoder, MultipartPartsAtEverySplit) {
  for (size_t step = 1; step < sizeof(kMultipart); step += (step < 20 ? 1 : 7)) {
    Recorder rec;
    Status st = Decode("multipart/form-data; boundary=XyZ", "", kMultipart, step, &rec);
    ASSERT_TRUE(st.ok()) << step << " " << st.ToString();
    ASSERT_EQ(rec.units.size(), 2u) << step;
    EXPECT_EQ(rec.units[0].name, "form:id");
    EXPECT_EQ(rec.units[0].text, "abc123");
    EXPECT_EQ(rec.units[1].name, "form:file file=顧客リスト.csv");
    EXPECT_EQ(rec.units[1].text,
              "name,mynumber\r\n山田太郎,123456789018\r\n--XY-not-a-boundary\r\n");
    EXPECT_TRUE(rec.units[1].ended);
  }
}

TEST(EgressBodyDecoder, MultipartTruncatedIsAnError) {
  Recorder rec;
  std::string cut(kMultipart, 120);
  EXPECT_FALSE(Decode("multipart/form-data; boundary=XyZ", "", cut, 1000, &rec).ok());
  Recorder rec2;
  EXPECT_FALSE(Decode("multipart/form-data", "", kMultipart, 1000, &rec2).ok());  // no boundary
}

TEST(EgressBodyDecoder, MultipartPartBudget) {
  Recorder rec;
  DecodeBudgets b;
  b.max_parts = 1;
  EXPECT_EQ(Decode("multipart/form-data; boundary=\"XyZ\"", "", kMultipart, 1000, &rec, b).code(),
            StatusCode::kResourceExhausted);
}

TEST(EgressBodyDecoder, Urlencoded) {
  for (size_t step = 1; step < 10; ++step) {
    Recorder rec;
    ASSERT_TRUE(Decode("application/x-www-form-urlencoded", "",
                       "name=%E5%B1%B1%E7%94%B0&my+number=1234%2D5678%zz%4", step, &rec)
                    .ok());
    ASSERT_EQ(rec.units.size(), 1u);
    EXPECT_EQ(rec.units[0].text, "name 山田\nmy number 1234-5678%zz%4");
  }
  // Escapes that turn out not to be ones, at every split point; a NUL byte
  // passes through.
  const std::string tricky = std::string("n\0m", 3) + "a%%41b%4%42&x=%+%";
  const std::string want = std::string("n\0m", 3) + "a%Ab%4B\nx % %";
  for (size_t step = 1; step <= tricky.size(); ++step) {
    Recorder rec;
    ASSERT_TRUE(Decode("application/x-www-form-urlencoded", "", tricky, step, &rec).ok());
    ASSERT_EQ(rec.units.size(), 1u);
    EXPECT_EQ(rec.units[0].text, want) << "step " << step;
  }
}

TEST(EgressBodyDecoder, JsonEscapes) {
  for (size_t step = 1; step < 8; ++step) {
    Recorder rec;
    ASSERT_TRUE(Decode("application/json; charset=utf-8", "",
                       R"({"n":"\u5c71\u7530","x":"a\nb","e":"\ud83d\ude00","q":"\"1\""})", step,
                       &rec)
                    .ok());
    EXPECT_EQ(rec.units[0].text, "{\"n\":\"山田\",\"x\":\"a\nb\",\"e\":\"😀\",\"q\":\"\"1\"\"}");
  }
}

TEST(EgressBodyDecoder, GzipAndBombs) {
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "line " + std::to_string(i) + " 123456789018\n";
  std::string gz = Gzip(text);
  for (size_t step : {1ul, 100ul, 1ul << 20}) {
    Recorder rec;
    ASSERT_TRUE(Decode("text/plain", "gzip", gz, step, &rec).ok());
    EXPECT_EQ(rec.units[0].text, text);
  }
  Recorder truncated;
  EXPECT_FALSE(Decode("text/plain", "gzip", gz.substr(0, gz.size() / 2), 1000, &truncated).ok());
  std::string zeros(50 << 20, '\0');
  std::string bomb = Gzip(zeros);
  Recorder rec;
  EXPECT_EQ(Decode("application/octet-stream", "gzip", bomb, 4096, &rec).code(),
            StatusCode::kResourceExhausted);
}

std::string Brotli(std::string_view in) {
  size_t n = BrotliEncoderMaxCompressedSize(in.size()) + 64;
  std::string out(n, '\0');
  EXPECT_TRUE(BrotliEncoderCompress(5, 22, BROTLI_MODE_GENERIC, in.size(),
                                    reinterpret_cast<const uint8_t*>(in.data()), &n,
                                    reinterpret_cast<uint8_t*>(out.data())));
  out.resize(n);
  return out;
}

TEST(EgressBodyDecoder, BrotliAndBombs) {
  std::string json = "{\"rows\":[";
  for (int i = 0; i < 3000; ++i)
    json += "{\"id\":" + std::to_string(i) + ",\"no\":\"123456789018\"},";
  json += "{}]}";
  std::string br = Brotli(json);
  for (size_t step : {1ul, 333ul, 1ul << 20}) {
    Recorder rec;
    Status st = Decode("application/json", "br", br, step, &rec);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(rec.units[0].text, json) << step;
  }
  Recorder truncated;
  EXPECT_EQ(Decode("text/plain", "br", br.substr(0, br.size() / 2), 100, &truncated).code(),
            StatusCode::kInvalidArgument);
  Recorder corrupt;
  std::string bad = br;
  bad[bad.size() / 2] ^= 0x55;
  bad[bad.size() / 3] ^= 0x55;
  EXPECT_FALSE(Decode("text/plain", "br", bad, 100, &corrupt).ok());
  Recorder trailing;
  EXPECT_FALSE(Decode("text/plain", "BR", br + "junk", 100, &trailing).ok());
  std::string bomb = Brotli(std::string(50 << 20, '\0'));
  Recorder rec;
  EXPECT_EQ(Decode("application/octet-stream", "br", bomb, 4096, &rec).code(),
            StatusCode::kResourceExhausted);
  Recorder empty;
  EXPECT_TRUE(Decode("text/plain", "br", "", 1, &empty).ok());
}

TEST(EgressBodyDecoder, UnknownEncodingsFailClosed) {
  for (const char* enc : {"zstd", "compress", "x-compress", "gzip, br", "br, gzip", "gzip,gzip",
                          "exi", "pack200-gzip", "aes128gcm"}) {
    Recorder rec;
    Status st = Decode("text/plain", enc, "x", 1, &rec);
    EXPECT_EQ(st.code(), StatusCode::kUnimplemented) << enc;
    EXPECT_NE(st.message().find("cannot be inspected"), std::string::npos) << enc;
  }
  Recorder ident;
  EXPECT_TRUE(Decode("text/plain", " Identity ", "x", 1, &ident).ok());
}

TEST(EgressBodyDecoder, DecodedBudget) {
  Recorder rec;
  DecodeBudgets b;
  b.max_decoded_bytes = 10;
  EXPECT_EQ(Decode("text/plain", "", std::string(11, 'a'), 3, &rec, b).code(),
            StatusCode::kResourceExhausted);
  Recorder ok;
  EXPECT_TRUE(Decode("text/plain", "", std::string(10, 'a'), 3, &ok, b).ok());
}

TEST(EgressBodyDecoder, EmptyBodyIsOneEmptyUnit) {
  Recorder rec;
  ASSERT_TRUE(Decode("", "", "", 1, &rec).ok());
  ASSERT_EQ(rec.units.size(), 1u);
  EXPECT_TRUE(rec.units[0].ended);
}

}  // namespace
}  // namespace mamori::egress
