#include "vault/labeler.h"

#include "extract/extract.h"

namespace mamori::vault::internal {

using json = nlohmann::json;

Labeler::Labeler(std::shared_ptr<const detect::RuleSet> rules, const HashKey& key, std::string name,
                 uint64_t max_container_bytes, std::atomic<uint64_t>* shared_in_use,
                 uint64_t max_total_bytes)
    : rules_(std::move(rules)),
      key_(key),
      name_(std::move(name)),
      max_container_bytes_(max_container_bytes),
      shared_in_use_(shared_in_use),
      max_total_bytes_(max_total_bytes) {
  if (!rules_) {
    mode_ = Mode::kFailed;
    return;
  }
  persons_ = std::make_unique<detect::PersonCounter>(rules_);
}

Labeler::~Labeler() { Release(); }

bool Labeler::Reserve(size_t n) {
  if (!shared_in_use_) return true;
  uint64_t now = shared_in_use_->fetch_add(n) + n;
  reserved_ += n;
  return now <= max_total_bytes_;
}

void Labeler::Release() {
  if (shared_in_use_ && reserved_) shared_in_use_->fetch_sub(reserved_);
  reserved_ = 0;
}

void Labeler::Fail(std::string reason) {
  if (incomplete_.empty()) incomplete_ = std::move(reason);
  mode_ = Mode::kFailed;
  scanner_.reset();
  std::string().swap(container_);
  std::string().swap(head_);
  Release();
}

void Labeler::Record(std::string_view unit, const std::vector<detect::Finding>& f) {
  for (const auto& x : f) {
    types_[x.type]++;
    max_conf_ = std::max(max_conf_, static_cast<int>(x.confidence));
  }
  if (!f.empty()) persons_->Add(unit, f);
}

void Labeler::StreamText(std::string_view chunk) {
  Status s = scanner_->Feed(chunk);
  if (!s.ok()) return Fail(std::string(StatusCodeName(s.code())));
  Record("body", scanner_->TakeFindings());
}

void Labeler::Decide() {
  std::string head;
  head.swap(head_);
  // Containers, and text in another encoding than UTF-8 (a Shift_JIS CSV is
  // the common case), are buffered and labelled through extraction, which
  // decodes them; their raw bytes would hide every Japanese word.
  if (extract::IsContainer(head) || extract::NeedsDecoding(head)) {
    mode_ = Mode::kContainer;
    container_.swap(head);
    if (container_.size() > max_container_bytes_)
      Fail("container larger than the inspection budget");
    else if (!Reserve(container_.size()))
      Fail("the server's inspection memory is in use by other uploads");
    return;
  }
  detect::ScanOptions so;
  so.max_findings = 1'000'000;
  // Delimited files: the header row gives each column its context.
  so.field_delimiter = extract::FieldDelimiterForName(name_);
  auto s = detect::Scanner::Create(rules_, key_, so);
  if (!s.ok()) return Fail(std::string(StatusCodeName(s.status().code())));
  scanner_ = std::move(s).value();
  mode_ = Mode::kText;
  if (!head.empty()) StreamText(head);
}

void Labeler::Feed(std::string_view chunk) {
  switch (mode_) {
    case Mode::kFailed:
      return;
    case Mode::kUndecided: {
      size_t take = std::min(chunk.size(), kMagic - head_.size());
      head_.append(chunk.substr(0, take));
      chunk.remove_prefix(take);
      if (head_.size() < kMagic) return;
      Decide();
      if (!chunk.empty()) Feed(chunk);
      return;
    }
    case Mode::kText:
      return StreamText(chunk);
    case Mode::kContainer:
      if (container_.size() + chunk.size() > max_container_bytes_)
        return Fail("container larger than the inspection budget of " +
                    std::to_string(max_container_bytes_) + " bytes");
      if (!Reserve(chunk.size()))
        return Fail("the server's inspection memory is in use by other uploads");
      container_.append(chunk);
      return;
  }
}

json Labeler::Finish() {
  if (mode_ == Mode::kUndecided) Decide();  // shorter than the magic
  if (mode_ == Mode::kText) {
    Status s = scanner_->Finish();
    if (!s.ok())
      Fail(std::string(StatusCodeName(s.code())));
    else
      Record("body", scanner_->TakeFindings());
  } else if (mode_ == Mode::kContainer) {
    extract::Budgets b;
    b.max_file_bytes = max_container_bytes_;
    b.max_expanded_bytes = 4 * max_container_bytes_;
    std::string data;
    data.swap(container_);
    struct ReleaseAtEnd {
      Labeler* l;
      ~ReleaseAtEnd() { l->Release(); }
    } release{this};
    Status st = extract::ExtractBuffer(
        name_, data, b, [&](const extract::Unit& u, const Status& err) -> Status {
          if (!err.ok()) {
            // Fail closed: one member that cannot be read makes the label incomplete.
            return FailedPrecondition("a member could not be inspected (" +
                                      std::string(StatusCodeName(err.code())) +
                                      (u.format.empty() ? "" : ", " + u.format) + ")");
          }
          // An image, a scanned PDF page or an unknown binary format has no
          // text to inspect: the label must not claim it was checked (a photo
          // of a My Number card is personal data that no pattern sees).
          if (extract::HasNoTextToInspect(u))
            return FailedPrecondition("content without extractable text (" + u.format +
                                      ") was not inspected");
          if (u.text.empty()) return Status::Ok();
          detect::ScanOptions o;
          o.max_findings = 1'000'000;
          o.field_delimiter = u.field_delimiter;
          auto f = detect::ScanText(rules_, key_, u.text, o);
          if (!f.ok()) return f.status();
          Record(u.path, *f);
          return Status::Ok();
        });
    if (!st.ok())
      Fail(st.message());
    else
      extracted_ = true;
  }
  if (mode_ == Mode::kFailed || !incomplete_.empty()) {
    json l = {{"scanned", false}};
    if (!incomplete_.empty()) l["incomplete"] = incomplete_;
    return l;
  }
  json types = json::object();
  for (auto& [t, n] : types_) types[t] = n;
  json l = {{"scanned", true},
            {"types", types},
            {"individuals", persons_->Estimate()},
            {"max_confidence", max_conf_ < 0 ? "none"
                                             : std::string(detect::ConfidenceName(
                                                   static_cast<detect::Confidence>(max_conf_)))}};
  if (extracted_) l["extracted"] = true;
  return l;
}

}  // namespace mamori::vault::internal
