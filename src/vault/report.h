// Reports over the audit log for vault governance.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "audit/audit.h"
#include "common/status.h"

namespace mamori::vault {

// Everything the users of contractor organisation `org` (委託先) did, read
// from the audit log (records carry `org`): one line or JSON object per
// record, then a summary (records, allowed, denied, bytes, distinct objects,
// per user and per action). `json` selects a JSON document instead of text.
// The log's hash chain is checked while reading; a broken chain is an error.
// Memory does not grow with the log (records are streamed), except for the
// summary's per-user, per-action and distinct-object tables.
struct ContractorReportOptions {
  audit::ReaderOptions log;
  std::string org;
  std::optional<int64_t> since_micros, until_micros;
  bool json = false;
  size_t max_distinct_objects = 1'000'000;  // budget for the summary table
};
Status ContractorReport(const ContractorReportOptions& options, std::ostream& out);

}  // namespace mamori::vault
