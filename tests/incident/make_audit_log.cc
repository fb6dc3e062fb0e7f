// Writes the synthetic audit trail of the end-to-end test with the audit
// library's writer (a real hash-chained, signed log), and its JSONL export in
// the documented format (audit::ToJsonLine, as `mamori audit export` does).
//
// Story: vault user "tanaka" downloads three customer lists (500 + 400 + 300 =
// 1,200 customer records) to laptop-042 on 2026-12-18; the laptop is reported
// lost on 2026-12-20. Noise: another user's download, a denied download, and
// a download by tanaka to another device.
//
// usage: make_audit_log OUT_DIR   (writes OUT_DIR/audit.log, OUT_DIR/audit.jsonl)
#include <fstream>
#include <iostream>

#include "audit/audit.h"
#include "common/clock.h"

using mamori::audit::Record;

namespace {

int64_t T(int day, int hour, int minute) {
  // 2026-12-<day> <hour>:<minute> JST, in microseconds since the epoch.
  // 2026-12-01T00:00:00+09:00 = 1796050800.
  int64_t s = 1796050800LL + (day - 1) * 86400LL + hour * 3600LL + minute * 60LL;
  return s * 1000000;
}

Record Get(int64_t t, std::string user, std::string device, std::string object, int people,
           std::string result) {
  Record r;
  r.time_micros = t;
  r.component = "vault";
  r.user = std::move(user);
  r.device = std::move(device);
  r.source_ip = "192.0.2.10";
  r.action = "get";
  r.object = std::move(object);
  r.bytes = static_cast<uint64_t>(people) * 120;
  r.result = std::move(result);
  r.reason = r.result == "allow" ? "ok" : "device_not_enrolled";
  r.labels = {{"types",
               {{"jp.person_name", people},
                {"jp.address", people},
                {"jp.phone", people},
                {"email", people},
                {"jp.birth_date", people}}},
              {"individuals", people},
              {"max_confidence", "high"}};
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_audit_log OUT_DIR\n";
    return 2;
  }
  std::string dir = argv[1];
  mamori::FakeClock clock(T(18, 9, 0));
  mamori::audit::LogOptions lo;
  lo.path = dir + "/audit.log";
  lo.signing_key =
      std::make_shared<const mamori::audit::SigningKey>(mamori::audit::SigningKey::Generate());
  lo.clock = &clock;
  auto log = mamori::audit::Log::Open(lo);
  if (!log.ok()) {
    std::cerr << log.status().ToString() << "\n";
    return 2;
  }
  std::vector<Record> records = {
      Get(T(18, 9, 10), "tanaka", "laptop-042", "obj-customers-east", 500, "allow"),
      Get(T(18, 9, 12), "tanaka", "laptop-042", "obj-customers-west", 400, "allow"),
      Get(T(18, 9, 15), "tanaka", "laptop-042", "obj-customers-east", 500, "allow"),  // again
      Get(T(18, 9, 20), "tanaka", "laptop-042", "obj-customers-kyushu", 300, "allow"),
      Get(T(18, 9, 30), "tanaka", "laptop-042", "obj-payroll", 80, "deny"),
      Get(T(18, 10, 0), "tanaka", "desktop-007", "obj-customers-north", 900, "allow"),
      Get(T(18, 11, 0), "suzuki", "laptop-013", "obj-customers-south", 700, "allow"),
      Get(T(21, 9, 0), "tanaka", "laptop-042", "obj-after-the-loss", 50, "allow"),
  };
  for (auto& r : records) {
    auto seq = (*log)->Append(r);
    if (!seq.ok()) {
      std::cerr << seq.status().ToString() << "\n";
      return 2;
    }
  }
  if (auto st = (*log)->Close(); !st.ok()) {
    std::cerr << st.ToString() << "\n";
    return 2;
  }
  std::ofstream out(dir + "/audit.jsonl");
  auto st = mamori::audit::Scan({lo.path}, {}, [&](const mamori::audit::StoredRecord& s) {
    out << mamori::audit::ToJsonLine(s) << "\n";
    return mamori::Status::Ok();
  });
  if (!st.ok()) {
    std::cerr << st.ToString() << "\n";
    return 2;
  }
  return 0;
}
