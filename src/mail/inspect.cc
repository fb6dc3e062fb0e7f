#include "mail/inspect.h"

#ifdef MAMORI_MAIL_HAVE_DETECT
#include "detect/detect.h"
#include "extract/extract.h"
#endif

namespace mamori::mail {

#ifdef MAMORI_MAIL_HAVE_DETECT
namespace {

class DetectInspector : public ContentInspector {
 public:
  DetectInspector(std::shared_ptr<const detect::RuleSet> rules, const HashKey& key,
                  const Budgets& budgets)
      : rules_(std::move(rules)), key_(key), budgets_(budgets) {}

  Result<ContentSummary> Inspect(std::string_view message) override {
    ContentSummary s;
    s.scanned = true;
    extract::Budgets eb;
    eb.max_file_bytes = budgets_.max_message_bytes;
    eb.max_expanded_bytes = budgets_.max_message_bytes * 8;
    eb.max_seconds = budgets_.scan_seconds;
    eb.max_members = 10'000;
    detect::PersonCounter persons(rules_);
    Status scan_error;
    Status st = extract::ExtractBuffer(
        "message.eml", message, eb, [&](const extract::Unit& unit, const Status& error) -> Status {
          if (!error.ok()) {
            if (error.code() == StatusCode::kResourceExhausted) return error;
            s.unreadable.push_back(unit.path + ": " + error.message());
            return Status::Ok();
          }
          // No text to look at (a photo of a card is personal data no pattern
          // sees): counted, never called inspected.
          if (extract::HasNoTextToInspect(unit)) {
            if (s.not_inspected++ < 8)
              s.not_inspected_parts.push_back(unit.path + " (" + unit.format + ")");
            return Status::Ok();
          }
          ++s.units;
          detect::ScanOptions opt;
          opt.field_delimiter = unit.field_delimiter;
          auto findings = detect::ScanText(rules_, key_, unit.text, opt);
          if (!findings.ok()) return findings.status().WithContext("scanning " + unit.path);
          for (const auto& f : *findings) {
            ++s.types[f.type];
            if (f.type == "jp.my_number") ++s.my_numbers;
          }
          persons.Add(unit.path, *findings);
          return Status::Ok();
        });
    if (!st.ok()) return st.WithContext("inspecting the message");
    s.individuals = persons.Estimate();
    return s;
  }

 private:
  std::shared_ptr<const detect::RuleSet> rules_;
  HashKey key_;
  Budgets budgets_;
};

}  // namespace

Result<std::unique_ptr<ContentInspector>> MakeDetectInspector(const Budgets& budgets,
                                                              const HashKey& key) {
  ASSIGN_OR_RETURN(auto rules, detect::RuleSet::LoadDefault());
  return std::unique_ptr<ContentInspector>(new DetectInspector(std::move(rules), key, budgets));
}
#else
Result<std::unique_ptr<ContentInspector>> MakeDetectInspector(const Budgets&, const HashKey&) {
  return Unavailable(
      "mamori was built without the detection engine (src/detect, src/extract); mail to "
      "external recipients cannot be inspected");
}
#endif

}  // namespace mamori::mail
