#include "mail/workflow.h"

#include "mail/address.h"

namespace mamori::mail {
namespace {

constexpr const char* kHeld = "held";

std::string ClaimFor(bool release) { return release ? "releasing" : "discarding"; }
std::string FinalFor(bool release) { return release ? "released" : "discarded"; }

}  // namespace

Result<std::string> HoldWorkflow::QueueOf(const std::string& queue_id) {
  ASSIGN_OR_RETURN(auto queue, postfix_->ListQueue());
  for (const auto& e : queue) {
    if (e.queue_id == queue_id) return e.queue_name;
  }
  return std::string();
}

Status HoldWorkflow::Finish(const HeldMail& m, const std::string& user, bool release,
                            bool recovering, const std::string& action) {
  const int64_t now = clock_->NowMicros();
  const std::string who = recovering ? user + " (finishing an interrupted action)" : user;
  // Audit first: an action that cannot be recorded is not taken.
  Status st = audit_->WriteAdmin(!action.empty() ? action
                                 : release       ? "mail.release"
                                                 : "mail.discard",
                                 m, who, release ? "allow" : "deny");
  if (!st.ok()) {
    if (!recovering) (void)holds_->Transition(m.event_id, ClaimFor(release), kHeld, now);
    return st;
  }
  // Both are idempotent: a mail released twice is delivered once.
  st = release ? postfix_->Release(m.queue_id) : postfix_->DeleteHeld(m.queue_id);
  if (!st.ok()) {
    // Leave the claim: Recover() retries. The audit record already says what
    // was decided.
    return st.WithContext("the action is recorded and will be retried by `mamori mail recover`");
  }
  ASSIGN_OR_RETURN(bool moved,
                   holds_->Transition(m.event_id, ClaimFor(release), FinalFor(release), now));
  (void)moved;  // another recoverer may have finished it first
  return Status::Ok();
}

Result<ActionOutcome> HoldWorkflow::ActOnForeignHold(const std::string& id, const std::string& user,
                                                     bool release, const std::string& action) {
  ASSIGN_OR_RETURN(std::string q, QueueOf(id));
  if (q != "hold") return NotFound("mail " + id + " is not on hold");
  HeldMail foreign;
  foreign.queue_id = id;
  RETURN_IF_ERROR(audit_->WriteAdmin(action, foreign, user, release ? "allow" : "deny"));
  RETURN_IF_ERROR(release ? postfix_->Release(id) : postfix_->DeleteHeld(id));
  ActionOutcome out;
  out.done = true;
  out.queue_id = id;
  out.message = id + ": " + FinalFor(release) + " (queue id " + id + ")";
  return out;
}

Status HoldWorkflow::Claim(const HeldMail& m, const std::string& id, bool release) {
  ASSIGN_OR_RETURN(bool claimed,
                   holds_->Transition(m.event_id, kHeld, ClaimFor(release), clock_->NowMicros()));
  if (claimed) return Status::Ok();
  ASSIGN_OR_RETURN(HeldMail now, holds_->Find(m.event_id));
  return FailedPrecondition("mail " + id + " is " + now.status +
                            " (someone else acted on it first)");
}

Result<ActionOutcome> HoldWorkflow::Release(const std::string& id, const std::string& user,
                                            bool skip_approvals) {
  ActionOutcome out;
  auto found = holds_->Find(id);
  if (!found.ok()) {
    if (found.status().code() != StatusCode::kNotFound || !ValidQueueId(id)) {
      return found.status();
    }
    return ActOnForeignHold(id, user, /*release=*/true, "mail.release");
  }
  HeldMail m = *found;
  out.queue_id = m.queue_id;
  out.event_id = m.event_id;
  if (m.status != kHeld) {
    return FailedPrecondition("mail " + id + " is " + m.status + ", not held");
  }
  ASSIGN_OR_RETURN(std::string q, QueueOf(m.queue_id));
  if (q != "hold") {
    return NotFound("mail " + id + " (queue id " + m.queue_id + ") is " +
                    (q.empty() ? "no longer in the Postfix queue" : "in the " + q + " queue") +
                    ", not on hold");
  }
  out.needed = skip_approvals ? 1 : policy_->release_approvals;
  if (out.needed > 1) {
    // The approval is audited before it counts.
    HeldMail a = m;
    a.approvals.push_back(user);
    RETURN_IF_ERROR(audit_->WriteAdmin("mail.approve", a, user, "hold"));
    ASSIGN_OR_RETURN(out.approvals, holds_->AddApproval(m.event_id, user, clock_->NowMicros()));
    if (out.approvals < out.needed) {
      out.message = id + ": approval " + std::to_string(out.approvals) + " of " +
                    std::to_string(out.needed) + " recorded for " + user +
                    "; another person must approve before it is released";
      return out;
    }
    ASSIGN_OR_RETURN(m, holds_->Find(m.event_id));
  }
  RETURN_IF_ERROR(Claim(m, id, /*release=*/true));
  RETURN_IF_ERROR(Finish(m, user, /*release=*/true, /*recovering=*/false));
  out.done = true;
  out.message = id + ": released (queue id " + m.queue_id + ")";
  return out;
}

Result<ActionOutcome> HoldWorkflow::Discard(const std::string& id, const std::string& user) {
  return DoDiscard(id, user, "mail.discard");
}

Result<ActionOutcome> HoldWorkflow::DoDiscard(const std::string& id, const std::string& user,
                                              const std::string& action) {
  ActionOutcome out;
  auto found = holds_->Find(id);
  if (!found.ok()) {
    if (found.status().code() != StatusCode::kNotFound || !ValidQueueId(id) ||
        action != "mail.discard") {
      return found.status();
    }
    return ActOnForeignHold(id, user, /*release=*/false, action);
  }
  HeldMail m = *found;
  out.queue_id = m.queue_id;
  out.event_id = m.event_id;
  if (m.status != kHeld) {
    return FailedPrecondition("mail " + id + " is " + m.status + ", not held");
  }
  RETURN_IF_ERROR(Claim(m, id, /*release=*/false));
  RETURN_IF_ERROR(Finish(m, user, /*release=*/false, /*recovering=*/false, action));
  out.done = true;
  out.message = id + ": " + (action == "mail.cancel" ? "cancelled" : "discarded") + " (queue id " +
                m.queue_id + ")";
  return out;
}

Result<ActionOutcome> HoldWorkflow::CancelBySender(const std::string& event_id,
                                                   const std::string& sender) {
  ASSIGN_OR_RETURN(HeldMail m, holds_->Find(event_id));
  const std::string normalized = NormalizeEnvelopeAddress(sender);
  if (normalized.empty() || key_->Hash("email", normalized) != m.sender_hash) {
    // Same answer whether the mail exists or not would be nicer, but event ids
    // are random and unguessable; say clearly what is wrong.
    return PermissionDenied("mail " + event_id + " was not sent by " + MaskEmail(normalized) +
                            "; only its sender (or an administrator) can cancel it");
  }
  return DoDiscard(m.event_id, MaskEmail(normalized), "mail.cancel");
}

Result<size_t> HoldWorkflow::ReleaseDue() {
  ASSIGN_OR_RETURN(auto due, holds_->DueForRelease(clock_->NowMicros()));
  size_t n = 0;
  Status first;
  for (const auto& m : due) {
    auto r = Release(m.event_id, "mamori-delay", /*skip_approvals=*/true);
    if (r.ok() && r->done) {
      ++n;
    } else if (!r.ok() && first.ok() && r.status().code() != StatusCode::kFailedPrecondition) {
      first = r.status();  // e.g. postsuper failed; retried next tick
    }
  }
  if (!first.ok()) return first;
  return n;
}

Result<size_t> HoldWorkflow::Recover(const std::string& user, int64_t older_than_seconds) {
  const int64_t cutoff = clock_->NowMicros() - older_than_seconds * 1'000'000;
  ASSIGN_OR_RETURN(auto stuck, holds_->Interrupted(cutoff));
  ASSIGN_OR_RETURN(auto held, holds_->List(/*include_closed=*/false));
  if (stuck.empty() && held.empty()) return size_t{0};
  ASSIGN_OR_RETURN(auto queue, postfix_->ListQueue());
  auto where = [&](const std::string& qid) -> std::string {
    for (const auto& e : queue) {
      if (e.queue_id == qid) return e.queue_name;
    }
    return "";
  };
  size_t n = 0;
  for (const auto& m : stuck) {
    const bool release = m.status == "releasing";
    const std::string q = where(m.queue_id);
    if (q != "" && q != "hold" && !release) {
      return Internal("mail " + m.event_id + " was being discarded but is in the " + q +
                      " queue; check it by hand (postqueue -j)");
    }
    RETURN_IF_ERROR(Finish(m, user, release, /*recovering=*/true));
    ++n;
  }
  for (const auto& m : held) {
    if (m.time_micros > cutoff || !where(m.queue_id).empty()) continue;
    ASSIGN_OR_RETURN(bool moved,
                     holds_->Transition(m.event_id, kHeld, "gone", clock_->NowMicros()));
    if (moved) {
      RETURN_IF_ERROR(audit_->WriteAdmin("mail.gone", m, user, "error"));
      ++n;
    }
  }
  return n;
}

}  // namespace mamori::mail
