#include "mail/session.h"

#include <sodium.h>

#include <algorithm>

#include "mail/address.h"

namespace mamori::mail {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// The steps we want and the replies we do not want to wait for.
constexpr uint32_t kWantedProtocol = milter::kNoConnect | milter::kNoHelo | milter::kNoUnknown |
                                     milter::kNoData | milter::kNrMail | milter::kNrRcpt |
                                     milter::kNrHeader | milter::kNrEoh | milter::kNrBody;
constexpr uint32_t kWantedActions = milter::kActAddHeaders | milter::kActChangeHeaders |
                                    milter::kActQuarantine | milter::kActSetSymList;

// Event ids as RandomEventId makes them.
bool IsEventId(std::string_view s) {
  if (s.size() != 12 || s[0] != 'M') return false;
  for (char c : s.substr(1)) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '9'))) return false;
  }
  return true;
}

// Every recipient is the cancel address (local part optionally with
// "+EVENTID"). The event id comes from the extension or the Subject.
bool IsCancelRequest(const Policy& policy, const std::vector<std::string>& rcpts,
                     const std::string& subject, std::string* event_id) {
  const std::string& cancel = policy.notice_cancel_address;
  if (cancel.empty() || rcpts.empty()) return false;
  const size_t at = cancel.rfind('@');
  const std::string local = cancel.substr(0, at), domain = cancel.substr(at + 1);
  for (const auto& r : rcpts) {
    const size_t rat = r.rfind('@');
    if (rat == std::string::npos || !IEquals(r.substr(rat + 1), domain)) return false;
    std::string rlocal = r.substr(0, rat);
    const size_t plus = rlocal.find('+');
    if (plus != std::string::npos) {
      std::string ext = rlocal.substr(plus + 1);
      for (char& c : ext) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (IsEventId(ext)) *event_id = ext;
      rlocal.resize(plus);
    }
    if (!IEquals(rlocal, local)) return false;
  }
  if (event_id->empty()) {
    for (size_t i = 0; i + 12 <= subject.size(); ++i) {
      if (IsEventId(std::string_view(subject).substr(i, 12))) {
        *event_id = subject.substr(i, 12);
        break;
      }
    }
  }
  return true;
}

}  // namespace

std::string RandomEventId() {
  static const char kAlphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";  // 32, no 0/O/1/I
  unsigned char raw[11];
  randombytes_buf(raw, sizeof raw);
  std::string id = "M";
  for (unsigned char c : raw) id.push_back(kAlphabet[c & 31]);
  return id;
}

Session::Session(SessionDeps deps) : deps_(std::move(deps)) {}

Session::~Session() { ResetMessage(); }

bool Session::Reserve(size_t n) {
  const Budgets& b = deps_.policy->budgets;
  if (message_.size() + n > b.max_message_bytes) {
    message_error_ = ResourceExhausted("message exceeds the inspection budget of " +
                                       std::to_string(b.max_message_bytes) + " bytes");
    return false;
  }
  if (deps_.total_buffered != nullptr) {
    uint64_t now = deps_.total_buffered->fetch_add(n) + n;
    reserved_ += n;
    if (now > deps_.max_total_buffered_bytes) {
      message_error_ = ResourceExhausted("milter connections together buffer more than " +
                                         std::to_string(deps_.max_total_buffered_bytes) +
                                         " bytes; try again later");
      return false;
    }
  }
  return true;
}

std::string Session::Macro(const std::string& name) const {
  auto it = macros_.find(name);
  if (it != macros_.end()) return it->second;
  // Postfix sends some macros with braces, some without ("i" vs "{i}").
  if (name.size() > 2 && name.front() == '{') {
    it = macros_.find(name.substr(1, name.size() - 2));
    if (it != macros_.end()) return it->second;
  }
  return "";
}

void Session::ResetMessage() {
  sender_.clear();
  rcpts_.clear();
  message_.clear();
  message_.shrink_to_fit();
  if (deps_.total_buffered != nullptr && reserved_ > 0) deps_.total_buffered->fetch_sub(reserved_);
  reserved_ = 0;
  to_cc_values_.clear();
  subject_.clear();
  to_count_ = cc_count_ = header_count_ = 0;
  in_body_ = false;
  message_error_ = Status::Ok();
}

void Session::Reply(std::string* out, uint32_t nr_flag) {
  if (nr_flag != 0 && (proto_ & nr_flag)) return;
  milter::AppendPacket(out, milter::kContinue, {});
}

Status Session::Handle(const milter::Packet& p, std::string* out) {
  const Budgets& b = deps_.policy->budgets;
  if (!negotiated_ && p.command != milter::kOptneg && p.command != milter::kMacro) {
    return InvalidArgument(std::string("milter command '") + p.command +
                           "' before option negotiation");
  }
  switch (p.command) {
    case milter::kOptneg: {
      ASSIGN_OR_RETURN(auto offered, milter::ParseOptions(p.data));
      if (offered.version < 2) {
        return Unimplemented("MTA speaks milter protocol version " +
                             std::to_string(offered.version) + "; mamori needs 2 or later (6)");
      }
      milter::Options mine;
      mine.version = std::min(offered.version, milter::kProtocolVersion);
      actions_ = kWantedActions & offered.actions;
      // Protocol flags are only meaningful if the MTA offers them.
      proto_ = kWantedProtocol & offered.protocol;
      mine.actions = actions_;
      mine.protocol = proto_;
      // The macros we read (MAIL, EOM) instead of Postfix's defaults: seven
      // at MAIL, none of them the client address. An empty list would fall
      // back to the default, so CONNECT (whose default formats the client
      // name) and RCPT get one cheap macro each; HELO, DATA and EOH keep
      // their defaults, which are empty or one value.
      if (actions_ & milter::kActSetSymList) {
        mine.macro_lists = {{milter::kStageConnect, "j"},
                            {milter::kStageMail, "i {auth_authen} {client_addr}"},
                            {milter::kStageRcpt, "{rcpt_addr}"},
                            {milter::kStageEom, "i"}};
      }
      negotiated_ = true;
      milter::AppendOptions(out, mine);
      return Status::Ok();
    }
    case milter::kMacro: {
      ASSIGN_OR_RETURN(auto m, milter::ParseMacros(p.data));
      for (const auto& [k, v] : m.values) {
        if (macros_.size() >= b.max_macros && !macros_.count(std::string(k))) {
          return ResourceExhausted("more than " + std::to_string(b.max_macros) +
                                   " milter macros on one connection");
        }
        macros_[std::string(k)] = std::string(v);
      }
      return Status::Ok();
    }
    case milter::kConnect:
      macros_.clear();
      Reply(out, milter::kNrConnect);
      return Status::Ok();
    case milter::kHelo:
      Reply(out, milter::kNrHelo);
      return Status::Ok();
    case milter::kData:
      Reply(out, milter::kNrData);
      return Status::Ok();
    case milter::kUnknown:
      Reply(out, milter::kNrUnknown);
      return Status::Ok();
    case milter::kMail: {
      ResetMessage();
      ASSIGN_OR_RETURN(auto args, milter::SplitStrings(p.data));
      if (args.empty()) return InvalidArgument("milter MAIL packet without an address");
      sender_ = NormalizeEnvelopeAddress(args[0]);
      Reply(out, milter::kNrMail);
      return Status::Ok();
    }
    case milter::kRcpt: {
      ASSIGN_OR_RETURN(auto args, milter::SplitStrings(p.data));
      if (args.empty()) return InvalidArgument("milter RCPT packet without an address");
      if (rcpts_.size() >= b.max_recipients) {
        if (message_error_.ok()) {
          message_error_ = ResourceExhausted("more than " + std::to_string(b.max_recipients) +
                                             " recipients in one message");
        }
      } else {
        rcpts_.push_back(NormalizeEnvelopeAddress(args[0]));
      }
      Reply(out, milter::kNrRcpt);
      return Status::Ok();
    }
    case milter::kHeader: {
      ASSIGN_OR_RETURN(auto parts, milter::SplitStrings(p.data));
      if (parts.size() != 2)
        return InvalidArgument("milter HEADER packet needs a name and a value");
      ++header_count_;
      if (message_error_.ok() && header_count_ > b.max_headers) {
        message_error_ = ResourceExhausted("more than " + std::to_string(b.max_headers) +
                                           " header fields in one message");
      }
      if (message_error_.ok() && parts[0].size() + parts[1].size() > b.max_header_bytes) {
        message_error_ = ResourceExhausted("a header field exceeds " +
                                           std::to_string(b.max_header_bytes) + " bytes");
      }
      if (IEquals(parts[0], "To")) {
        ++to_count_;
        to_cc_values_.emplace_back(parts[1]);
      } else if (IEquals(parts[0], "Cc")) {
        ++cc_count_;
        to_cc_values_.emplace_back(parts[1]);
      } else if (subject_.empty() && IEquals(parts[0], "Subject")) {
        subject_ = std::string(parts[1].substr(0, 998));
      }
      if (message_error_.ok()) {
        if (Reserve(parts[0].size() + parts[1].size() + 4)) {
          message_.append(parts[0]);
          message_.append(": ");
          message_.append(parts[1]);
          message_.append("\r\n");
        }
      }
      Reply(out, milter::kNrHeader);
      return Status::Ok();
    }
    case milter::kEoh:
      if (message_error_.ok()) message_.append("\r\n");
      in_body_ = true;
      Reply(out, milter::kNrEoh);
      return Status::Ok();
    case milter::kBody:
    case milter::kBodyEob: {
      if (!in_body_ && message_error_.ok()) {
        message_.append("\r\n");
        in_body_ = true;
      }
      if (message_error_.ok()) {
        if (Reserve(p.data.size())) {
          message_.append(p.data);
        }
      }
      if (p.command == milter::kBody) {
        Reply(out, milter::kNrBody);
      } else if (deps_.defer_verdicts) {
        pending_.emplace();  // the message stays until FinishVerdict
      } else {
        EndOfMessage(out);
        ResetMessage();
      }
      return Status::Ok();
    }
    case milter::kAbort:
      ResetMessage();
      return Status::Ok();
    case milter::kQuitNc:
      ResetMessage();
      macros_.clear();
      negotiated_ = false;
      return Status::Ok();
    case milter::kQuit:
      done_ = true;
      return Status::Ok();
    default:
      return InvalidArgument(std::string("unknown milter command 0x") +
                             "0123456789abcdef"[(p.command >> 4) & 15] +
                             "0123456789abcdef"[p.command & 15]);
  }
}

void Session::EndOfMessage(std::string* out) {
  VerdictRecord rec;
  if (!PrepareVerdict(out, &rec)) return;
  Status recorded = deps_.sink->Record(rec);
  ReplyVerdict(rec, recorded, out);
}

void Session::DecideVerdict() {
  if (!pending_ || pending_->decided) return;
  pending_->decided = true;
  pending_->replied = !PrepareVerdict(&pending_->early_reply, &pending_->rec);
  if (!pending_->replied) pending_->recorded = deps_.sink->Record(pending_->rec);
}

void Session::FinishVerdict(std::string* out) {
  if (!pending_) return;
  if (!pending_->decided) {
    // Never decided (the server is stopping): fail closed, nothing recorded.
    milter::AppendReplyCode(out, "451 4.3.0 mamori: message could not be checked, try again later");
  } else if (pending_->replied) {
    out->append(pending_->early_reply);
  } else {
    ReplyVerdict(pending_->rec, pending_->recorded, out);
  }
  pending_.reset();
  ResetMessage();
}

bool Session::PrepareVerdict(std::string* out, VerdictRecord* rec_out) {
  const Policy& policy = *deps_.policy;
  VerdictRecord& rec = *rec_out;
  rec.time_micros = deps_.clock->NowMicros();
  rec.event_id = deps_.new_event_id();
  rec.queue_id = Macro("{i}");
  if (rec.queue_id.empty()) rec.queue_id = Macro("i");
  rec.auth_user = Macro("{auth_authen}");
  rec.client_addr = Macro("{client_addr}");
  rec.message_bytes = message_.size();
  rec.envelope.sender = sender_;
  rec.envelope.recipients = rcpts_;

  // A cancel request (mail to the cancel address) is answered by mail and
  // never delivered anywhere.
  if (deps_.desk != nullptr && message_error_.ok() && !sender_.empty()) {
    std::string event_id;
    if (IsCancelRequest(policy, rcpts_, subject_, &event_id) &&
        policy.IsInternal(DomainOf(sender_))) {
      deps_.desk->Cancel(sender_, event_id);
      milter::AppendPacket(out, milter::kDiscard, {});
      return false;
    }
  }
  Status st = message_error_;
  if (st.ok()) {
    for (const auto& v : to_cc_values_) {
      auto addrs = ParseAddressList(v, policy.budgets.max_recipients);
      if (!addrs.ok()) {
        if (addrs.status().code() == StatusCode::kResourceExhausted) {
          st = addrs.status();
          break;
        }
        rec.envelope.header_parse_error = true;
        continue;
      }
      rec.envelope.to_cc.insert(rec.envelope.to_cc.end(), addrs->begin(), addrs->end());
    }
  }
  if (st.ok() && NeedsContentScan(policy, rec.envelope)) {
    if (deps_.inspector == nullptr) {
      st = Unavailable("no content inspector (detection engine missing)");
    } else {
      auto summary = deps_.inspector->Inspect(message_);
      if (summary.ok()) {
        rec.content = std::move(*summary);
      } else {
        st = summary.status();
      }
    }
  }
  if (st.ok()) {
    rec.verdict = Evaluate(policy, rec.envelope, rec.content);
    if (rec.verdict.action == Action::kHold && !(actions_ & milter::kActQuarantine)) {
      st = FailedPrecondition("the MTA did not grant SMFIF_QUARANTINE; cannot hold");
    }
    if (rec.verdict.bcc_convert && !(actions_ & milter::kActChangeHeaders)) {
      st = FailedPrecondition("the MTA did not grant SMFIF_CHGHDRS; cannot convert to Bcc");
    }
    if (rec.verdict.delay_only) {
      rec.release_at_micros = rec.time_micros + int64_t{rec.verdict.delay_seconds} * 1'000'000;
    }
  }
  if (!st.ok()) {
    rec.verdict = Verdict{};
    rec.verdict.action = Action::kTempfail;
    rec.verdict.reasons.push_back(st.code() == StatusCode::kResourceExhausted ? "budget"
                                                                              : "internal_error");
    rec.error = st.ToString();
  }
  return true;
}

void Session::ReplyVerdict(const VerdictRecord& rec, const Status& recorded, std::string* out) {
  const Policy& policy = *deps_.policy;
  if (!recorded.ok() || rec.verdict.action == Action::kTempfail) {
    milter::AppendReplyCode(out,
                            "451 4.3.0 mamori: message could not be checked, try again later"
                            " (event " +
                                rec.event_id + ")");
    return;
  }
  const Verdict& v = rec.verdict;
  if (!v.in_scope) {
    milter::AppendPacket(out, milter::kContinue, {});
    return;
  }
  if (v.bcc_convert) {
    for (uint32_t i = cc_count_; i >= 1; --i) milter::AppendChangeHeader(out, i, "Cc", "");
    for (uint32_t i = to_count_; i >= 1; --i) milter::AppendChangeHeader(out, i, "To", "");
    milter::AppendAddHeader(out, "To", policy.bcc_to_value);
    if (policy.bcc_note_header) milter::AppendAddHeader(out, "X-Mamori-Note", v.note);
  }
  std::string verdict_header(ActionName(v.action));
  std::vector<std::string> tags = v.reasons;
  if (v.bcc_convert) tags.insert(tags.begin(), "bcc_converted");
  if (!tags.empty()) {
    verdict_header += " (";
    for (size_t i = 0; i < tags.size(); ++i) verdict_header += (i ? ", " : "") + tags[i];
    verdict_header += ")";
  }
  milter::AppendAddHeader(out, "X-Mamori-Verdict", verdict_header);
  milter::AppendAddHeader(out, "X-Mamori-Event", rec.event_id);
  // Only internal senders get notices: a notice to an outside sender (scope:
  // all) would be backscatter to a possibly forged address.
  if (deps_.desk != nullptr && (v.action == Action::kHold || v.bcc_convert) &&
      !rec.envelope.sender.empty() && policy.IsInternal(DomainOf(rec.envelope.sender))) {
    deps_.desk->Notify(rec, subject_);
  }
  if (v.action == Action::kHold) {
    std::string reason = "mamori " + rec.event_id + ":";
    for (const auto& r : v.reasons) reason += " " + r;
    milter::AppendQuarantine(out, reason);
  }
  milter::AppendPacket(out, milter::kContinue, {});
}

}  // namespace mamori::mail
