// `mamori mail list|release|discard`: the hold queue (保留メール) workflow.
// Uses Postfix's own tools (postqueue -j, postsuper -H/-d). See docs/mail.md.
#include <fcntl.h>
#include <fmt/format.h>
#include <pwd.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/clock.h"
#include "common/redact.h"
#include "mail/policy.h"
#include "mail/postfix.h"
#include "mail/store.h"
#include "mail/workflow.h"

namespace {

using namespace mamori;
using namespace mamori::mail;

// Closes the descriptor when it goes out of scope.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

struct MailArgs {
  std::string state = "/var/lib/mamori/mail";
  std::string postfix_config;
  std::string policy;
  std::string audit_log;
  std::string audit_key;
  std::string by;
  std::string sender;
  int64_t recover_after = 60;  // seconds before a claim counts as interrupted
  bool json = false;
  bool all = false;
  std::vector<std::string> ids;
};

std::string CurrentUser(const MailArgs& a) {
  if (!a.by.empty()) return a.by;
  if (const char* s = std::getenv("SUDO_USER"); s && *s) return s;
  if (passwd* pw = getpwuid(getuid())) return pw->pw_name;
  return "uid" + std::to_string(getuid());
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + v[i];
  return s;
}

std::string Time(int64_t micros) {
  time_t t = static_cast<time_t>(micros / 1'000'000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct Context {
  UniqueFd lock;
  std::unique_ptr<HoldStore> holds;
  std::unique_ptr<AuditWriter> audit;
  PostfixTools postfix;
  Policy policy;
  HashKey key;
};

Result<Context> Open(const MailArgs& a) {
  Context c{UniqueFd(), nullptr, nullptr, PostfixTools(a.postfix_config), Policy{}, HashKey()};
  // One `mamori mail` at a time per state directory: the hash-chained audit
  // log has one writer per file, and the milter writes its own. The kernel
  // drops the lock if we are killed.
  const std::string lock_path = a.state + "/admin.lock";
  c.lock = UniqueFd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (c.lock.get() < 0) {
    return Unavailable("cannot open " + lock_path + ": " + strerror(errno) +
                       " (run as the milter's user or root; check --state)");
  }
  while (::flock(c.lock.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return Unavailable("cannot lock " + lock_path + ": " + strerror(errno));
  }
  ASSIGN_OR_RETURN(c.holds, HoldStore::Open(a.state + "/mail.db"));
  auto key = HashKey::Load(a.state + "/hash.key");
  if (!key.ok()) {
    return FailedPrecondition(key.status().message() + ": " + a.state +
                              " is not the milter's state directory (pass the --state the "
                              "milter runs with; it creates hash.key on first start)");
  }
  c.key = *key;
  AuditOptions ao;
  ao.log_path = a.audit_log.empty() ? a.state + "/admin-audit.log" : a.audit_log;
  ao.signing_key = a.audit_key;
  ASSIGN_OR_RETURN(c.audit, OpenAuditWriter(ao, c.key));
  auto p = Policy::Load(a.policy.empty() ? Policy::DefaultPath() : a.policy);
  if (!p.ok()) return p.status();
  c.policy = *p;
  return c;
}

int List(const MailArgs& a) {
  auto c = Open(a);
  if (!c.ok()) {
    cli::PrintError(c.status().ToString());
    return 2;
  }
  auto queue = c->postfix.ListQueue();
  if (!queue.ok()) {
    cli::PrintError(queue.status().ToString());
    return 2;
  }
  auto known = c->holds->List(/*include_closed=*/true);
  if (!known.ok()) {
    cli::PrintError(known.status().ToString());
    return 2;
  }
  std::map<std::string, const HeldMail*> by_queue;
  for (const auto& m : *known) by_queue[m.queue_id] = &m;
  nlohmann::json out = nlohmann::json::array();
  int shown = 0;
  if (!a.json) {
    std::cout << fmt::format("{:<12} {:<14} {:<20} {:<26} {:<24} {}\n", "QUEUE_ID", "EVENT",
                             "HELD_AT", "SENDER", "TO_DOMAINS", "REASONS");
  }
  for (const auto& e : *queue) {
    if (e.queue_name != "hold" && !a.all) continue;
    const HeldMail* m = by_queue.count(e.queue_id) ? by_queue[e.queue_id] : nullptr;
    std::string sender = m ? m->sender_masked : (e.sender.empty() ? "<>" : MaskEmail(e.sender));
    std::vector<std::string> domains;
    if (m) {
      domains = m->recipient_domains;
    } else {
      for (const auto& r : e.recipients) {
        auto at = r.rfind('@');
        if (at != std::string::npos) domains.push_back(r.substr(at + 1));
      }
    }
    std::string reasons = m ? Join(m->reasons) : "(not held by mamori)";
    if (m && m->release_at_micros) reasons += " until " + Time(m->release_at_micros);
    if (m && !m->approvals.empty()) reasons += " approved-by:" + Join(m->approvals);
    ++shown;
    if (a.json) {
      nlohmann::json j = {
          {"queue_id", e.queue_id},
          {"queue_name", e.queue_name},
          {"event_id", m ? m->event_id : ""},
          {"arrival_time", e.arrival_time},
          {"sender", sender},
          {"recipient_domains", domains},
          {"reasons", m ? m->reasons : std::vector<std::string>{}},
          {"approvals", m ? m->approvals : std::vector<std::string>{}},
          {"summary", m ? nlohmann::json::parse(m->summary, nullptr, false) : nlohmann::json()}};
      out.push_back(j);
    } else {
      std::cout << fmt::format("{:<12} {:<14} {:<20} {:<26} {:<24} {}\n", e.queue_id,
                               m ? m->event_id : "-", Time(e.arrival_time * 1'000'000), sender,
                               Join(domains), reasons);
    }
  }
  if (a.json) std::cout << out.dump(2) << "\n";
  return 0;
}

enum class Verb { kRelease, kDiscard, kCancel };

int Act(const MailArgs& a, Verb verb) {
  auto c = Open(a);
  if (!c.ok()) {
    cli::PrintError(c.status().ToString());
    return 2;
  }
  HoldWorkflow flow(c->holds.get(), c->audit.get(), &c->postfix, &c->policy, &c->key);
  const std::string user = CurrentUser(a);
  // Finish what a killed earlier run left half done before acting again.
  if (auto rec = flow.Recover(user, a.recover_after); !rec.ok()) {
    cli::PrintError("recovering interrupted actions: " + rec.status().ToString());
  }
  int rc = 0;
  for (const auto& id : a.ids) {
    Result<ActionOutcome> r = verb == Verb::kRelease   ? flow.Release(id, user)
                              : verb == Verb::kDiscard ? flow.Discard(id, user)
                                                       : flow.CancelBySender(id, a.sender);
    if (!r.ok()) {
      cli::PrintError(r.status().ToString());
      const StatusCode code = r.status().code();
      rc = std::max(rc, code == StatusCode::kNotFound || code == StatusCode::kFailedPrecondition ||
                                code == StatusCode::kPermissionDenied
                            ? 1
                            : 2);
      continue;
    }
    std::cout << r->message << "\n";
    if (!r->done) rc = std::max(rc, 1);
  }
  return rc;
}

int Recover(const MailArgs& a) {
  auto c = Open(a);
  if (!c.ok()) {
    cli::PrintError(c.status().ToString());
    return 2;
  }
  HoldWorkflow flow(c->holds.get(), c->audit.get(), &c->postfix, &c->policy, &c->key);
  auto n = flow.Recover(CurrentUser(a), a.recover_after);
  if (!n.ok()) {
    cli::PrintError(n.status().ToString());
    return 2;
  }
  std::cout << *n << " interrupted action(s) finished or stale entries closed\n";
  return 0;
}

void Setup(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<MailArgs>();
  auto* cmd = app.add_subcommand("mail", "Held mail (保留メール): list, release, discard");
  cmd->require_subcommand(1);
  auto common = [args](CLI::App* c) {
    c->add_option("--state", args->state, "Milter state directory")->capture_default_str();
    c->add_option("-c,--postfix-config", args->postfix_config,
                  "Postfix config directory of a non-default instance");
    c->add_option("--policy", args->policy, "Mail policy file or directory");
    c->add_option("--audit-log", args->audit_log,
                  "Audit log for admin actions (default STATE/admin-audit.log; never the "
                  "milter's own log, which has one writer)");
    c->add_option("--audit-key", args->audit_key, "Ed25519 key for the shared audit log");
  };
  auto* list = cmd->add_subcommand("list", "List mail on hold, with reason and sender");
  common(list);
  list->add_flag("--json", args->json, "JSON output");
  list->add_flag("--all", args->all, "Show every queue, not only hold");
  list->callback([args, exit_code] { *exit_code = List(*args); });
  auto* rel = cmd->add_subcommand("release", "Release held mail for delivery");
  common(rel);
  rel->add_option("ids", args->ids, "Event ids or queue ids")->required();
  rel->add_option("--by", args->by, "Approver name (default: the login user)");
  rel->callback([args, exit_code] { *exit_code = Act(*args, Verb::kRelease); });
  auto* dis = cmd->add_subcommand("discard", "Delete held mail (administrator)");
  common(dis);
  dis->add_option("ids", args->ids, "Event ids or queue ids")->required();
  dis->add_option("--by", args->by, "Who discards (default: the login user)");
  dis->callback([args, exit_code] { *exit_code = Act(*args, Verb::kDiscard); });
  auto* can = cmd->add_subcommand(
      "cancel",
      "The sender withdraws their own held mail (also possible by mail: see docs/mail.md)");
  common(can);
  can->add_option("ids", args->ids, "Event ids (X-Mamori-Event, or from the hold notice)")
      ->required();
  can->add_option("--sender", args->sender,
                  "The sender's address; must be the held mail's envelope sender")
      ->required();
  can->callback([args, exit_code] { *exit_code = Act(*args, Verb::kCancel); });
  auto* rec = cmd->add_subcommand(
      "recover", "Finish releases/discards interrupted by a crash; close entries Postfix dropped");
  common(rec);
  rec->add_option("--older-than", args->recover_after,
                  "Only actions started at least this many seconds ago")
      ->capture_default_str();
  rec->callback([args, exit_code] { *exit_code = Recover(*args); });
}

MAMORI_REGISTER_COMMAND("mail", Setup);

}  // namespace
