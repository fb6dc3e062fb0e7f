#include "egress/body_decoder.h"

#include <brotli/decode.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "egress/icap_protocol.h"

namespace mamori::egress {
namespace {

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view TrimWs(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Value of parameter `name` in "type/sub; a=b; name="v"" (quotes removed).
std::string HeaderParam(std::string_view value, std::string_view name) {
  size_t pos = value.find(';');
  while (pos != std::string_view::npos) {
    std::string_view rest = value.substr(pos + 1);
    size_t eq = rest.find('=');
    if (eq == std::string_view::npos) return "";
    std::string key = ToLower(TrimWs(rest.substr(0, eq)));
    std::string_view v = TrimWs(rest.substr(eq + 1));
    std::string out;
    size_t consumed;
    if (!v.empty() && v.front() == '"') {
      size_t i = 1;
      for (; i < v.size() && v[i] != '"'; ++i) {
        if (v[i] == '\\' && i + 1 < v.size()) ++i;
        out.push_back(v[i]);
      }
      consumed = i + 1;
    } else {
      size_t end = v.find(';');
      out = std::string(TrimWs(v.substr(0, end)));
      consumed = end == std::string_view::npos ? v.size() : end;
    }
    if (key == name) return out;
    size_t base = static_cast<size_t>(v.data() - value.data());
    size_t next = value.find(';', std::min(value.size(), base + consumed));
    pos = next;
  }
  return "";
}

// ---- text transforms (stateful, streaming) ----

// A stage that transforms text and passes it on to the next ContentSink.
class UrlencodedSink : public ContentSink {
 public:
  explicit UrlencodedSink(ContentSink* next) : next_(next) {}
  Status BeginUnit(std::string_view name) override { return next_->BeginUnit(name); }
  Status Text(std::string_view text) override {
    // One output byte per input byte at most, plus a "%X" held from the
    // previous piece; written through a pointer (push_back per byte was most
    // of the gateway's instructions on a small form post).
    out_.resize(text.size() + 2);
    char* o = out_.data();
    const char* p = text.data();
    const char* const end = p + text.size();
    // The state lives in locals: stores through `o` (a char*) may alias any
    // member, which made the compiler reload members after every byte.
    int pct = pct_, hi = hi_;
    char first = first_;
    while (p < end) {
      // Hot loop: no escape pending and three bytes left for a whole "%XX".
      if (pct == 0) {
        while (end - p >= 3) {
          const unsigned char c = static_cast<unsigned char>(*p);
          if (c != '%') {
            *o++ = kPlain[c];
            ++p;
            continue;
          }
          int h = Hex(p[1]), l = Hex(p[2]);
          if ((h | l) < 0) break;  // not a whole escape: the general path below
          *o++ = static_cast<char>(h * 16 + l);
          p += 3;
        }
        if (p == end) break;
      }
      if (pct == 0) {
        const unsigned char c = static_cast<unsigned char>(*p);
        if (c != '%') {
          *o++ = kPlain[c];
          ++p;
          continue;
        }
        // A whole "%XX" in this piece (Japanese text is nearly all escapes).
        if (end - p >= 3) {
          int h = Hex(p[1]), l = Hex(p[2]);
          if ((h | l) >= 0) {
            *o++ = static_cast<char>(h * 16 + l);
            p += 3;
            continue;
          }
        }
        pct = 1;
        ++p;
        continue;
      }
      char c = *p++;
      int v = Hex(c);
      if (v < 0) {  // not an escape after all; pass through
        *o++ = '%';
        if (pct == 2) *o++ = first;
        pct = 0;
        if (c == '%') {
          pct = 1;
        } else {
          *o++ = kPlain[static_cast<unsigned char>(c)];
        }
        continue;
      }
      if (pct == 1) {
        first = c;
        hi = v;
        pct = 2;
      } else {
        *o++ = static_cast<char>(hi * 16 + v);
        pct = 0;
      }
    }
    pct_ = pct;
    hi_ = hi;
    first_ = first;
    out_.resize(static_cast<size_t>(o - out_.data()));
    return next_->Text(out_);
  }
  Status EndUnit() override {
    if (pct_ > 0) {
      std::string rest = "%";
      if (pct_ == 2) rest.push_back(first_);
      pct_ = 0;
      RETURN_IF_ERROR(next_->Text(rest));
    }
    return next_->EndUnit();
  }

 private:
  static constexpr auto kHex = [] {
    std::array<signed char, 256> t{};
    for (int i = 0; i < 256; ++i) t[i] = -1;
    for (int i = 0; i < 10; ++i) t['0' + i] = static_cast<signed char>(i);
    for (int i = 0; i < 6; ++i) t['a' + i] = t['A' + i] = static_cast<signed char>(10 + i);
    return t;
  }();
  static int Hex(char c) { return kHex[static_cast<unsigned char>(c)]; }
  // What an unescaped byte becomes: '+' and '=' a space, '&' a line break.
  static constexpr auto kPlain = [] {
    std::array<char, 256> t{};
    for (int i = 0; i < 256; ++i) t[i] = static_cast<char>(i);
    t['+'] = ' ';
    t['='] = ' ';
    t['&'] = '\n';
    return t;
  }();
  ContentSink* next_;
  std::string out_;
  int pct_ = 0;  // 0 none, 1 after '%', 2 after '%X'
  char first_ = 0;
  int hi_ = 0;
};

// Decodes JSON string escapes; everything else passes through unchanged.
class JsonSink : public ContentSink {
 public:
  explicit JsonSink(ContentSink* next) : next_(next) {}
  Status BeginUnit(std::string_view name) override { return next_->BeginUnit(name); }
  Status Text(std::string_view text) override {
    out_.clear();
    for (char c : text) Put(c);
    return next_->Text(out_);
  }
  Status EndUnit() override {
    out_.clear();
    FlushHigh();
    if (!out_.empty()) RETURN_IF_ERROR(next_->Text(out_));
    out_.clear();
    return next_->EndUnit();
  }

 private:
  void AppendUtf8(uint32_t cp) {
    if (cp < 0x80) {
      out_.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out_.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out_.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out_.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out_.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out_.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out_.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out_.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out_.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out_.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  void FlushHigh() {
    if (high_ != 0) AppendUtf8(0xFFFD);
    high_ = 0;
  }
  void Put(char c) {
    switch (state_) {
      case kOut:
        out_.push_back(c);
        if (c == '"') state_ = kIn;
        return;
      case kIn:
        if (c == '\\') {
          state_ = kEsc;
          return;
        }
        FlushHigh();
        out_.push_back(c);
        if (c == '"') state_ = kOut;
        return;
      case kEsc:
        state_ = kIn;
        switch (c) {
          case 'n':
          case 'r':
            FlushHigh();
            out_.push_back('\n');
            return;
          case 't':
            FlushHigh();
            out_.push_back('\t');
            return;
          case 'u':
            state_ = kHex;
            hex_ = 0;
            hex_n_ = 0;
            return;
          default:
            FlushHigh();
            out_.push_back(c);
            return;
        }
      case kHex: {
        int v = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (v < 0) {  // malformed: keep the character and go on
          state_ = kIn;
          FlushHigh();
          out_.push_back(c);
          return;
        }
        hex_ = hex_ * 16 + static_cast<uint32_t>(v);
        if (++hex_n_ < 4) return;
        state_ = kIn;
        if (hex_ >= 0xD800 && hex_ < 0xDC00) {
          FlushHigh();
          high_ = hex_;
        } else if (hex_ >= 0xDC00 && hex_ < 0xE000) {
          if (high_ != 0) {
            AppendUtf8(0x10000 + ((high_ - 0xD800) << 10) + (hex_ - 0xDC00));
            high_ = 0;
          } else {
            AppendUtf8(0xFFFD);
          }
        } else {
          FlushHigh();
          AppendUtf8(hex_);
        }
        return;
      }
    }
  }
  enum State { kOut, kIn, kEsc, kHex };
  ContentSink* next_;
  std::string out_;
  State state_ = kOut;
  uint32_t hex_ = 0;
  int hex_n_ = 0;
  uint32_t high_ = 0;
};

// Counts bytes handed to the real sink and enforces the decoded budget.
class BudgetSink : public ContentSink {
 public:
  BudgetSink(ContentSink* next, uint64_t max) : next_(next), max_(max) {}
  Status BeginUnit(std::string_view name) override { return next_->BeginUnit(name); }
  Status Text(std::string_view text) override {
    if (text.empty()) return Status::Ok();
    total_ += text.size();
    if (total_ > max_) {
      return ResourceExhausted("decoded body is larger than the inspection budget of " +
                               std::to_string(max_) + " bytes");
    }
    return next_->Text(text);
  }
  Status EndUnit() override { return next_->EndUnit(); }
  uint64_t total() const { return total_; }

 private:
  ContentSink* next_;
  uint64_t max_;
  uint64_t total_ = 0;
};

// ---- structure: how the (decompressed) byte stream becomes units ----

class Framer {
 public:
  virtual ~Framer() = default;
  virtual Status Feed(std::string_view data) = 0;
  virtual Status Finish() = 0;
};

// The whole body is one unit; optionally through a transform.
class SingleUnitFramer : public Framer {
 public:
  SingleUnitFramer(std::string name, ContentSink* sink) : name_(std::move(name)), sink_(sink) {}
  Status Feed(std::string_view data) override {
    if (!begun_) {
      begun_ = true;
      RETURN_IF_ERROR(sink_->BeginUnit(name_));
    }
    return sink_->Text(data);
  }
  Status Finish() override {
    if (!begun_) {
      begun_ = true;
      RETURN_IF_ERROR(sink_->BeginUnit(name_));
    }
    return sink_->EndUnit();
  }

 private:
  std::string name_;
  ContentSink* sink_;
  bool begun_ = false;
};

// Streaming multipart/form-data parser (RFC 7578 / RFC 2046 framing).
class MultipartFramer : public Framer {
 public:
  MultipartFramer(std::string boundary, const DecodeBudgets& budgets, ContentSink* raw,
                  ContentSink* urlenc, ContentSink* json)
      : delim_("\r\n--" + boundary), budgets_(budgets), raw_(raw), urlenc_(urlenc), json_(json) {
    // The first delimiter may come without the leading CRLF.
    buf_ = "\r\n";
  }

  Status Feed(std::string_view data) override {
    buf_.append(data);
    return Process(false);
  }

  Status Finish() override {
    RETURN_IF_ERROR(Process(true));
    if (state_ == kBody) {
      return InvalidArgument("multipart body ends inside a part (missing closing boundary)");
    }
    if (state_ == kHeaders || state_ == kAfterDelim) {
      return InvalidArgument("multipart body ends inside part headers");
    }
    if (state_ == kPreamble) return InvalidArgument("multipart body has no boundary");
    return Status::Ok();
  }

 private:
  enum State { kPreamble, kAfterDelim, kHeaders, kBody, kEpilogue };

  Status Process(bool at_end) {
    while (true) {
      switch (state_) {
        case kPreamble: {
          size_t pos = buf_.find(delim_);
          if (pos == std::string::npos) {
            // Keep only a tail that could start a delimiter.
            if (buf_.size() > delim_.size()) buf_.erase(0, buf_.size() - delim_.size());
            return Status::Ok();
          }
          buf_.erase(0, pos + delim_.size());
          state_ = kAfterDelim;
          continue;
        }
        case kAfterDelim: {
          if (buf_.size() < 2) return Status::Ok();
          if (buf_.compare(0, 2, "--") == 0) {
            state_ = kEpilogue;
            buf_.clear();
            return Status::Ok();
          }
          // Skip transport padding up to CRLF.
          size_t nl = buf_.find('\n');
          if (nl == std::string::npos) {
            if (buf_.size() > 1024) return InvalidArgument("multipart boundary line too long");
            return Status::Ok();
          }
          buf_.erase(0, nl + 1);
          state_ = kHeaders;
          continue;
        }
        case kHeaders: {
          size_t end = 0;
          size_t skip = 2;
          if (buf_.size() < 2) return Status::Ok();
          if (buf_.compare(0, 2, "\r\n") != 0) {
            end = buf_.find("\r\n\r\n");
            skip = 4;
            if (end == std::string::npos) {
              if (buf_.size() > budgets_.max_part_head_bytes) {
                return ResourceExhausted("multipart part headers are larger than " +
                                         std::to_string(budgets_.max_part_head_bytes) + " bytes");
              }
              return Status::Ok();
            }
          }
          if (end > budgets_.max_part_head_bytes) {
            return ResourceExhausted("multipart part headers are too large");
          }
          if (++parts_ > budgets_.max_parts) {
            return ResourceExhausted("multipart body has more than " +
                                     std::to_string(budgets_.max_parts) + " parts");
          }
          std::string head = buf_.substr(0, end);
          buf_.erase(0, end + skip);
          RETURN_IF_ERROR(StartPart(head));
          state_ = kBody;
          continue;
        }
        case kBody: {
          size_t pos = buf_.find(delim_);
          if (pos == std::string::npos) {
            // Emit everything that cannot be the start of a delimiter.
            size_t keep = std::min(buf_.size(), delim_.size() - 1);
            size_t emit = buf_.size() - keep;
            if (at_end) return Status::Ok();
            if (emit > 0) {
              RETURN_IF_ERROR(part_sink_->Text(std::string_view(buf_).substr(0, emit)));
              buf_.erase(0, emit);
            }
            return Status::Ok();
          }
          if (pos > 0) RETURN_IF_ERROR(part_sink_->Text(std::string_view(buf_).substr(0, pos)));
          RETURN_IF_ERROR(part_sink_->EndUnit());
          buf_.erase(0, pos + delim_.size());
          state_ = kAfterDelim;
          continue;
        }
        case kEpilogue:
          buf_.clear();
          return Status::Ok();
      }
    }
  }

  Status StartPart(std::string_view head) {
    std::string name, filename, type;
    while (!head.empty()) {
      size_t nl = head.find('\n');
      std::string_view line = TrimWs(head.substr(0, nl));
      head = nl == std::string_view::npos ? std::string_view() : head.substr(nl + 1);
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string key = ToLower(TrimWs(line.substr(0, colon)));
      std::string_view value = TrimWs(line.substr(colon + 1));
      if (key == "content-disposition") {
        name = HeaderParam(value, "name");
        filename = HeaderParam(value, "filename");
      } else if (key == "content-type") {
        type = ToLower(value.substr(0, value.find(';')));
      }
    }
    std::string unit = "form:" + name.substr(0, 200);
    if (!filename.empty()) unit += " file=" + filename.substr(0, 200);
    part_sink_ = raw_;
    if (type == "application/json") part_sink_ = json_;
    if (type == "application/x-www-form-urlencoded") part_sink_ = urlenc_;
    return part_sink_->BeginUnit(unit);
  }

  const std::string delim_;
  const DecodeBudgets budgets_;
  ContentSink* raw_;
  ContentSink* urlenc_;
  ContentSink* json_;
  ContentSink* part_sink_ = nullptr;
  std::string buf_;
  State state_ = kPreamble;
  uint32_t parts_ = 0;
};

class BodyDecoderImpl : public BodyDecoder {
 public:
  BodyDecoderImpl(const DecodeBudgets& budgets, ContentSink* sink)
      : budgets_(budgets),
        budget_(sink, budgets.max_decoded_bytes),
        urlenc_(&budget_),
        json_(&budget_) {}
  ~BodyDecoderImpl() override {
    if (zinit_) inflateEnd(&z_);
    if (br_) BrotliDecoderDestroyInstance(br_);
  }

  Status Init(std::string_view content_type, std::string_view content_encoding) {
    std::string enc = ToLower(TrimWs(content_encoding));
    if (enc == "gzip" || enc == "x-gzip" || enc == "deflate") {
      std::memset(&z_, 0, sizeof(z_));
      // 15 + 32: accept gzip and zlib headers. Raw deflate is retried below.
      if (inflateInit2(&z_, 15 + 32) != Z_OK) return Internal("zlib inflateInit2 failed");
      zinit_ = true;
      deflate_ = enc == "deflate";
    } else if (enc == "br") {
      br_ = BrotliDecoderCreateInstance(nullptr, nullptr, nullptr);
      if (!br_) return Internal("brotli decoder could not be created");
    } else if (!enc.empty() && enc != "identity") {
      // Includes stacked encodings ("gzip, br"), compress and zstd: what
      // cannot be decoded cannot be inspected.
      return Unimplemented("Content-Encoding '" + enc.substr(0, 40) +
                           "' cannot be inspected (only gzip, deflate and br)");
    }
    std::string type = ToLower(TrimWs(content_type.substr(0, content_type.find(';'))));
    if (type == "multipart/form-data" || type == "multipart/mixed" || type == "multipart/related") {
      std::string boundary = HeaderParam(content_type, "boundary");
      if (boundary.empty() || boundary.size() > 200) {
        return InvalidArgument("multipart Content-Type without a valid boundary");
      }
      framer_ = std::make_unique<MultipartFramer>(boundary, budgets_, &budget_, &urlenc_, &json_);
    } else if (type == "application/x-www-form-urlencoded") {
      framer_ = std::make_unique<SingleUnitFramer>("form", &urlenc_);
    } else if (type == "application/json" ||
               (type.size() > 5 && type.compare(type.size() - 5, 5, "+json") == 0)) {
      framer_ = std::make_unique<SingleUnitFramer>("json", &json_);
    } else if (type == "text/csv") {
      framer_ = std::make_unique<SingleUnitFramer>("body.csv", &budget_);
    } else if (type == "text/tab-separated-values") {
      framer_ = std::make_unique<SingleUnitFramer>("body.tsv", &budget_);
    } else {
      framer_ = std::make_unique<SingleUnitFramer>("body", &budget_);
    }
    return Status::Ok();
  }

  Status Feed(std::string_view data) override {
    if (failed_) return FailedPrecondition("body decoder already failed");
    Status st = zinit_ ? Inflate(data, false) : br_ ? Unbrotli(data) : framer_->Feed(data);
    if (!st.ok()) failed_ = true;
    return st;
  }

  Status Finish() override {
    if (failed_) return FailedPrecondition("body decoder already failed");
    if (zinit_) {
      RETURN_IF_ERROR(Inflate({}, true));
      if (!zdone_ && encoded_ > 0) return InvalidArgument("gzip body is truncated");
    }
    if (br_ && !brdone_ && encoded_ > 0) return InvalidArgument("brotli body is truncated");
    return framer_->Finish();
  }

  uint64_t decoded_bytes() const override { return budget_.total(); }

 private:
  Status Inflate(std::string_view data, bool at_end) {
    encoded_ += data.size();
    if (zdone_) return Status::Ok();  // trailing garbage after the stream is ignored
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z_.avail_in = static_cast<uInt>(data.size());
    char out[64 * 1024];
    while (true) {
      z_.next_out = reinterpret_cast<Bytef*>(out);
      z_.avail_out = sizeof(out);
      int rc = inflate(&z_, Z_NO_FLUSH);
      size_t produced = sizeof(out) - z_.avail_out;
      if (rc == Z_DATA_ERROR && deflate_ && !raw_retry_ && z_.total_out == 0) {
        // "deflate" sent as raw deflate (a common mistake): retry raw.
        raw_retry_ = true;
        inflateEnd(&z_);
        std::memset(&z_, 0, sizeof(z_));
        if (inflateInit2(&z_, -15) != Z_OK) return Internal("zlib inflateInit2 failed");
        encoded_ = 0;
        return Inflate(data, at_end);
      }
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
        return InvalidArgument("gzip body is corrupt: " + std::string(z_.msg ? z_.msg : "?"));
      }
      decoded_ += produced;
      RETURN_IF_ERROR(CheckRatio());
      if (produced > 0) RETURN_IF_ERROR(framer_->Feed(std::string_view(out, produced)));
      if (rc == Z_STREAM_END) {
        zdone_ = true;
        return Status::Ok();
      }
      if (rc == Z_BUF_ERROR) break;
      if (z_.avail_in == 0 && z_.avail_out != 0) break;
    }
    return Status::Ok();
  }

  Status CheckRatio() const {
    if (decoded_ > 1024 * 1024 && encoded_ > 0 &&
        static_cast<double>(decoded_) / static_cast<double>(encoded_) > budgets_.max_gzip_ratio) {
      return ResourceExhausted("compressed body expands more than " +
                               std::to_string(static_cast<int>(budgets_.max_gzip_ratio)) +
                               "x (possible decompression bomb)");
    }
    return Status::Ok();
  }

  Status Unbrotli(std::string_view data) {
    encoded_ += data.size();
    if (brdone_) {
      if (data.empty()) return Status::Ok();
      return InvalidArgument("data after the end of the brotli stream");
    }
    size_t avail_in = data.size();
    const uint8_t* next_in = reinterpret_cast<const uint8_t*>(data.data());
    uint8_t out[64 * 1024];
    while (true) {
      size_t avail_out = sizeof(out);
      uint8_t* next_out = out;
      BrotliDecoderResult rc =
          BrotliDecoderDecompressStream(br_, &avail_in, &next_in, &avail_out, &next_out, nullptr);
      size_t produced = sizeof(out) - avail_out;
      decoded_ += produced;
      RETURN_IF_ERROR(CheckRatio());
      if (produced > 0) {
        RETURN_IF_ERROR(framer_->Feed(std::string_view(reinterpret_cast<char*>(out), produced)));
      }
      switch (rc) {
        case BROTLI_DECODER_RESULT_SUCCESS:
          brdone_ = true;
          if (avail_in > 0) return InvalidArgument("data after the end of the brotli stream");
          return Status::Ok();
        case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT:
          return Status::Ok();
        case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT:
          continue;
        default:
          return InvalidArgument(std::string("brotli body is corrupt: ") +
                                 BrotliDecoderErrorString(BrotliDecoderGetErrorCode(br_)));
      }
    }
  }

  const DecodeBudgets budgets_;
  BudgetSink budget_;
  UrlencodedSink urlenc_;
  JsonSink json_;
  std::unique_ptr<Framer> framer_;
  z_stream z_{};
  BrotliDecoderState* br_ = nullptr;
  bool brdone_ = false;
  bool zinit_ = false, zdone_ = false, deflate_ = false, raw_retry_ = false, failed_ = false;
  uint64_t encoded_ = 0, decoded_ = 0;
};

}  // namespace

Result<std::unique_ptr<BodyDecoder>> BodyDecoder::Create(std::string_view content_type,
                                                         std::string_view content_encoding,
                                                         const DecodeBudgets& budgets,
                                                         ContentSink* sink) {
  auto d = std::make_unique<BodyDecoderImpl>(budgets, sink);
  RETURN_IF_ERROR(d->Init(content_type, content_encoding));
  return std::unique_ptr<BodyDecoder>(std::move(d));
}

}  // namespace mamori::egress
