// Shared by the extract fuzz targets: a tight budget, and a visitor that reads
// every byte of every unit and checks the UTF-8 contract.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "extract/extract.h"
#include "extract/internal.h"

namespace mamori::extract::fuzz {

inline Budgets TightBudgets() {
  Budgets b;
  b.max_file_bytes = 4 << 20;
  b.max_expanded_bytes = 16 << 20;
  b.max_depth = 4;
  b.max_ratio = 100;
  b.max_members = 500;
  b.max_seconds = 5;
  return b;
}

inline void Run(std::string_view name, const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  volatile uint64_t sink = 0;
  Status s = ExtractBuffer(name, in, TightBudgets(), [&](const Unit& u, const Status& e) {
    if (!e.ok() && !u.text.empty()) __builtin_trap();  // error units carry no text
    uint64_t h = 0;
    for (char c : u.text) h = h * 31 + static_cast<unsigned char>(c);
    sink = sink + h;
    if (!internal::IsValidUtf8(u.text)) __builtin_trap();  // units are UTF-8
    if (u.locate) (void)u.locate(1, 0);
    return Status::Ok();
  });
  if (!s.ok()) __builtin_trap();  // the visitor never stops, so the walk must end OK
}

}  // namespace mamori::extract::fuzz
