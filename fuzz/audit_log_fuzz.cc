// Fuzzes the audit log's record parser, chain walker, verifier, reader and
// exporters with an arbitrary file. Invariants checked: no crash, no
// unbounded memory, verification of garbage is never "OK" unless the input
// parses as a valid log, and exported syslog/JSONL lines are single lines.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "audit/audit.h"
#include "audit/env.h"
#include "audit/format.h"

namespace {

using namespace mamori;

class MemFile : public audit::SequentialFile {
 public:
  explicit MemFile(const std::string* data) : data_(data) {}
  Result<size_t> Read(char* buf, size_t n) override {
    size_t k = std::min(n, data_->size() - pos_);
    std::copy(data_->data() + pos_, data_->data() + pos_ + k, buf);
    pos_ += k;
    return k;
  }

 private:
  const std::string* data_;
  size_t pos_ = 0;
};

class MemEnv : public audit::Env {
 public:
  explicit MemEnv(std::string data) : data_(std::move(data)) {}
  Result<std::unique_ptr<audit::SequentialFile>> NewSequentialFile(const std::string&) override {
    return std::unique_ptr<audit::SequentialFile>(new MemFile(&data_));
  }
  Result<std::unique_ptr<audit::WritableFile>> NewAppendableFile(const std::string&, int) override {
    return Unimplemented("read-only");
  }
  bool FileExists(const std::string&) override { return true; }

 private:
  std::string data_;
};

const audit::PublicKey& Key() {
  static const audit::PublicKey k = *audit::PublicKey::FromHex(
      "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  // The line parser alone, on the first line.
  (void)audit::internal::ParseLine(input.substr(0, input.find('\n')));
  (void)audit::Head::Parse(input.substr(0, 100));
  (void)audit::ParseTime(input.substr(0, 64));

  MemEnv env(input);
  audit::VerifyOptions v;
  v.log_path = "mem";
  v.public_key = Key();
  v.env = &env;
  v.max_line_bytes = 1 << 16;
  auto rep = audit::Verify(v);
  if (rep.ok()) (void)rep->ToString();

  audit::ReaderOptions ro;
  ro.path = "mem";
  ro.env = &env;
  ro.max_line_bytes = 1 << 16;
  auto reader = audit::Reader::Open(ro);
  if (!reader.ok()) return 0;
  bool reader_ok = true;
  while (true) {
    auto r = (*reader)->Next();
    if (!r.ok()) {
      reader_ok = false;
      break;
    }
    if (!r->has_value()) break;
    std::string j = audit::ToJsonLine(**r);
    std::string s = audit::ToSyslogLine(**r, "host");
    if (j.find('\n') != std::string::npos || s.find('\n') != std::string::npos) std::abort();
  }
  // The strict reader and the verifier must agree on the chain (signatures
  // aside): if verify found no problem, the reader must read to the end.
  if (rep.ok() && rep->ok() && !reader_ok) std::abort();
  return 0;
}
