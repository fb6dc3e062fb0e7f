// Notice mail to senders (送信者への通知) and cancel by mail (送信取り消し).
//
// When mamori holds a mail or converts its To/Cc to Bcc, the sender gets a
// short notice (Japanese and English) through Postfix's sendmail(1): why,
// the event id, and for held mail how to cancel it: send any mail to
// `mamori-cancel+EVENTID@<internal domain>` (policy sender_notice). The
// milter discards that request mail and answers with another notice.
// Notices are best effort: the audit log and the verdict headers are the
// record; a notice that cannot be sent is logged to stderr.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "mail/policy.h"
#include "mail/session.h"
#include "mail/workflow.h"

namespace mamori::mail {

struct NoticeOptions {
  std::string postfix_config;  // sendmail -C DIR ("" = default instance)
  size_t max_queued = 1000;    // notices waiting to be sent; more are dropped (logged)
};

// The notice texts (a complete RFC 5322 message, CRLF-free: sendmail -i
// takes LF). Exposed for tests.
std::string HoldOrBccNotice(const Policy& policy, const VerdictRecord& r,
                            const std::string& subject);
std::string CancelAnswer(const Policy& policy, const std::string& sender,
                         const std::string& event_id, const std::string& result);

class MailDesk : public SenderDesk {
 public:
  // `flow` performs cancels; it must outlive the desk.
  MailDesk(const Policy* policy, HoldWorkflow* flow, NoticeOptions options);
  ~MailDesk() override;  // sends what is queued, then stops
  void Notify(const VerdictRecord& record, const std::string& subject) override;
  void Cancel(const std::string& sender, const std::string& event_id) override;

 private:
  void Enqueue(std::function<void()> job);
  void Send(const std::string& to, const std::string& message);
  void Loop();

  const Policy* policy_;
  HoldWorkflow* flow_;
  NoticeOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace mamori::mail
