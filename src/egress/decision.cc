#include "egress/decision.h"

#include <algorithm>
#include <ctime>

namespace mamori::egress {
namespace {

bool IsUploadMethod(const std::string& m) {
  return m != "GET" && m != "HEAD" && m != "OPTIONS" && m != "CONNECT" && m != "TRACE";
}

std::string HtmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string HumanBytes(uint64_t b) {
  char buf[64];
  if (b >= 1000ull * 1000 * 1000) {
    snprintf(buf, sizeof(buf), "%.1f GB", static_cast<double>(b) / 1e9);
  } else if (b >= 1000ull * 1000) {
    snprintf(buf, sizeof(buf), "%.1f MB", static_cast<double>(b) / 1e6);
  } else {
    snprintf(buf, sizeof(buf), "%llu bytes", static_cast<unsigned long long>(b));
  }
  return buf;
}

}  // namespace

std::vector<CapCheck> Decider::CapsFor(const Policy& policy, const Exchange& ex) const {
  std::vector<CapCheck> out;
  if (ex.is_response) return out;  // caps count what leaves, not downloads
  for (const auto& cap : policy.caps) {
    if (!cap.categories.empty() && std::find(cap.categories.begin(), cap.categories.end(),
                                             ex.category->name) == cap.categories.end()) {
      continue;
    }
    CapCheck c;
    c.name = cap.name;
    c.window_seconds = cap.window_seconds;
    c.max_bytes = cap.max_bytes;
    c.max_individuals = cap.max_individuals;
    c.key = cap.name + "|" + ex.user;
    if (cap.scope == CapScope::kUserDestination) c.key += "|" + ex.site;
    out.push_back(std::move(c));
  }
  return out;
}

PreAction Decider::PreBody(const Policy& policy, const Exchange& ex, Verdict* v) {
  const Category& cat = *ex.category;
  *v = Verdict{};
  if (ex.is_response) {
    if (ex.has_body && cat.inspect_downloads) return PreAction::kInspect;
    v->reason = "download_not_inspected";
    return PreAction::kAllow;
  }
  if (!ex.has_body) {
    v->reason = "no_body";
    return PreAction::kAllow;
  }
  if (cat.uploads == UploadAction::kBlock && IsUploadMethod(ex.method)) {
    v->block = true;
    v->alert = true;
    v->reason = "destination_blocked";
    v->detail = "uploads to category " + cat.name + " are blocked";
    return PreAction::kBlock;
  }
  if (cat.max_upload_bytes > 0 && ex.content_length && *ex.content_length > cat.max_upload_bytes) {
    v->block = true;
    v->alert = false;
    v->reason = "upload_too_large";
    v->limit = cat.max_upload_bytes;
    v->detail = "Content-Length " + std::to_string(*ex.content_length) + " > " +
                std::to_string(cat.max_upload_bytes) + " for category " + cat.name;
    return PreAction::kBlock;
  }
  auto caps = CapsFor(policy, ex);
  if (!caps.empty() && ex.content_length) {
    size_t idx = 0;
    Status st = volume_->Check(caps, *ex.content_length, 0, &idx);
    if (!st.ok()) {
      v->block = true;
      v->alert = true;
      v->reason = "volume_cap";
      v->limit = caps[idx].max_bytes;
      v->detail = st.message();
      return PreAction::kBlock;
    }
  }
  if (cat.uploads == UploadAction::kAllow || cat.uploads == UploadAction::kBlock) {
    // kBlock with a non-upload method (a GET with a body) is let through.
    if (caps.empty()) {
      v->reason = "allowed_destination";
      return PreAction::kAllow;
    }
    if (ex.content_length) {
      size_t idx = 0;
      Status st = volume_->CheckAndAdd(caps, *ex.content_length, 0, &idx);
      if (!st.ok()) {
        v->block = true;
        v->alert = true;
        // Only a cap that was reached is "volume_cap"; a full tracker or a
        // cap journal that cannot be written is a failure to decide.
        bool cap = st.code() == StatusCode::kPermissionDenied;
        v->reason = cap ? "volume_cap" : "inspection_failed";
        v->limit = cap ? caps[idx].max_bytes : 0;
        v->detail = st.message();
        return PreAction::kBlock;
      }
      v->reason = "allowed_destination";
      return PreAction::kAllow;
    }
    return PreAction::kInspect;  // size unknown: read it to count it
  }
  return PreAction::kInspect;
}

Verdict Decider::PostBody(const Policy& policy, const Exchange& ex, uint64_t body_bytes,
                          const Result<InspectionSummary>& inspection) {
  const Category& cat = *ex.category;
  Verdict v;
  if (!inspection.ok()) {
    v.detail = inspection.status().ToString();
    if (cat.fail_closed) {
      v.block = true;
      v.alert = true;
      v.reason = "inspection_failed";
      return v;
    }
    v.reason = "inspection_failed_open";
  }
  uint64_t individuals = inspection.ok() ? inspection->individuals : 0;
  bool inspect = cat.uploads == UploadAction::kInspect || ex.is_response;
  if (inspection.ok() && inspect) {
    for (const auto& t : cat.content.block_types) {
      auto it = inspection->types.find(t);
      if (it != inspection->types.end() && it->second > 0) {
        v.block = true;
        v.alert = true;
        v.reason = "sensitive_content";
        v.detail = std::to_string(it->second) + " x " + t + " to category " + cat.name;
        return v;
      }
    }
    if (cat.content.max_individuals > 0 && individuals >= cat.content.max_individuals) {
      v.block = true;
      v.alert = true;
      v.reason = "too_many_individuals";
      v.limit = cat.content.max_individuals;
      v.detail = std::to_string(individuals) +
                 " individuals >= " + std::to_string(cat.content.max_individuals) +
                 " for category " + cat.name;
      return v;
    }
    if (inspection->not_inspected > 0) {
      std::string parts;
      for (const auto& p : inspection->not_inspected_parts)
        parts += (parts.empty() ? "" : ", ") + p;
      v.reason = "not_inspected";
      v.detail = std::to_string(inspection->not_inspected) + " part(s) without text to inspect (" +
                 parts + ") to category " + cat.name;
      // Uploads only: the pictures of every web page would otherwise be blocked.
      if (cat.content.block_not_inspected && !ex.is_response) {
        v.block = true;
        v.alert = true;
        return v;
      }
    }
  }
  auto caps = CapsFor(policy, ex);
  if (!caps.empty()) {
    size_t idx = 0;
    Status st = volume_->CheckAndAdd(caps, body_bytes, individuals, &idx);
    if (!st.ok()) {
      v.block = true;
      v.alert = true;
      bool cap = st.code() == StatusCode::kPermissionDenied;  // else: tracker or journal failed
      v.reason = cap ? "volume_cap" : "inspection_failed";
      v.limit = cap && idx < caps.size() ? caps[idx].max_bytes : 0;
      v.detail = st.message();
      return v;
    }
  }
  if (v.reason.empty()) v.reason = inspect ? "inspected_clean" : "allowed_destination";
  return v;
}

BlockPage MakeBlockPage(const Settings& s, const Exchange& ex, const Verdict& v,
                        const std::string& event_id, int64_t now_micros) {
  std::string ja, en;
  const std::string cat = ex.category ? ex.category->name : "unknown";
  if (v.reason == "destination_blocked") {
    ja = "この宛先（分類: " + cat +
         "）へのアップロードは、社内規程で禁止されています。"
         "個人向けクラウドストレージやファイル転送サービスは業務に使えません。";
    en = "Uploads to this destination (category: " + cat +
         ") are not allowed by company "
         "policy. Personal cloud storage and file-transfer services cannot be used for work.";
  } else if (v.reason == "upload_too_large") {
    ja = "この宛先への1回のアップロード・添付は " + HumanBytes(v.limit) + " までです。";
    en = "A single upload or attachment to this destination is limited to " + HumanBytes(v.limit) +
         ".";
  } else if (v.reason == "volume_cap") {
    ja = "一定時間内に送信できるデータ量の上限を超えました（分割アップロードも合算されます）。";
    en = "You have reached the limit on how much data may be sent in a period of time "
         "(uploads split into parts are counted together).";
  } else if (v.reason == "sensitive_content") {
    ja = "個人情報（マイナンバーなど）が含まれているため、この宛先への送信を止めました。";
    en = "The upload contains personal data (such as a My Number) that may not be sent to "
         "this destination.";
  } else if (v.reason == "too_many_individuals") {
    ja = "多数の人の個人情報が含まれているため、送信を止めました。";
    en = "The upload contains personal data about many people and was stopped.";
  } else if (v.reason == "not_inspected") {
    ja = "中身を検査できないファイル（画像、文字情報のないPDFなど）が含まれているため、"
         "安全のため送信を止めました。";
    en = "The upload contains a file whose content cannot be inspected (an image, a PDF "
         "without text, an unknown format), so it was stopped to be safe.";
  } else {
    ja = "内容を確認できなかったため、安全のため送信を止めました。";
    en = "The upload could not be inspected, so it was stopped to be safe.";
  }
  time_t secs = static_cast<time_t>(now_micros / 1'000'000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char when[64];
  strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
  std::string body =
      "<!DOCTYPE html>\n<html lang=\"ja\"><head><meta charset=\"utf-8\">"
      "<title>送信がブロックされました / Upload blocked</title>"
      "<style>body{font-family:sans-serif;max-width:42em;margin:2em auto;line-height:1.6}"
      "code{font-size:1.3em;background:#eee;padding:.1em .4em}</style></head><body>\n"
      "<h1>送信がブロックされました</h1>\n<p>" +
      HtmlEscape(ja) + "</p>\n<p>宛先: " + HtmlEscape(ex.host) + "<br>イベントID: <code>" +
      HtmlEscape(event_id) + "</code><br>日時: " + when +
      "</p>\n<p>業務上必要な場合は、このイベントIDを添えて" + HtmlEscape(s.help_desk_ja) +
      "へご連絡ください。</p>\n<hr>\n<h1 lang=\"en\">Upload blocked</h1>\n<p lang=\"en\">" +
      HtmlEscape(en) + "</p>\n<p lang=\"en\">Destination: " + HtmlEscape(ex.host) +
      "<br>Event ID: <code>" + HtmlEscape(event_id) + "</code><br>Time: " + when +
      "</p>\n<p lang=\"en\">If you need this for your work, contact " + HtmlEscape(s.help_desk) +
      " and quote the event ID.</p>\n<!-- mamori reason: " + HtmlEscape(v.reason) +
      " -->\n</body></html>\n";
  BlockPage page;
  page.head =
      "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html; charset=utf-8\r\n"
      "Cache-Control: no-store\r\nX-Mamori-Event-Id: " +
      event_id + "\r\nX-Mamori-Reason: " + v.reason +
      "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  page.body = std::move(body);
  return page;
}

}  // namespace mamori::egress
