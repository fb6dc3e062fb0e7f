// Fuzzes the facts JSON parser of `mamori incident assess` and, for every
// accepted input, the rule engine and the JSON round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "incident/assess.h"
#include "incident/facts.h"
#include "incident/rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mamori::incident;
  static const RuleCatalog* catalog = [] {
    auto c = RuleCatalog::LoadDefault();
    return c.ok() ? new RuleCatalog(std::move(c).value()) : nullptr;
  }();
  auto facts = ParseFacts(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!facts.ok()) {
    if (facts.status().message().empty()) std::abort();  // errors must say what to fix
    return 0;
  }
  auto again = FactsFromJson(FactsToJson(*facts));
  if (!again.ok() || again->aware_at_micros != facts->aware_at_micros ||
      again->persons != facts->persons || again->data_items != facts->data_items) {
    std::abort();  // what we write we must read back
  }
  if (catalog) {
    auto a = Assess(*facts, *catalog);
    if (a.ok()) {
      auto j = AssessmentToJson(*a);
      if (a->appi.report_required && !a->appi.final_due) std::abort();
      (void)j.dump();
    }
  }
  return 0;
}
