#include "mail/policy.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "common/file_util.h"
#include "mail/address.h"

namespace mamori::mail {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

template <typename T>
Status ReadScalar(const YAML::Node& node, const char* key, const std::string& where, T* out) {
  if (!node[key]) return Status::Ok();
  try {
    *out = node[key].as<T>();
  } catch (const YAML::Exception& e) {
    return InvalidArgument(where + ": key '" + key + "' has the wrong type (" + e.what() + ")");
  }
  return Status::Ok();
}

Status ReadList(const YAML::Node& node, const char* key, const std::string& where,
                std::vector<std::string>* out) {
  if (!node[key]) return Status::Ok();
  if (!node[key].IsSequence()) return InvalidArgument(where + ": '" + key + "' must be a list");
  try {
    for (const auto& item : node[key]) {
      std::string d = Lower(item.as<std::string>());
      while (!d.empty() && d.back() == '.') d.pop_back();
      if (d.empty() || d.find('@') != std::string::npos || d.find(' ') != std::string::npos) {
        return InvalidArgument(where + ": '" + key + "' entry '" + d +
                               "' is not a domain name (write example.co.jp)");
      }
      if (std::find(out->begin(), out->end(), d) == out->end()) out->push_back(d);
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(where + ": '" + key + "' must be a list of strings (" + e.what() + ")");
  }
  return Status::Ok();
}

// Unknown keys inside a section are errors too: a misspelt "enabeld" must not
// silently leave a rule at its default.
Status CheckKeys(const YAML::Node& node, const std::string& where,
                 std::initializer_list<const char*> allowed) {
  if (!node.IsMap()) return InvalidArgument(where + " must be a mapping ({key: value, ...})");
  for (const auto& kv : node) {
    const std::string k = kv.first.as<std::string>();
    bool ok = false;
    for (const char* a : allowed) ok = ok || k == a;
    if (!ok) {
      std::string list;
      for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
      return InvalidArgument(where + ": unknown key '" + k + "' (known: " + list + ")");
    }
  }
  return Status::Ok();
}

Status Merge(const YAML::Node& root, const std::string& src, Policy* p) {
  if (!root.IsMap()) return InvalidArgument(src + ": the policy must be a YAML mapping");
  static const std::set<std::string> kTop = {
      "internal_domains",    "partner_domains", "scope",
      "bcc_conversion",      "personal_data",   "typo_domains",
      "hidden_external_bcc", "delay_external",  "release",
      "sender_notice",       "budgets"};
  for (const auto& kv : root) {
    std::string k = kv.first.as<std::string>();
    if (!kTop.count(k)) return InvalidArgument(src + ": unknown key '" + k + "'");
  }
  RETURN_IF_ERROR(ReadList(root, "internal_domains", src, &p->internal_domains));
  RETURN_IF_ERROR(ReadList(root, "partner_domains", src, &p->partner_domains));
  RETURN_IF_ERROR(ReadScalar(root, "scope", src, &p->scope));
  if (p->scope != "outbound" && p->scope != "all") {
    return InvalidArgument(src + ": scope must be 'outbound' or 'all', not '" + p->scope + "'");
  }
  if (auto n = root["bcc_conversion"]) {
    std::string w = src + ": bcc_conversion";
    RETURN_IF_ERROR(CheckKeys(n, w, {"enabled", "threshold", "count", "to_value", "note_header"}));
    RETURN_IF_ERROR(ReadScalar(n, "enabled", w, &p->bcc_enabled));
    RETURN_IF_ERROR(ReadScalar(n, "threshold", w, &p->bcc_threshold));
    RETURN_IF_ERROR(ReadScalar(n, "count", w, &p->bcc_count));
    RETURN_IF_ERROR(ReadScalar(n, "to_value", w, &p->bcc_to_value));
    RETURN_IF_ERROR(ReadScalar(n, "note_header", w, &p->bcc_note_header));
    if (p->bcc_count != "recipients" && p->bcc_count != "domains") {
      return InvalidArgument(w + ".count must be 'recipients' or 'domains'");
    }
    if (p->bcc_threshold == 0) return InvalidArgument(w + ".threshold must be at least 1");
  }
  if (auto n = root["personal_data"]) {
    std::string w = src + ": personal_data";
    RETURN_IF_ERROR(CheckKeys(n, w,
                              {"enabled", "hold_my_number_min", "hold_individuals_min",
                               "hold_uninspectable", "hold_not_inspected", "scan_internal"}));
    RETURN_IF_ERROR(ReadScalar(n, "enabled", w, &p->pd_enabled));
    RETURN_IF_ERROR(ReadScalar(n, "hold_my_number_min", w, &p->pd_hold_my_number_min));
    RETURN_IF_ERROR(ReadScalar(n, "hold_individuals_min", w, &p->pd_hold_individuals_min));
    RETURN_IF_ERROR(ReadScalar(n, "hold_uninspectable", w, &p->pd_hold_uninspectable));
    RETURN_IF_ERROR(ReadScalar(n, "hold_not_inspected", w, &p->pd_hold_not_inspected));
    RETURN_IF_ERROR(ReadScalar(n, "scan_internal", w, &p->pd_scan_internal));
  }
  if (auto n = root["typo_domains"]) {
    std::string w = src + ": typo_domains";
    RETURN_IF_ERROR(CheckKeys(n, w, {"enabled", "max_distance", "min_length"}));
    RETURN_IF_ERROR(ReadScalar(n, "enabled", w, &p->typo_enabled));
    RETURN_IF_ERROR(ReadScalar(n, "max_distance", w, &p->typo_max_distance));
    RETURN_IF_ERROR(ReadScalar(n, "min_length", w, &p->typo_min_length));
    if (p->typo_max_distance < 1 || p->typo_max_distance > 3) {
      return InvalidArgument(w + ".max_distance must be 1, 2 or 3");
    }
  }
  if (root["hidden_external_bcc"]) {
    std::string v;
    RETURN_IF_ERROR(ReadScalar(root, "hidden_external_bcc", src, &v));
    if (v != "hold" && v != "allow") {
      return InvalidArgument(src + ": hidden_external_bcc must be 'hold' or 'allow'");
    }
    p->hidden_bcc_hold = v == "hold";
  }
  if (auto n = root["delay_external"]) {
    std::string w = src + ": delay_external";
    RETURN_IF_ERROR(CheckKeys(n, w, {"enabled", "minutes", "seconds"}));
    RETURN_IF_ERROR(ReadScalar(n, "enabled", w, &p->delay_enabled));
    if (n["minutes"] && n["seconds"])
      return InvalidArgument(w + ": give minutes or seconds, not both");
    uint32_t minutes = 0;
    RETURN_IF_ERROR(ReadScalar(n, "minutes", w, &minutes));
    if (n["minutes"]) {
      if (minutes == 0 || minutes > 24 * 60) {
        return InvalidArgument(w + ".minutes must be between 1 and 1440");
      }
      p->delay_seconds = minutes * 60;
    }
    RETURN_IF_ERROR(ReadScalar(n, "seconds", w, &p->delay_seconds));
    if (p->delay_seconds == 0 || p->delay_seconds > 24 * 3600) {
      return InvalidArgument(w + ".seconds must be between 1 and 86400");
    }
  }
  if (auto n = root["release"]) {
    RETURN_IF_ERROR(CheckKeys(n, src + ": release", {"approvals"}));
    RETURN_IF_ERROR(ReadScalar(n, "approvals", src + ": release", &p->release_approvals));
    if (p->release_approvals < 1 || p->release_approvals > 2) {
      return InvalidArgument(src + ": release.approvals must be 1 or 2");
    }
  }
  if (auto n = root["sender_notice"]) {
    std::string w = src + ": sender_notice";
    RETURN_IF_ERROR(CheckKeys(n, w, {"enabled", "from", "cancel_address", "sendmail"}));
    RETURN_IF_ERROR(ReadScalar(n, "enabled", w, &p->notice_enabled));
    RETURN_IF_ERROR(ReadScalar(n, "from", w, &p->notice_from));
    RETURN_IF_ERROR(ReadScalar(n, "cancel_address", w, &p->notice_cancel_address));
    RETURN_IF_ERROR(ReadScalar(n, "sendmail", w, &p->notice_sendmail));
    for (const std::string* a : {&p->notice_from, &p->notice_cancel_address}) {
      if (!a->empty() &&
          (a->find('@') == std::string::npos || a->find_first_of(" <>,\"") != std::string::npos)) {
        return InvalidArgument(w + ": '" + *a + "' is not a plain address (write user@domain)");
      }
    }
    if (!p->notice_sendmail.empty() && p->notice_sendmail.front() != '/') {
      return InvalidArgument(w + ".sendmail must be an absolute path (/usr/sbin/sendmail)");
    }
  }
  if (auto n = root["budgets"]) {
    std::string w = src + ": budgets";
    RETURN_IF_ERROR(CheckKeys(
        n, w,
        {"max_packet_bytes", "max_message_bytes", "max_recipients", "max_headers",
         "max_header_bytes", "max_total_buffered_bytes", "scan_seconds", "idle_seconds"}));
    auto& b = p->budgets;
    RETURN_IF_ERROR(ReadScalar(n, "max_packet_bytes", w, &b.max_packet_bytes));
    RETURN_IF_ERROR(ReadScalar(n, "max_message_bytes", w, &b.max_message_bytes));
    RETURN_IF_ERROR(ReadScalar(n, "max_recipients", w, &b.max_recipients));
    RETURN_IF_ERROR(ReadScalar(n, "max_headers", w, &b.max_headers));
    RETURN_IF_ERROR(ReadScalar(n, "max_header_bytes", w, &b.max_header_bytes));
    RETURN_IF_ERROR(ReadScalar(n, "max_total_buffered_bytes", w, &b.max_total_buffered_bytes));
    RETURN_IF_ERROR(ReadScalar(n, "scan_seconds", w, &b.scan_seconds));
    RETURN_IF_ERROR(ReadScalar(n, "idle_seconds", w, &b.idle_seconds));
    if (b.max_packet_bytes < 65536 + 16) {
      return InvalidArgument(
          w + ".max_packet_bytes must be at least 65552 (Postfix sends 64 KiB body chunks)");
    }
  }
  return Status::Ok();
}

}  // namespace

std::string_view ActionName(Action a) {
  switch (a) {
    case Action::kAccept:
      return "accept";
    case Action::kHold:
      return "hold";
    case Action::kTempfail:
      return "tempfail";
  }
  return "?";
}

Result<Policy> Policy::Parse(const std::string& text, const std::string& source_name) {
  Policy p;
  try {
    YAML::Node root = YAML::Load(text);
    if (root.IsNull()) return p;
    RETURN_IF_ERROR(Merge(root, source_name, &p));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(source_name + ": not valid YAML: " + e.what());
  }
  return p;
}

Result<Policy> Policy::Load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> files;
  if (fs::is_directory(path, ec)) {
    for (const auto& e : fs::directory_iterator(path, ec)) {
      if (e.path().extension() == ".yaml" || e.path().extension() == ".yml") {
        files.push_back(e.path().string());
      }
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) return NotFound("no *.yaml mail policy in " + path);
  } else if (fs::exists(path, ec)) {
    files.push_back(path);
  } else {
    return NotFound("mail policy " + path + " does not exist (pass --policy FILE|DIR)");
  }
  Policy p;
  for (const auto& f : files) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(f, 1 << 20));
    try {
      YAML::Node root = YAML::Load(text);
      if (root.IsNull()) continue;
      RETURN_IF_ERROR(Merge(root, f, &p));
    } catch (const YAML::Exception& e) {
      return InvalidArgument(f + ": not valid YAML: " + e.what());
    }
  }
  if (p.internal_domains.empty()) {
    return InvalidArgument("mail policy " + path +
                           " lists no internal_domains; every recipient would count as "
                           "external. Add your own domains.");
  }
  if (p.notice_from.empty()) p.notice_from = "mamori@" + p.internal_domains.front();
  if (p.notice_cancel_address.empty()) {
    p.notice_cancel_address = "mamori-cancel@" + p.internal_domains.front();
  }
  p.notice_cancel_address = Lower(p.notice_cancel_address);
  if (!p.IsInternal(DomainOf(p.notice_cancel_address))) {
    return InvalidArgument("mail policy " + path + ": sender_notice.cancel_address " +
                           p.notice_cancel_address + " must be in an internal domain");
  }
  return p;
}

std::string Policy::DefaultPath() {
  if (const char* e = std::getenv("MAMORI_MAIL_POLICY"); e && *e) return e;
  if (std::filesystem::exists("/etc/mamori/mail")) return "/etc/mamori/mail";
  return std::string(MAMORI_SOURCE_DIR) + "/rules/mail";
}

bool Policy::IsInternal(const std::string& domain) const {
  for (const auto& d : internal_domains) {
    if (DomainMatches(domain, d)) return true;
  }
  return false;
}

bool NeedsContentScan(const Policy& policy, const Envelope& env) {
  if (!policy.pd_enabled) return false;
  if (policy.scope == "outbound" && !policy.IsInternal(DomainOf(env.sender))) return false;
  if (policy.pd_scan_internal) return true;
  for (const auto& r : env.recipients) {
    if (!policy.IsInternal(DomainOf(r))) return true;
  }
  return false;
}

Verdict Evaluate(const Policy& policy, const Envelope& env, const ContentSummary& content) {
  Verdict v;
  std::set<std::string> rdomains, ext;
  for (const auto& r : env.recipients) {
    std::string d = DomainOf(r);
    rdomains.insert(d);
    if (!policy.IsInternal(d)) ext.insert(d);
  }
  v.recipient_domains.assign(rdomains.begin(), rdomains.end());
  v.external_domains.assign(ext.begin(), ext.end());
  if (policy.scope == "outbound" && !policy.IsInternal(DomainOf(env.sender))) {
    v.in_scope = false;
    v.reasons.push_back("not_outbound");
    return v;
  }
  const bool any_external = !ext.empty();

  // Bcc conversion: count external entries in To/Cc.
  std::set<std::string> header_addrs, ext_header_domains;
  uint32_t ext_header_count = 0;
  bool to_cc_all_internal = true;
  for (const auto& a : env.to_cc) {
    std::string lower = a;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!header_addrs.insert(lower).second) continue;
    std::string d = DomainOf(a);
    if (!policy.IsInternal(d)) {
      ++ext_header_count;
      ext_header_domains.insert(d);
      to_cc_all_internal = false;
    }
  }
  v.external_to_cc = policy.bcc_count == "domains"
                         ? static_cast<uint32_t>(ext_header_domains.size())
                         : ext_header_count;
  if (policy.bcc_enabled && v.external_to_cc >= policy.bcc_threshold) {
    v.bcc_convert = true;
    v.note = "mamori: To/Cc converted to Bcc (" + std::to_string(v.external_to_cc) +
             (policy.bcc_count == "domains" ? " external domains" : " external recipients") +
             " in To/Cc); every recipient still receives the mail";
  }
  if (env.header_parse_error && any_external) {
    // We cannot tell who is visible to whom: fail closed.
    v.reasons.push_back("unparsable_recipient_header");
  }

  // Hidden external Bcc: envelope has an external recipient not in To/Cc,
  // while every To/Cc address is internal.
  if (policy.hidden_bcc_hold && to_cc_all_internal && !env.to_cc.empty()) {
    for (const auto& r : env.recipients) {
      std::string lower = r;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!policy.IsInternal(DomainOf(r)) && !header_addrs.count(lower)) {
        v.reasons.push_back("hidden_external_bcc");
        break;
      }
    }
  }

  // Typo domains: close to, but not equal to, a known domain.
  if (policy.typo_enabled) {
    std::vector<std::string> known = policy.internal_domains;
    known.insert(known.end(), policy.partner_domains.begin(), policy.partner_domains.end());
    for (const auto& d : ext) {
      if (d.size() < policy.typo_min_length) continue;
      bool is_known = false;
      for (const auto& k : known) is_known = is_known || DomainMatches(d, k);
      if (is_known) continue;
      for (const auto& k : known) {
        int dist = EditDistance(d, k, policy.typo_max_distance);
        if (dist >= 1 && dist <= policy.typo_max_distance) {
          v.typo_domains.push_back(d + "~" + k);
          break;
        }
      }
    }
    if (!v.typo_domains.empty()) v.reasons.push_back("typo_domain");
  }

  // Personal data to external recipients.
  if (any_external && policy.pd_enabled && content.scanned) {
    if (policy.pd_hold_my_number_min > 0 && content.my_numbers >= policy.pd_hold_my_number_min) {
      v.reasons.push_back("my_number");
    }
    if (policy.pd_hold_individuals_min > 0 &&
        content.individuals >= policy.pd_hold_individuals_min) {
      v.reasons.push_back("individuals");
    }
    if (policy.pd_hold_uninspectable && !content.unreadable.empty()) {
      v.reasons.push_back("uninspectable_part");
    }
    if (policy.pd_hold_not_inspected && content.not_inspected > 0) {
      v.reasons.push_back("not_inspected_part");
    }
  }

  if (!v.reasons.empty()) {
    v.action = Action::kHold;
  } else if (any_external && policy.delay_enabled) {
    v.action = Action::kHold;
    v.delay_only = true;
    v.delay_seconds = policy.delay_seconds;
    v.reasons.push_back("delay_external");
  }
  return v;
}

}  // namespace mamori::mail
