// Alerts for events that need a person's attention, shared by the vault and
// egress: a JSON POST to a webhook (http:// only; put a local relay in front
// of an https endpoint), an e-mail through an SMTP relay (plain TCP, no auth:
// a local Postfix), and a line to syslog (LOG_AUTHPRIV|LOG_WARNING).
//
// Sending happens on a background thread with a bounded queue, so a slow or
// dead webhook or relay never delays the request that raised the alert. A
// full queue drops the alert and counts it (the audit log still has the
// event). Alerts must carry no secret and no raw personal data.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace mamori::alert {

struct SmtpOptions {
  std::string relay;            // "" = no mail; "127.0.0.1:25", "[::1]:2525", "mail.local"
  std::string from;             // envelope and header sender, e.g. "mamori@example.jp"
  std::vector<std::string> to;  // recipients, at least one when relay is set
  std::string helo = "mamori";  // the EHLO name
};

struct AlertOptions {
  std::string webhook_url;  // "" = no webhook; "http://127.0.0.1:9000/hook"
  SmtpOptions smtp;
  bool syslog = true;
  std::string syslog_ident = "mamori";
  size_t max_queue = 1000;
  int timeout_ms = 3000;  // per delivery: connect + send + answer
};

struct ParsedUrl {
  std::string host, port, path;
};
// Parses "http://host[:port]/path". https is refused with a message.
Result<ParsedUrl> ParseHttpUrl(const std::string& url);

// Delivers one plain-text message through `o.relay`: EHLO (HELO if refused),
// MAIL FROM, RCPT TO for each recipient, DATA with dot-stuffing and CRLF line
// ends, QUIT. Any 4xx/5xx reply is an error that names the step. `subject`
// must be ASCII; the body is sent as UTF-8 (8bit).
Status SendMail(const SmtpOptions& o, const std::string& subject, const std::string& body,
                int timeout_ms);

// Checks addresses and relay syntax (no line breaks, one '@', no '<>').
Status ValidateSmtpOptions(const SmtpOptions& o);

class Alerter {
 public:
  static Result<std::unique_ptr<Alerter>> Start(const AlertOptions& options);
  ~Alerter();
  // Queues an alert (a JSON object; "kind" names it in the mail subject).
  // Never blocks on the network.
  void Send(nlohmann::json alert);
  // Waits until the queue is empty (for tests and shutdown), at most timeout_ms.
  void Flush(int timeout_ms);
  // Deliveries that succeeded / failed (one per channel per alert), and
  // alerts dropped because the queue was full.
  uint64_t sent() const;
  uint64_t failed() const;
  uint64_t dropped() const;

 private:
  explicit Alerter(AlertOptions o) : options_(std::move(o)) {}
  void Run();
  Status Post(const std::string& body);
  AlertOptions options_;
  ParsedUrl url_;
  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<nlohmann::json> queue_;
  bool stop_ = false, busy_ = false;
  uint64_t sent_ = 0, failed_ = 0, dropped_ = 0;
  std::thread thread_;
};

}  // namespace mamori::alert
