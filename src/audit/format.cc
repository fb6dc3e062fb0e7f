#include "audit/format.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

namespace mamori::audit::internal {

const std::string kGenesisHash(kHashHexLen, '0');

namespace {

constexpr std::string_view kHashDomain = "mamori.audit.v1\n";
constexpr std::string_view kCheckpointDomain = "mamori.audit.checkpoint.v1\n";
constexpr int kMaxJsonDepth = 64;

bool IsLowerHex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// Rejects JSON nested deeper than kMaxJsonDepth before the parser sees it.
bool DepthWithin(std::string_view s, int max_depth) {
  int depth = 0;
  bool in_string = false, escape = false;
  for (char c : s) {
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

Status GetString(const nlohmann::json& j, const char* name, std::string* out) {
  auto it = j.find(name);
  if (it == j.end()) return Status::Ok();
  if (!it->is_string())
    return InvalidArgument(std::string("field \"") + name + "\" is not a string");
  *out = it->get<std::string>();
  return Status::Ok();
}

Status GetHex(const nlohmann::json& j, const char* name, size_t len, std::string* out) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string())
    return InvalidArgument(std::string("field \"") + name + "\" is missing or not a string");
  const std::string& s = it->get_ref<const std::string&>();
  if (s.size() != len || !IsLowerHex(s))
    return InvalidArgument(std::string("field \"") + name + "\" is not " + std::to_string(len) +
                           " lowercase hex characters");
  *out = s;
  return Status::Ok();
}

}  // namespace

std::string ToHex(std::string_view raw) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::optional<std::string> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = val(hex[i]), lo = val(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string HashBody(std::string_view body) {
  unsigned char out[32];
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, sizeof out);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(kHashDomain.data()),
                            kHashDomain.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(body.data()), body.size());
  crypto_generichash_final(&st, out, sizeof out);
  return ToHex(std::string_view(reinterpret_cast<const char*>(out), sizeof out));
}

namespace {

// Appends v exactly as v.dump(-1, ' ', false, replace) would. Strings that
// need no escaping (printable ASCII without '"' or '\\'), integers, booleans,
// null, objects and arrays are written directly; anything else (a string to
// escape, a float) by nlohmann, one value at a time. A serializer per value
// was most of an egress record's instructions.
void AppendJsonString(std::string& s, const std::string& v) {
  bool plain = std::all_of(v.begin(), v.end(),
                           [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
  if (!plain) {
    s += nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return;
  }
  s += '"';
  s += v;
  s += '"';
}

void AppendJson(std::string& s, const nlohmann::json& v) {
  using T = nlohmann::json::value_t;
  switch (v.type()) {
    case T::object: {
      s += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) s += ',';
        first = false;
        AppendJsonString(s, it.key());
        s += ':';
        AppendJson(s, it.value());
      }
      s += '}';
      return;
    }
    case T::array: {
      s += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) s += ',';
        first = false;
        AppendJson(s, e);
      }
      s += ']';
      return;
    }
    case T::string:
      AppendJsonString(s, v.get_ref<const std::string&>());
      return;
    case T::boolean:
      s += v.get<bool>() ? "true" : "false";
      return;
    case T::null:
      s += "null";
      return;
    case T::number_integer:
      s += std::to_string(v.get<int64_t>());
      return;
    case T::number_unsigned:
      s += std::to_string(v.get<uint64_t>());
      return;
    default:
      s += v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

}  // namespace

std::string SerializeRecordFields(const Record& r) {
  std::string s;
  s.reserve(512);
  auto add_string = [&s](const char* name, const std::string& v) {
    s += ",\"";
    s += name;
    s += "\":";
    AppendJsonString(s, v);
  };
  auto add_json = [&s](const char* name, const nlohmann::json& v) {
    s += ",\"";
    s += name;
    s += "\":";
    if (v.is_null()) {
      s += "{}";
    } else {
      AppendJson(s, v);
    }
  };
  add_string("component", r.component);
  add_string("event_id", r.event_id);
  add_string("user", r.user);
  add_string("device", r.device);
  add_string("source_ip", r.source_ip);
  add_string("org", r.org);
  add_string("action", r.action);
  add_string("object", r.object);
  add_string("destination", r.destination);
  s += ",\"bytes\":";
  s += std::to_string(r.bytes);
  add_string("result", r.result);
  add_string("reason", r.reason);
  add_json("labels", r.labels);
  add_json("extra", r.extra);
  return s;
}

std::string RecordBody(uint64_t seq, std::string_view prev, int64_t time_micros,
                       std::string_view fields) {
  std::string body;
  body.reserve(fields.size() + 128);
  body += "{\"k\":\"r\",\"seq\":";
  body += std::to_string(seq);
  body += ",\"prev\":\"";
  body += prev;
  body += "\",\"t\":";
  body += std::to_string(time_micros);
  body += fields;
  body += '}';
  return body;
}

std::string CheckpointMessage(uint64_t seq, std::string_view prev, int64_t time_micros) {
  std::string m(kCheckpointDomain);
  m += std::to_string(seq);
  m += '\n';
  m += prev;
  m += '\n';
  m += std::to_string(time_micros);
  m += '\n';
  return m;
}

std::string CheckpointBody(uint64_t seq, std::string_view prev, int64_t time_micros,
                           const SigningKey& key) {
  std::string sig = key.Sign(CheckpointMessage(seq, prev, time_micros));
  std::string body = "{\"k\":\"c\",\"seq\":" + std::to_string(seq) + ",\"prev\":\"" +
                     std::string(prev) + "\",\"t\":" + std::to_string(time_micros) + ",\"key\":\"" +
                     key.public_key().Hex() + "\",\"sig\":\"" + ToHex(sig) + "\"}";
  return body;
}

std::string MakeLine(std::string_view body, std::string* hash_out) {
  std::string hash = HashBody(body);
  std::string line;
  line.reserve(hash.size() + body.size() + 2);
  line += hash;
  line += ' ';
  line += body;
  line += '\n';
  if (hash_out) *hash_out = std::move(hash);
  return line;
}

Result<Entry> ParseLine(std::string_view line) {
  if (line.size() < kHashHexLen + 3 || line[kHashHexLen] != ' ')
    return InvalidArgument("not \"<64 hex hash> <json>\"");
  Entry e;
  e.hash = std::string(line.substr(0, kHashHexLen));
  if (!IsLowerHex(e.hash)) return InvalidArgument("the hash is not 64 lowercase hex characters");
  std::string_view body = line.substr(kHashHexLen + 1);
  e.computed = HashBody(body);
  if (!DepthWithin(body, kMaxJsonDepth))
    return InvalidArgument("JSON nested deeper than " + std::to_string(kMaxJsonDepth));
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("the body is not valid JSON");
  if (!j.is_object()) return InvalidArgument("the body is not a JSON object");
  auto k = j.find("k");
  if (k == j.end() || !k->is_string()) return InvalidArgument("field \"k\" is missing");
  const std::string& kind = k->get_ref<const std::string&>();
  if (kind == "r") {
    e.kind = Entry::kRecord;
  } else if (kind == "c") {
    e.kind = Entry::kCheckpoint;
  } else {
    return InvalidArgument("unknown entry kind \"" + kind.substr(0, 16) + "\"");
  }
  auto seq = j.find("seq");
  if (seq == j.end() || !seq->is_number_unsigned())
    return InvalidArgument("field \"seq\" is missing or not an unsigned integer");
  e.seq = seq->get<uint64_t>();
  RETURN_IF_ERROR(GetHex(j, "prev", kHashHexLen, &e.prev));
  auto t = j.find("t");
  if (t == j.end() || !t->is_number_integer())
    return InvalidArgument("field \"t\" is missing or not an integer");
  e.time_micros = t->get<int64_t>();
  if (e.kind == Entry::kCheckpoint) {
    RETURN_IF_ERROR(GetHex(j, "key", 64, &e.key));
    RETURN_IF_ERROR(GetHex(j, "sig", 128, &e.sig));
    return e;
  }
  Record& r = e.record;
  r.time_micros = e.time_micros;
  RETURN_IF_ERROR(GetString(j, "component", &r.component));
  RETURN_IF_ERROR(GetString(j, "event_id", &r.event_id));
  RETURN_IF_ERROR(GetString(j, "user", &r.user));
  RETURN_IF_ERROR(GetString(j, "device", &r.device));
  RETURN_IF_ERROR(GetString(j, "source_ip", &r.source_ip));
  RETURN_IF_ERROR(GetString(j, "org", &r.org));
  RETURN_IF_ERROR(GetString(j, "action", &r.action));
  RETURN_IF_ERROR(GetString(j, "object", &r.object));
  RETURN_IF_ERROR(GetString(j, "destination", &r.destination));
  RETURN_IF_ERROR(GetString(j, "result", &r.result));
  RETURN_IF_ERROR(GetString(j, "reason", &r.reason));
  if (auto b = j.find("bytes"); b != j.end()) {
    if (!b->is_number_unsigned())
      return InvalidArgument("field \"bytes\" is not an unsigned integer");
    r.bytes = b->get<uint64_t>();
  }
  if (auto l = j.find("labels"); l != j.end()) r.labels = *l;
  if (auto x = j.find("extra"); x != j.end()) r.extra = *x;
  return e;
}

bool CheckpointSignatureValid(const Entry& e, const PublicKey& key) {
  auto sig = FromHex(e.sig);
  if (!sig) return false;
  return key.Verify(CheckpointMessage(e.seq, e.prev, e.time_micros), *sig);
}

// ---------------------------------------------------------------- LineReader

Status LineReader::Fill() {
  if (pos_ > 0) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  size_t old = buf_.size();
  size_t want = 64 * 1024;
  buf_.resize(old + want);
  auto n = file_->Read(buf_.data() + old, want);
  if (!n.ok()) {
    buf_.resize(old);
    return n.status();
  }
  buf_.resize(old + *n);
  if (*n == 0) eof_ = true;
  return Status::Ok();
}

Result<std::optional<LineReader::Line>> LineReader::Next() {
  size_t scanned = pos_;
  while (true) {
    size_t nl = buf_.find('\n', scanned);
    if (nl != std::string::npos) {
      Line line;
      line.text = buf_.substr(pos_, nl - pos_);
      line.offset = offset_;
      line.number = ++number_;
      offset_ += nl - pos_ + 1;
      pos_ = nl + 1;
      if (line.text.size() > max_line_)
        return ResourceExhausted("line " + std::to_string(line.number) + " is longer than " +
                                 std::to_string(max_line_) + " bytes");
      return std::optional<Line>(std::move(line));
    }
    if (buf_.size() - pos_ > max_line_)
      return ResourceExhausted("line " + std::to_string(number_ + 1) + " at offset " +
                               std::to_string(offset_) + " is longer than " +
                               std::to_string(max_line_) + " bytes");
    if (eof_) {
      if (pos_ == buf_.size()) return std::optional<Line>();
      Line line;
      line.text = buf_.substr(pos_);
      line.offset = offset_;
      line.number = ++number_;
      line.terminated = false;
      offset_ += line.text.size();
      pos_ = buf_.size();
      return std::optional<Line>(std::move(line));
    }
    scanned = buf_.size() - pos_;  // relative to pos_ after Fill compacts
    RETURN_IF_ERROR(Fill());
    // After Fill, pos_ == 0, so `scanned` is an index into buf_.
  }
}

// ---------------------------------------------------------------- ChainWalker

Result<Entry> ChainWalker::Feed(const LineReader::Line& line) {
  std::string where = "line " + std::to_string(line.number) + " (offset " +
                      std::to_string(line.offset) + ", after record " + std::to_string(last_seq_) +
                      ")";
  auto parsed = ParseLine(line.text);
  if (!parsed.ok())
    return DataLoss(where + ": malformed entry: " + parsed.status().message() +
                    "; run `mamori audit verify`");
  Entry e = std::move(parsed).value();
  if (e.hash != e.computed)
    return DataLoss(where + ": hash mismatch (the entry was modified); run `mamori audit verify`");
  if (e.prev != last_hash_)
    return DataLoss(where +
                    ": chain broken (prev hash does not name the entry before it); run "
                    "`mamori audit verify`");
  if (e.kind == Entry::kRecord) {
    if (e.seq != last_seq_ + 1)
      return DataLoss(where + ": expected seq " + std::to_string(last_seq_ + 1) + ", found " +
                      std::to_string(e.seq) + "; run `mamori audit verify`");
    last_seq_ = e.seq;
    last_record_hash_ = e.hash;
    ++records_since_checkpoint_;
  } else {
    if (e.seq != last_seq_)
      return DataLoss(where + ": checkpoint names seq " + std::to_string(e.seq) +
                      "; run `mamori audit verify`");
    last_checkpoint_micros_ = e.time_micros;
    records_since_checkpoint_ = 0;
  }
  last_hash_ = e.hash;
  return e;
}

}  // namespace mamori::audit::internal
