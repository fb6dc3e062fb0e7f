#include "mail/milter_protocol.h"

#include <cstring>

namespace mamori::mail::milter {
namespace {

uint32_t ReadU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

void PutU32(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>((v >> 24) & 0xff));
  out->push_back(static_cast<char>((v >> 16) & 0xff));
  out->push_back(static_cast<char>((v >> 8) & 0xff));
  out->push_back(static_cast<char>(v & 0xff));
}

}  // namespace

void PacketReader::Append(std::string_view bytes) {
  if (!failed_.ok()) return;
  // Compact once the consumed prefix dominates, so the buffer stays small.
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes.data(), bytes.size());
}

Result<std::optional<Packet>> PacketReader::Next() {
  if (!failed_.ok()) return failed_;
  if (buf_.size() - pos_ < 4) return std::optional<Packet>();
  uint32_t len = ReadU32(buf_.data() + pos_);
  if (len == 0) {
    failed_ = InvalidArgument("milter packet with length 0 (the peer does not speak milter)");
    return failed_;
  }
  if (len > max_) {
    failed_ = ResourceExhausted("milter packet of " + std::to_string(len) +
                                " bytes exceeds the budget of " + std::to_string(max_) +
                                " bytes (raise mail.max_packet_bytes if the MTA is trusted)");
    return failed_;
  }
  if (buf_.size() - pos_ < 4 + static_cast<size_t>(len)) return std::optional<Packet>();
  Packet p;
  p.command = buf_[pos_ + 4];
  p.data.assign(buf_.data() + pos_ + 5, len - 1);
  pos_ += 4 + static_cast<size_t>(len);
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  return std::optional<Packet>(std::move(p));
}

Result<Options> ParseOptions(std::string_view data) {
  if (data.size() < 12) {
    return InvalidArgument("milter OPTNEG packet has " + std::to_string(data.size()) +
                           " bytes, needs 12");
  }
  Options o;
  o.version = ReadU32(data.data());
  o.actions = ReadU32(data.data() + 4);
  o.protocol = ReadU32(data.data() + 8);
  for (size_t at = 12; at < data.size();) {
    size_t nul = data.size() - at >= 4 ? data.find('\0', at + 4) : std::string_view::npos;
    if (nul == std::string_view::npos)
      return InvalidArgument(
          "milter OPTNEG macro list is truncated (stage, then a NUL-terminated list)");
    o.macro_lists.emplace_back(ReadU32(data.data() + at),
                               std::string(data.substr(at + 4, nul - at - 4)));
    at = nul + 1;
  }
  return o;
}

Result<std::vector<std::string_view>> SplitStrings(std::string_view data) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < data.size()) {
    size_t nul = data.find('\0', start);
    if (nul == std::string_view::npos) {
      return InvalidArgument("milter string field is not NUL-terminated");
    }
    out.push_back(data.substr(start, nul - start));
    start = nul + 1;
  }
  return out;
}

Result<Macros> ParseMacros(std::string_view data) {
  if (data.empty()) return InvalidArgument("milter MACRO packet is empty");
  Macros m;
  m.for_command = data[0];
  ASSIGN_OR_RETURN(auto parts, SplitStrings(data.substr(1)));
  if (parts.size() % 2 != 0) {
    return InvalidArgument("milter MACRO packet has a name without a value");
  }
  for (size_t i = 0; i + 1 < parts.size(); i += 2) m.values.emplace_back(parts[i], parts[i + 1]);
  return m;
}

void AppendPacket(std::string* out, char command, std::string_view data) {
  PutU32(out, static_cast<uint32_t>(data.size() + 1));
  out->push_back(command);
  out->append(data.data(), data.size());
}

void AppendOptions(std::string* out, const Options& options) {
  std::string d;
  PutU32(&d, options.version);
  PutU32(&d, options.actions);
  PutU32(&d, options.protocol);
  for (const auto& [stage, names] : options.macro_lists) {
    PutU32(&d, stage);
    d.append(names);
    d.push_back('\0');
  }
  AppendPacket(out, kOptneg, d);
}

namespace {
// Header names and values must not carry NUL or bare line breaks into the MTA.
std::string Clean(std::string_view s) {
  std::string r;
  r.reserve(s.size());
  for (char c : s) r.push_back((c == '\0' || c == '\r' || c == '\n') ? ' ' : c);
  return r;
}
}  // namespace

void AppendAddHeader(std::string* out, std::string_view name, std::string_view value) {
  std::string d = Clean(name);
  d.push_back('\0');
  d += Clean(value);
  d.push_back('\0');
  AppendPacket(out, kAddHeader, d);
}

void AppendChangeHeader(std::string* out, uint32_t index, std::string_view name,
                        std::string_view value) {
  std::string d;
  PutU32(&d, index);
  d += Clean(name);
  d.push_back('\0');
  d += Clean(value);
  d.push_back('\0');
  AppendPacket(out, kChgHeader, d);
}

void AppendQuarantine(std::string* out, std::string_view reason) {
  std::string d = Clean(reason.empty() ? std::string_view("mamori hold") : reason);
  d.push_back('\0');
  AppendPacket(out, kQuarantine, d);
}

void AppendReplyCode(std::string* out, std::string_view reply) {
  std::string d = Clean(reply);
  d.push_back('\0');
  AppendPacket(out, kReplyCode, d);
}

}  // namespace mamori::mail::milter
