// `mamori milter`: the Postfix milter (mail guard, issue 7). See docs/mail.md.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cli/command.h"
#include "common/clock.h"
#include "common/process.h"
#include "common/redact.h"
#include "mail/inspect.h"
#include "mail/notice.h"
#include "mail/policy.h"
#include "mail/postfix.h"
#include "mail/server.h"
#include "mail/session.h"
#include "mail/store.h"
#include "mail/workflow.h"

namespace {

struct MilterArgs {
  std::string listen = "inet:127.0.0.1:10025";
  std::string policy;
  std::string state = "/var/lib/mamori/mail";
  std::string key;
  std::string audit_log;
  std::string audit_key;
  std::string postfix_config;
  int threads = 0;
  int verdict_threads = 0;
  std::string audit_sync = "findings";
  uint32_t tick_seconds = 15;
  bool check = false;
};

int RunMilter(const MilterArgs& a) {
  mamori::KeepFreedMemoryForReuse();
  using namespace mamori;
  using namespace mamori::mail;
  auto policy = Policy::Load(a.policy.empty() ? Policy::DefaultPath() : a.policy);
  if (!policy.ok()) {
    cli::PrintError(policy.status().ToString());
    return 2;
  }
  if (policy->notice_enabled && ::access(policy->notice_sendmail.c_str(), X_OK) != 0) {
    cli::PrintError("sender_notice.sendmail " + policy->notice_sendmail +
                    " is not executable; install Postfix's sendmail there, point "
                    "sender_notice.sendmail at it, or set sender_notice.enabled: false");
    return 2;
  }
  if (a.check) {
    auto inspector = MakeDetectInspector(policy->budgets, HashKey());
    if (!inspector.ok()) {
      cli::PrintError(inspector.status().ToString());
      return 2;
    }
    std::cout << "mail policy OK: " << policy->internal_domains.size() << " internal domains, "
              << policy->partner_domains.size() << " partner domains; detection rules OK\n";
    return 0;
  }
  // A notice's sendmail that exits early must not kill the milter.
  std::signal(SIGPIPE, SIG_IGN);
  std::error_code ec;
  std::filesystem::create_directories(a.state, ec);
  if (ec) {
    cli::PrintError("cannot create state directory " + a.state + ": " + ec.message());
    return 2;
  }
  ::chmod(a.state.c_str(), 0700);
  auto key = HashKey::LoadOrCreate(a.key.empty() ? a.state + "/hash.key" : a.key);
  if (!key.ok()) {
    cli::PrintError(key.status().ToString());
    return 2;
  }
  auto holds = HoldStore::Open(a.state + "/mail.db");
  if (!holds.ok()) {
    cli::PrintError(holds.status().ToString());
    return 2;
  }
  AuditOptions ao;
  ao.log_path = a.audit_log.empty() ? a.state + "/audit.log" : a.audit_log;
  ao.signing_key = a.audit_key;
  auto audit = OpenAuditWriter(ao, *key);
  if (!audit.ok()) {
    cli::PrintError(audit.status().ToString());
    return 2;
  }
  std::unique_ptr<ContentInspector> inspector;
  auto made = MakeDetectInspector(policy->budgets, *key);
  if (!made.ok()) {
    // Refuse to start: Postfix tempfails (milter_default_action) until the
    // rules are fixed, and the service manager shows why.
    cli::PrintError(made.status().ToString() +
                    " (the mail guard cannot inspect mail without the detection rules)");
    return 2;
  }
  inspector = std::move(*made);
  StoreSink sink(holds->get(), audit->get(), *key, /*sync_every_verdict=*/a.audit_sync == "all");
  SessionDeps deps;
  deps.policy = &*policy;
  deps.inspector = inspector.get();
  deps.sink = &sink;
  deps.new_event_id = RandomEventId;
  static std::atomic<uint64_t> total_buffered{0};
  deps.total_buffered = &total_buffered;
  deps.max_total_buffered_bytes = policy->budgets.max_total_buffered_bytes;
  PostfixTools postfix(a.postfix_config);
  HoldStore* hs = holds->get();
  AuditWriter* aw = audit->get();
  ServerOptions so;
  so.listen = a.listen;
  so.tick_seconds = std::max<uint32_t>(1, a.tick_seconds);
  // I/O threads only move packets: one per core. Verdict threads block in
  // scans and audit fsyncs; the more wait at once, the more verdicts share an
  // fsync.
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  so.threads = a.threads > 0 ? a.threads : cores;
  so.verdict_threads = a.verdict_threads > 0 ? a.verdict_threads : std::max(8, 4 * cores);
  HoldWorkflow flow(hs, aw, &postfix, &*policy, &*key);
  // 一時保留: release delayed mail whose time has come (unless cancelled or
  // discarded), and finish actions a crash interrupted.
  so.on_tick = [&flow] {
    if (auto n = flow.ReleaseDue(); !n.ok()) {
      std::cerr << "mamori milter: releasing delayed mail: " << n.status().ToString() << "\n";
    }
    if (auto n = flow.Recover("mamori-milter", /*older_than_seconds=*/60); !n.ok()) {
      std::cerr << "mamori milter: recovering held mail: " << n.status().ToString() << "\n";
    }
  };
  // Notices to senders and cancel by mail (docs/mail.md, "Sender notices").
  std::unique_ptr<MailDesk> desk;
  if (policy->notice_enabled) {
    NoticeOptions no;
    no.postfix_config = a.postfix_config;
    desk = std::make_unique<MailDesk>(&*policy, &flow, no);
    deps.desk = desk.get();
  }
  auto server = Server::Create(so, deps);
  if (!server.ok()) {
    cli::PrintError(server.status().ToString());
    return 2;
  }
  std::cerr << "mamori milter: listening on " << a.listen;
  if ((*server)->port()) std::cerr << " (port " << (*server)->port() << ")";
  std::cerr << " with " << so.threads << " I/O and " << so.verdict_threads << " verdict threads\n";
  Status st = (*server)->Run(/*handle_signals=*/true);
  if (!st.ok()) {
    cli::PrintError(st.ToString());
    return 2;
  }
  return 0;
}

void Setup(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<MilterArgs>();
  auto* cmd = app.add_subcommand("milter", "Run the Postfix milter (誤送信防止 mail guard)");
  cmd->add_option("--listen", args->listen,
                  "inet:127.0.0.1:PORT or unix:/path (Postfix: smtpd_milters = inet:...)")
      ->capture_default_str();
  cmd->add_option("--policy", args->policy, "Policy file or directory (default rules/mail)");
  cmd->add_option("--state", args->state, "State directory (hold database, keys, audit log)")
      ->capture_default_str();
  cmd->add_option("--key", args->key, "Hash key file (default STATE/hash.key)");
  cmd->add_option("--audit-log", args->audit_log, "Audit log path (default STATE/audit.log)");
  cmd->add_option("--audit-key", args->audit_key,
                  "Ed25519 signing key for the shared audit log (mamori audit keygen)");
  cmd->add_option("-c,--postfix-config", args->postfix_config,
                  "Postfix config directory, for releasing delayed mail");
  cmd->add_option("--threads", args->threads, "I/O threads (default: one per core)");
  cmd->add_option("--audit-sync", args->audit_sync,
                  "findings: holds, Bcc conversions, tempfails and mail with personal data "
                  "are fsynced to the audit log before the reply, clean accepts once written "
                  "and synced within 100 ms (a crash or kill -9 loses nothing, a power loss at "
                  "most that window of clean accepts); all: every verdict is synced first")
      ->capture_default_str()
      ->check(CLI::IsMember({"findings", "all"}));
  cmd->add_option("--verdict-threads", args->verdict_threads,
                  "Threads that scan messages and record verdicts (default: 4 per core, "
                  "at least 8)");
  cmd->add_option("--tick-seconds", args->tick_seconds,
                  "How often delayed (一時保留) mail is checked for release")
      ->capture_default_str();
  cmd->add_flag("--check", args->check, "Only check the policy and exit");
  cmd->callback([args, exit_code] { *exit_code = RunMilter(*args); });
}

MAMORI_REGISTER_COMMAND("milter", Setup);

}  // namespace
