// `mamori audit verify|export|head|keygen`: the tamper-evident audit log.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "audit/audit.h"
#include "cli/command.h"
#include "common/file_util.h"

namespace mamori::cli {
namespace {

int ExitFor(const Status& st) { return st.code() == StatusCode::kDataLoss ? 1 : 2; }

struct VerifyArgs {
  std::string log, pubkey, head, anchor;
};
struct ExportArgs {
  std::string log, format = "jsonl", since, until, hostname;
  audit::Filter filter;
};
struct HeadArgs {
  std::string log;
};
struct KeygenArgs {
  std::string out;
};

int RunVerify(const VerifyArgs& a) {
  auto key = audit::PublicKey::Load(a.pubkey);
  if (!key.ok()) {
    PrintError(key.status().ToString());
    return 2;
  }
  audit::VerifyOptions v;
  v.log_path = a.log;
  v.public_key = *key;
  if (!a.head.empty()) {
    auto head = audit::Head::Parse(a.head);
    if (!head.ok()) {
      PrintError("--head: " + head.status().message());
      return 2;
    }
    v.head = *head;
  }
  if (!a.anchor.empty()) {
    auto text = ReadFile(a.anchor, 4096);
    if (!text.ok()) {
      PrintError("--anchor: " + text.status().ToString());
      return 2;
    }
    v.anchor_checkpoint = *text;
  }
  auto rep = audit::Verify(v);
  if (!rep.ok()) {
    PrintError(rep.status().ToString());
    return 2;
  }
  std::cout << rep->ToString() << std::flush;
  return rep->ok() ? 0 : 1;
}

int RunExport(ExportArgs a) {
  if (a.format != "jsonl" && a.format != "syslog") {
    PrintError("--format must be jsonl or syslog");
    return 2;
  }
  if (!a.since.empty()) {
    auto t = audit::ParseTime(a.since);
    if (!t.ok()) {
      PrintError("--since: " + t.status().message());
      return 2;
    }
    a.filter.since_micros = *t;
  }
  if (!a.until.empty()) {
    auto t = audit::ParseTime(a.until);
    if (!t.ok()) {
      PrintError("--until: " + t.status().message());
      return 2;
    }
    a.filter.until_micros = *t;
  }
  if (a.hostname.empty()) {
    char buf[256] = {0};
    if (::gethostname(buf, sizeof buf - 1) == 0) a.hostname = buf;
  }
  audit::ReaderOptions ro;
  ro.path = a.log;
  std::string out;
  out.reserve(1 << 16);
  bool write_failed = false;
  auto flush = [&] {
    if (!out.empty() && std::fwrite(out.data(), 1, out.size(), stdout) != out.size())
      write_failed = true;
    out.clear();
  };
  Status st = audit::Scan(ro, a.filter, [&](const audit::StoredRecord& r) {
    out += a.format == "jsonl" ? audit::ToJsonLine(r) : audit::ToSyslogLine(r, a.hostname);
    out += '\n';
    if (out.size() >= (1 << 16)) flush();
    if (write_failed) return Unavailable("cannot write to standard output");
    return Status::Ok();
  });
  flush();
  if (std::fflush(stdout) != 0) write_failed = true;
  if (!st.ok()) {
    PrintError(st.ToString() + (st.code() == StatusCode::kDataLoss
                                    ? " (records before this point were exported)"
                                    : ""));
    return ExitFor(st);
  }
  if (write_failed) {
    PrintError("cannot write to standard output");
    return 2;
  }
  return 0;
}

int RunHead(const HeadArgs& a) {
  audit::ReaderOptions ro;
  ro.path = a.log;
  auto head = audit::ReadHead(ro);
  if (!head.ok()) {
    PrintError(head.status().ToString());
    return ExitFor(head.status());
  }
  std::cout << head->ToString() << "\n";
  return 0;
}

int RunKeygen(const KeygenArgs& a) {
  auto pub = audit::GenerateKeyPair(a.out);
  if (!pub.ok()) {
    PrintError(pub.status().ToString());
    return 2;
  }
  std::cout << "wrote " << a.out << "/" << audit::kSigningKeyFile << " (0600, keep it apart "
            << "from the log) and " << a.out << "/" << audit::kPublicKeyFile << "\n"
            << "public key: " << pub->Hex() << "\n";
  return 0;
}

void Setup(CLI::App& app, int* exit_code) {
  auto* audit = app.add_subcommand(
      "audit", "Tamper-evident audit log (監査ログ): verify, export, head, keygen");
  audit->require_subcommand(1);

  auto verify_args = std::make_shared<VerifyArgs>();
  auto* verify = audit->add_subcommand("verify",
                                       "Check every hash, link, sequence number and checkpoint "
                                       "signature; exit 0 OK, 1 tampered, 2 error");
  verify->add_option("--log", verify_args->log, "audit log file")->required();
  verify
      ->add_option("--pubkey", verify_args->pubkey,
                   "checkpoint public key file (audit_signing.pub)")
      ->required();
  verify->add_option("--head", verify_args->head,
                     "SEQ:HASH stored elsewhere by `mamori audit head`; detects truncation");
  verify->add_option(
      "--anchor", verify_args->anchor,
      "checkpoint copy written by the log (checkpoint_copy_path); detects truncation");
  verify->callback([verify_args, exit_code] { *exit_code = RunVerify(*verify_args); });

  auto export_args = std::make_shared<ExportArgs>();
  auto* exp =
      audit->add_subcommand("export", "Write records as JSONL or RFC 5424 syslog lines for a SIEM");
  exp->add_option("--log", export_args->log, "audit log file")->required();
  exp->add_option("--format", export_args->format, "jsonl (default) or syslog");
  exp->add_option("--since", export_args->since,
                  "only records at or after this time (RFC 3339 or date)");
  exp->add_option("--until", export_args->until,
                  "only records before this time (RFC 3339 or date)");
  exp->add_option("--hostname", export_args->hostname, "syslog HOSTNAME (default: this host)");
  exp->add_option("--user", export_args->filter.user, "only this user");
  exp->add_option("--device", export_args->filter.device, "only this device");
  exp->add_option("--destination", export_args->filter.destination, "only this destination");
  exp->add_option("--action", export_args->filter.action, "only this action");
  exp->add_option("--component", export_args->filter.component, "only this component");
  exp->callback([export_args, exit_code] { *exit_code = RunExport(*export_args); });

  auto head_args = std::make_shared<HeadArgs>();
  auto* head = audit->add_subcommand(
      "head", "Print SEQ:HASH of the last record; store it off-host to detect truncation later");
  head->add_option("--log", head_args->log, "audit log file")->required();
  head->callback([head_args, exit_code] { *exit_code = RunHead(*head_args); });

  auto keygen_args = std::make_shared<KeygenArgs>();
  auto* keygen = audit->add_subcommand("keygen", "Create the Ed25519 checkpoint signing key pair");
  keygen
      ->add_option("--out", keygen_args->out,
                   "directory for audit_signing.key and audit_signing.pub")
      ->required();
  keygen->callback([keygen_args, exit_code] { *exit_code = RunKeygen(*keygen_args); });
}

}  // namespace

MAMORI_REGISTER_COMMAND("audit", Setup);

}  // namespace mamori::cli
