// Fixtures for the extract tests: collect units, and build archives in memory.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "extract/extract.h"

namespace mamori::extract::testing {

struct Got {
  std::string path;
  std::string format;
  std::string encoding;
  std::string text;
  char delimiter = 0;
  Status error;
  std::function<std::string(uint64_t, int32_t)> locate;
};

// Runs ExtractBuffer and collects every unit.
std::vector<Got> Units(std::string_view name, std::string_view data, const Budgets& b = Budgets());
// The unit with this path, or nullptr.
const Got* Find(const std::vector<Got>& units, std::string_view path);
// A readable dump, for failure messages.
std::string Dump(const std::vector<Got>& units);

using Files = std::vector<std::pair<std::string, std::string>>;
// A zip written by libarchive (deflate). `password` non-empty: ZipCrypto-encrypted.
std::string MakeZip(const Files& files, const std::string& password = "");
// A tar.gz written by libarchive.
std::string MakeTarGz(const Files& files);
// A 7z written by libarchive.
std::string Make7z(const Files& files);

// A hand-built zip member, so tests can make headers lie.
struct RawMember {
  std::string name;
  std::string content;  // uncompressed bytes (deflated unless stored)
  bool stored = false;
  int64_t declared_size = -1;  // -1: the true size
  bool encrypted_flag = false;
  bool utf8_flag = false;  // general-purpose bit 11: the name is UTF-8
};
std::string MakeRawZip(const std::vector<RawMember>& members);
// A zip whose one member inflates to `zeros` bytes of zeros (fast: built
// from repeated deflate blocks).
std::string MakeZerosZip(const std::string& name, uint64_t zeros, int64_t declared_size = -1);

// Minimal OOXML packages.
std::string MakeXlsx(const std::vector<std::pair<std::string, std::string>>& sheets_xml,
                     const std::string& shared_strings_xml, const Files& extra = {});
std::string MakeDocx(const std::string& document_xml, const Files& extra = {});
std::string MakePptx(const std::vector<std::string>& slides_xml);

}  // namespace mamori::extract::testing
