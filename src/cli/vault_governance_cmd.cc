// `mamori admin network|orgs|break-glass|approvals|approve|deny|report`:
// vault governance (network rules per group and role, contractors,
// break-glass, bulk-export approvals, the contractor report). Adds to the
// `admin` subcommand of vault_admin_cmd.cc (registered under a name that sorts
// after "admin", so that subcommand exists when this runs).
#include <iostream>

#include "audit/audit.h"
#include "cli/command.h"
#include "cli/vault_admin.h"
#include "vault/client.h"
#include "vault/report.h"

namespace mamori::cli {
namespace {

using json = nlohmann::json;

std::string ProfileOf(CLI::App* admin) {
  CLI::Option* o = admin->get_option("--profile");
  if (o && o->count() > 0) return o->as<std::string>();
  return VaultProfileDir();
}

void Setup(CLI::App& app, int* exit_code) {
  CLI::App* admin = app.get_subcommand("admin");
  auto a1 = std::make_shared<std::string>();
  auto a2 = std::make_shared<std::string>();
  auto a3 = std::make_shared<std::string>();
  auto a4 = std::make_shared<std::string>();

  auto* network = admin->add_subcommand("network",
                                        "Network rules (回線認証): list | set user|group|role NAME "
                                        "CIDRS | clear user|group|role NAME");
  network->add_option("verb", *a1)->required();
  network->add_option("kind", *a2);
  network->add_option("name", *a3);
  network->add_option("cidrs", *a4);
  network->callback([=] {
    std::string profile = ProfileOf(admin);
    if (*a1 == "list") {
      *exit_code = VaultAdminCall(profile, "GET", "/v1/admin/network");
    } else if ((*a1 == "set" && !a4->empty()) || *a1 == "clear") {
      if (a2->empty() || a3->empty()) {
        PrintError("admin network " + *a1 + ": give the kind (user, group, role) and the name");
        *exit_code = 2;
        return;
      }
      *exit_code =
          VaultAdminCall(profile, "PUT",
                         "/v1/admin/network/" + vault::UrlEncode(*a2) + "/" + vault::UrlEncode(*a3),
                         {{"cidrs", *a1 == "clear" ? "" : *a4}});
    } else {
      PrintError("admin network: use list, set KIND NAME CIDRS, or clear KIND NAME");
      *exit_code = 2;
    }
  });

  auto scope = std::make_shared<std::string>();
  auto expires = std::make_shared<std::string>();
  auto* orgs = admin->add_subcommand(
      "orgs",
      "Contractors (委託先): list | add NAME --scope IDS --expires DATE | set NAME [--scope] "
      "[--expires] | member ORG USER | remove ORG USER");
  orgs->add_option("verb", *a1)->required();
  orgs->add_option("name", *a2);
  orgs->add_option("user", *a3);
  orgs->add_option("--scope", *scope, "comma-separated folder ids the organisation may touch");
  orgs->add_option("--expires", *expires, "when access ends: 2027-03-31 or RFC 3339 time");
  orgs->callback([=] {
    std::string profile = ProfileOf(admin);
    json body = json::object();
    if (!scope->empty()) {
      json ids = json::array();
      size_t start = 0;
      while (start <= scope->size()) {
        size_t comma = scope->find(',', start);
        if (comma == std::string::npos) comma = scope->size();
        std::string id = scope->substr(start, comma - start);
        if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos ||
            id.size() > 18) {
          PrintError("--scope: '" + id + "' is not a folder id (use `mamori ls` ids, 1,2,3)");
          *exit_code = 2;
          return;
        }
        ids.push_back(std::stoll(id));
        start = comma + 1;
      }
      body["scope"] = ids;
    }
    if (!expires->empty()) {
      auto t = audit::ParseTime(*expires);
      if (!t.ok()) {
        PrintError("--expires: " + t.status().message());
        *exit_code = 2;
        return;
      }
      body["expires_micros"] = *t;
    }
    if (*a1 == "list") {
      *exit_code = VaultAdminCall(profile, "GET", "/v1/admin/orgs");
    } else if (*a1 == "add" && !a2->empty()) {
      body["name"] = *a2;
      *exit_code = VaultAdminCall(profile, "POST", "/v1/admin/orgs", body);
    } else if (*a1 == "set" && !a2->empty()) {
      *exit_code = VaultAdminCall(profile, "PUT", "/v1/admin/orgs/" + vault::UrlEncode(*a2), body);
    } else if ((*a1 == "member" || *a1 == "remove") && !a2->empty() && !a3->empty()) {
      *exit_code =
          VaultAdminCall(profile, *a1 == "member" ? "POST" : "DELETE",
                         "/v1/admin/orgs/" + vault::UrlEncode(*a2) + "/members", {{"user", *a3}});
    } else {
      PrintError(
          "admin orgs: use list, add NAME --scope IDS --expires DATE, set NAME, "
          "member ORG USER or remove ORG USER");
      *exit_code = 2;
    }
  });

  auto reason = std::make_shared<std::string>();
  auto minutes = std::make_shared<int64_t>(60);
  auto* bg = admin->add_subcommand(
      "break-glass",
      "Break-glass read access to a folder, approved by a second admin: request FOLDER_ID "
      "--reason TEXT [--minutes N]");
  bg->add_option("verb", *a1)->required();
  bg->add_option("folder", *a2);
  bg->add_option("--reason", *reason, "why (incident, ticket); shown to the approving admin");
  bg->add_option("--minutes", *minutes, "how long the access lasts once approved (1..240)");
  bg->callback([=] {
    if (*a1 != "request" || a2->empty() ||
        a2->find_first_not_of("0123456789") != std::string::npos || a2->size() > 18) {
      PrintError("admin break-glass: use `request FOLDER_ID --reason TEXT [--minutes N]`");
      *exit_code = 2;
      return;
    }
    *exit_code =
        VaultAdminCall(ProfileOf(admin), "POST", "/v1/admin/break-glass",
                       {{"folder", std::stoll(*a2)}, {"reason", *reason}, {"minutes", *minutes}});
  });

  auto* approvals = admin->add_subcommand("approvals", "List break-glass and bulk-export requests");
  approvals->callback(
      [=] { *exit_code = VaultAdminCall(ProfileOf(admin), "GET", "/v1/approvals"); });
  for (const char* verb : {"approve", "deny"}) {
    auto id = std::make_shared<std::string>();
    auto* cmd = admin->add_subcommand(
        verb, std::string(verb) + " a break-glass or bulk-export request (not your own)");
    cmd->add_option("id", *id)->required();
    std::string v = verb;
    cmd->callback([=] {
      if (id->empty() || id->find_first_not_of("0123456789") != std::string::npos) {
        PrintError("admin " + v + ": give the request id (see `mamori admin approvals`)");
        *exit_code = 2;
        return;
      }
      *exit_code = VaultAdminCall(ProfileOf(admin), "POST", "/v1/approvals/" + *id + "/" + v);
    });
  }

  auto* backup = admin->add_subcommand(
      "backup",
      "Maintenance role: a consistent copy of the metadata and a manifest of the encrypted "
      "blobs, written under DATA/backups on the vault host (nothing is decrypted)");
  backup->callback(
      [=] { *exit_code = VaultAdminCall(ProfileOf(admin), "POST", "/v1/maintenance/backup"); });

  // Runs where the audit log is (the vault host), like `mamori audit`.
  auto log = std::make_shared<std::string>();
  auto data = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("text");
  auto since = std::make_shared<std::string>();
  auto until = std::make_shared<std::string>();
  auto* report = admin->add_subcommand("report", "Reports from the audit log");
  report->require_subcommand(1);
  auto* contractor = report->add_subcommand(
      "contractor", "Everything a contractor organisation's users accessed (from the audit log)");
  contractor->add_option("org", *a1, "organisation name")->required();
  contractor->add_option("--audit-log", *log, "the vault's audit log file");
  contractor->add_option("--data", *data, "vault data directory (log in DATA/audit/vault.log)");
  contractor->add_option("--format", *format, "text (default) or json");
  contractor->add_option("--since", *since, "from this time (RFC 3339 or date)");
  contractor->add_option("--until", *until, "until this time (RFC 3339 or date)");
  contractor->callback([=] {
    vault::ContractorReportOptions o;
    o.org = *a1;
    o.log.path = !log->empty() ? *log : data->empty() ? "" : *data + "/audit/vault.log";
    if (o.log.path.empty()) {
      PrintError("admin report contractor: give --audit-log FILE or --data DIR");
      *exit_code = 2;
      return;
    }
    if (*format != "text" && *format != "json") {
      PrintError("--format must be text or json");
      *exit_code = 2;
      return;
    }
    o.json = *format == "json";
    for (auto [text, slot] :
         {std::pair{since.get(), &o.since_micros}, std::pair{until.get(), &o.until_micros}}) {
      if (text->empty()) continue;
      auto t = audit::ParseTime(*text);
      if (!t.ok()) {
        PrintError("--since/--until: " + t.status().message());
        *exit_code = 2;
        return;
      }
      *slot = *t;
    }
    Status s = vault::ContractorReport(o, std::cout);
    std::cout << std::flush;
    if (!s.ok()) {
      PrintError(s.ToString());
      *exit_code = 2;
    }
  });
}

}  // namespace
MAMORI_REGISTER_COMMAND("admin.governance", Setup);
}  // namespace mamori::cli
