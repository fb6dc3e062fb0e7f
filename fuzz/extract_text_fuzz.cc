// Fuzzes the text formats: the first byte picks CSV, JSON, HTML or TSV
// (seed corpus: fuzz/corpus/extract_text/).
#include "extract_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* kNames[] = {"fuzz.csv", "fuzz.json", "fuzz.html", "fuzz.tsv"};
  mamori::extract::fuzz::Run(kNames[data[0] % 4], data + 1, size - 1);
  return 0;
}
