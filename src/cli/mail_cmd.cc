// `mamori mail list|release|discard`: the hold queue (保留メール) workflow.
// Uses Postfix's own tools (postqueue -j, postsuper -H/-d). See docs/mail.md.
#include <fmt/format.h>
#include <pwd.h>
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

namespace {

using namespace mamori;
using namespace mamori::mail;

struct MailArgs {
  std::string state = "/var/lib/mamori/mail";
  std::string postfix_config;
  std::string policy;
  std::string audit_log;
  std::string audit_key;
  std::string by;
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
  std::unique_ptr<HoldStore> holds;
  std::unique_ptr<AuditWriter> audit;
  PostfixTools postfix;
  Policy policy;
};

Result<Context> Open(const MailArgs& a) {
  Context c{nullptr, nullptr, PostfixTools(a.postfix_config), Policy{}};
  ASSIGN_OR_RETURN(c.holds, HoldStore::Open(a.state + "/mail.db"));
  ASSIGN_OR_RETURN(HashKey key, HashKey::LoadOrCreate(a.state + "/hash.key"));
  AuditOptions ao;
  ao.log_path = a.audit_log.empty() ? a.state + "/audit.log" : a.audit_log;
  ao.signing_key = a.audit_key;
  ASSIGN_OR_RETURN(c.audit, OpenAuditWriter(ao, key));
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

// Finds the queue id for an event id or queue id, and checks the mail is on hold.
Result<HeldMail> Resolve(Context& c, const std::string& id) {
  auto m = c.holds->Find(id);
  HeldMail held;
  if (m.ok()) {
    held = *m;
  } else if (m.status().code() == StatusCode::kNotFound && ValidQueueId(id)) {
    held.queue_id = id;  // held by something else (e.g. header_checks HOLD)
    held.event_id = "";
  } else {
    return m.status();
  }
  if (held.status == "released" || held.status == "discarded") {
    return FailedPrecondition("mail " + id + " was already " + held.status);
  }
  ASSIGN_OR_RETURN(auto queue, c.postfix.ListQueue());
  for (const auto& e : queue) {
    if (e.queue_id == held.queue_id) {
      if (e.queue_name != "hold") {
        return FailedPrecondition("mail " + id + " is in the " + e.queue_name +
                                  " queue, not on hold");
      }
      return held;
    }
  }
  return NotFound("mail " + id + " (queue id " + held.queue_id +
                  ") is no longer in the Postfix queue");
}

int Act(const MailArgs& a, bool release) {
  auto c = Open(a);
  if (!c.ok()) {
    cli::PrintError(c.status().ToString());
    return 2;
  }
  const std::string user = CurrentUser(a);
  int rc = 0;
  for (const auto& id : a.ids) {
    auto m = Resolve(*c, id);
    if (!m.ok()) {
      cli::PrintError(m.status().ToString());
      rc = std::max(rc, m.status().code() == StatusCode::kNotFound ? 1 : 2);
      continue;
    }
    const int64_t now = Clock::Real().NowMicros();
    if (release && !m->event_id.empty() && c->policy.release_approvals > 1) {
      Status st = c->holds->AddApproval(m->event_id, user, now);
      if (!st.ok()) {
        cli::PrintError(st.ToString());
        rc = 2;
        continue;
      }
      auto again = c->holds->Find(m->event_id);
      if (!again.ok()) {
        cli::PrintError(again.status().ToString());
        rc = 2;
        continue;
      }
      if (again->approvals.size() < c->policy.release_approvals) {
        (void)c->audit->WriteAdmin("mail.approve", *again, user, "hold");
        std::cout << fmt::format(
            "{}: approval {} of {} recorded for {}; another person must "
            "approve before it is released\n",
            id, again->approvals.size(), c->policy.release_approvals, user);
        rc = std::max(rc, 1);
        continue;
      }
      *m = *again;
    }
    // Audit first: an action that cannot be recorded is not taken.
    Status st = c->audit->WriteAdmin(release ? "mail.release" : "mail.discard", *m, user,
                                     release ? "allow" : "deny");
    if (st.ok())
      st = release ? c->postfix.Release(m->queue_id) : c->postfix.DeleteHeld(m->queue_id);
    if (st.ok() && !m->event_id.empty()) {
      st = c->holds->SetStatus(m->event_id, release ? "released" : "discarded", now);
    }
    if (!st.ok()) {
      cli::PrintError(st.ToString());
      rc = 2;
      continue;
    }
    std::cout << fmt::format("{}: {} (queue id {})\n", id, release ? "released" : "discarded",
                             m->queue_id);
  }
  return rc;
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
    c->add_option("--audit-log", args->audit_log, "Audit log (default STATE/audit.log)");
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
  rel->callback([args, exit_code] { *exit_code = Act(*args, true); });
  auto* dis = cmd->add_subcommand("discard", "Delete held mail (the sender cancels)");
  common(dis);
  dis->add_option("ids", args->ids, "Event ids or queue ids")->required();
  dis->add_option("--by", args->by, "Who discards (default: the login user)");
  dis->callback([args, exit_code] { *exit_code = Act(*args, false); });
}

MAMORI_REGISTER_COMMAND("mail", Setup);

}  // namespace
