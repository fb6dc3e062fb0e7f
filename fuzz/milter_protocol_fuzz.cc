// Fuzzes the milter wire parser and session state machine with arbitrary
// bytes from a (hostile or broken) MTA: no crash, no hang, no unbounded growth.
#include <cstddef>
#include <cstdint>
#include <string>

#include "mail/milter_protocol.h"
#include "mail/policy.h"
#include "mail/session.h"

namespace {

class NullInspector : public mamori::mail::ContentInspector {
 public:
  mamori::Result<mamori::mail::ContentSummary> Inspect(std::string_view m) override {
    mamori::mail::ContentSummary s;
    s.scanned = true;
    s.my_numbers = m.size() % 3 == 0 ? 1 : 0;
    return s;
  }
};

class NullSink : public mamori::mail::VerdictSink {
 public:
  mamori::Status Record(const mamori::mail::VerdictRecord&) override { return mamori::Status(); }
};

// Records nothing: the point is that cancel requests (recipients and Subject
// from the MTA) are parsed without crashing.
class NullDesk : public mamori::mail::SenderDesk {
 public:
  void Notify(const mamori::mail::VerdictRecord&, const std::string&) override {}
  void Cancel(const std::string&, const std::string&) override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static mamori::mail::Policy* policy = [] {
    auto p = mamori::mail::Policy::Parse(
        "internal_domains: [corp.example.jp]\npartner_domains: [partner.co.jp]\n"
        "budgets: {max_message_bytes: 100000, max_recipients: 20, max_headers: 50}\n",
        "fuzz");
    auto* policy = new mamori::mail::Policy(*p);
    policy->notice_cancel_address = "mamori-cancel@corp.example.jp";
    return policy;
  }();
  static NullInspector inspector;
  static NullDesk desk;
  static NullSink sink;
  mamori::mail::SessionDeps deps;
  deps.policy = policy;
  deps.inspector = &inspector;
  deps.sink = &sink;
  deps.desk = &desk;
  deps.new_event_id = [] { return std::string("MFUZZ"); };
  mamori::mail::Session session(deps);
  mamori::mail::milter::PacketReader reader(policy->budgets.max_packet_bytes);
  std::string out;
  // Feed in two chunks to exercise reassembly.
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t cut = size ? data[0] % (size + 1) : 0;
  for (std::string_view chunk : {in.substr(0, cut), in.substr(cut)}) {
    reader.Append(chunk);
    while (true) {
      auto p = reader.Next();
      if (!p.ok() || !p->has_value()) break;
      if (!session.Handle(**p, &out).ok() || session.done()) return 0;
      if (out.size() > (1u << 20)) out.clear();
    }
  }
  return 0;
}
