// Distinct individuals: records joined by the strong keys they share.
#include <map>
#include <numeric>
#include <unordered_map>

#include "detect/detect.h"

namespace mamori::detect {

struct PersonCounter::Impl {
  std::shared_ptr<const RuleSet> rules;
  std::vector<uint64_t> parent;  // union-find over person records
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

PersonCounter::PersonCounter(std::shared_ptr<const RuleSet> rules) : impl_(std::make_unique<Impl>()) {
  impl_->rules = std::move(rules);
}
PersonCounter::~PersonCounter() = default;

void PersonCounter::Add(std::string_view unit, const std::vector<Finding>& findings) {
  // Group per record; each record that holds a person attribute is a person,
  // until a shared strong key shows two records are the same person.
  struct Rec {
    std::vector<const Finding*> items;
    bool person = false;
    bool identity = false;  // holds something that names a person by itself
  };
  std::map<uint64_t, Rec> records;
  bool delimited = false;
  for (const auto& f : findings) {
    const RuleInfo* info = impl_->rules->Find(f.type);
    if (!info) continue;
    Rec& r = records[f.record];
    r.items.push_back(&f);
    r.person |= info->person_attribute;
    if (f.field >= 0) delimited = true;
    if (f.type != "jp.phone" && f.type != "jp.address" && f.type != "jp.postal_code" &&
        f.type != "jp.birth_date" && info->person_attribute)
      r.identity = true;
  }
  int64_t previous = -1;
  for (auto& [id, rec] : records) {
    if (!rec.person) continue;
    uint64_t node;
    // In prose, a paragraph with only contact details (a signature block, an
    // address line) belongs to the person named just before it.
    if (!delimited && !rec.identity && previous >= 0) {
      node = static_cast<uint64_t>(previous);
    } else {
      node = impl_->parent.size();
      impl_->parent.push_back(node);
      previous = static_cast<int64_t>(node);
    }
    std::string name, birth;
    bool has_strong = false;
    for (const Finding* f : rec.items) {
      const RuleInfo* info = impl_->rules->Find(f->type);
      if (f->type == "jp.person_name") name = f->hash;
      if (f->type == "jp.birth_date") birth = f->hash;
      if (info->person_key) {
        has_strong = true;
        auto [it, inserted] = impl_->key_owner.emplace(f->type + ":" + f->hash, node);
        if (!inserted) impl_->Union(it->second, node);
      }
    }
    if (!name.empty() && !birth.empty()) {
      auto [it, inserted] = impl_->key_owner.emplace("nb:" + name + birth, node);
      if (!inserted) impl_->Union(it->second, node);
    } else if (!name.empty() && !has_strong) {
      // A name alone is a weak key: it joins only records with nothing stronger.
      auto [it, inserted] = impl_->key_owner.emplace("n:" + name, node);
      if (!inserted) impl_->Union(it->second, node);
    }
  }
  (void)unit;
}

uint64_t PersonCounter::Estimate() const {
  uint64_t roots = 0;
  for (uint64_t i = 0; i < impl_->parent.size(); ++i) roots += impl_->Find(i) == i;
  return roots;
}

}  // namespace mamori::detect
