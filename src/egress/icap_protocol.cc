#include "egress/icap_protocol.h"

#include <algorithm>
#include <charconv>

namespace mamori::egress {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool IsTokenChar(char c) {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  if (c >= '0' && c <= '9') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Splits `block` into lines at CRLF (a bare LF is accepted too). Stops at the
// first empty line. Returns the lines before it, or an error if there is none.
Result<std::vector<std::string_view>> SplitLines(std::string_view block, size_t max_lines,
                                                 std::string_view what) {
  std::vector<std::string_view> lines;
  while (true) {
    size_t nl = block.find('\n');
    if (nl == std::string_view::npos) {
      return InvalidArgument(std::string(what) + " does not end with an empty line");
    }
    std::string_view line = block.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    block.remove_prefix(nl + 1);
    if (line.empty()) break;
    if (lines.size() >= max_lines) {
      return ResourceExhausted(std::string(what) + " has more than " + std::to_string(max_lines) +
                               " lines");
    }
    lines.push_back(line);
  }
  return lines;
}

// Parses header lines (after the start line) into `out`. Supports obsolete
// line folding by joining continuation lines to the previous value.
Status ParseHeaderLines(const std::vector<std::string_view>& lines, size_t first, HeaderList* out,
                        std::string_view what) {
  for (size_t i = first; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.front() == ' ' || line.front() == '\t') {
      if (out->empty()) return InvalidArgument(std::string(what) + ": continuation line first");
      out->back().second += " ";
      out->back().second += Trim(line);
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return InvalidArgument(std::string(what) + ": header line without a name and ':'");
    }
    std::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), IsTokenChar)) {
      return InvalidArgument(std::string(what) + ": invalid character in header name");
    }
    out->emplace_back(std::string(name), std::string(Trim(line.substr(colon + 1))));
  }
  return Status::Ok();
}

bool ParseUint(std::string_view s, uint64_t* out, int base = 10) {
  s = Trim(s);
  if (s.empty() || s.size() > 16) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && p == s.data() + s.size();
}

bool ContainsToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = Trim(list.substr(0, comma));
    if (HeaderNameEquals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

bool HeaderNameEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::optional<std::string_view> FindHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (HeaderNameEquals(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

size_t RemoveHeader(HeaderList& headers, std::string_view name) {
  size_t before = headers.size();
  std::erase_if(headers, [&](const auto& kv) { return HeaderNameEquals(kv.first, name); });
  return before - headers.size();
}

Result<std::vector<EncapsulatedPart>> ParseEncapsulated(std::string_view value) {
  std::vector<EncapsulatedPart> parts;
  std::string_view rest = value;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = Trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgument("Encapsulated entry '" + std::string(item.substr(0, 32)) +
                             "' has no '='");
    }
    std::string name(Trim(item.substr(0, eq)));
    std::transform(name.begin(), name.end(), name.begin(), Lower);
    static constexpr std::string_view kKnown[] = {"req-hdr",  "res-hdr",   "req-body",
                                                  "res-body", "null-body", "opt-body"};
    if (std::find(std::begin(kKnown), std::end(kKnown), name) == std::end(kKnown)) {
      return InvalidArgument("Encapsulated entry '" + name.substr(0, 32) + "' is unknown");
    }
    uint64_t offset = 0;
    if (!ParseUint(item.substr(eq + 1), &offset)) {
      return InvalidArgument("Encapsulated offset for " + name + " is not a number");
    }
    if (!parts.empty() && offset < parts.back().offset) {
      return InvalidArgument("Encapsulated offsets must not decrease");
    }
    if (!parts.empty()) {
      const std::string& prev = parts.back().name;
      if (prev.size() > 4 && prev.substr(prev.size() - 4) == "body") {
        return InvalidArgument("Encapsulated: a body entry must be last");
      }
    }
    parts.push_back({std::move(name), offset});
    if (parts.size() > 4) return InvalidArgument("Encapsulated has too many entries");
  }
  if (parts.empty()) return InvalidArgument("Encapsulated header is empty");
  if (parts.front().offset != 0) return InvalidArgument("Encapsulated must start at offset 0");
  return parts;
}

Result<IcapRequest> ParseIcapHead(std::string_view head, const ProtocolLimits& limits) {
  if (head.size() > limits.max_icap_head_bytes) {
    return ResourceExhausted("ICAP head is larger than " +
                             std::to_string(limits.max_icap_head_bytes) + " bytes");
  }
  ASSIGN_OR_RETURN(auto lines, SplitLines(head, limits.max_header_count + 1, "ICAP head"));
  if (lines.empty()) return InvalidArgument("ICAP head is empty");
  // Request line: METHOD SP URI SP ICAP/1.0
  std::string_view rl = lines[0];
  size_t sp1 = rl.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : rl.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    return InvalidArgument("ICAP request line must be 'METHOD icap://host/service ICAP/1.0'");
  }
  std::string_view method = rl.substr(0, sp1);
  std::string_view uri = rl.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = rl.substr(sp2 + 1);
  if (version != "ICAP/1.0") return Unimplemented("only ICAP/1.0 is supported");
  IcapRequest req;
  if (method == "OPTIONS") {
    req.method = IcapMethod::kOptions;
  } else if (method == "REQMOD") {
    req.method = IcapMethod::kReqmod;
  } else if (method == "RESPMOD") {
    req.method = IcapMethod::kRespmod;
  } else {
    return Unimplemented("ICAP method is not OPTIONS, REQMOD or RESPMOD");
  }
  req.uri = std::string(uri);
  // Service: path after the authority.
  std::string_view u = uri;
  size_t scheme = u.find("://");
  if (scheme != std::string_view::npos) {
    u.remove_prefix(scheme + 3);
    size_t slash = u.find('/');
    u = slash == std::string_view::npos ? std::string_view() : u.substr(slash);
  }
  size_t q = u.find('?');
  if (q != std::string_view::npos) u = u.substr(0, q);
  while (!u.empty() && u.front() == '/') u.remove_prefix(1);
  req.service = std::string(u);
  RETURN_IF_ERROR(ParseHeaderLines(lines, 1, &req.headers, "ICAP head"));

  if (auto v = FindHeader(req.headers, "Preview")) {
    uint64_t n = 0;
    if (!ParseUint(*v, &n)) return InvalidArgument("Preview header is not a number");
    req.preview = n;
  }
  for (const auto& [name, value] : req.headers) {
    if (!HeaderNameEquals(name, "Allow")) continue;
    req.allow_204 = req.allow_204 || ContainsToken(value, "204");
    req.allow_206 = req.allow_206 || ContainsToken(value, "206");
  }
  if (auto v = FindHeader(req.headers, "Connection")) {
    if (ContainsToken(*v, "close")) req.keep_alive = false;
  }
  auto enc = FindHeader(req.headers, "Encapsulated");
  if (req.method == IcapMethod::kOptions) {
    if (enc) {
      ASSIGN_OR_RETURN(req.encapsulated, ParseEncapsulated(*enc));
    }
    for (const auto& p : req.encapsulated) {
      if (p.name == "opt-body") req.has_body = true;
    }
    return req;
  }
  if (!enc) return InvalidArgument("REQMOD/RESPMOD without an Encapsulated header");
  ASSIGN_OR_RETURN(req.encapsulated, ParseEncapsulated(*enc));
  const auto& parts = req.encapsulated;
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto& p = parts[i];
    bool is_body = p.name == "req-body" || p.name == "res-body" || p.name == "opt-body";
    if (p.name == "req-hdr" || p.name == "res-hdr") {
      if (i + 1 >= parts.size()) {
        return InvalidArgument("Encapsulated: " + p.name + " must be followed by a body entry");
      }
      uint64_t len = parts[i + 1].offset - p.offset;
      if (len > limits.max_http_head_bytes) {
        return ResourceExhausted("encapsulated " + p.name + " is larger than " +
                                 std::to_string(limits.max_http_head_bytes) + " bytes");
      }
      if (p.name == "req-hdr") {
        if (req.has_req_hdr) return InvalidArgument("Encapsulated: req-hdr twice");
        req.has_req_hdr = true;
        req.req_hdr_len = len;
      } else {
        if (req.has_res_hdr) return InvalidArgument("Encapsulated: res-hdr twice");
        req.has_res_hdr = true;
        req.res_hdr_len = len;
      }
    } else if (is_body) {
      if (p.name == "opt-body")
        return InvalidArgument("Encapsulated: opt-body in " + std::string(method));
      req.has_body = true;
    }
  }
  const std::string& last = parts.back().name;
  if (last != "req-body" && last != "res-body" && last != "null-body") {
    return InvalidArgument("Encapsulated must end with req-body, res-body or null-body");
  }
  if (req.method == IcapMethod::kReqmod && !req.has_req_hdr && req.has_body) {
    return InvalidArgument("REQMOD with a body needs req-hdr");
  }
  if (req.method == IcapMethod::kRespmod && req.has_body && !req.has_res_hdr) {
    return InvalidArgument("RESPMOD with a body needs res-hdr");
  }
  if (req.method == IcapMethod::kReqmod && last == "res-body") {
    return InvalidArgument("REQMOD cannot carry res-body");
  }
  return req;
}

Result<HttpHead> ParseHttpHead(std::string_view block, bool is_request,
                               const ProtocolLimits& limits) {
  if (block.size() > limits.max_http_head_bytes) {
    return ResourceExhausted("HTTP head is larger than " +
                             std::to_string(limits.max_http_head_bytes) + " bytes");
  }
  ASSIGN_OR_RETURN(auto lines, SplitLines(block, limits.max_header_count + 1, "HTTP head"));
  if (lines.empty()) return InvalidArgument("HTTP head is empty");
  HttpHead h;
  h.is_request = is_request;
  std::string_view sl = lines[0];
  size_t sp1 = sl.find(' ');
  if (sp1 == std::string_view::npos) return InvalidArgument("HTTP start line has no space");
  size_t sp2 = sl.find(' ', sp1 + 1);
  if (is_request) {
    if (sp2 == std::string_view::npos) {
      return InvalidArgument("HTTP request line must be 'METHOD target HTTP/x.y'");
    }
    h.method = std::string(sl.substr(0, sp1));
    h.target = std::string(sl.substr(sp1 + 1, sp2 - sp1 - 1));
    h.version = std::string(sl.substr(sp2 + 1));
    if (h.method.empty() || !std::all_of(h.method.begin(), h.method.end(), IsTokenChar)) {
      return InvalidArgument("HTTP method is not a token");
    }
  } else {
    h.version = std::string(sl.substr(0, sp1));
    std::string_view code =
        sp2 == std::string_view::npos ? sl.substr(sp1 + 1) : sl.substr(sp1 + 1, sp2 - sp1 - 1);
    uint64_t status = 0;
    if (!ParseUint(code, &status) || status < 100 || status > 999) {
      return InvalidArgument("HTTP status code is not a 3-digit number");
    }
    h.status = static_cast<int>(status);
    if (sp2 != std::string_view::npos) h.reason = std::string(sl.substr(sp2 + 1));
  }
  if (h.version.rfind("HTTP/", 0) != 0) return InvalidArgument("HTTP version must be HTTP/x.y");
  RETURN_IF_ERROR(ParseHeaderLines(lines, 1, &h.headers, "HTTP head"));
  return h;
}

std::string HttpHead::Serialize() const {
  std::string out;
  if (is_request) {
    out = method + " " + target + " " + version + "\r\n";
  } else {
    out = version + " " + std::to_string(status) + " " + reason + "\r\n";
  }
  for (const auto& [k, v] : headers) {
    out += k;
    out += ": ";
    out += v;
    out += "\r\n";
  }
  out += "\r\n";
  return out;
}

std::string RequestHost(const HttpHead& request) {
  std::string_view authority;
  std::string_view t = request.target;
  if (request.method == "CONNECT") {
    authority = t;
  } else if (size_t s = t.find("://"); s != std::string_view::npos && t.front() != '/') {
    authority = t.substr(s + 3);
    size_t end = authority.find_first_of("/?#");
    if (end != std::string_view::npos) authority = authority.substr(0, end);
  } else if (auto host = FindHeader(request.headers, "Host")) {
    authority = *host;
  }
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) authority.remove_prefix(at + 1);
  std::string_view host = authority;
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    host = close == std::string_view::npos ? host.substr(1) : host.substr(1, close - 1);
  } else {
    size_t colon = host.rfind(':');
    if (colon != std::string_view::npos) host = host.substr(0, colon);
  }
  std::string out(Trim(host));
  std::transform(out.begin(), out.end(), out.begin(), Lower);
  while (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

void ChunkedDecoder::Reset() {
  state_ = State::kSize;
  line_.clear();
  remaining_ = 0;
  last_ieof_ = false;
}

Result<ChunkedDecoder::Event> ChunkedDecoder::Next(std::string_view* input) {
  Event ev;
  while (!input->empty()) {
    switch (state_) {
      case State::kSize:
      case State::kTrailer: {
        size_t nl = input->find('\n');
        size_t take = nl == std::string_view::npos ? input->size() : nl + 1;
        if (line_.size() + take > limits_.max_chunk_line_bytes) {
          return ResourceExhausted("chunk size line is longer than " +
                                   std::to_string(limits_.max_chunk_line_bytes) + " bytes");
        }
        line_.append(input->data(), take);
        input->remove_prefix(take);
        if (nl == std::string_view::npos) break;  // need more
        std::string_view line = line_;
        line.remove_suffix(1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (state_ == State::kTrailer) {
          bool empty = line.empty();
          line_.clear();
          if (empty) {
            ev.kind = Kind::kEnd;
            ev.ieof = last_ieof_;
            Reset();
            return ev;
          }
          continue;  // ignore trailer headers
        }
        // "<hex>[; ext[=v]]*"
        size_t semi = line.find(';');
        std::string_view size_part = Trim(line.substr(0, semi));
        uint64_t size = 0;
        if (size_part.empty() || !ParseUint(size_part, &size, 16)) {
          return InvalidArgument("chunk size is not a hexadecimal number");
        }
        bool ieof = false;
        if (semi != std::string_view::npos) {
          std::string_view ext = line.substr(semi + 1);
          while (!ext.empty()) {
            size_t next = ext.find(';');
            std::string_view e = Trim(ext.substr(0, next));
            if (e == "ieof") ieof = true;
            if (next == std::string_view::npos) break;
            ext.remove_prefix(next + 1);
          }
        }
        line_.clear();
        if (size == 0) {
          last_ieof_ = ieof;
          state_ = State::kTrailer;
          continue;
        }
        if (ieof) return InvalidArgument("ieof on a non-empty chunk");
        remaining_ = size;
        state_ = State::kData;
        continue;
      }
      case State::kData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, input->size()));
        ev.kind = Kind::kData;
        ev.data = input->substr(0, take);
        input->remove_prefix(take);
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::kDataCrlf;
        return ev;
      }
      case State::kDataCrlf: {
        // Expect "\r\n" (tolerate a bare "\n").
        char c = input->front();
        if (line_.empty() && c == '\r') {
          line_.push_back(c);
          input->remove_prefix(1);
          continue;
        }
        if (c == '\n') {
          line_.clear();
          input->remove_prefix(1);
          state_ = State::kSize;
          continue;
        }
        return InvalidArgument("chunk data is not followed by CRLF");
      }
    }
  }
  ev.kind = Kind::kNeedMore;
  return ev;
}

void AppendChunk(std::string* out, std::string_view data) {
  if (data.empty()) return;
  char hex[20];
  auto [p, ec] = std::to_chars(hex, hex + sizeof(hex), data.size(), 16);
  out->append(hex, p);
  out->append("\r\n");
  out->append(data);
  out->append("\r\n");
}

}  // namespace mamori::egress
