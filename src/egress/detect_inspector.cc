// InspectorFactory backed by the detection engine.
#include <algorithm>

#include "detect/detect.h"
#include "egress/inspector.h"

namespace mamori::egress {
namespace {

class DetectInspector : public Inspector {
 public:
  DetectInspector(std::shared_ptr<const detect::RuleSet> rules, const HashKey* key,
                  detect::ScanOptions options)
      : rules_(std::move(rules)), key_(key), options_(options), people_(rules_) {}

  Status BeginUnit(std::string_view name) override {
    if (scanner_) RETURN_IF_ERROR(EndUnit());
    unit_ = std::string(name);
    ++summary_.units;
    // Delimited files: the header row gives each column its context.
    detect::ScanOptions o = options_;
    auto ends_with = [&](std::string_view ext) {
      return unit_.size() >= ext.size() &&
             std::equal(ext.rbegin(), ext.rend(), unit_.rbegin(), [](char a, char b) {
               return a == (b >= 'A' && b <= 'Z' ? static_cast<char>(b - 'A' + 'a') : b);
             });
    };
    if (ends_with(".csv")) o.field_delimiter = ',';
    if (ends_with(".tsv")) o.field_delimiter = '\t';
    ASSIGN_OR_RETURN(scanner_, detect::Scanner::Create(rules_, *key_, o));
    return Status::Ok();
  }
  // Text arrives in network-sized pieces (often a few KB); the scanner is
  // fed in batches of up to kBatch bytes, which is much cheaper per byte.
  static constexpr size_t kBatch = 1 << 20;
  Status Text(std::string_view text) override {
    if (!scanner_) RETURN_IF_ERROR(BeginUnit("body"));
    summary_.bytes += text.size();
    if (pending_.empty() && text.size() >= kBatch) return FeedNow(text);
    pending_.append(text);
    if (pending_.size() >= kBatch) return Flush();
    return Status::Ok();
  }
  Status EndUnit() override {
    if (!scanner_) return Status::Ok();
    RETURN_IF_ERROR(Flush());
    RETURN_IF_ERROR(scanner_->Finish());
    Collect(true);
    scanner_.reset();
    return Status::Ok();
  }
  Result<InspectionSummary> Finish() override {
    RETURN_IF_ERROR(EndUnit());
    summary_.individuals = people_.Estimate();
    return summary_;
  }

 private:
  Status FeedNow(std::string_view text) {
    RETURN_IF_ERROR(scanner_->Feed(text));
    Collect(false);
    return Status::Ok();
  }
  Status Flush() {
    if (pending_.empty()) return Status::Ok();
    Status st = FeedNow(pending_);
    pending_.clear();
    return st;
  }

  void Collect(bool all) {
    auto findings = scanner_->TakeFindings();
    if (findings.empty()) return;
    for (const auto& f : findings) {
      summary_.types[f.type]++;
      int c = static_cast<int>(f.confidence);
      if (c > max_conf_) {
        max_conf_ = c;
        summary_.max_confidence = std::string(detect::ConfidenceName(f.confidence));
      }
    }
    people_.Add(unit_, findings);
  }

  std::shared_ptr<const detect::RuleSet> rules_;
  const HashKey* key_;
  detect::ScanOptions options_;
  detect::PersonCounter people_;
  std::unique_ptr<detect::Scanner> scanner_;
  std::string unit_;
  std::string pending_;
  InspectionSummary summary_;
  int max_conf_ = -1;
};

class DetectFactory : public InspectorFactory {
 public:
  DetectFactory(std::shared_ptr<const detect::RuleSet> rules, const HashKey& key)
      : rules_(std::move(rules)), key_(key) {}
  Result<std::unique_ptr<Inspector>> New(const std::string& min_confidence,
                                         uint64_t max_bytes) override {
    detect::ScanOptions o;
    ASSIGN_OR_RETURN(o.min_confidence, detect::ParseConfidence(min_confidence));
    o.max_bytes = max_bytes;
    return std::unique_ptr<Inspector>(std::make_unique<DetectInspector>(rules_, &key_, o));
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
