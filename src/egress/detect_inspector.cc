// InspectorFactory backed by the detection engine.
#include <algorithm>

#include "detect/detect.h"
#include "egress/inspector.h"
#include "egress/spool.h"
#include "extract/extract.h"

namespace mamori::egress {
namespace {

// A unit's first bytes decide how it is inspected. Containers (zip, Office
// files, PDF, compressed files) are extracted as a whole, since their raw
// bytes hide what is inside; everything else streams through the scanner.
class DetectInspector : public Inspector {
 public:
  DetectInspector(std::shared_ptr<const detect::RuleSet> rules, const HashKey* key,
                  detect::ScanOptions options, const InspectOptions& io)
      : rules_(std::move(rules)),
        key_(key),
        options_(options),
        people_(rules_),
        container_(io.memory_limit, io.max_bytes, io.spill_dir, io.memory, io.disk_over_budget) {}

  Status BeginUnit(std::string_view name) override {
    if (mode_ != Mode::kNone) RETURN_IF_ERROR(EndUnit());
    unit_ = std::string(name);
    ++summary_.units;
    mode_ = Mode::kUndecided;
    head_.clear();
    container_.Clear();
    return Status::Ok();
  }

  Status Text(std::string_view text) override {
    if (mode_ == Mode::kNone) RETURN_IF_ERROR(BeginUnit("body"));
    summary_.bytes += text.size();
    if (mode_ == Mode::kUndecided) {
      head_.append(text);
      if (head_.size() < kMagicBytes) return Status::Ok();
      return Decide();
    }
    if (mode_ == Mode::kContainer) return AppendContainer(text);
    return StreamText(text);
  }

  Status EndUnit() override {
    Mode mode = mode_;
    mode_ = Mode::kNone;
    if (mode == Mode::kNone) return Status::Ok();
    if (mode == Mode::kUndecided) {  // a unit shorter than the sniffed head
      if (extract::IsContainer(head_) || extract::NeedsDecoding(head_)) {
        std::string head;
        head.swap(head_);
        RETURN_IF_ERROR(AppendContainer(head));
        return ScanContainer();
      }
      std::string head;
      head.swap(head_);
      RETURN_IF_ERROR(OpenScanner());
      RETURN_IF_ERROR(StreamText(head));
    } else if (mode == Mode::kContainer) {
      return ScanContainer();
    }
    RETURN_IF_ERROR(Flush());
    RETURN_IF_ERROR(scanner_->Finish());
    Collect();
    scanner_.reset();
    return Status::Ok();
  }

  Result<InspectionSummary> Finish() override {
    RETURN_IF_ERROR(EndUnit());
    summary_.individuals = people_.Estimate();
    return summary_;
  }

 private:
  enum class Mode { kNone, kUndecided, kText, kContainer };
  // The head looked at before deciding: a container's magic, and whether text
  // starts as something other than UTF-8 (a Shift_JIS CSV whose header row
  // begins with 氏名). Kept short so that containers meet the memory budget
  // from their first bytes; text that turns non-UTF-8 only later is scanned
  // raw (digits, e-mails and ASCII keywords are still found).
  static constexpr size_t kMagicBytes = 8;
  // Text arrives in network-sized pieces (often a few KB); the scanner is
  // fed in batches of up to kBatch bytes, which is much cheaper per byte.
  static constexpr size_t kBatch = 1 << 20;
  static constexpr uint64_t kListedNotInspected = 8;

  Status Decide() {
    std::string head;
    head.swap(head_);
    // Text in another encoding than UTF-8 (a Shift_JIS CSV) goes through
    // extraction too, which decodes it; its raw bytes hide every Japanese word.
    if (extract::IsContainer(head) || extract::NeedsDecoding(head)) {
      mode_ = Mode::kContainer;
      return AppendContainer(head);
    }
    mode_ = Mode::kText;
    RETURN_IF_ERROR(OpenScanner());
    return StreamText(head);
  }

  Status OpenScanner() {
    // Delimited files: the header row gives each column its context.
    detect::ScanOptions o = options_;
    o.field_delimiter = extract::FieldDelimiterForName(unit_);
    ASSIGN_OR_RETURN(scanner_, detect::Scanner::Create(rules_, *key_, o));
    return Status::Ok();
  }

  Status AppendContainer(std::string_view text) {
    if (container_.size() + text.size() > options_.max_bytes)
      return ResourceExhausted("file '" + MaskPath(unit_) +
                               "' is larger than the inspection budget of " +
                               std::to_string(options_.max_bytes) + " bytes");
    return container_.Append(text);
  }

  // Extracts a container unit and scans every member. A member that cannot be
  // inspected (encrypted, over budget, corrupt) fails the body, so the
  // category's fail-closed setting decides.
  Status ScanContainer() {
    extract::Budgets budgets;
    budgets.max_file_bytes = options_.max_bytes;
    budgets.max_expanded_bytes = options_.max_bytes;
    std::string name = unit_;
    size_t eq = name.rfind('=');  // "form:file file=list.xlsx" -> "list.xlsx"
    if (eq != std::string::npos) name = name.substr(eq + 1);
    ASSIGN_OR_RETURN(std::string_view data, container_.View());
    // The container is released once extracted, whatever the outcome.
    struct Release {
      Spool* s;
      ~Release() { s->Clear(); }
    } release{&container_};
    return extract::ExtractBuffer(
        name, data, budgets, [&](const extract::Unit& u, const Status& err) -> Status {
          if (!err.ok()) return err.WithContext("cannot inspect " + MaskPath(u.path));
          // No text to look at: the summary must not call it clean.
          if (extract::HasNoTextToInspect(u)) {
            if (summary_.not_inspected++ < kListedNotInspected)
              summary_.not_inspected_parts.push_back(MaskPath(u.path) + " (" + u.format + ")");
            return Status::Ok();
          }
          if (u.text.empty()) return Status::Ok();
          detect::ScanOptions o = options_;
          o.field_delimiter = u.field_delimiter;
          ASSIGN_OR_RETURN(auto findings, detect::ScanText(rules_, *key_, u.text, o));
          Record(u.path, findings);
          return Status::Ok();
        });
  }

  Status StreamText(std::string_view text) {
    if (pending_.empty() && text.size() >= kBatch) return FeedNow(text);
    pending_.append(text);
    if (pending_.size() >= kBatch) return Flush();
    return Status::Ok();
  }
  Status FeedNow(std::string_view text) {
    RETURN_IF_ERROR(scanner_->Feed(text));
    Collect();
    return Status::Ok();
  }
  Status Flush() {
    if (pending_.empty()) return Status::Ok();
    Status st = FeedNow(pending_);
    pending_.clear();
    return st;
  }

  void Collect() { Record(unit_, scanner_->TakeFindings()); }

  void Record(const std::string& unit, const std::vector<detect::Finding>& findings) {
    if (findings.empty()) return;
    for (const auto& f : findings) {
      summary_.types[f.type]++;
      int c = static_cast<int>(f.confidence);
      if (c > max_conf_) {
        max_conf_ = c;
        summary_.max_confidence = std::string(detect::ConfidenceName(f.confidence));
      }
    }
    people_.Add(unit, findings);
  }

  std::shared_ptr<const detect::RuleSet> rules_;
  const HashKey* key_;
  detect::ScanOptions options_;
  detect::PersonCounter people_;
  std::unique_ptr<detect::Scanner> scanner_;
  std::string unit_;
  std::string pending_;
  Mode mode_ = Mode::kNone;
  std::string head_;  // first bytes of a unit, until its kind is known
  Spool container_;   // a whole container unit, bounded by max_bytes
  InspectionSummary summary_;
  int max_conf_ = -1;
};

class DetectFactory : public InspectorFactory {
 public:
  DetectFactory(std::shared_ptr<const detect::RuleSet> rules, const HashKey& key)
      : rules_(std::move(rules)), key_(key) {}
  Result<std::unique_ptr<Inspector>> New(const InspectOptions& io) override {
    detect::ScanOptions o;
    ASSIGN_OR_RETURN(o.min_confidence, detect::ParseConfidence(io.min_confidence));
    o.max_bytes = io.max_bytes;
    return std::unique_ptr<Inspector>(std::make_unique<DetectInspector>(rules_, &key_, o, io));
  }

 private:
  std::shared_ptr<const detect::RuleSet> rules_;
  HashKey key_;
};

}  // namespace

Result<std::unique_ptr<InspectorFactory>> NewDetectInspectorFactory(const HashKey& key) {
  ASSIGN_OR_RETURN(auto rules, detect::RuleSet::LoadDefault());
  return std::unique_ptr<InspectorFactory>(std::make_unique<DetectFactory>(rules, key));
}

}  // namespace mamori::egress
