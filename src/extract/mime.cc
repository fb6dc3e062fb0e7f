// Internet mail (RFC 5322 / MIME): every part, transfer encodings, charsets,
// RFC 2047 encoded-words, RFC 2231 parameters, attachments recursed into.
#include <algorithm>
#include <array>
#include <cctype>
#include <map>

#include "extract/internal.h"

namespace mamori::extract::internal {

std::string Base64Decode(std::string_view in) {
  static const auto kTable = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(a[i])] = static_cast<int8_t>(i);
    t['-'] = 62;  // tolerate base64url
    t['_'] = 63;
    return t;
  }();
  // Attachments are mostly base64, so this runs over most bytes of a mail:
  // four valid characters at a time into a presized buffer, and the bit
  // accumulator only where lines break or junk interrupts a quantum.
  std::string out(in.size() / 4 * 3 + 3, '\0');
  char* o = out.data();
  const unsigned char* p = reinterpret_cast<const unsigned char*>(in.data());
  const unsigned char* end = p + in.size();
  uint32_t acc = 0;
  int bits = 0;
  while (p < end) {
    if (bits == 0 && end - p >= 4) {
      int a = kTable[p[0]], b = kTable[p[1]], c = kTable[p[2]], d = kTable[p[3]];
      if ((a | b | c | d) >= 0) {
        uint32_t v = (static_cast<uint32_t>(a) << 18) | (static_cast<uint32_t>(b) << 12) |
                     (static_cast<uint32_t>(c) << 6) | static_cast<uint32_t>(d);
        *o++ = static_cast<char>(v >> 16);
        *o++ = static_cast<char>(v >> 8);
        *o++ = static_cast<char>(v);
        p += 4;
        continue;
      }
    }
    unsigned char ch = *p++;
    if (ch == '=') break;
    int v = kTable[ch];
    if (v < 0) continue;  // whitespace and junk are skipped
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *o++ = static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  out.resize(static_cast<size_t>(o - out.data()));
  return out;
}

namespace {

constexpr uint32_t kMaxMultipartNesting = 50;
constexpr size_t kMaxHeaderBytes = 1 << 20;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool IsHeaderName(std::string_view name) {
  if (name.empty() || name.size() > 76) return false;
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 32 || u >= 127 || c == ':') return false;
  }
  return true;
}

struct Header {
  std::string name;   // lower case
  std::string value;  // unfolded, raw bytes
};

struct Entity {
  std::vector<Header> headers;
  std::string_view body;

  std::string Get(std::string_view name) const {
    for (const auto& h : headers) {
      if (h.name == name) return h.value;
    }
    return {};
  }
};

// Splits header block and body. Lines are unfolded; bare LF is accepted.
Entity ParseEntity(std::string_view data) {
  Entity e;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    size_t line_end = nl == std::string_view::npos ? data.size() : nl;
    std::string_view line = data.substr(pos, line_end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t next = nl == std::string_view::npos ? data.size() : nl + 1;
    if (line.empty()) {
      e.body = data.substr(next);
      return e;
    }
    if (pos > kMaxHeaderBytes) break;
    if ((line[0] == ' ' || line[0] == '\t') && !e.headers.empty()) {
      if (e.headers.back().value.size() < kMaxHeaderBytes) {
        e.headers.back().value.push_back(' ');
        e.headers.back().value.append(Trim(line));
      }
    } else {
      size_t colon = line.find(':');
      if (colon == std::string_view::npos || !IsHeaderName(line.substr(0, colon))) {
        // Not a header: the header block ended without a blank line.
        e.body = data.substr(pos);
        return e;
      }
      e.headers.push_back(
          {Lower(line.substr(0, colon)), std::string(Trim(line.substr(colon + 1)))});
    }
    pos = next;
  }
  e.body = pos < data.size() ? data.substr(pos) : std::string_view();
  return e;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string QuotedPrintableDecode(std::string_view in, bool header) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (header && c == '_') {
      out.push_back(' ');
    } else if (c == '=') {
      if (i + 1 < in.size() && (in[i + 1] == '\n' || in[i + 1] == '\r')) {
        // soft line break
        ++i;
        if (in[i] == '\r' && i + 1 < in.size() && in[i + 1] == '\n') ++i;
      } else if (i + 2 < in.size() && HexValue(in[i + 1]) >= 0 && HexValue(in[i + 2]) >= 0) {
        out.push_back(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
        i += 2;
      } else {
        out.push_back('=');
      }
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Bytes of a header or parameter in a given charset, as UTF-8.
std::string CharsetToUtf8(std::string_view bytes, std::string_view charset) {
  size_t star = charset.find('*');  // RFC 2231 language suffix
  if (star != std::string_view::npos) charset = charset.substr(0, star);
  if (!charset.empty()) {
    auto r = ConvertCharset(bytes, charset);
    if (r.ok()) return std::move(r).value();
  }
  std::string storage;
  Decoded d = DecodeText(bytes, &storage);
  return d.binary ? CleanName(bytes) : std::string(d.text);
}

// RFC 2047: "=?charset?B?...?=" words; whitespace between words is dropped,
// and adjacent words in the same charset are joined before decoding (an
// ISO-2022-JP sequence may be split across words).
std::string DecodeEncodedWords(std::string_view v) {
  std::string out;
  std::string pending_bytes;
  std::string pending_charset;
  auto flush = [&] {
    if (!pending_bytes.empty()) out += CharsetToUtf8(pending_bytes, pending_charset);
    pending_bytes.clear();
  };
  size_t i = 0;
  std::string gap;  // whitespace after an encoded word, dropped if another follows
  bool last_was_word = false;
  while (i < v.size()) {
    if (v.substr(i, 2) == "=?") {
      // An encoded word is at most 75 characters (RFC 2047); a generous
      // window keeps malformed headers linear.
      std::string_view w = v.substr(i, 1024);
      size_t q1 = w.find('?', 2);
      size_t q2 = q1 == std::string_view::npos ? q1 : w.find('?', q1 + 1);
      size_t end = q2 == std::string_view::npos ? q2 : w.find("?=", q2 + 1);
      if (end != std::string_view::npos && q2 == q1 + 2) {
        q1 += i;
        q2 += i;
        end += i;
        std::string charset = Lower(v.substr(i + 2, q1 - i - 2));
        char enc = static_cast<char>(std::toupper(static_cast<unsigned char>(v[q1 + 1])));
        std::string_view text = v.substr(q2 + 1, end - q2 - 1);
        if (enc == 'B' || enc == 'Q') {
          std::string bytes = enc == 'B' ? Base64Decode(text) : QuotedPrintableDecode(text, true);
          if (charset != pending_charset) flush();
          pending_charset = charset;
          // ISO-2022-JP words each end in ESC ( B; ICU rejects an escape that
          // directly follows another, so the redundant reset is dropped.
          if (pending_bytes.size() >= 3 &&
              pending_bytes.compare(pending_bytes.size() - 3, 3, "\x1b(B") == 0 && !bytes.empty() &&
              bytes[0] == '\x1b')
            pending_bytes.resize(pending_bytes.size() - 3);
          pending_bytes += bytes;
          gap.clear();
          last_was_word = true;
          i = end + 2;
          continue;
        }
      }
    }
    char c = v[i];
    if (last_was_word && (c == ' ' || c == '\t')) {
      gap.push_back(c);
      ++i;
      continue;
    }
    flush();
    out += gap;
    gap.clear();
    last_was_word = false;
    // Raw text: 8-bit bytes (Shift_JIS headers exist) are decoded as text.
    size_t next = v.find("=?", i + 1);
    std::string_view raw = v.substr(i, next == std::string_view::npos ? next : next - i);
    out += IsValidUtf8(raw) ? std::string(raw) : CharsetToUtf8(raw, "");
    i += raw.size();
  }
  flush();
  out += gap;
  for (char& c : out) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return out;
}

// A Content-Type or Content-Disposition value: the lower-case token and its
// parameters, with RFC 2231 continuations and charsets and RFC 2047 words.
struct Params {
  std::string value;
  std::map<std::string, std::string> params;
};

Params ParseParams(std::string_view v) {
  Params p;
  size_t semi = v.find(';');
  p.value = Lower(Trim(v.substr(0, semi)));
  // name -> (index -> (encoded, text)); index -1 for a plain parameter.
  std::map<std::string, std::map<int, std::pair<bool, std::string>>> parts;
  size_t i = semi == std::string_view::npos ? v.size() : semi + 1;
  while (i < v.size()) {
    while (i < v.size() && (std::isspace(static_cast<unsigned char>(v[i])) || v[i] == ';')) ++i;
    size_t eq = v.find('=', i);
    if (eq == std::string_view::npos) break;
    std::string name = Lower(Trim(v.substr(i, eq - i)));
    i = eq + 1;
    while (i < v.size() && std::isspace(static_cast<unsigned char>(v[i]))) ++i;
    std::string val;
    if (i < v.size() && v[i] == '"') {
      ++i;
      while (i < v.size() && v[i] != '"') {
        if (v[i] == '\\' && i + 1 < v.size()) ++i;
        val.push_back(v[i]);
        ++i;
      }
      ++i;
    } else {
      size_t e = v.find(';', i);
      val = std::string(Trim(v.substr(i, e == std::string_view::npos ? e : e - i)));
      i = e == std::string_view::npos ? v.size() : e;
    }
    bool encoded = !name.empty() && name.back() == '*';
    if (encoded) name.pop_back();
    int index = -1;
    size_t star = name.find('*');
    if (star != std::string::npos) {
      index = std::atoi(name.c_str() + star + 1);
      if (index < 0 || index > 999) index = 999;
      name.resize(star);
    }
    if (parts[name].size() < 1000) parts[name][index] = {encoded, val};
  }
  for (auto& [name, segs] : parts) {
    if (segs.count(-1) && segs.size() == 1 && !segs[-1].first) {
      p.params[name] = DecodeEncodedWords(segs[-1].second);  // RFC 2047 in a quoted name
      continue;
    }
    std::string charset;
    std::string bytes;
    bool first = true;
    for (auto& [idx, seg] : segs) {
      std::string text = seg.second;
      if (seg.first) {
        if (first) {  // charset'language'value
          size_t q1 = text.find('\'');
          size_t q2 = q1 == std::string::npos ? q1 : text.find('\'', q1 + 1);
          if (q2 != std::string::npos) {
            charset = text.substr(0, q1);
            text = text.substr(q2 + 1);
          }
        }
        std::string dec;
        for (size_t k = 0; k < text.size(); ++k) {
          if (text[k] == '%' && k + 2 < text.size() && HexValue(text[k + 1]) >= 0 &&
              HexValue(text[k + 2]) >= 0) {
            dec.push_back(static_cast<char>(HexValue(text[k + 1]) * 16 + HexValue(text[k + 2])));
            k += 2;
          } else {
            dec.push_back(text[k]);
          }
        }
        text = dec;
      }
      bytes += text;
      first = false;
    }
    p.params[name] = charset.empty() ? DecodeEncodedWords(bytes) : CharsetToUtf8(bytes, charset);
  }
  return p;
}

std::string DecodeBody(std::string_view body, std::string_view cte) {
  std::string enc = Lower(Trim(cte));
  if (enc == "base64") return Base64Decode(body);
  if (enc == "quoted-printable") return QuotedPrintableDecode(body, false);
  return std::string(body);
}

// The parts of a multipart body, split on "--boundary" lines.
std::vector<std::string_view> SplitMultipart(std::string_view body, const std::string& boundary) {
  std::vector<std::string_view> parts;
  std::string delim = "--" + boundary;
  size_t pos = 0;
  size_t start = std::string_view::npos;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    size_t end = nl == std::string_view::npos ? body.size() : nl;
    std::string_view line = body.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t next = nl == std::string_view::npos ? body.size() : nl + 1;
    if (line.size() >= delim.size() && line.substr(0, delim.size()) == delim) {
      std::string_view rest = Trim(line.substr(delim.size()));
      bool close = rest.substr(0, 2) == "--";
      if (rest.empty() || close) {
        if (start != std::string_view::npos) {
          // The line break before the delimiter belongs to the delimiter.
          size_t part_end = pos;
          if (part_end > start && body[part_end - 1] == '\n') --part_end;
          if (part_end > start && body[part_end - 1] == '\r') --part_end;
          parts.push_back(body.substr(start, part_end - start));
        }
        if (close) return parts;
        start = next;
      }
    }
    pos = next;
  }
  if (start != std::string_view::npos && start < body.size()) parts.push_back(body.substr(start));
  return parts;
}

std::string GuessExtension(const std::string& type) {
  if (type == "text/csv") return ".csv";
  if (type == "text/html") return ".html";
  if (type == "text/plain") return ".txt";
  if (type == "application/pdf") return ".pdf";
  if (type == "application/zip") return ".zip";
  if (type == "application/json") return ".json";
  if (type == "message/rfc822") return ".eml";
  return "";
}

class MailWalker {
 public:
  MailWalker(Walk& walk, const std::string& path, uint32_t depth)
      : walk_(walk), path_(path), depth_(depth) {}

  Status Headers(const Entity& e) {
    static const char* kShown[] = {"from",         "sender",
                                   "reply-to",     "to",
                                   "cc",           "bcc",
                                   "subject",      "date",
                                   "comments",     "keywords",
                                   "organization", "return-path",
                                   "delivered-to", "disposition-notification-to"};
    std::string text;
    for (const auto& h : e.headers) {
      for (const char* s : kShown) {
        if (h.name == s) {
          std::string name = h.name;
          name[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
          text += name + ": " + DecodeEncodedWords(h.value) + "\n";
          break;
        }
      }
    }
    Unit u;
    u.path = path_ + "!headers";
    u.format = "eml-headers";
    u.encoding = "UTF-8";
    u.text = text;
    return walk_.Emit(u);
  }

  Status Part(const Entity& e, const std::string& number, uint32_t nesting) {
    std::string part_path = path_ + "!" + (number.empty() ? "body" : "part" + number);
    RETURN_IF_ERROR(walk_.CheckTime(part_path));
    RETURN_IF_ERROR(walk_.AddMember(part_path));
    Params ct = ParseParams(e.Get("content-type"));
    if (ct.value.empty()) ct.value = "text/plain";
    Params cd = ParseParams(e.Get("content-disposition"));
    std::string filename = cd.params.count("filename") ? cd.params["filename"] : ct.params["name"];

    if (ct.value.rfind("multipart/", 0) == 0 && !ct.params["boundary"].empty()) {
      if (nesting >= kMaxMultipartNesting) {
        return walk_.EmitError(
            part_path, "eml",
            ResourceExhausted("multiparts nested deeper than " +
                              std::to_string(kMaxMultipartNesting) + " levels; not inspected"));
      }
      auto parts = SplitMultipart(e.body, ct.params["boundary"]);
      if (parts.empty()) {
        return walk_.EmitError(part_path, "eml",
                               DataLoss("multipart without its boundary lines; damaged mail"));
      }
      for (size_t i = 0; i < parts.size(); ++i) {
        std::string n = (number.empty() ? "" : number + ".") + std::to_string(i + 1);
        RETURN_IF_ERROR(Part(ParseEntity(parts[i]), n, nesting + 1));
      }
      return Status::Ok();
    }

    std::string bytes = DecodeBody(e.body, e.Get("content-transfer-encoding"));
    RETURN_IF_ERROR(walk_.AddExpanded(part_path, bytes.size()));
    bool is_text = ct.value == "text/plain" || ct.value == "text/html";
    bool attachment = cd.value == "attachment" || !filename.empty() || !is_text;
    if (attachment) {
      std::string name = CleanName(filename);
      size_t slash = name.find_last_of("/\\");
      if (slash != std::string::npos) name = name.substr(slash + 1);
      if (name.empty())
        name = (number.empty() ? "body" : "part" + number) + GuessExtension(ct.value);
      std::string attach_path = path_ + "!" + name;
      if (depth_ + 1 > walk_.budgets().max_depth) {
        return walk_.EmitError(attach_path, "eml",
                               ResourceExhausted("attachments nested deeper than the max_depth "
                                                 "budget; not inspected"));
      }
      if (ct.value == "message/rfc822") return ExtractMime(walk_, attach_path, bytes, depth_ + 1);
      return ExtractBytes(walk_, attach_path, name, bytes, depth_ + 1);
    }
    std::string storage;
    Decoded d = DecodeText(bytes, &storage, ct.params["charset"]);
    if (d.binary) {
      return walk_.EmitError(part_path, "eml",
                             DataLoss("text part holds binary data; not inspected"));
    }
    return EmitText(walk_, part_path, d.text, d.encoding,
                    ct.value == "text/html" ? TextFormat::kHtml : TextFormat::kText);
  }

 private:
  Walk& walk_;
  const std::string& path_;
  uint32_t depth_;
};

}  // namespace

bool LooksLikeMime(std::string_view data) {
  static const char* kKnown[] = {"from",         "to",
                                 "subject",      "date",
                                 "received",     "message-id",
                                 "mime-version", "content-type",
                                 "return-path",  "cc",
                                 "reply-to",     "x-mailer",
                                 "delivered-to", "content-transfer-encoding"};
  size_t pos = 0;
  int known = 0;
  int lines = 0;
  data = data.substr(0, 64 * 1024);
  while (pos < data.size() && lines < 200) {
    size_t nl = data.find('\n', pos);
    if (nl == std::string_view::npos) return false;
    std::string_view line = data.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = nl + 1;
    ++lines;
    if (line.empty()) return known >= 2;
    if (line[0] == ' ' || line[0] == '\t') {
      if (lines == 1) return false;
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || !IsHeaderName(line.substr(0, colon))) return false;
    std::string name = Lower(line.substr(0, colon));
    for (const char* k : kKnown) {
      if (name == k) {
        ++known;
        break;
      }
    }
  }
  return false;
}

Status ExtractMime(Walk& walk, const std::string& path, std::string_view data, uint32_t depth) {
  Entity e = ParseEntity(data);
  MailWalker w(walk, path, depth);
  RETURN_IF_ERROR(w.Headers(e));
  return w.Part(e, "", 0);
}

}  // namespace mamori::extract::internal
