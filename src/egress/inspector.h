// Content inspection of one body: decoded units go to the detection engine.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/redact.h"
#include "common/status.h"
#include "egress/body_decoder.h"
#include "egress/memory_budget.h"

namespace mamori::egress {

struct InspectionSummary {
  std::map<std::string, uint64_t> types;  // finding type -> count
  uint64_t individuals = 0;               // distinct people (detect::PersonCounter)
  std::string max_confidence;             // "", "low", "medium", "high"
  uint64_t units = 0;                     // form parts / files / bodies inspected
  uint64_t bytes = 0;                     // decoded bytes inspected
  // Parts with no text to inspect (images, PDFs without a text layer,
  // unknown binary formats): how many, and the first few as "path (format)".
  uint64_t not_inspected = 0;
  std::vector<std::string> not_inspected_parts;
};

// A ContentSink that also summarises what it saw. One per body; not thread-safe.
class Inspector : public ContentSink {
 public:
  // Ends inspection (the last unit has been closed) and returns the summary.
  virtual Result<InspectionSummary> Finish() = 0;
};

struct InspectOptions {
  std::string min_confidence = "medium";
  uint64_t max_bytes = 1ull << 30;  // decoded bytes, and one container's size
  // A container (zip, Office, PDF) is held whole until extraction: in memory
  // up to memory_limit bytes while `memory` has room, else in an unlinked
  // temp file in spill_dir (memory-mapped for extraction), or, with
  // disk_over_budget false, inspection fails (ResourceExhausted).
  uint64_t memory_limit = 8ull << 20;
  MemoryBudget* memory = nullptr;  // nullptr: no shared budget
  bool disk_over_budget = true;
  std::string spill_dir = "/var/tmp";
};

class InspectorFactory {
 public:
  virtual ~InspectorFactory() = default;
  virtual Result<std::unique_ptr<Inspector>> New(const InspectOptions& options) = 0;
  // Shorthand without a shared memory budget.
  Result<std::unique_ptr<Inspector>> New(const std::string& min_confidence, uint64_t max_bytes) {
    InspectOptions o;
    o.min_confidence = min_confidence;
    o.max_bytes = max_bytes;
    return New(o);
  }
};

// The production factory, backed by the detection engine (mamori_detect).
// Loads the default rule set; fails if the rules cannot be loaded.
Result<std::unique_ptr<InspectorFactory>> NewDetectInspectorFactory(const HashKey& key);

}  // namespace mamori::egress
