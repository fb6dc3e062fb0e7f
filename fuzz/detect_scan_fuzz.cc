// Differential fuzz target for the streaming scanner: the same bytes fed whole
// and in pieces (split where the input says) must give the same findings, and
// nothing may crash, hang or read out of bounds on any input.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "detect/detect.h"

using namespace mamori;

namespace {
std::shared_ptr<const detect::RuleSet> Rules() {
  static auto rules = [] {
    auto r = detect::RuleSet::LoadDirectory(std::string(MAMORI_SOURCE_DIR) + "/rules/detect");
    if (!r.ok()) abort();
    return *r;
  }();
  return rules;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // First byte: options; second: chunk size.
  detect::ScanOptions opt;
  opt.min_confidence = detect::Confidence::kLow;
  opt.field_delimiter = (data[0] & 1) ? ',' : (data[0] & 2) ? '\t' : 0;
  size_t chunk = 1 + data[1] % 64;
  std::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);
  HashKey key;
  auto whole = detect::ScanText(Rules(), key, text, opt);
  auto scanner = detect::Scanner::Create(Rules(), key, opt);
  if (!scanner.ok()) abort();
  for (size_t off = 0; off < text.size(); off += chunk) {
    if (!(*scanner)->Feed(text.substr(off, chunk)).ok()) abort();
  }
  if (!(*scanner)->Finish().ok()) abort();
  auto pieces = (*scanner)->TakeFindings();
  if (!whole.ok() || whole->size() != pieces.size()) abort();
  for (size_t i = 0; i < pieces.size(); ++i) {
    const auto& a = (*whole)[i];
    const auto& b = pieces[i];
    if (a.type != b.type || a.offset != b.offset || a.length != b.length || a.line != b.line ||
        a.column != b.column || a.hash != b.hash)
      abort();
  }
  return 0;
}
