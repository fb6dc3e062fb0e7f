// Vault client subcommands: enroll, login, logout, pledge, ls, put, get, rm,
// versions, device, admin (issue 4). They share a profile directory
// ($MAMORI_PROFILE or ~/.mamori) holding the device key and certificate, the
// vault CA and the current session.
#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/file_util.h"
#include "crypto/crypto.h"
#include "vault/client.h"
#include "vault/pki.h"

namespace mamori::cli {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

std::string DefaultProfile() {
  if (const char* p = getenv("MAMORI_PROFILE"); p && *p) return p;
  if (const char* h = getenv("HOME"); h && *h) return std::string(h) + "/.mamori";
  return ".mamori";
}

struct Profile {
  std::string dir;
  json cfg;  // server, user, device_id, poll_secret
  std::string Path(const char* f) const { return dir + "/" + f; }
  Status Load() {
    auto text = ReadFile(Path("profile.json"), 1 << 20);
    if (!text.ok())
      return FailedPrecondition("no vault profile in " + dir + "; run `mamori enroll` first");
    cfg = json::parse(*text, nullptr, false);
    if (!cfg.is_object()) return DataLoss(Path("profile.json") + " is not valid JSON");
    return Status::Ok();
  }
  Status Save() const { return WriteFileAtomic(Path("profile.json"), cfg.dump(2) + "\n", 0600); }
  std::string Session() const {
    auto s = ReadFile(Path("session"), 4096);
    return s.ok() ? *s : "";
  }
};

// Exit code for an HTTP status: 0 ok, 1 refused by policy, 2 error.
int ExitFor(int status) {
  if (status / 100 == 2) return 0;
  if (status == 403 || status == 429 || status == 404 || status == 409) return 1;
  return 2;
}

int Report(const vault::ClientResponse& r) {
  if (r.status / 100 == 2) return 0;
  json j = json::parse(r.body, nullptr, false);
  std::string msg = j.is_object() ? j.value("error", r.body) : r.body;
  std::string ev = j.is_object() ? j.value("event_id", std::string()) : "";
  PrintError("the vault refused (" + std::to_string(r.status) + "): " + msg +
             (ev.empty() ? "" : " [event " + ev + "]"));
  return ExitFor(r.status);
}

Result<std::unique_ptr<vault::Client>> Connect(const Profile& p, bool with_cert) {
  vault::ClientOptions o;
  RETURN_IF_ERROR(vault::ParseServerUrl(p.cfg.value("server", ""), &o.host, &o.port));
  o.ca_path = p.Path("ca.crt");
  if (with_cert) {
    if (!fs::exists(p.Path("device.crt")) || fs::file_size(p.Path("device.crt")) == 0)
      return FailedPrecondition(
          "this device has no certificate yet; an admin must approve it, "
          "then run `mamori enroll --status`");
    o.cert_path = p.Path("device.crt");
    o.key_path = p.Path("device.key");
  }
  return vault::Client::Connect(o);
}

std::string ReadSecret(const std::string& file, const char* env, const std::string& prompt) {
  if (!file.empty()) {
    auto s = ReadFile(file, 4096);
    if (!s.ok()) return "";
    std::string v = *s;
    while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
    return v;
  }
  if (const char* e = getenv(env); e && *e) return e;
  std::cerr << prompt << std::flush;
  termios old{};
  bool tty = tcgetattr(STDIN_FILENO, &old) == 0;
  if (tty) {
    termios t = old;
    t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &t);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  }
  return line;
}

// Runs a JSON call with the profile's device certificate and session.
Result<vault::ClientResponse> Call(const Profile& p, const std::string& method,
                                   const std::string& target, const json& body = nullptr) {
  ASSIGN_OR_RETURN(auto c, Connect(p, true));
  std::map<std::string, std::string> h;
  std::string s = p.Session();
  if (!s.empty()) h["authorization"] = "Bearer " + s;
  return c->Call(method, target, h, body.is_null() ? "" : body.dump());
}

int CallAndPrint(const std::string& profile_dir, const std::string& method,
                 const std::string& target, const json& body = nullptr) {
  Profile p{profile_dir, {}};
  Status s = p.Load();
  if (!s.ok()) {
    PrintError(s.message());
    return 2;
  }
  auto r = Call(p, method, target, body);
  if (!r.ok()) {
    PrintError(r.status().ToString());
    return 2;
  }
  if (r->status / 100 != 2) return Report(*r);
  json j = json::parse(r->body, nullptr, false);
  std::cout << (j.is_discarded() ? r->body : j.dump(2)) << "\n";
  return 0;
}

std::string FilesUrl(const std::string& folder) { return "/v1/folders/" + folder + "/files"; }

// ---------------------------------------------------------------- enroll
struct EnrollArgs {
  std::string server, ca, user, token, device_name, password_file, totp;
  bool status = false;
};

int Enroll(const std::string& profile_dir, const EnrollArgs& a) {
  Profile p{profile_dir, {}};
  if (a.status) {
    Status s = p.Load();
    if (!s.ok()) {
      PrintError(s.message());
      return 2;
    }
    auto c = Connect(p, false);
    if (!c.ok()) {
      PrintError(c.status().ToString());
      return 2;
    }
    auto r = (*c)->Call("GET",
                        "/v1/enroll/" + std::to_string(p.cfg.value("device_id", 0)) +
                            "?secret=" + p.cfg.value("poll_secret", ""),
                        {}, "");
    if (!r.ok() || r->status != 200) return r.ok() ? Report(*r) : 2;
    json j = json::parse(r->body, nullptr, false);
    std::string st = j.value("status", "");
    if (j.contains("certificate")) {
      Status w = WriteFileAtomic(p.Path("device.crt"), j["certificate"].get<std::string>(), 0644);
      if (!w.ok()) {
        PrintError(w.ToString());
        return 2;
      }
    }
    std::cout << "device " << j.value("device_id", 0) << ": " << st << "\n";
    return st == "active" ? 0 : 1;
  }
  if (a.server.empty() || a.ca.empty() || a.user.empty()) {
    PrintError("enroll needs --server, --ca and --user");
    return 2;
  }
  std::error_code ec;
  fs::create_directories(profile_dir, ec);
  ::chmod(profile_dir.c_str(), 0700);
  auto ca = ReadFile(a.ca, 1 << 20);
  if (!ca.ok()) {
    PrintError("--ca: " + ca.status().ToString());
    return 2;
  }
  p.cfg = {{"server", a.server}, {"user", a.user}};
  Status s = WriteFileAtomic(p.Path("ca.crt"), *ca, 0644);
  if (s.ok()) s = p.Save();
  if (!s.ok()) {
    PrintError(s.ToString());
    return 2;
  }
  std::string device_name = a.device_name;
  if (device_name.empty()) {
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    device_name = host[0] ? host : "device";
  }
  auto csr = vault::CreateDeviceCsr(device_name);
  if (!csr.ok()) {
    PrintError(csr.status().ToString());
    return 2;
  }
  s = WriteFileAtomic(p.Path("device.key"), csr->key_pem, 0600);
  if (!s.ok()) {
    PrintError(s.ToString());
    return 2;
  }
  std::string password =
      ReadSecret(a.password_file, "MAMORI_PASSWORD",
                 a.token.empty() ? "Password: " : "Choose a password (12+ characters): ");
  json body = {{"user", a.user},
               {"device_name", device_name},
               {"csr", csr->csr_pem},
               {"password", password}};
  if (!a.token.empty()) body["token"] = a.token;
  if (!a.totp.empty()) body["totp"] = a.totp;
  auto c = Connect(p, false);
  if (!c.ok()) {
    PrintError(c.status().ToString());
    return 2;
  }
  auto r = (*c)->Call("POST", "/v1/enroll", {}, body.dump());
  if (!r.ok()) {
    PrintError(r.status().ToString());
    return 2;
  }
  if (r->status != 201) return Report(*r);
  json j = json::parse(r->body, nullptr, false);
  p.cfg["device_id"] = j.value("device_id", 0);
  p.cfg["poll_secret"] = j.value("poll_secret", "");
  s = p.Save();
  if (s.ok() && j.contains("certificate"))
    s = WriteFileAtomic(p.Path("device.crt"), j["certificate"].get<std::string>(), 0644);
  if (!s.ok()) {
    PrintError(s.ToString());
    return 2;
  }
  std::cout << "device " << j.value("device_id", 0) << " enrolled: " << j.value("status", "")
            << "\n";
  if (j.contains("totp_uri")) {
    // Shown once, to the account owner, so they can add it to an authenticator app.
    std::cout << "Add this TOTP key to your authenticator app now; it is not shown again:\n  "
              << j["totp_uri"].get<std::string>() << "\n";
  }
  if (j.value("status", "") != "active")
    std::cout << "An admin must approve this device; then run `mamori enroll --status`.\n";
  return 0;
}

// ---------------------------------------------------------------- login
int Login(const std::string& profile_dir, const std::string& password_file, std::string totp) {
  Profile p{profile_dir, {}};
  Status s = p.Load();
  if (!s.ok()) {
    PrintError(s.message());
    return 2;
  }
  std::string password = ReadSecret(password_file, "MAMORI_PASSWORD", "Password: ");
  if (totp.empty()) totp = ReadSecret("", "MAMORI_TOTP", "One-time code (TOTP): ");
  auto c = Connect(p, true);
  if (!c.ok()) {
    PrintError(c.status().ToString());
    return 2;
  }
  json body = {{"user", p.cfg.value("user", "")}, {"password", password}, {"totp", totp}};
  auto r = (*c)->Call("POST", "/v1/login", {}, body.dump());
  if (!r.ok()) {
    PrintError(r.status().ToString());
    return 2;
  }
  if (r->status != 200) return Report(*r);
  json j = json::parse(r->body, nullptr, false);
  s = WriteFileAtomic(p.Path("session"), j.value("token", ""), 0600);
  if (!s.ok()) {
    PrintError(s.ToString());
    return 2;
  }
  std::cout << "logged in as " << p.cfg.value("user", "") << " (" << j.value("role", "") << ")\n";
  if (j.value("pledge_required", false))
    std::cout << "Before reading or writing files, accept the data-handling pledge (誓約書): "
                 "`mamori pledge --accept "
              << j.value("pledge_version", "") << "`\n";
  return 0;
}

// ---------------------------------------------------------------- put / get
// Above this size `put` uses a resumable upload session, so a dropped
// connection costs at most one segment instead of the whole transfer.
constexpr uint64_t kResumableFrom = 16ull << 20;

// Prints the outcome of an upload: the stored version and its label, or the
// refusal. Returns the exit code.
int ReportStored(const Result<vault::ClientResponse>& r, const std::string& name, const char* how) {
  if (!r.ok()) {
    PrintError(r.status().ToString());
    return 2;
  }
  if (r->status != 201) return Report(*r);
  json j = json::parse(r->body, nullptr, false);
  std::cout << "stored " << name << " version " << j.value("version", 0) << " ("
            << j.value("size", uint64_t{0}) << " bytes" << how << "), label " << j["label"].dump()
            << "\n";
  return 0;
}

int Put(const std::string& profile_dir, const std::string& folder, const std::string& local,
        std::string name, bool single_request) {
  Profile p{profile_dir, {}};
  Status s = p.Load();
  if (!s.ok()) {
    PrintError(s.message());
    return 2;
  }
  if (name.empty()) name = fs::path(local).filename().string();
  int fd = ::open(local.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    PrintError(local + ": " + std::strerror(errno));
    return 2;
  }
  struct stat st {};
  ::fstat(fd, &st);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  // Hash first, so the server can refuse a corrupted transfer.
  crypto::Sha256 h;
  std::string buf(1 << 20, '\0');
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    h.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  ::lseek(fd, 0, SEEK_SET);
  std::string digest = h.FinishHex();
  if (size >= kResumableFrom && !single_request) {
    vault::ClientOptions o;
    Status us = vault::ParseServerUrl(p.cfg.value("server", ""), &o.host, &o.port);
    if (!us.ok()) {
      ::close(fd);
      PrintError(us.message());
      return 2;
    }
    o.ca_path = p.Path("ca.crt");
    o.cert_path = p.Path("device.crt");
    o.key_path = p.Path("device.key");
    auto r =
        vault::UploadResumable(o, {{"authorization", "Bearer " + p.Session()}}, folder, name, size,
                               digest, [&](uint64_t off, char* b, size_t n) -> Result<size_t> {
                                 while (true) {
                                   ssize_t k = ::pread(fd, b, n, static_cast<off_t>(off));
                                   if (k < 0 && errno == EINTR) continue;
                                   if (k < 0) return Unavailable(local + ": read failed");
                                   return static_cast<size_t>(k);
                                 }
                               });
    ::close(fd);
    return ReportStored(r, name, ", resumable");
  }
  auto c = Connect(p, true);
  if (!c.ok()) {
    ::close(fd);
    PrintError(c.status().ToString());
    return 2;
  }
  std::map<std::string, std::string> hdr{{"authorization", "Bearer " + p.Session()},
                                         {"x-mamori-sha256", digest}};
  auto r = (*c)->Upload("PUT", FilesUrl(folder) + "/" + vault::UrlEncode(name), hdr, size,
                        [&](char* b, size_t n) -> Result<size_t> {
                          while (true) {
                            ssize_t k = ::read(fd, b, n);
                            if (k < 0 && errno == EINTR) continue;
                            if (k < 0) return Unavailable(local + ": read failed");
                            return static_cast<size_t>(k);
                          }
                        });
  ::close(fd);
  return ReportStored(r, name, "");
}

int GetUrl(const std::string& profile_dir, const std::string& target, const std::string& out);

int Get(const std::string& profile_dir, const std::string& folder, const std::string& name,
        std::string out, const std::string& version) {
  if (out.empty()) out = name;
  std::string target = FilesUrl(folder) + "/" + vault::UrlEncode(name);
  if (!version.empty()) target += "?version=" + version;
  return GetUrl(profile_dir, target, out);
}

// Downloads `target` into `out` atomically (partial file, hash check, rename).
int GetUrl(const std::string& profile_dir, const std::string& target, const std::string& out) {
  Profile p{profile_dir, {}};
  Status s = p.Load();
  if (!s.ok()) {
    PrintError(s.message());
    return 2;
  }
  if (fs::exists(out)) {
    PrintError(out + " exists; choose another name with -o");
    return 2;
  }
  std::string tmp = out + ".mamori-partial";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    PrintError(tmp + ": " + std::strerror(errno));
    return 2;
  }
  auto c = Connect(p, true);
  if (!c.ok()) {
    ::close(fd);
    ::unlink(tmp.c_str());
    PrintError(c.status().ToString());
    return 2;
  }
  crypto::Sha256 h;
  auto r = (*c)->Download(target, {{"authorization", "Bearer " + p.Session()}},
                          [&](std::string_view d) -> Status {
                            h.Update(d);
                            while (!d.empty()) {
                              ssize_t k = ::write(fd, d.data(), d.size());
                              if (k < 0 && errno == EINTR) continue;
                              if (k < 0) return Unavailable(tmp + ": write failed");
                              d.remove_prefix(static_cast<size_t>(k));
                            }
                            return Status::Ok();
                          });
  bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!r.ok() || r->status != 200) {
    ::unlink(tmp.c_str());
    if (!r.ok()) {
      PrintError(r.status().ToString());
      return 2;
    }
    return Report(*r);
  }
  if (h.FinishHex() != r->header("x-mamori-sha256") || !synced) {
    ::unlink(tmp.c_str());
    PrintError("the downloaded content does not match its SHA-256; nothing was kept");
    return 2;
  }
  if (::rename(tmp.c_str(), out.c_str()) != 0) {
    PrintError("rename " + tmp + ": " + std::strerror(errno));
    return 2;
  }
  std::cout << "saved " << out << " (label " << r->header("x-mamori-label") << ")\n";
  return 0;
}

void Setup(CLI::App& app, int* exit_code) {
  auto profile = std::make_shared<std::string>(DefaultProfile());
  auto add_profile = [profile](CLI::App* c) {
    c->add_option("--profile", *profile,
                  "client profile directory (default $MAMORI_PROFILE or ~/.mamori)");
  };

  auto ea = std::make_shared<EnrollArgs>();
  auto* enroll = app.add_subcommand("enroll", "Enrol this device with a vault (端末認証)");
  add_profile(enroll);
  enroll->add_option("--server", ea->server, "https://host:port");
  enroll->add_option("--ca", ea->ca, "the vault CA certificate (PEM)");
  enroll->add_option("--user", ea->user, "your user name");
  enroll->add_option("--token", ea->token, "one-time enrolment token from an admin");
  enroll->add_option("--device-name", ea->device_name, "name of this device (default: host name)");
  enroll->add_option("--password-file", ea->password_file, "read the password from a file");
  enroll->add_option("--totp", ea->totp, "one-time code (for a second device without a token)");
  enroll->add_flag("--status", ea->status, "check approval and fetch the certificate");
  enroll->callback([=] { *exit_code = Enroll(*profile, *ea); });

  auto pw = std::make_shared<std::string>();
  auto totp = std::make_shared<std::string>();
  auto* login = app.add_subcommand("login", "Log in to the vault (password + TOTP)");
  add_profile(login);
  login->add_option("--password-file", *pw, "read the password from a file");
  login->add_option("--totp", *totp, "the one-time code");
  login->callback([=] { *exit_code = Login(*profile, *pw, *totp); });

  auto* logout = app.add_subcommand("logout", "End the vault session");
  add_profile(logout);
  logout->callback([=] {
    *exit_code = CallAndPrint(*profile, "POST", "/v1/logout");
    std::error_code ec;
    fs::remove(*profile + "/session", ec);
  });

  auto pledge_version = std::make_shared<std::string>();
  auto* pledge = app.add_subcommand("pledge", "Accept the data-handling pledge (誓約書)");
  add_profile(pledge);
  pledge->add_option("--accept", *pledge_version, "the pledge version you accept")->required();
  pledge->callback([=] {
    *exit_code = CallAndPrint(*profile, "POST", "/v1/pledge",
                              {{"accept", true}, {"version", *pledge_version}});
  });

  auto folder = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto local = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto version = std::make_shared<std::string>();
  auto trash = std::make_shared<bool>(false);

  auto* ls = app.add_subcommand("ls", "List folders, or the files of a folder");
  add_profile(ls);
  ls->add_option("folder", *folder, "folder id");
  ls->add_flag("--trash", *trash, "list the trash");
  ls->callback([=] {
    *exit_code = folder->empty() ? CallAndPrint(*profile, "GET", "/v1/folders")
                                 : CallAndPrint(*profile, "GET",
                                                FilesUrl(*folder) + (*trash ? "?trash=1" : ""));
  });

  auto* put = app.add_subcommand("put", "Upload a file into a vault folder (streamed, encrypted)");
  add_profile(put);
  put->add_option("folder", *folder, "folder id")->required();
  put->add_option("file", *local, "local file")->required();
  put->add_option("--name", *name, "name in the vault (default: the file's name)");
  auto single = std::make_shared<bool>(false);
  put->add_flag("--single-request", *single,
                "send large files in one request instead of a resumable upload session");
  put->callback([=] { *exit_code = Put(*profile, *folder, *local, *name, *single); });

  auto* get = app.add_subcommand("get", "Download a file from a vault folder");
  add_profile(get);
  get->add_option("folder", *folder, "folder id")->required();
  get->add_option("name", *name, "file name in the vault")->required();
  get->add_option("-o,--output", *out, "local file to create");
  get->add_option("--version", *version, "an older version");
  get->callback([=] { *exit_code = Get(*profile, *folder, *name, *out, *version); });

  auto* rm = app.add_subcommand("rm", "Move a vault file to the trash");
  add_profile(rm);
  rm->add_option("folder", *folder, "folder id")->required();
  rm->add_option("name", *name, "file name")->required();
  rm->callback([=] {
    *exit_code =
        CallAndPrint(*profile, "DELETE", FilesUrl(*folder) + "/" + vault::UrlEncode(*name));
  });

  auto* audit_log = app.add_subcommand(
      "audit-log", "Read the vault's audit log (auditor role; newest records, oldest first)");
  add_profile(audit_log);
  auto audit_filter = std::make_shared<std::map<std::string, std::string>>();
  for (const char* key : {"user", "device", "action", "result", "org", "since", "until", "limit"}) {
    std::string help = std::string("only records with this ") + key;
    if (std::string(key) == "since" || std::string(key) == "until")
      help = "ISO 8601 with a zone (2026-11-23T09:00:00+09:00) or microseconds";
    if (std::string(key) == "limit") help = "at most this many records (1..10000, default 1000)";
    audit_log->add_option(std::string("--") + key, (*audit_filter)[key], help);
  }
  audit_log->callback([=] {
    std::string target = "/v1/audit";
    char sep = '?';
    for (const auto& [k, v] : *audit_filter) {
      if (v.empty()) continue;
      target += sep + k + "=" + vault::UrlEncode(v);
      sep = '&';
    }
    *exit_code = CallAndPrint(*profile, "GET", target);
  });

  auto* versions = app.add_subcommand("versions", "List the versions of a vault file");
  add_profile(versions);
  versions->add_option("folder", *folder, "folder id")->required();
  versions->add_option("name", *name, "file name")->required();
  versions->callback([=] {
    *exit_code = CallAndPrint(*profile, "GET",
                              FilesUrl(*folder) + "/" + vault::UrlEncode(*name) + "/versions");
  });

  auto* trash_cmd = app.add_subcommand("trash", "List a folder's trash (deleted files)");
  add_profile(trash_cmd);
  trash_cmd->add_option("folder", *folder, "folder id")->required();
  trash_cmd->callback(
      [=] { *exit_code = CallAndPrint(*profile, "GET", "/v1/folders/" + *folder + "/trash"); });

  auto* restore = app.add_subcommand(
      "restore", "Bring a file back from the trash, or make an older version current");
  add_profile(restore);
  restore->add_option("folder", *folder, "folder id")->required();
  restore->add_option("name", *name, "file name")->required();
  restore->add_option("--version", *version, "the version to restore (see `mamori versions`)");
  restore->callback([=] {
    json body = json::object();
    if (!version->empty()) {
      if (version->find_first_not_of("0123456789") != std::string::npos) {
        PrintError("--version must be a number");
        *exit_code = 2;
        return;
      }
      body["version"] = std::stoll(*version);
    }
    *exit_code = CallAndPrint(*profile, "POST",
                              FilesUrl(*folder) + "/" + vault::UrlEncode(*name) + "/restore", body);
  });

  auto to_folder = std::make_shared<std::string>();
  auto new_name = std::make_shared<std::string>();
  auto* mv = app.add_subcommand("mv", "Rename a file or move it to another folder");
  add_profile(mv);
  mv->add_option("folder", *folder, "folder id")->required();
  mv->add_option("name", *name, "file name")->required();
  mv->add_option("--to-folder", *to_folder, "target folder id (needs write access to both)");
  mv->add_option("--new-name", *new_name, "new file name");
  mv->callback([=] {
    json body = json::object();
    if (!to_folder->empty()) {
      if (to_folder->find_first_not_of("0123456789") != std::string::npos) {
        PrintError("--to-folder must be a folder id");
        *exit_code = 2;
        return;
      }
      body["folder"] = std::stoll(*to_folder);
    }
    if (!new_name->empty()) body["name"] = *new_name;
    *exit_code = CallAndPrint(*profile, "POST",
                              FilesUrl(*folder) + "/" + vault::UrlEncode(*name) + "/move", body);
  });

  struct ShareArgs {
    std::string group, user, password_file, expires_hours, max_downloads;
    bool external = false, list = false;
  };
  auto sa = std::make_shared<ShareArgs>();
  auto* share = app.add_subcommand(
      "share", "Share a file read-only with a group or user, or as an external link");
  add_profile(share);
  share->add_option("folder", *folder, "folder id")->required();
  share->add_option("name", *name, "file name")->required();
  share->add_option("--group", sa->group, "share with this group");
  share->add_option("--user", sa->user, "share with this member");
  share->add_flag("--external", sa->external,
                  "create an external link (needs policy external_links, expiry, password, limit)");
  share->add_option("--expires-hours", sa->expires_hours, "hours until the share expires");
  share->add_option("--max-downloads", sa->max_downloads, "download limit of an external link");
  share->add_option("--password-file", sa->password_file,
                    "external link password from a file (else $MAMORI_LINK_PASSWORD or a prompt)");
  share->add_flag("--list", sa->list, "list the file's shares instead");
  share->callback([=] {
    std::string target = FilesUrl(*folder) + "/" + vault::UrlEncode(*name) + "/shares";
    if (sa->list) {
      *exit_code = CallAndPrint(*profile, "GET", target);
      return;
    }
    json body = json::object();
    auto number = [&](const std::string& v, const char* key, const char* flag) {
      if (v.empty()) return true;
      if (v.find_first_not_of("0123456789") != std::string::npos) {
        PrintError(std::string(flag) + " must be a number");
        return false;
      }
      body[key] = std::stoll(v);
      return true;
    };
    if (!number(sa->expires_hours, "expires_in_hours", "--expires-hours") ||
        !number(sa->max_downloads, "max_downloads", "--max-downloads")) {
      *exit_code = 2;
      return;
    }
    if (sa->external) {
      body["external"] = true;
      body["password"] =
          ReadSecret(sa->password_file, "MAMORI_LINK_PASSWORD", "Link password (12+ characters): ");
    } else if (!sa->group.empty()) {
      body["group"] = sa->group;
    } else if (!sa->user.empty()) {
      body["user"] = sa->user;
    } else {
      PrintError("share: give --group G, --user U or --external");
      *exit_code = 2;
      return;
    }
    *exit_code = CallAndPrint(*profile, "POST", target, body);
  });

  auto share_id = std::make_shared<std::string>();
  auto* shares = app.add_subcommand("shares", "List files shared with you; get or revoke a share");
  add_profile(shares);
  shares->add_option("verb", *share_id, "list (default) | get ID | revoke ID");
  auto share_arg = std::make_shared<std::string>();
  shares->add_option("id", *share_arg, "share id");
  shares->add_option("-o,--output", *out, "local file for `get`");
  shares->callback([=] {
    if (share_id->empty() || *share_id == "list") {
      *exit_code = CallAndPrint(*profile, "GET", "/v1/shares");
    } else if (*share_id == "revoke" && !share_arg->empty()) {
      *exit_code = CallAndPrint(*profile, "DELETE", "/v1/shares/" + vault::UrlEncode(*share_arg));
    } else if (*share_id == "get" && !share_arg->empty()) {
      *exit_code = GetUrl(*profile, "/v1/shares/" + vault::UrlEncode(*share_arg) + "/content",
                          out->empty() ? "share-" + *share_arg : *out);
    } else {
      PrintError("shares: use list, get ID [-o FILE] or revoke ID");
      *exit_code = 2;
    }
  });

  auto dev_id = std::make_shared<std::string>();
  auto* device = app.add_subcommand("device", "Lock one of your devices (lost or stolen)");
  add_profile(device);
  device->add_option("id", *dev_id, "device id")->required();
  device->callback(
      [=] { *exit_code = CallAndPrint(*profile, "POST", "/v1/devices/" + *dev_id + "/lock"); });
}

}  // namespace
MAMORI_REGISTER_COMMAND("vault-client", Setup);
}  // namespace mamori::cli
