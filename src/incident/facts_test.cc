#include "incident/facts.h"

#include <gtest/gtest.h>

namespace mamori::incident {
namespace {

const char* kGood = R"({
  "aware_at": "2026-04-01T10:00:00+09:00", "sector": "private", "persons": 1200,
  "data_items": ["name", "address", "name"], "malicious_suspected": false,
  "publicly_viewable": false, "encryption": {"algorithm": "AES-256-GCM", "key_exposed": false},
  "processor_notified_controller": false})";

TEST(IncidentFacts, ParsesTheContractFields) {
  auto f = ParseFacts(kGood);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->persons, 1200);
  EXPECT_EQ(f->data_items.size(), 2u);  // duplicates collapse
  ASSERT_TRUE(f->encryption.has_value());
  EXPECT_FALSE(f->encryption->key_exposed);
  // Round trip.
  auto again = FactsFromJson(FactsToJson(*f));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->aware_at_micros, f->aware_at_micros);
}

void ExpectFieldError(const std::string& text, const std::string& field) {
  auto f = ParseFacts(text);
  ASSERT_FALSE(f.ok()) << text;
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f.status().message().rfind(field, 0), 0u)
      << "message should start with the field: " << f.status().message();
}

TEST(IncidentFacts, ErrorsNameTheFieldToFix) {
  std::string good = kGood;
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  ExpectFieldError(with("\"persons\": 1200", "\"persons\": -1"), "persons");
  ExpectFieldError(with("\"persons\": 1200", "\"persons\": 12.5"), "persons");
  ExpectFieldError(with("\"persons\": 1200", "\"persons\": \"many\""), "persons");
  ExpectFieldError(with("\"sector\": \"private\"", "\"sector\": \"npo\""), "sector");
  ExpectFieldError(with("+09:00", ""), "aware_at");
  ExpectFieldError(with("\"malicious_suspected\": false", "\"malicous_suspected\": false"),
                   "malicous_suspected");
  ExpectFieldError(with("\"key_exposed\": false", "\"key_exposed\": \"no\""),
                   "encryption.key_exposed");
  ExpectFieldError(
      with("\"data_items\": [\"name\", \"address\", \"name\"]", "\"data_items\": \"name\""),
      "data_items");
  ExpectFieldError(with("\"publicly_viewable\": false,", ""), "publicly_viewable");
  auto bad_json = ParseFacts("{\"aware_at\": ");
  ASSERT_FALSE(bad_json.ok());
  EXPECT_NE(bad_json.status().message().find("not valid JSON"), std::string::npos);
}

TEST(IncidentFacts, BudgetsAreErrors) {
  std::string deep(100, '[');
  EXPECT_FALSE(ParseFacts(deep).ok());
  std::string huge(kMaxFactsBytes + 1, ' ');
  EXPECT_EQ(ParseFacts(huge).status().code(), StatusCode::kResourceExhausted);
  std::string big = kGood;
  big.replace(big.find("1200"), 4, "99999999999999");
  EXPECT_FALSE(ParseFacts(big).ok());
}

}  // namespace
}  // namespace mamori::incident
