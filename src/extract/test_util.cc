#include "extract/test_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <locale.h>
#include <zlib.h>

#include <cstring>
#include <stdexcept>

namespace mamori::extract::testing {

std::vector<Got> Units(std::string_view name, std::string_view data, const Budgets& b) {
  std::vector<Got> out;
  Status s = ExtractBuffer(name, data, b, [&](const Unit& u, const Status& e) {
    out.push_back(
        {u.path, u.format, u.encoding, std::string(u.text), u.field_delimiter, e, u.locate});
    return Status::Ok();
  });
  if (!s.ok()) out.push_back({"<return>", "", "", "", 0, s, nullptr});
  return out;
}

const Got* Find(const std::vector<Got>& units, std::string_view path) {
  for (const auto& u : units) {
    if (u.path == path) return &u;
  }
  return nullptr;
}

std::string Dump(const std::vector<Got>& units) {
  std::string s;
  for (const auto& u : units) {
    s += u.path + " [" + u.format + "," + u.encoding + "] " +
         (u.error.ok() ? "" : "ERROR " + u.error.ToString()) + "\n";
    if (u.text.size() < 400) s += "  " + u.text + "\n";
  }
  return s;
}

namespace {

la_ssize_t WriteCb(archive*, void* client, const void* buf, size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

std::string Write(const Files& files, bool zip, const std::string& password, bool seven = false) {
  // Names are UTF-8: write them under a UTF-8 locale (this thread only).
  locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  locale_t previous = uselocale(utf8);
  std::string out;
  archive* a = archive_write_new();
  if (seven) {
    archive_write_set_format_7zip(a);
  } else if (zip) {
    archive_write_set_format_zip(a);
    archive_write_set_options(a, "zip:compression=deflate");
    if (!password.empty()) {
      if (archive_write_set_options(a, "zip:encryption=zipcrypt") != ARCHIVE_OK)
        throw std::runtime_error(archive_error_string(a));
      archive_write_set_passphrase(a, password.c_str());
    }
  } else {
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_gzip(a);
  }
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(a, &out, nullptr, WriteCb, nullptr);
  for (const auto& [name, data] : files) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, 1700000000, 0);
    archive_write_header(a, e);
    archive_write_data(a, data.data(), data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  uselocale(previous);
  freelocale(utf8);
  return out;
}

void Put16(std::string* s, uint32_t v) {
  s->push_back(static_cast<char>(v & 0xFF));
  s->push_back(static_cast<char>((v >> 8) & 0xFF));
}
void Put32(std::string* s, uint32_t v) {
  Put16(s, v & 0xFFFF);
  Put16(s, v >> 16);
}
void Put64(std::string* s, uint64_t v) {
  Put32(s, static_cast<uint32_t>(v));
  Put32(s, static_cast<uint32_t>(v >> 32));
}

std::string Deflate(std::string_view in, int flush_mode = Z_FINISH) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, flush_mode);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

struct Compressed {
  std::string name;
  std::string data;
  uint16_t method;
  uint32_t crc;
  uint64_t size;
  uint16_t flags;
};

std::string Assemble(const std::vector<Compressed>& members) {
  std::string zip;
  std::string cd;
  for (const auto& m : members) {
    bool z64 = m.size >= 0xFFFFFFFFull || m.data.size() >= 0xFFFFFFFFull;
    uint64_t offset = zip.size();
    std::string extra;
    if (z64) {
      Put16(&extra, 0x0001);
      Put16(&extra, 16);
      Put64(&extra, m.size);
      Put64(&extra, m.data.size());
    }
    Put32(&zip, 0x04034b50);
    Put16(&zip, z64 ? 45 : 20);
    Put16(&zip, m.flags);
    Put16(&zip, m.method);
    Put16(&zip, 0);
    Put16(&zip, 0x21);
    Put32(&zip, m.crc);
    Put32(&zip, z64 ? 0xFFFFFFFF : static_cast<uint32_t>(m.data.size()));
    Put32(&zip, z64 ? 0xFFFFFFFF : static_cast<uint32_t>(m.size));
    Put16(&zip, static_cast<uint32_t>(m.name.size()));
    Put16(&zip, static_cast<uint32_t>(extra.size()));
    zip += m.name + extra + m.data;

    std::string cextra;
    if (z64) {
      Put16(&cextra, 0x0001);
      Put16(&cextra, 24);
      Put64(&cextra, m.size);
      Put64(&cextra, m.data.size());
      Put64(&cextra, offset);
    }
    Put32(&cd, 0x02014b50);
    Put16(&cd, 0x031E);
    Put16(&cd, z64 ? 45 : 20);
    Put16(&cd, m.flags);
    Put16(&cd, m.method);
    Put16(&cd, 0);
    Put16(&cd, 0x21);
    Put32(&cd, m.crc);
    Put32(&cd, z64 ? 0xFFFFFFFF : static_cast<uint32_t>(m.data.size()));
    Put32(&cd, z64 ? 0xFFFFFFFF : static_cast<uint32_t>(m.size));
    Put16(&cd, static_cast<uint32_t>(m.name.size()));
    Put16(&cd, static_cast<uint32_t>(cextra.size()));
    Put16(&cd, 0);
    Put16(&cd, 0);
    Put16(&cd, 0);
    Put32(&cd, 0100644u << 16);
    Put32(&cd, z64 ? 0xFFFFFFFF : static_cast<uint32_t>(offset));
    cd += m.name + cextra;
  }
  uint64_t cd_offset = zip.size();
  zip += cd;
  // Always write a zip64 end record too when anything is large.
  bool z64 = cd_offset >= 0xFFFFFFFFull;
  (void)z64;
  Put32(&zip, 0x06054b50);
  Put16(&zip, 0);
  Put16(&zip, 0);
  Put16(&zip, static_cast<uint32_t>(members.size()));
  Put16(&zip, static_cast<uint32_t>(members.size()));
  Put32(&zip, static_cast<uint32_t>(cd.size()));
  Put32(&zip, static_cast<uint32_t>(cd_offset));
  Put16(&zip, 0);
  return zip;
}

}  // namespace

std::string MakeZip(const Files& files, const std::string& password) {
  return Write(files, true, password);
}

std::string MakeTarGz(const Files& files) { return Write(files, false, ""); }

std::string Make7z(const Files& files) { return Write(files, false, "", true); }

std::string MakeRawZip(const std::vector<RawMember>& members) {
  std::vector<Compressed> c;
  for (const auto& m : members) {
    uint32_t crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(m.content.data()),
                                               static_cast<uInt>(m.content.size())));
    c.push_back({m.name, m.stored ? m.content : Deflate(m.content),
                 static_cast<uint16_t>(m.stored ? 0 : 8), crc,
                 m.declared_size >= 0 ? static_cast<uint64_t>(m.declared_size) : m.content.size(),
                 static_cast<uint16_t>((m.encrypted_flag ? 1 : 0) | (m.utf8_flag ? 0x800 : 0))});
  }
  return Assemble(c);
}

std::string MakeZerosZip(const std::string& name, uint64_t zeros, int64_t declared_size) {
  constexpr uint64_t kBlock = 1 << 20;
  std::string block_in(kBlock, '\0');
  // One self-contained deflate block (full flush), repeated, then a final block.
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY);
  std::string block(deflateBound(&z, kBlock) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(block_in.data());
  z.avail_in = kBlock;
  z.next_out = reinterpret_cast<Bytef*>(block.data());
  z.avail_out = static_cast<uInt>(block.size());
  deflate(&z, Z_FULL_FLUSH);
  block.resize(z.total_out);
  uint64_t before = z.total_out;
  std::string fin(64, '\0');
  z.next_in = nullptr;
  z.avail_in = 0;
  z.next_out = reinterpret_cast<Bytef*>(fin.data());
  z.avail_out = static_cast<uInt>(fin.size());
  deflate(&z, Z_FINISH);
  fin.resize(z.total_out - before);
  deflateEnd(&z);
  std::string data;
  uint64_t blocks = (zeros + kBlock - 1) / kBlock;
  data.reserve(block.size() * blocks + fin.size());
  for (uint64_t i = 0; i < blocks; ++i) data += block;
  data += fin;
  Compressed m{
      name, data, 8, 0, declared_size >= 0 ? static_cast<uint64_t>(declared_size) : blocks * kBlock,
      0};
  return Assemble({m});
}

namespace {
const char* kContentTypes =
    R"(<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>)";
const char* kRelNs = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
}  // namespace

std::string MakeXlsx(const std::vector<std::pair<std::string, std::string>>& sheets,
                     const std::string& shared_strings_xml, const Files& extra) {
  Files f;
  f.emplace_back("[Content_Types].xml", kContentTypes);
  std::string wb =
      std::string(
          R"(<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r=")") +
      kRelNs + R"("><sheets>)";
  std::string rels =
      R"(<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">)";
  size_t n = sheets.size();
  for (size_t i = 0; i < n; ++i) {
    // Part names run backwards, so only the relationships tell which is which.
    std::string part = "worksheets/sheet" + std::to_string(n - i) + ".xml";
    wb += "<sheet name=\"" + sheets[i].first + "\" sheetId=\"" + std::to_string(i + 1) +
          "\" r:id=\"rId" + std::to_string(i + 1) + "\"/>";
    rels += "<Relationship Id=\"rId" + std::to_string(i + 1) +
            "\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
            "worksheet\" Target=\"" +
            part + "\"/>";
    f.emplace_back("xl/" + part, sheets[i].second);
  }
  rels +=
      R"(<Relationship Id="rIdSS" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>)";
  rels += "</Relationships>";
  wb += "</sheets></workbook>";
  f.emplace_back("xl/workbook.xml", wb);
  f.emplace_back("xl/_rels/workbook.xml.rels", rels);
  if (!shared_strings_xml.empty()) f.emplace_back("xl/sharedStrings.xml", shared_strings_xml);
  for (const auto& e : extra) f.push_back(e);
  return MakeZip(f);
}

std::string MakeDocx(const std::string& document_xml, const Files& extra) {
  Files f;
  f.emplace_back("[Content_Types].xml", kContentTypes);
  f.emplace_back("word/document.xml", document_xml);
  for (const auto& e : extra) f.push_back(e);
  return MakeZip(f);
}

std::string MakePptx(const std::vector<std::string>& slides) {
  Files f;
  f.emplace_back("[Content_Types].xml", kContentTypes);
  std::string pres =
      std::string(
          R"(<?xml version="1.0"?><p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:r=")") +
      kRelNs + R"("><p:sldIdLst>)";
  std::string rels =
      R"(<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">)";
  for (size_t i = 0; i < slides.size(); ++i) {
    std::string id = std::to_string(i + 1);
    pres += "<p:sldId id=\"" + std::to_string(256 + i) + "\" r:id=\"rId" + id + "\"/>";
    rels += "<Relationship Id=\"rId" + id +
            "\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/slide\" "
            "Target=\"slides/slide" +
            id + ".xml\"/>";
    f.emplace_back("ppt/slides/slide" + id + ".xml", slides[i]);
  }
  pres += "</p:sldIdLst></p:presentation>";
  rels += "</Relationships>";
  f.emplace_back("ppt/presentation.xml", pres);
  f.emplace_back("ppt/_rels/presentation.xml.rels", rels);
  return MakeZip(f);
}

}  // namespace mamori::extract::testing
