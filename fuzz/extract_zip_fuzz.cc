// Fuzzes extract::ExtractBuffer on zip input (seed corpus: fuzz/corpus/extract_zip/).
#include "extract_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mamori::extract::fuzz::Run("fuzz.zip", data, size);
  return 0;
}
