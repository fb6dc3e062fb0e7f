// `mamori serve`: the vault server (issue 4). `--init` creates a new vault.

#include <filesystem>
#include <iostream>

#include "alert/alert.h"
#include "audit/audit.h"
#include "cli/command.h"
#include "common/process.h"
#include "common/redact.h"
#include "detect/detect.h"
#include "vault/server.h"
#include "vault/service.h"

namespace mamori::cli {
namespace {

struct ServeArgs {
  std::string data_dir = "var/vault";
  std::string keys_dir = "var/keys";
  std::string audit_log;  // default DATA/audit/vault.log
  std::string listen = "127.0.0.1:8443";
  std::string admin_nets = "127.0.0.1/32,::1/128";
  std::string admin_user = "admin";
  std::string san = "DNS:localhost,IP:127.0.0.1,IP:::1";
  bool init = false;
  bool new_admin_token = false;
  bool allow_unlabelled = false;
  int max_connections = 256;
  // Alerts: webhook, mail through an SMTP relay, syslog.
  std::string alert_webhook, alert_smtp, alert_from;
  std::vector<std::string> alert_to;
  bool no_syslog = false;
};

Status SplitListen(const std::string& s, std::string* addr, uint16_t* port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("--listen must be ADDRESS:PORT");
  *addr = s.substr(0, colon);
  if (addr->size() > 2 && addr->front() == '[' && addr->back() == ']')
    *addr = addr->substr(1, addr->size() - 2);
  std::string p = s.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(p) > 65535)
    return InvalidArgument("--listen port must be 0..65535");
  *port = static_cast<uint16_t>(std::stoi(p));
  return Status::Ok();
}

vault::VaultOptions BaseOptions(const ServeArgs& a) {
  vault::VaultOptions o;
  o.data_dir = a.data_dir;
  o.keyring_path = a.keys_dir + "/kek.keyring";
  return o;
}

int Init(const ServeArgs& a) {
  auto o = BaseOptions(a);
  auto r = vault::Vault::Initialize(o, a.admin_user, a.san);
  if (!r.ok()) {
    PrintError("cannot initialise the vault: " + r.status().ToString());
    return 2;
  }
  std::string signing = a.keys_dir + "/" + audit::kSigningKeyFile;
  if (!std::filesystem::exists(signing)) {
    auto pub = audit::GenerateKeyPair(a.keys_dir);
    if (!pub.ok()) {
      PrintError("cannot create the audit signing key: " + pub.status().ToString());
      return 2;
    }
  }
  std::cout << "mamori vault initialised in " << a.data_dir << " (keys in " << a.keys_dir << ")\n"
            << "  CA certificate (give it to clients): " << r->ca_cert_path << "\n"
            << "  first admin: " << r->admin_user << "\n"
            << "  one-time enrolment token (expires in 72 h, shown once):\n"
            << "    " << r->enrol_token << "\n";
  return 0;
}

int NewAdminToken(const ServeArgs& a) {
  audit::LogOptions lo;
  lo.path = a.audit_log.empty() ? a.data_dir + "/audit/vault.log" : a.audit_log;
  std::filesystem::create_directories(std::filesystem::path(lo.path).parent_path());
  lo.signing_key_path = a.keys_dir + "/" + audit::kSigningKeyFile;
  auto log = audit::Log::Open(lo);
  if (!log.ok()) {
    PrintError("cannot open the audit log " + lo.path + ": " + log.status().ToString());
    return 2;
  }
  audit::Record rec;
  rec.component = "vault";
  rec.user = "host-operator";
  rec.action = "admin.token.offline";
  rec.result = "allow";
  rec.extra = {{"target_user", a.admin_user}};
  auto seq = (*log)->Append(rec);
  if (!seq.ok()) {
    PrintError("the audit log cannot be written, so no token is issued: " +
               seq.status().ToString());
    return 2;
  }
  auto t = vault::Vault::IssueAdminToken(BaseOptions(a), a.admin_user);
  (void)(*log)->Close();
  if (!t.ok()) {
    PrintError(t.status().ToString());
    return 2;
  }
  std::cout << "one-time enrolment token for " << a.admin_user << " (expires in 72 h):\n  " << *t
            << "\n";
  return 0;
}

int Run(const ServeArgs& a) {
  KeepFreedMemoryForReuse();
  auto o = BaseOptions(a);
  auto nets = vault::ParseCidrList(a.admin_nets);
  if (!nets.ok()) {
    PrintError("--admin-nets: " + nets.status().message());
    return 2;
  }
  o.admin_networks = *nets;
  auto rules = detect::RuleSet::LoadDefault();
  if (rules.ok()) {
    o.rules = *rules;
  } else if (!a.allow_unlabelled) {
    PrintError("cannot load the detection rules, so uploads could not be labelled (" +
               rules.status().ToString() + "); fix the rules or start with --allow-unlabelled");
    return 2;
  }
  auto hk = HashKey::LoadOrCreate(a.keys_dir + "/label_hash.key");
  if (!hk.ok()) {
    PrintError("label hash key: " + hk.status().ToString());
    return 2;
  }
  o.label_hash_key = *hk;
  alert::AlertOptions ao;
  ao.webhook_url = a.alert_webhook;
  ao.smtp.relay = a.alert_smtp;
  ao.smtp.from = a.alert_from;
  ao.smtp.to = a.alert_to;
  ao.syslog = !a.no_syslog;
  ao.syslog_ident = "mamori-vault";
  auto alerter = alert::Alerter::Start(ao);
  if (!alerter.ok()) {
    PrintError("bad alert settings: " + alerter.status().ToString());
    return 2;
  }
  o.alerter = alerter->get();

  BlockStopSignals();  // before any thread starts, then wait for them

  audit::LogOptions lo;
  lo.path = a.audit_log.empty() ? a.data_dir + "/audit/vault.log" : a.audit_log;
  std::filesystem::create_directories(std::filesystem::path(lo.path).parent_path());
  lo.signing_key_path = a.keys_dir + "/" + audit::kSigningKeyFile;
  auto log = audit::Log::Open(lo);
  if (!log.ok()) {
    PrintError("cannot open the audit log " + lo.path + ": " + log.status().ToString() +
               " (the vault does not run without its audit log)");
    return 2;
  }
  o.audit_log_path = lo.path;  // the auditor reads it through GET /v1/audit
  auto v = vault::Vault::Open(o, vault::MakeAuditLogSink(log->get()));
  if (!v.ok()) {
    PrintError("cannot open the vault: " + v.status().ToString());
    return 2;
  }
  vault::ServerOptions so;
  Status ls = SplitListen(a.listen, &so.address, &so.port);
  if (!ls.ok()) {
    PrintError(ls.message());
    return 2;
  }
  so.cert_path = (*v)->pki_dir() + "/server.crt";
  so.key_path = (*v)->pki_dir() + "/server.key";
  so.client_ca_path = (*v)->pki_dir() + "/ca.crt";
  so.max_connections = a.max_connections;
  auto server = vault::Server::Start(so, v->get());
  if (!server.ok()) {
    PrintError(server.status().ToString());
    return 2;
  }
  std::cout << "mamori vault listening on https://"
            << (so.address.find(':') != std::string::npos ? "[" + so.address + "]" : so.address)
            << ":" << (*server)->port() << " (audit log " << lo.path << ")" << std::endl;
  int sig = WaitForStopSignal();
  std::cout << "mamori vault: stopping (signal " << sig << ")" << std::endl;
  (*server)->Stop();
  server->reset();
  v->reset();
  (*alerter)->Flush(5000);  // alerts raised just before the stop still go out
  Status cs = (*log)->Close();
  if (!cs.ok()) {
    PrintError("closing the audit log: " + cs.ToString());
    return 2;
  }
  return 0;
}

void Setup(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand("serve", "Run the encrypted vault (HTTPS, mTLS devices, audit)");
  cmd->add_option("--data", args->data_dir, "data directory (metadata, blobs, PKI)")
      ->capture_default_str();
  cmd->add_option("--keys", args->keys_dir,
                  "key directory, outside the data directory (KEK keyring, audit signing key)")
      ->capture_default_str();
  cmd->add_option("--audit-log", args->audit_log, "audit log file (default DATA/audit/vault.log)");
  cmd->add_option("--listen", args->listen, "ADDRESS:PORT")->capture_default_str();
  cmd->add_option("--admin-nets", args->admin_nets, "CIDRs allowed to use the admin API")
      ->capture_default_str();
  cmd->add_option("--max-connections", args->max_connections)->capture_default_str();
  cmd->add_flag("--init", args->init,
                "create a new vault (keys, CA, database) and print the first admin's token");
  cmd->add_option("--admin-user", args->admin_user, "with --init: the first admin's name")
      ->capture_default_str();
  cmd->add_option("--san", args->san, "with --init: server certificate names")
      ->capture_default_str();
  cmd->add_flag("--allow-unlabelled", args->allow_unlabelled,
                "run even if the detection rules cannot be loaded (uploads stay unlabelled)");
  cmd->add_flag("--new-admin-token", args->new_admin_token,
                "issue a new one-time enrolment token for --admin-user (host operator recovery)");
  cmd->add_option("--alert-webhook", args->alert_webhook,
                  "http:// URL that receives alerts as JSON POSTs");
  cmd->add_option("--alert-smtp", args->alert_smtp,
                  "SMTP relay for alert mail, HOST[:PORT] (plain, no auth; e.g. local Postfix)");
  cmd->add_option("--alert-mail-from", args->alert_from, "sender of alert mail");
  cmd->add_option("--alert-mail-to", args->alert_to, "recipient of alert mail (repeatable)");
  cmd->add_flag("--no-syslog", args->no_syslog, "do not send alerts to syslog");
  cmd->callback([args, exit_code] {
    *exit_code = args->init              ? Init(*args)
                 : args->new_admin_token ? NewAdminToken(*args)
                                         : Run(*args);
  });
}

}  // namespace
MAMORI_REGISTER_COMMAND("serve", Setup);
}  // namespace mamori::cli
