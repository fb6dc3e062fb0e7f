// Fuzzes extract::ExtractBuffer on pdf input (seed corpus: fuzz/corpus/extract_pdf/).
#include "extract_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mamori::extract::fuzz::Run("fuzz.pdf", data, size);
  return 0;
}
