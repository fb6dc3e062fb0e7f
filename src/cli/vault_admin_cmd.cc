// `mamori admin ...`: vault administration over the admin API (issue 4).
// Admins manage users, groups, devices, folders, policies and keys; they can
// never read content (separation of duties, enforced by the server).
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/vault_admin.h"
#include "common/file_util.h"
#include "vault/client.h"

namespace mamori::cli {
namespace {

using json = nlohmann::json;

std::string Profile() {
  if (const char* p = getenv("MAMORI_PROFILE"); p && *p) return p;
  if (const char* h = getenv("HOME"); h && *h) return std::string(h) + "/.mamori";
  return ".mamori";
}

int AdminCall(const std::string& dir, const std::string& method, const std::string& target,
              const json& body = nullptr) {
  auto text = ReadFile(dir + "/profile.json", 1 << 20);
  if (!text.ok()) {
    PrintError("no vault profile in " + dir + "; run `mamori enroll` first");
    return 2;
  }
  json cfg = json::parse(*text, nullptr, false);
  vault::ClientOptions o;
  Status s =
      vault::ParseServerUrl(cfg.is_object() ? cfg.value("server", "") : "", &o.host, &o.port);
  if (!s.ok()) {
    PrintError(s.message());
    return 2;
  }
  o.ca_path = dir + "/ca.crt";
  o.cert_path = dir + "/device.crt";
  o.key_path = dir + "/device.key";
  auto c = vault::Client::Connect(o);
  if (!c.ok()) {
    PrintError(c.status().ToString());
    return 2;
  }
  auto session = ReadFile(dir + "/session", 4096);
  std::map<std::string, std::string> h;
  if (session.ok()) h["authorization"] = "Bearer " + *session;
  auto r = (*c)->Call(method, target, h, body.is_null() ? "" : body.dump());
  if (!r.ok()) {
    PrintError(r.status().ToString());
    return 2;
  }
  json j = json::parse(r->body, nullptr, false);
  if (r->status / 100 != 2) {
    PrintError("the vault refused (" + std::to_string(r->status) +
               "): " + (j.is_object() ? j.value("error", r->body) : r->body));
    return (r->status == 403 || r->status == 404 || r->status == 409 || r->status == 429) ? 1 : 2;
  }
  std::cout << (j.is_discarded() ? r->body : j.dump(2)) << "\n";
  return 0;
}

void Setup(CLI::App& app, int* exit_code) {
  auto profile = std::make_shared<std::string>(Profile());
  auto* admin = app.add_subcommand("admin", "Administer the vault (users, devices, folders, keys)");
  admin->add_option("--profile", *profile, "client profile directory");
  admin->require_subcommand(1);
  auto a1 = std::make_shared<std::string>();
  auto a2 = std::make_shared<std::string>();
  auto a3 = std::make_shared<std::string>();
  auto role = std::make_shared<std::string>("member");
  auto cidrs = std::make_shared<std::string>();

  auto* users = admin->add_subcommand("users", "Users: list | add NAME [--role R] | token NAME");
  users->add_option("verb", *a1)->required();
  users->add_option("name", *a2);
  users->add_option("--role", *role, "member, auditor, admin or maintenance");
  users->add_option("--cidrs", *cidrs, "networks the user may connect from (回線認証)");
  users->callback([=] {
    if (*a1 == "list") {
      *exit_code = AdminCall(*profile, "GET", "/v1/admin/users");
    } else if (*a1 == "add") {
      *exit_code = AdminCall(*profile, "POST", "/v1/admin/users",
                             {{"name", *a2}, {"role", *role}, {"allowed_cidrs", *cidrs}});
    } else if (*a1 == "token") {
      *exit_code =
          AdminCall(*profile, "POST", "/v1/admin/users/" + vault::UrlEncode(*a2) + "/token");
    } else {
      PrintError("admin users: use list, add or token");
      *exit_code = 2;
    }
  });

  auto* groups = admin->add_subcommand("groups", "Groups: add NAME | member GROUP USER");
  groups->add_option("verb", *a1)->required();
  groups->add_option("name", *a2)->required();
  groups->add_option("user", *a3);
  groups->callback([=] {
    if (*a1 == "add") {
      *exit_code = AdminCall(*profile, "POST", "/v1/admin/groups", {{"name", *a2}});
    } else if (*a1 == "member") {
      *exit_code =
          AdminCall(*profile, "POST", "/v1/admin/groups/" + vault::UrlEncode(*a2) + "/members",
                    {{"user", *a3}});
    } else {
      PrintError("admin groups: use add or member");
      *exit_code = 2;
    }
  });

  auto* devices = admin->add_subcommand("devices", "Devices: list | approve|lock|unlock|revoke ID");
  devices->add_option("verb", *a1)->required();
  devices->add_option("id", *a2);
  devices->callback([=] {
    if (*a1 == "list")
      *exit_code = AdminCall(*profile, "GET", "/v1/admin/devices");
    else
      *exit_code =
          AdminCall(*profile, "POST",
                    "/v1/admin/devices/" + vault::UrlEncode(*a2) + "/" + vault::UrlEncode(*a1));
  });

  auto* folders =
      admin->add_subcommand("folders", "Folders: add NAME | acl ID GROUP PERMS(r|rw|'')");
  folders->add_option("verb", *a1)->required();
  folders->add_option("name", *a2)->required();
  auto a4 = std::make_shared<std::string>();
  folders->add_option("group", *a3);
  folders->add_option("perms", *a4);
  folders->callback([=] {
    if (*a1 == "add")
      *exit_code = AdminCall(*profile, "POST", "/v1/admin/folders", {{"name", *a2}});
    else if (*a1 == "acl")
      *exit_code = AdminCall(*profile, "PUT", "/v1/admin/folders/" + vault::UrlEncode(*a2) + "/acl",
                             {{"group", *a3}, {"perms", *a4}});
    else {
      PrintError("admin folders: use add or acl");
      *exit_code = 2;
    }
  });

  auto* policy = admin->add_subcommand(
      "policy",
      "Policies: get KEY | set KEY JSON (download_budget, bulk_export, trash, external_links, "
      "labels)");
  policy->add_option("verb", *a1)->required();
  policy->add_option("key", *a2)->required();
  policy->add_option("json", *a3);
  policy->callback([=] {
    if (*a1 == "get") {
      *exit_code = AdminCall(*profile, "GET", "/v1/admin/policies/" + vault::UrlEncode(*a2));
      return;
    }
    json j = json::parse(*a3, nullptr, false);
    if (*a1 != "set" || !j.is_object()) {
      PrintError("admin policy: use `set download_budget '{\"device_per_hour\":{\"files\":100}}'`");
      *exit_code = 2;
      return;
    }
    *exit_code = AdminCall(*profile, "PUT", "/v1/admin/policies/" + vault::UrlEncode(*a2), j);
  });

  auto* trash = admin->add_subcommand(
      "trash", "Trash: purge (delete files in the trash longer than the retention)");
  trash->add_option("verb", *a1)->required();
  trash->callback([=] {
    if (*a1 != "purge") {
      PrintError("admin trash: use purge");
      *exit_code = 2;
      return;
    }
    *exit_code = AdminCall(*profile, "POST", "/v1/admin/trash/purge");
  });

  auto* keys = admin->add_subcommand("keys", "Keys: rotate (new KEK, re-wrap data keys)");
  keys->add_option("verb", *a1)->required();
  keys->callback([=] {
    if (*a1 != "rotate") {
      PrintError("admin keys: use rotate");
      *exit_code = 2;
      return;
    }
    *exit_code = AdminCall(*profile, "POST", "/v1/admin/keys/rotate");
  });
}

}  // namespace
MAMORI_REGISTER_COMMAND("admin", Setup);
}  // namespace mamori::cli

namespace mamori::cli {
// For the other `mamori admin ...` files (vault_admin.h).
int VaultAdminCall(const std::string& profile_dir, const std::string& method,
                   const std::string& target, const nlohmann::json& body) {
  return AdminCall(profile_dir, method, target, body);
}
std::string VaultProfileDir() { return Profile(); }
}  // namespace mamori::cli
