// Alerts for blocks that need a person's attention: a JSON POST to a webhook
// (http:// only; put a local relay in front of an https endpoint) and a line
// to syslog (LOG_AUTHPRIV|LOG_WARNING, ident "mamori-egress").
//
// Sending happens on a background thread with a bounded queue, so a slow or
// dead webhook never delays an ICAP answer. A full queue drops the alert and
// counts it (the audit log still has the event).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/status.h"

namespace mamori::egress {

struct AlertOptions {
  std::string webhook_url;  // "" = no webhook; "http://127.0.0.1:9000/hook"
  bool syslog = true;
  size_t max_queue = 1000;
  int timeout_ms = 3000;  // connect + send + response, per attempt
};

struct ParsedUrl {
  std::string host, port, path;
};
// Parses "http://host[:port]/path". https is refused with a message.
Result<ParsedUrl> ParseHttpUrl(const std::string& url);

class Alerter {
 public:
  static Result<std::unique_ptr<Alerter>> Start(const AlertOptions& options);
  ~Alerter();
  // Queues an alert. Never blocks on the network.
  void Send(nlohmann::json alert);
  // Waits until the queue is empty (for tests and shutdown), at most timeout_ms.
  void Flush(int timeout_ms);
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
  std::deque<std::string> queue_;
  bool stop_ = false, busy_ = false;
  uint64_t sent_ = 0, failed_ = 0, dropped_ = 0;
  std::thread thread_;
};

}  // namespace mamori::egress
