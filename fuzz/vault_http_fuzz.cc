// Fuzzes the vault's request handling (routing, URL decoding, JSON bodies,
// enrolment CSR parsing) through Vault::Handle, without TLS.
// Input: "METHOD\nTARGET\nHEADER-LINE*\n\nBODY".
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "vault/service.h"

namespace {

using namespace mamori;

class NullAudit : public vault::AuditSink {
 public:
  Status Append(audit::Record) override { return Status::Ok(); }
};

class StringBody : public vault::BodySource {
 public:
  explicit StringBody(std::string_view s) : s_(s) {}
  Result<size_t> Read(char* buf, size_t n) override {
    size_t k = std::min(n, s_.size());
    std::copy(s_.begin(), s_.begin() + k, buf);
    s_.remove_prefix(k);
    return k;
  }

 private:
  std::string_view s_;
};

class DiscardSink : public vault::ResponseSink {
 public:
  Status Start(int status, const std::vector<std::pair<std::string, std::string>>&,
               std::optional<uint64_t>) override {
    if (started_) abort();  // a response must start once
    started_ = true;
    status_ = status;
    return Status::Ok();
  }
  Status Write(std::string_view) override { return Status::Ok(); }
  Status Finish() override { return Status::Ok(); }
  bool started() const override { return started_; }
  bool started_ = false;
  int status_ = 0;
};

vault::Vault* GetVault() {
  static vault::Vault* v = [] {
    std::string dir = std::filesystem::temp_directory_path() /
                      ("mamori_vault_fuzz_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    static std::string cleanup_dir = dir;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(cleanup_dir, ec);
    });
    vault::VaultOptions o;
    o.data_dir = dir + "/data";
    o.keyring_path = dir + "/kek.keyring";
    static FakeClock clock(1'800'000'000LL * 1000000);
    o.clock = &clock;
    if (!vault::Vault::Initialize(o, "admin", "IP:127.0.0.1").ok()) abort();
    auto r = vault::Vault::Open(o, std::make_unique<NullAudit>());
    if (!r.ok()) abort();
    return std::move(r).value().release();
  }();
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1 << 16) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  vault::HttpRequest req;
  auto line = [&in]() {
    auto nl = in.find('\n');
    std::string l(in.substr(0, nl));
    in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
    return l;
  };
  req.method = line();
  req.target = line();
  while (!in.empty()) {
    std::string h = line();
    if (h.empty()) break;
    auto colon = h.find(':');
    if (colon != std::string::npos) req.headers[h.substr(0, colon)] = h.substr(colon + 1);
  }
  req.source_ip = "127.0.0.1";
  if (req.headers.count("x-fuzz-cert")) req.cert_fingerprint = req.headers["x-fuzz-cert"];
  StringBody body(in);
  DiscardSink sink;
  GetVault()->Handle(req, body, sink);
  if (!sink.started()) abort();  // every request gets an answer
  return 0;
}
