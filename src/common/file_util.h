// Small file helpers with Status errors.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace mamori {

// Reads a whole file. Refuses files larger than max_bytes (a budget, not a truncation).
Result<std::string> ReadFile(const std::string& path, size_t max_bytes = size_t{1} << 30);

// Writes a file atomically: data goes to a temporary file beside it, which is
// fsynced and renamed over the target, then the directory is fsynced. A crash
// leaves either the old content or the new, never a half-written file.
Status WriteFileAtomic(const std::string& path, std::string_view data, int mode = 0644);

}  // namespace mamori
