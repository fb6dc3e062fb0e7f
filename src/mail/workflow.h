// Release, discard and sender cancel of held mail (保留メール), shared by
// `mamori mail` and the milter (its 一時保留 timer and cancel mails).
//
// Crash safety (kill -9 at any point): each action first moves the row from
// "held" to "releasing"/"discarding" with a compare-and-set in SQLite, so only
// one actor (admin, sender, timer) wins; then writes the audit record; then
// runs postsuper; then marks the row "released"/"discarded". A crash leaves
// the row in "releasing"/"discarding", and Recover() finishes the action the
// claim chose (writing its audit record again: audit is at least once).
// Postfix delivers a message at most once, whatever the number of postsuper
// -H calls. Nothing is delivered that the audit log does not record.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/redact.h"
#include "common/status.h"
#include "mail/policy.h"
#include "mail/postfix.h"
#include "mail/store.h"

namespace mamori::mail {

struct ActionOutcome {
  bool done = false;     // released / discarded now
  size_t approvals = 0;  // approvals recorded (two-person rule)
  size_t needed = 1;     // approvals needed
  std::string queue_id;  // Postfix queue id acted on
  std::string event_id;  // "" for mail not held by mamori
  std::string message;   // one line for the user
};

class HoldWorkflow {
 public:
  HoldWorkflow(HoldStore* holds, AuditWriter* audit, const PostfixTools* postfix,
               const Policy* policy, const HashKey* key, const Clock* clock = &Clock::Real())
      : holds_(holds),
        audit_(audit),
        postfix_(postfix),
        policy_(policy),
        key_(key),
        clock_(clock) {}

  // Releases by event id or queue id. With release.approvals = 2 the first
  // caller records an approval (done = false) and a second, different user
  // releases. `skip_approvals` is for the 一時保留 timer only.
  Result<ActionOutcome> Release(const std::string& id, const std::string& user,
                                bool skip_approvals = false);
  // Deletes held mail (administrator).
  Result<ActionOutcome> Discard(const std::string& id, const std::string& user);
  // The sender withdraws their own held mail. `sender` is the envelope sender
  // (or SASL-authenticated address) of the person asking; it must hash to the
  // held mail's sender_hash, else kPermissionDenied.
  Result<ActionOutcome> CancelBySender(const std::string& event_id, const std::string& sender);
  // Releases delay-only mail whose release time has come. Returns how many.
  Result<size_t> ReleaseDue();
  // Finishes actions interrupted by a crash (claims older than
  // `older_than_seconds`), and marks "gone" held rows older than that whose
  // mail is in no Postfix queue at all (a milter killed after writing the
  // row: Postfix tempfailed the message, the client retries it).
  Result<size_t> Recover(const std::string& user, int64_t older_than_seconds);

 private:
  Result<ActionOutcome> DoDiscard(const std::string& id, const std::string& user,
                                  const std::string& action);
  // Where the mail is now: "hold", "active", ..., or "" if in no queue.
  Result<std::string> QueueOf(const std::string& queue_id);
  // Audits `action` (default mail.release / mail.discard), acts in Postfix and
  // moves the claim to its final state. On an audit failure the claim goes
  // back to held (unless recovering); on a Postfix failure it stays for
  // Recover().
  Status Finish(const HeldMail& m, const std::string& user, bool release, bool recovering,
                const std::string& action = "");
  // Releases or discards mail that Postfix holds but mamori did not (e.g. a
  // header_checks HOLD), by its queue id.
  Result<ActionOutcome> ActOnForeignHold(const std::string& id, const std::string& user,
                                         bool release, const std::string& action);
  // Claims held mail `m` (found as `id`) for release or discard; fails if
  // someone else acted on it first.
  Status Claim(const HeldMail& m, const std::string& id, bool release);

  HoldStore* holds_;
  AuditWriter* audit_;
  const PostfixTools* postfix_;
  const Policy* policy_;
  const HashKey* key_;
  const Clock* clock_;
};

}  // namespace mamori::mail
