// `mamori icap`: the ICAP service behind Squid (see docs/egress.md).

#include <iostream>
#include <memory>
#include <string>

#include "alert/alert.h"
#include "cli/command.h"
#include "common/process.h"
#include "common/redact.h"
#include "egress/audit_sink.h"
#include "egress/icap_server.h"
#include "egress/inspector.h"
#include "egress/policy.h"

namespace mamori::cli {
namespace {

struct IcapArgs {
  std::string listen = "127.0.0.1:1344";
  std::string policy_dir = std::string(MAMORI_SOURCE_DIR) + "/rules/egress";
  int threads = 2;
  std::string audit_log, audit_key, audit_jsonl;
  std::string hash_key = "/var/lib/mamori/hash.key";
  std::string webhook;
  bool no_syslog = false;
  std::string spool_dir = "/var/tmp";
  std::string cap_journal = "/var/lib/mamori/egress-caps.journal";
  int64_t cap_journal_sync_ms = 100;
  std::string audit_sync = "findings";
  bool audit_bodyless = false;
  bool check = false;
};

int RunIcap(const IcapArgs& a) {
  KeepFreedMemoryForReuse();
  auto store = egress::PolicyStore::Open(a.policy_dir);
  if (!store.ok()) {
    PrintError("cannot load the egress policy: " + store.status().ToString());
    return 2;
  }
  auto policy = (*store)->Current();
  if (a.check) {
    std::cout << "policy " << a.policy_dir << " is valid (version " << policy->version << ", "
              << policy->categories.size() << " categories, " << policy->caps.size() << " caps)\n";
    return 0;
  }
  size_t colon = a.listen.rfind(':');
  if (colon == std::string::npos) {
    PrintError("--listen must be ADDRESS:PORT, e.g. 127.0.0.1:1344");
    return 2;
  }
  std::string address = a.listen.substr(0, colon);
  if (address.size() >= 2 && address.front() == '[')
    address = address.substr(1, address.size() - 2);
  int port = 0;
  try {
    port = std::stoi(a.listen.substr(colon + 1));
  } catch (...) {
    port = -1;
  }
  if (port < 0 || port > 65535) {
    PrintError("--listen port must be 0..65535");
    return 2;
  }

  // Before the audit log and the cap journal start their threads.
  BlockStopSignals();

  std::unique_ptr<egress::AuditSink> audit;
  if (!a.audit_jsonl.empty()) {
    auto s = egress::OpenJsonlAudit(a.audit_jsonl, &Clock::Real());
    if (!s.ok()) {
      PrintError(s.status().ToString());
      return 2;
    }
    audit = std::move(s).value();
  } else if (!a.audit_log.empty()) {
    auto s = egress::OpenAuditLog(a.audit_log, a.audit_key, &Clock::Real());
    if (!s.ok()) {
      PrintError("cannot open the audit log: " + s.status().ToString());
      return 2;
    }
    audit = std::move(s).value();
  } else {
    PrintError(
        "an audit destination is required: --audit-log PATH --audit-key KEY, or --audit-jsonl "
        "PATH");
    return 2;
  }

  auto key = HashKey::LoadOrCreate(a.hash_key);
  if (!key.ok()) {
    PrintError("cannot load the hash key (--hash-key): " + key.status().ToString());
    return 2;
  }
  auto inspectors = egress::NewDetectInspectorFactory(*key);
  if (!inspectors.ok()) {
    PrintError("cannot start the detection engine: " + inspectors.status().ToString());
    return 2;
  }
  alert::AlertOptions ao;
  ao.webhook_url = a.webhook;
  ao.syslog = !a.no_syslog;
  ao.syslog_ident = "mamori-egress";
  auto alerter = alert::Alerter::Start(ao);
  if (!alerter.ok()) {
    PrintError("bad alert settings: " + alerter.status().ToString());
    return 2;
  }

  egress::VolumeJournalOptions vo;
  vo.path = a.cap_journal;
  vo.sync_interval_ms = a.cap_journal_sync_ms;
  auto volume = egress::VolumeTracker::Open(&Clock::Real(), vo);
  if (!volume.ok()) {
    PrintError("cannot open the cap journal (--cap-journal): " + volume.status().ToString());
    return 2;
  }

  egress::ServerOptions so;
  so.address = address;
  so.port = static_cast<uint16_t>(port);
  so.threads = a.threads;
  so.policies = store->get();
  so.inspectors = inspectors->get();
  so.audit = audit.get();
  so.alerter = alerter->get();
  so.volume = volume->get();
  so.spool_dir = a.spool_dir;
  so.audit_bodyless = a.audit_bodyless;
  so.audit_sync_every_decision = a.audit_sync == "all";
  auto server = egress::IcapServer::Start(so);
  if (!server.ok()) {
    PrintError(server.status().ToString());
    return 2;
  }
  std::cerr << "mamori icap: listening on " << address << ":" << (*server)->port()
            << " (services /reqmod and /respmod), policy " << policy->version << "\n";
  WaitForStopSignal();
  std::cerr << "mamori icap: stopping\n";
  (*server)->Stop();
  (*alerter)->Flush(2000);
  auto st = (*server)->stats();
  std::cerr << "mamori icap: " << st.transactions << " transactions, " << st.allowed << " allowed, "
            << st.blocked << " blocked, " << st.errors << " errors\n";
  return 0;
}

void Setup(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<IcapArgs>();
  auto* cmd = app.add_subcommand("icap", "Run the ICAP service for Squid (egress DLP gateway)");
  cmd->add_option("--listen", args->listen, "ADDRESS:PORT to listen on")->capture_default_str();
  cmd->add_option("--policy", args->policy_dir, "Directory of egress policy *.yaml files")
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "I/O threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--audit-log", args->audit_log, "Shared audit log file (src/audit)");
  cmd->add_option("--audit-key", args->audit_key, "Audit signing key (mamori audit keygen)");
  cmd->add_option("--audit-jsonl", args->audit_jsonl,
                  "Write decisions to a plain JSON-lines file instead of the audit log");
  cmd->add_option("--hash-key", args->hash_key, "Key for hashing personal-data values")
      ->capture_default_str();
  cmd->add_option("--webhook", args->webhook, "http:// URL that receives alerts as JSON POSTs");
  cmd->add_flag("--no-syslog", args->no_syslog, "Do not send alerts to syslog");
  cmd->add_option("--spool-dir", args->spool_dir, "Directory for body spool files")
      ->capture_default_str();
  cmd->add_option("--cap-journal", args->cap_journal,
                  "Append-only file that keeps the cumulative caps across restarts")
      ->capture_default_str();
  cmd->add_option("--cap-journal-sync-ms", args->cap_journal_sync_ms,
                  "fdatasync the cap journal per batch within this many ms (0: before each "
                  "upload is let go; a crash or kill -9 loses nothing either way, a power loss "
                  "at most this window)")
      ->capture_default_str()
      ->check(CLI::Range(0, 10000));
  cmd->add_option("--audit-sync", args->audit_sync,
                  "findings: blocks, errors and uploads with personal data are synced to the "
                  "audit log before the answer, clean allows once written and synced within "
                  "100 ms (a crash or kill -9 loses nothing, a power loss at most that window "
                  "of clean allows); all: every decision is synced before its answer")
      ->capture_default_str()
      ->check(CLI::IsMember({"findings", "all"}));
  cmd->add_flag("--audit-bodyless", args->audit_bodyless,
                "Also audit allowed requests without a body (GET, CONNECT)");
  cmd->add_flag("--check", args->check, "Validate the policy and exit");
  cmd->callback([args, exit_code] { *exit_code = RunIcap(*args); });
}

MAMORI_REGISTER_COMMAND("icap", Setup);

}  // namespace
}  // namespace mamori::cli
