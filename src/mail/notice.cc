#include "mail/notice.h"

#include <sodium.h>

#include <cstring>
#include <ctime>
#include <iostream>

#include "common/redact.h"
#include "mail/address.h"
#include "mail/postfix.h"

namespace mamori::mail {
namespace {

// RFC 2047 B-encoding of UTF-8 text, in words short enough for header lines.
std::string EncodeWord(const std::string& text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    // Up to 45 bytes per word, never splitting a UTF-8 sequence.
    size_t n = std::min<size_t>(45, text.size() - i);
    while (i + n < text.size() && (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80) --n;
    std::string b64(sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(b64.data(), b64.size(), reinterpret_cast<const unsigned char*>(&text[i]), n,
                      sodium_base64_VARIANT_ORIGINAL);
    b64.resize(std::strlen(b64.c_str()));
    if (!out.empty()) out += "\n ";
    out += "=?UTF-8?B?" + b64 + "?=";
    i += n;
  }
  return out;
}

// A plain address sendmail can take as an argument (no option, no spaces).
bool IsValidNoticeRecipient(const std::string& a) {
  if (a.empty() || a.size() > 254 || a.front() == '-' || a.find('@') == std::string::npos) {
    return false;
  }
  for (char c : a) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) ||
          std::strchr(".!#$%&'*+/=?^_`{|}~@-", c) != nullptr)) {
      return false;
    }
  }
  return true;
}

std::string Date() {
  time_t t = time(nullptr);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

// Header values from the sender's own mail are folded onto one line and
// stripped of control characters, so they cannot inject headers.
std::string OneLine(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\t') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) {
      out += c;
    }
  }
  return out;
}

std::string Message(const Policy& p, const std::string& to, const std::string& subject_ja,
                    const std::string& tag, const std::string& original_subject,
                    const std::string& body) {
  std::string m;
  m += "From: " + EncodeWord("mamori 誤送信防止") + " <" + p.notice_from + ">\n";
  m += "To: " + to + "\n";
  m += "Subject: " + EncodeWord(subject_ja) + " " + tag;
  if (!original_subject.empty()) m += "\n " + OneLine(original_subject);
  m += "\n";
  m += "Date: " + Date() + "\n";
  m += "Auto-Submitted: auto-generated\n";
  m += "MIME-Version: 1.0\n";
  m += "Content-Type: text/plain; charset=UTF-8\n";
  m += "Content-Transfer-Encoding: 8bit\n\n";
  m += body;
  return m;
}

}  // namespace

std::string HoldOrBccNotice(const Policy& p, const VerdictRecord& r, const std::string& subject) {
  const Verdict& v = r.verdict;
  const std::string cancel = p.notice_cancel_address.substr(0, p.notice_cancel_address.find('@')) +
                             "+" + r.event_id + "@" +
                             p.notice_cancel_address.substr(p.notice_cancel_address.find('@') + 1);
  std::string body;
  std::string subject_ja;
  if (v.action == Action::kHold) {
    subject_ja = v.delay_only ? "送信を一時保留しました" : "送信を保留しました";
    body += "お送りになったメールを mamori が" +
            std::string(v.delay_only ? "一時保留しています。" : "保留しました。") + "\n";
    body += "Your mail was " + std::string(v.delay_only ? "delayed" : "held") + " by mamori.\n\n";
    body += "  件名 Subject:     (この通知の件名の末尾 / at the end of this notice's subject)\n";
    body += "  宛先ドメイン To:  " + Join(v.recipient_domains) + "\n";
    body += "  理由 Reasons:     " + Join(v.reasons) + "\n";
    if (!v.typo_domains.empty()) body += "  ドメイン誤り Typo: " + Join(v.typo_domains) + "\n";
    if (r.content.my_numbers) {
      body += "  個人番号 My Numbers: " + std::to_string(r.content.my_numbers) + "\n";
    }
    if (r.content.individuals) {
      body += "  人数 Individuals: " + std::to_string(r.content.individuals) + "\n";
    }
    body += "  イベント Event:   " + r.event_id + "\n\n";
    if (v.delay_only) {
      body += std::to_string(v.delay_seconds / 60 ? v.delay_seconds / 60 : 1) +
              " 分後に自動的に送信されます。It is sent automatically after " +
              std::to_string(v.delay_seconds) + " seconds.\n";
    } else {
      body +=
          "管理者が確認するまで送信されません。It is not sent until an administrator "
          "releases it.\n";
    }
    body +=
        "\n取り消すには、次の宛先へ空のメールを送ってください（このメールに返信しても "
        "取り消せません）:\nTo cancel it, send an empty mail to:\n\n    " +
        cancel + "\n";
  } else {
    subject_ja = "宛先を Bcc に変換しました";
    body += "お送りになったメールの To/Cc に社外の宛先が " + std::to_string(v.external_to_cc) +
            " 件以上あったため、mamori が To/Cc を Bcc に変換しました。\n"
            "受信者はそれぞれメールを受け取り、ほかの受信者のアドレスは見えません。\n\n"
            "Your mail had " +
            std::to_string(v.external_to_cc) +
            " external addresses in To/Cc, so mamori converted them to Bcc: every recipient "
            "still receives it and no one sees the others. Your sent copy still shows the "
            "original To/Cc; the recipients' copies show \"" +
            p.bcc_to_value + "\".\n\n";
    body += "  宛先ドメイン To:  " + Join(v.recipient_domains) + "\n";
    body += "  イベント Event:   " + r.event_id + "\n";
  }
  body += "\n-- \nmamori mail guard. 問い合わせの際はイベント番号 " + r.event_id +
          " をお伝えください。\n";
  return Message(p, r.envelope.sender, subject_ja, "[mamori " + r.event_id + "]", subject, body);
}

std::string CancelAnswer(const Policy& p, const std::string& sender, const std::string& event_id,
                         const std::string& result) {
  const bool ok = result.empty();
  std::string body;
  if (ok) {
    body = "メール " + event_id + " の送信を取り消しました。送信されません。\n" + "Mail " +
           event_id + " was cancelled and will not be sent.\n";
  } else {
    body = "メール " +
           (event_id.empty() ? std::string("(イベント番号なし / no event id)") : event_id) +
           " を取り消せませんでした。\nCould not cancel it: " + result + "\n\n" +
           "宛先に +イベント番号 を付けてください / Put the event id in the address: " +
           p.notice_cancel_address.substr(0, p.notice_cancel_address.find('@')) + "+M...@" +
           p.notice_cancel_address.substr(p.notice_cancel_address.find('@') + 1) + "\n";
  }
  return Message(p, sender, ok ? "送信を取り消しました" : "取り消しできませんでした",
                 "[mamori " + (event_id.empty() ? std::string("-") : event_id) + "]", "", body);
}

MailDesk::MailDesk(const Policy* policy, HoldWorkflow* flow, NoticeOptions options)
    : policy_(policy), flow_(flow), options_(std::move(options)) {
  worker_ = std::thread([this] { Loop(); });
}

MailDesk::~MailDesk() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void MailDesk::Enqueue(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (jobs_.size() >= options_.max_queued) {
      std::cerr << "mamori milter: " << options_.max_queued
                << " sender notices waiting; dropping one (NoticeOptions.max_queued)\n";
      return;
    }
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void MailDesk::Loop() {
  while (true) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, nothing left
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

void MailDesk::Send(const std::string& to, const std::string& message) {
  std::vector<std::string> argv = {policy_->notice_sendmail};
  if (!options_.postfix_config.empty()) {
    argv.push_back("-C");
    argv.push_back(options_.postfix_config);
  }
  argv.insert(argv.end(), {"-i", "-f", policy_->notice_from, "--", to});
  auto r = RunProgram(argv, 1 << 16, message);
  if (!r.ok()) {
    std::cerr << "mamori milter: notice to " << MaskEmail(to)
              << " not sent: " << r.status().ToString() << "\n";
  }
}

void MailDesk::Notify(const VerdictRecord& record, const std::string& subject) {
  if (!IsValidNoticeRecipient(record.envelope.sender)) return;
  std::string to = record.envelope.sender;
  std::string msg = HoldOrBccNotice(*policy_, record, subject);
  Enqueue([this, to = std::move(to), msg = std::move(msg)] { Send(to, msg); });
}

void MailDesk::Cancel(const std::string& sender, const std::string& event_id) {
  if (!IsValidNoticeRecipient(sender)) return;
  Enqueue([this, sender, event_id] {
    std::string result;
    if (event_id.empty()) {
      result = "no event id in the address or the Subject";
    } else {
      auto r = flow_->CancelBySender(event_id, sender);
      if (!r.ok()) result = r.status().message();
    }
    Send(sender, CancelAnswer(*policy_, sender, event_id, result));
  });
}

}  // namespace mamori::mail
