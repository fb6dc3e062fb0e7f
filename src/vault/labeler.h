// Internal to src/vault: computes the label of an upload while it streams.
//
// Plain content is scanned chunk by chunk (memory stays flat). Content whose
// first bytes say it is a container (zip, Office, PDF, compressed; see
// extract::IsContainer) is buffered up to a budget and labelled by the text
// that src/extract gets out of it, since its raw bytes hide what it holds.
// Anything that cannot be inspected (budget, encrypted member, corrupt) gives
// {"scanned": false, "incomplete": reason}; the reason never names a member
// (member names can be personal data).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "detect/detect.h"

namespace mamori::vault::internal {

class Labeler {
 public:
  // `rules` null: every label is {"scanned": false}. `name` picks the format
  // by extension for extraction only; it is not stored in the label.
  // `shared_in_use` counts container bytes buffered by all labelers of the
  // process; past `max_total_bytes` a container is not inspected (memory stays
  // bounded however many uploads run at once).
  Labeler(std::shared_ptr<const detect::RuleSet> rules, const HashKey& key, std::string name,
          uint64_t max_container_bytes, std::atomic<uint64_t>* shared_in_use = nullptr,
          uint64_t max_total_bytes = 0);
  ~Labeler();
  void Feed(std::string_view chunk);
  nlohmann::json Finish();

 private:
  void Decide();
  void Fail(std::string reason);
  void Record(std::string_view unit, const std::vector<detect::Finding>& f);
  void StreamText(std::string_view chunk);
  bool Reserve(size_t n);
  void Release();

  enum class Mode { kUndecided, kText, kContainer, kFailed };
  // Bytes looked at before deciding how to label: enough to see a container's
  // magic and whether text is UTF-8 or needs decoding (Shift_JIS, UTF-16, ...).
  static constexpr size_t kMagic = 64 * 1024;
  std::shared_ptr<const detect::RuleSet> rules_;
  HashKey key_;
  std::string name_;
  uint64_t max_container_bytes_;
  Mode mode_ = Mode::kUndecided;
  std::string head_;
  std::string container_;
  std::unique_ptr<detect::Scanner> scanner_;
  std::unique_ptr<detect::PersonCounter> persons_;
  std::map<std::string, uint64_t> types_;
  int max_conf_ = -1;
  std::string incomplete_;
  bool extracted_ = false;
  std::atomic<uint64_t>* shared_in_use_;
  uint64_t max_total_bytes_;
  uint64_t reserved_ = 0;
};

}  // namespace mamori::vault::internal
