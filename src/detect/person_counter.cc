// Distinct individuals: records joined by the strong keys they share.
#include <algorithm>
#include <map>
#include <numeric>
#include <unordered_map>

#include "detect/detect.h"

namespace mamori::detect {

// What the counter keeps of a finding while its unit is still arriving.
struct Evidence {
  std::string type, hash;
  uint64_t offset = 0, record = 0;
  int32_t field = -1;
};

struct PersonCounter::Impl {
  std::shared_ptr<const RuleSet> rules;
  // The unit whose findings are still arriving: a streaming caller (the
  // vault, the gateway) adds each batch as the scanner releases it, and a
  // person must not be cut in two where one batch ends.
  std::string pending_unit;
  std::vector<Evidence> pending;
  void Flush();
  std::vector<uint64_t> parent;                         // union-find over person records
  std::unordered_map<std::string, uint64_t> key_owner;  // strong key -> a record

  uint64_t Find(uint64_t x) {
    while (parent[x] != x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  }
  void Union(uint64_t a, uint64_t b) {
    a = Find(a);
    b = Find(b);
    if (a != b) parent[b] = a;
  }
};

PersonCounter::PersonCounter(std::shared_ptr<const RuleSet> rules)
    : impl_(std::make_unique<Impl>()) {
  impl_->rules = std::move(rules);
}
PersonCounter::~PersonCounter() = default;

namespace {

// Types of which one person has exactly one value: a second, different value
// in running text means the text has moved on to another person.
bool IsSingular(std::string_view type) {
  return type == "jp.person_name" || type == "email" || type == "jp.my_number" ||
         type == "jp.drivers_license" || type == "jp.passport" || type == "jp.residence_card" ||
         type == "jp.basic_pension_number" || type == "jp.employment_insurance_number" ||
         type == "jp.birth_date";
}

}  // namespace

void PersonCounter::Add(std::string_view unit, const std::vector<Finding>& findings) {
  if (unit != impl_->pending_unit) {
    impl_->Flush();
    impl_->pending_unit = std::string(unit);
  }
  // Low-confidence findings (a bare number, one beside 注文番号) are reported
  // for review but are not evidence of a person: counting them would turn
  // every order number that passes a check digit into an individual.
  for (const auto& f : findings)
    if (f.confidence >= Confidence::kMedium)
      impl_->pending.push_back({f.type, f.hash, f.offset, f.record, f.field});
}

void PersonCounter::Impl::Flush() {
  // Group the findings into people. In delimited text (CSV, TSV, sheets) a
  // person is a row. In running text (letters, mails, logs, JSON) findings are
  // read in order and belong to the current person until a singular attribute
  // (a name, an e-mail, a My Number, ...) takes a second value.
  std::vector<std::vector<const Evidence*>> groups;
  bool delimited = false;
  for (const Evidence& f : pending) delimited |= f.field >= 0;
  if (delimited) {
    std::map<uint64_t, size_t> by_record;
    for (const Evidence& f : pending) {
      auto [it, inserted] = by_record.emplace(f.record, groups.size());
      if (inserted) groups.emplace_back();
      groups[it->second].push_back(&f);
    }
  } else {
    std::vector<const Evidence*> ordered;
    for (const Evidence& f : pending) ordered.push_back(&f);
    std::stable_sort(ordered.begin(), ordered.end(),
                     [](const Evidence* a, const Evidence* b) { return a->offset < b->offset; });
    std::map<std::string, std::string> current;  // singular type -> value hash
    groups.emplace_back();
    for (const Evidence* f : ordered) {
      if (IsSingular(f->type)) {
        auto it = current.find(f->type);
        if (it != current.end() && it->second != f->hash) {
          groups.emplace_back();
          current.clear();
        }
        current[f->type] = f->hash;
      }
      groups.back().push_back(f);
    }
  }

  for (const auto& items : groups) {
    bool person = false;
    for (const Evidence* f : items) {
      const RuleInfo* info = rules->Find(f->type);
      person |= info && info->person_attribute;
    }
    if (!person) continue;
    uint64_t node = parent.size();
    parent.push_back(node);
    std::string name, birth;
    bool has_strong = false;
    for (const Evidence* f : items) {
      const RuleInfo* info = rules->Find(f->type);
      if (!info) continue;
      if (f->type == "jp.person_name") name = f->hash;
      if (f->type == "jp.birth_date") birth = f->hash;
      if (info->person_key) {
        has_strong = true;
        auto [it, inserted] = key_owner.emplace(f->type + ":" + f->hash, node);
        if (!inserted) Union(it->second, node);
      }
    }
    if (!name.empty() && !birth.empty()) {
      auto [it, inserted] = key_owner.emplace("nb:" + name + birth, node);
      if (!inserted) Union(it->second, node);
    } else if (!name.empty() && !has_strong) {
      // A name alone is a weak key: it joins only records with nothing stronger.
      auto [it, inserted] = key_owner.emplace("n:" + name, node);
      if (!inserted) Union(it->second, node);
    }
  }
  pending.clear();
}

uint64_t PersonCounter::Estimate() const {
  impl_->Flush();  // the last unit counts as complete once asked
  uint64_t roots = 0;
  for (uint64_t i = 0; i < impl_->parent.size(); ++i) roots += impl_->Find(i) == i;
  return roots;
}

}  // namespace mamori::detect
