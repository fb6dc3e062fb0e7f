// Fuzzes the audit-export (JSONL) reader of `mamori incident scope`: hostile
// lines, labels with wrong types, huge counts, invalid times.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "incident/facts.h"
#include "incident/scope.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mamori::incident;
  static const LabelMap* map = [] {
    auto m = LabelMap::LoadDefault();
    return m.ok() ? new LabelMap(std::move(m).value()) : new LabelMap();
  }();
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  ScopeBudgets b;
  b.max_line_bytes = 64 * 1024;
  b.max_objects = 1000;
  ScopeQuery q;
  q.include_denied = size % 2 == 0;
  auto r = ScopeFromJsonlStream(in, "fuzz.jsonl", q, *map, b);
  if (!r.ok()) {
    if (r.status().message().empty()) std::abort();
    return 0;
  }
  if (r->persons < 0 || r->persons > kMaxPersons) std::abort();
  if (r->objects.size() > b.max_objects) std::abort();
  Facts f = ApplyScope(Facts{}, *r);
  if (f.persons != r->persons) std::abort();
  return 0;
}
