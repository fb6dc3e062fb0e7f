#include "mail/inspect.h"

#include <cctype>
#include <string>

#ifdef MAMORI_MAIL_HAVE_DETECT
#include "detect/detect.h"
#include "extract/extract.h"
#endif

namespace mamori::mail {

#ifdef MAMORI_MAIL_HAVE_DETECT
namespace {

// The name the message is extracted under, and so the path of its own header
// unit (a forwarded message inside it has a longer one: its addresses are
// content like any other).
constexpr char kMessageName[] = "message.eml";
constexpr char kOwnHeadersPath[] = "message.eml!headers";

// The message's own address fields are its envelope: the policy judges them
// (external recipients, To/Cc exposure, Bcc), and scanned as content the
// sender and every recipient would count as people the mail exposes, so a
// body naming 8 people sent to 2 would reach "10 individuals". They are
// dropped line by line; every other line (Subject, a continuation, anything
// unexpected) is still scanned.
std::string WithoutAddressFields(std::string_view text) {
  static constexpr std::string_view kAddressFields[] = {
      "from: ",        "sender: ",       "reply-to: ",
      "to: ",          "cc: ",           "bcc: ",
      "return-path: ", "delivered-to: ", "disposition-notification-to: "};
  auto starts_with = [](std::string_view line, std::string_view lower_prefix) {
    if (line.size() < lower_prefix.size()) return false;
    for (size_t i = 0; i < lower_prefix.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(line[i])) != lower_prefix[i]) return false;
    return true;
  };
  std::string kept;
  kept.reserve(text.size());
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl == std::string_view::npos ? text.size() : nl + 1);
    text.remove_prefix(line.size());
    bool address = false;
    for (std::string_view f : kAddressFields) address = address || starts_with(line, f);
    if (!address) kept.append(line);
  }
  return kept;
}

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
        kMessageName, message, eb, [&](const extract::Unit& unit, const Status& error) -> Status {
          if (!error.ok()) {
            if (error.code() == StatusCode::kResourceExhausted) return error;
            s.unreadable.push_back(MaskPath(unit.path) + ": " + error.message());
            return Status::Ok();
          }
          // No text to look at (a photo of a card is personal data no pattern
          // sees): counted, never called inspected.
          if (extract::HasNoTextToInspect(unit)) {
            if (s.not_inspected++ < 8)
              s.not_inspected_parts.push_back(MaskPath(unit.path) + " (" + unit.format + ")");
            return Status::Ok();
          }
          ++s.units;
          detect::ScanOptions opt;
          opt.field_delimiter = unit.field_delimiter;
          // Only the message's own header unit is rewritten; every other unit
          // is scanned in place.
          std::string own_headers;
          std::string_view text = unit.text;
          if (unit.format == "eml-headers" && unit.path == kOwnHeadersPath)
            text = own_headers = WithoutAddressFields(unit.text);
          auto findings = detect::ScanText(rules_, key_, text, opt);
          if (!findings.ok())
            return findings.status().WithContext("scanning " + MaskPath(unit.path));
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
