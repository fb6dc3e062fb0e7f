// Office Open XML: docx, xlsx, pptx, streamed through expat.
#include <expat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>

#include "extract/internal.h"

namespace mamori::extract::internal {
namespace {

std::string_view Local(const char* qname) {
  std::string_view n(qname);
  size_t colon = n.rfind(':');
  return colon == std::string_view::npos ? n : n.substr(colon + 1);
}

// An attribute by local name ("r:id" matches "id").
std::string_view Attr(const char** attrs, std::string_view local) {
  for (int i = 0; attrs[i] != nullptr; i += 2) {
    if (Local(attrs[i]) == local) return attrs[i + 1];
  }
  return {};
}

// A prefixed attribute by local name ("r:id", not "id").
std::string_view AttrNs(const char** attrs, std::string_view local) {
  for (int i = 0; attrs[i] != nullptr; i += 2) {
    std::string_view q(attrs[i]);
    if (q.find(':') != std::string_view::npos && Local(attrs[i]) == local) return attrs[i + 1];
  }
  return {};
}

// A streaming XML reader with expat. DTDs are refused (no entity expansion).
class Xml {
 public:
  virtual ~Xml() = default;
  virtual void Start(std::string_view name, const char** attrs) = 0;
  virtual void End(std::string_view name) = 0;
  virtual void Chars(std::string_view text) = 0;

  Status Parse(std::string_view data, const std::string& what) {
    std::unique_ptr<XML_ParserStruct, void (*)(XML_Parser)> p(XML_ParserCreate(nullptr),
                                                              XML_ParserFree);
    if (!p) return Internal("expat: out of memory");
    XML_SetUserData(p.get(), this);
    XML_SetElementHandler(
        p.get(),
        [](void* self, const XML_Char* name, const XML_Char** attrs) {
          static_cast<Xml*>(self)->Start(Local(name), attrs);
        },
        [](void* self, const XML_Char* name) { static_cast<Xml*>(self)->End(Local(name)); });
    XML_SetCharacterDataHandler(p.get(), [](void* self, const XML_Char* s, int len) {
      static_cast<Xml*>(self)->Chars(std::string_view(s, static_cast<size_t>(len)));
    });
    parser_ = p.get();
    XML_SetStartDoctypeDeclHandler(
        p.get(), [](void* self, const XML_Char*, const XML_Char*, const XML_Char*, int) {
          auto* x = static_cast<Xml*>(self);
          x->doctype_ = true;
          XML_StopParser(x->parser_, XML_FALSE);
        });
    constexpr size_t kChunk = 1 << 20;
    size_t off = 0;
    do {
      size_t n = std::min(kChunk, data.size() - off);
      bool final = off + n == data.size();
      if (XML_Parse(p.get(), data.data() + off, static_cast<int>(n), final) != XML_STATUS_OK) {
        if (doctype_) return InvalidArgument(what + " has a DTD, which OOXML never uses; refused");
        return InvalidArgument(what + " is not well-formed XML (line " +
                               std::to_string(XML_GetCurrentLineNumber(p.get())) + ": " +
                               XML_ErrorString(XML_GetErrorCode(p.get())) + ")");
      }
      off += n;
    } while (off < data.size());
    return Status::Ok();
  }

 private:
  XML_Parser parser_ = nullptr;
  bool doctype_ = false;
};

// Text of WordprocessingML and DrawingML: paragraphs as lines, table cells as tabs.
class DocText : public Xml {
 public:
  explicit DocText(std::string* out) : out_(out) {}
  void Start(std::string_view n, const char**) override {
    if (n == "t" || n == "delText") {
      in_text_ = true;
    } else if (n == "tab" && !in_text_) {
      out_->push_back('\t');
    } else if (n == "br" || n == "cr") {
      out_->push_back(table_depth_ ? ' ' : '\n');
    } else if (n == "tbl") {
      ++table_depth_;
    }
  }
  void End(std::string_view n) override {
    if (n == "t" || n == "delText") {
      in_text_ = false;
    } else if (n == "p") {
      if (table_depth_) {
        if (!out_->empty() && out_->back() != '\t' && out_->back() != '\n') out_->push_back(' ');
      } else {
        out_->push_back('\n');
      }
    } else if (n == "tc") {
      while (!out_->empty() && out_->back() == ' ') out_->pop_back();
      out_->push_back('\t');
    } else if (n == "tr") {
      if (!out_->empty() && out_->back() == '\t') out_->pop_back();
      out_->push_back('\n');
    } else if (n == "tbl" && table_depth_) {
      --table_depth_;
    }
  }
  void Chars(std::string_view s) override {
    if (!in_text_) return;
    for (char c : s) out_->push_back(c == '\n' || c == '\r' ? ' ' : c);
  }

 private:
  std::string* out_;
  bool in_text_ = false;
  int table_depth_ = 0;
};

// Relationships: Id -> Target (resolved against the source part's folder).
class Rels : public Xml {
 public:
  Rels(std::string base) : base_(std::move(base)) {}
  void Start(std::string_view n, const char** a) override {
    if (n != "Relationship") return;
    if (Attr(a, "TargetMode") == "External") return;
    std::string target(Attr(a, "Target"));
    map[std::string(Attr(a, "Id"))] = {Resolve(target), std::string(Attr(a, "Type"))};
  }
  void End(std::string_view) override {}
  void Chars(std::string_view) override {}

  std::string Resolve(const std::string& target) const {
    std::vector<std::string> parts;
    std::string full = target.rfind('/', 0) == 0 ? target.substr(1) : base_ + target;
    size_t pos = 0;
    while (pos <= full.size()) {
      size_t slash = full.find('/', pos);
      std::string seg =
          full.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
      if (seg == "..") {
        if (!parts.empty()) parts.pop_back();
      } else if (!seg.empty() && seg != ".") {
        parts.push_back(seg);
      }
      if (slash == std::string::npos) break;
      pos = slash + 1;
    }
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? "/" : "") + parts[i];
    return out;
  }

  std::map<std::string, std::pair<std::string, std::string>> map;  // id -> (target, type)

 private:
  std::string base_;
};

std::string Folder(const std::string& part) {
  size_t slash = part.rfind('/');
  return slash == std::string::npos ? "" : part.substr(0, slash + 1);
}

std::string RelsPathFor(const std::string& part) {
  return Folder(part) + "_rels/" + part.substr(Folder(part).size()) + ".rels";
}

// ---- xlsx ----
class Workbook : public Xml {
 public:
  void Start(std::string_view n, const char** a) override {
    if (n == "sheet")
      sheets.emplace_back(std::string(Attr(a, "name")), std::string(AttrNs(a, "id")));
    if (n == "workbookPr") {
      std::string_view d = Attr(a, "date1904");
      date1904 = d == "1" || d == "true";
    }
  }
  void End(std::string_view) override {}
  void Chars(std::string_view) override {}
  std::vector<std::pair<std::string, std::string>> sheets;  // name, relationship id
  bool date1904 = false;
};

class SharedStrings : public Xml {
 public:
  void Start(std::string_view n, const char**) override {
    if (n == "si") {
      strings.emplace_back();
      in_si_ = true;
    } else if (n == "rPh") {
      ++phonetic_;  // furigana runs repeat the base text; skipped
    } else if (n == "t") {
      in_t_ = true;
    }
  }
  void End(std::string_view n) override {
    if (n == "si") in_si_ = false;
    if (n == "rPh" && phonetic_) --phonetic_;
    if (n == "t") in_t_ = false;
  }
  void Chars(std::string_view s) override {
    if (in_si_ && in_t_ && !phonetic_ && !strings.empty()) strings.back().append(s);
  }
  std::vector<std::string> strings;

 private:
  bool in_si_ = false;
  bool in_t_ = false;
  int phonetic_ = 0;
};

constexpr uint32_t kMaxColumns = 16384;  // XFD

// "C7" -> column 2, row 7. Returns false if malformed.
bool ParseCellRef(std::string_view ref, uint32_t* col, uint64_t* row) {
  size_t i = 0;
  uint32_t c = 0;
  while (i < ref.size() && std::isalpha(static_cast<unsigned char>(ref[i])) && i < 4) {
    c = c * 26 + static_cast<uint32_t>(std::toupper(static_cast<unsigned char>(ref[i])) - 'A' + 1);
    ++i;
  }
  if (i == 0 || c == 0 || c > kMaxColumns) return false;
  uint64_t r = 0;
  size_t digits = 0;
  while (i < ref.size() && std::isdigit(static_cast<unsigned char>(ref[i])) && digits < 8) {
    r = r * 10 + static_cast<uint64_t>(ref[i] - '0');
    ++i;
    ++digits;
  }
  if (i != ref.size() || r == 0) return false;
  *col = c - 1;
  *row = r;
  return true;
}

std::string ColumnName(uint32_t col) {
  std::string s;
  uint32_t n = col + 1;
  while (n > 0) {
    s.insert(s.begin(), static_cast<char>('A' + (n - 1) % 26));
    n = (n - 1) / 26;
  }
  return s;
}

uint64_t ParseUint(std::string_view s) {
  uint64_t v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c)) || v > 1'000'000'000'000ull) return 0;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// Which cell styles (cellXfs indexes) show a number as a date.
class Styles : public Xml {
 public:
  void Start(std::string_view n, const char** a) override {
    if (n == "numFmt") {
      custom_[ParseUint(Attr(a, "numFmtId"))] = IsDateCode(Attr(a, "formatCode"));
    } else if (n == "cellXfs") {
      in_xfs_ = true;
    } else if (n == "xf" && in_xfs_) {
      uint64_t id = ParseUint(Attr(a, "numFmtId"));
      auto it = custom_.find(id);
      date_style.push_back(it != custom_.end() ? it->second : IsBuiltinDate(id));
    }
  }
  void End(std::string_view n) override {
    if (n == "cellXfs") in_xfs_ = false;
  }
  void Chars(std::string_view) override {}

  std::vector<bool> date_style;  // by cellXfs index

 private:
  static bool IsBuiltinDate(uint64_t id) {
    // 14-22 (dates, times), 27-36 and 50-58 (East Asian era and 年月日 formats).
    return (id >= 14 && id <= 17) || id == 22 || (id >= 27 && id <= 36) || (id >= 50 && id <= 58);
  }
  // A custom format is a date if it has y, m or d outside quotes and brackets
  // (and is not purely elapsed time).
  static bool IsDateCode(std::string_view code) {
    bool quoted = false;
    int bracket = 0;
    bool y = false, d = false, e = false;
    for (size_t i = 0; i < code.size(); ++i) {
      char c = code[i];
      if (c == '"') quoted = !quoted;
      if (quoted) continue;
      if (c == '\\') {
        ++i;
        continue;
      }
      if (c == '[') ++bracket;
      if (c == ']' && bracket) --bracket;
      if (bracket) continue;
      char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (l == 'y') y = true;
      if (l == 'd') d = true;
      if (l == 'e' || l == 'g') e = true;  // era year (和暦)
    }
    return y || d || e;
  }
  std::map<uint64_t, bool> custom_;
  bool in_xfs_ = false;
};

// An Excel serial day number as YYYY/MM/DD, or "" if out of range.
std::string SerialToDate(std::string_view value, bool date1904) {
  char* end = nullptr;
  std::string v(value);
  double serial = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0' || !(serial >= 1) || serial > 2958465) return {};
  int64_t days = static_cast<int64_t>(serial);
  // Days since 1970-01-01: the 1900 system counts the fictitious 1900-02-29.
  int64_t z = date1904 ? days - 24107 : (days < 60 ? days - 25568 : days - 25569);
  // civil_from_days (H. Hinnant)
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld/%02lld/%02lld", static_cast<long long>(y),
                static_cast<long long>(m), static_cast<long long>(d));
  return buf;
}

// A worksheet rendered as TSV: one line per row that has a value, field k is
// column k (A = 0); rows[] maps lines to real row numbers.
class Sheet : public Xml {
 public:
  Sheet(const std::vector<std::string>& shared, const std::vector<bool>& date_styles, bool date1904,
        std::string* out, std::vector<uint64_t>* rows, size_t max_out)
      : shared_(shared),
        date_styles_(date_styles),
        date1904_(date1904),
        out_(out),
        rows_(rows),
        max_out_(max_out) {}

  // True when the rendered TSV outgrew its budget (sparse far-right cells can
  // make a small sheet render huge); the output was cut.
  bool overflow() const { return overflow_; }

  void Start(std::string_view n, const char** a) override {
    if (n == "row") {
      uint64_t r = ParseUint(Attr(a, "r"));
      row_ = r ? r : row_ + 1;
      cells_.clear();
      next_col_ = 0;
      in_row_ = true;
    } else if (n == "c" && in_row_) {
      std::string_view ref = Attr(a, "r");
      uint32_t col;
      uint64_t row;
      if (!ref.empty() && ParseCellRef(ref, &col, &row)) {
        col_ = col;
      } else {
        col_ = next_col_;
      }
      next_col_ = col_ + 1;
      type_ = std::string(Attr(a, "t"));
      style_ = ParseUint(Attr(a, "s"));
      value_.clear();
      in_cell_ = true;
    } else if ((n == "v" || n == "t") && in_cell_) {
      in_value_ = true;
    } else if (n == "rPh") {
      ++phonetic_;
    }
  }
  void End(std::string_view n) override {
    if (n == "v" || n == "t") {
      in_value_ = false;
    } else if (n == "rPh" && phonetic_) {
      --phonetic_;
    } else if (n == "c" && in_cell_) {
      in_cell_ = false;
      std::string v;
      if (type_ == "s") {
        uint64_t idx = ParseUint(value_);
        if (!value_.empty() && idx < shared_.size()) v = shared_[idx];
      } else if (type_ == "b") {
        v = value_ == "1" ? "TRUE" : "FALSE";
      } else if ((type_.empty() || type_ == "n") && style_ < date_styles_.size() &&
                 date_styles_[style_]) {
        // Dates are numbers with a date style: rendered as dates, so a birth
        // date in an employee master reads as one.
        v = SerialToDate(value_, date1904_);
        if (v.empty()) v = value_;
      } else {
        v = value_;
      }
      if (!v.empty() && col_ < kMaxColumns) {
        for (char& c : v) {
          if (c == '\t' || c == '\n' || c == '\r') c = ' ';
        }
        if (cells_.size() <= col_) cells_.resize(col_ + 1);
        cells_[col_] = std::move(v);
      }
    } else if (n == "row" && in_row_) {
      in_row_ = false;
      if (cells_.empty() || overflow_) return;
      size_t need = cells_.size();
      for (const auto& c : cells_) need += c.size();
      if (out_->size() + need > max_out_) {
        overflow_ = true;
        return;
      }
      for (size_t k = 0; k < cells_.size(); ++k) {
        if (k) out_->push_back('\t');
        out_->append(cells_[k]);
      }
      out_->push_back('\n');
      rows_->push_back(row_);
    }
  }
  void Chars(std::string_view s) override {
    if (in_value_ && !phonetic_ && value_.size() < (1 << 20)) value_.append(s);
  }

 private:
  const std::vector<std::string>& shared_;
  const std::vector<bool>& date_styles_;
  bool date1904_;
  uint64_t style_ = 0;
  std::string* out_;
  std::vector<uint64_t>* rows_;
  size_t max_out_;
  bool overflow_ = false;
  uint64_t row_ = 0;
  uint32_t col_ = 0;
  uint32_t next_col_ = 0;
  bool in_row_ = false;
  bool in_cell_ = false;
  bool in_value_ = false;
  int phonetic_ = 0;
  std::string type_;
  std::string value_;
  std::vector<std::string> cells_;
};

// ---- pptx ----
class Presentation : public Xml {
 public:
  void Start(std::string_view n, const char** a) override {
    if (n == "sldId") rel_ids.emplace_back(std::string(AttrNs(a, "id")));
  }
  void End(std::string_view) override {}
  void Chars(std::string_view) override {}
  std::vector<std::string> rel_ids;
};

uint64_t TrailingNumber(const std::string& s) {
  size_t dot = s.rfind('.');
  size_t end = dot == std::string::npos ? s.size() : dot;
  size_t start = end;
  while (start > 0 && std::isdigit(static_cast<unsigned char>(s[start - 1]))) --start;
  return ParseUint(s.substr(start, end - start));
}

using Parts = std::map<std::string, std::string>;

// Parses an XML part; on failure reports an error unit for it and returns false.
bool ParsePart(Walk& walk, const std::string& path, const Parts& parts, const std::string& name,
               Xml& xml, Status* stop) {
  auto it = parts.find(name);
  if (it == parts.end()) return false;
  Status s = xml.Parse(it->second, name);
  if (!s.ok()) {
    *stop = walk.EmitError(path + "!" + name, "xml", s);
    return false;
  }
  return true;
}

// What a sheet may render to: 64 times its XML, at least 16 MiB.
size_t SheetBudget(const Parts& parts, const std::string& name) {
  auto it = parts.find(name);
  size_t xml = it == parts.end() ? 0 : it->second.size();
  return std::max<size_t>(16u << 20, xml * 64);
}

// Accounts a rendered sheet; an overflow is reported, not silently cut.
Status CheckSheet(Walk& walk, const std::string& sheet_path, const Sheet& sheet,
                  const std::string& text) {
  if (sheet.overflow()) {
    RETURN_IF_ERROR(walk.EmitError(
        sheet_path, "xlsx",
        ResourceExhausted("sheet renders to more text than its budget (64x its XML); only the "
                          "first " +
                          std::to_string(text.size()) + " bytes are inspected")));
  }
  return walk.AddExpanded(sheet_path, text.size());
}

Status Docx(Walk& walk, const std::string& path, const Parts& parts) {
  std::string text;
  Status stop;
  std::vector<std::string> order;
  if (parts.count("word/document.xml")) order.push_back("word/document.xml");
  for (const auto& [name, data] : parts) {
    if (name.rfind("word/", 0) != 0 || name.find('/', 5) != std::string::npos) continue;
    std::string base = name.substr(5);
    for (const char* prefix : {"header", "footer", "footnotes", "endnotes", "comments"}) {
      if (base.rfind(prefix, 0) == 0 && base.size() > 4 && base.substr(base.size() - 4) == ".xml") {
        order.push_back(name);
        break;
      }
    }
  }
  if (order.empty() || order[0] != "word/document.xml") {
    return walk.EmitError(path, "docx",
                          DataLoss("word/document.xml is missing; not a readable .docx"));
  }
  for (const auto& name : order) {
    std::string part_text;
    DocText doc(&part_text);
    if (!ParsePart(walk, path, parts, name, doc, &stop)) {
      RETURN_IF_ERROR(stop);
      continue;
    }
    if (!text.empty() && !part_text.empty() && text.back() != '\n') text.push_back('\n');
    text += part_text;
  }
  Unit u;
  u.path = path;
  u.format = "docx";
  u.encoding = "UTF-8";
  u.text = text;
  return walk.Emit(u);
}

Status Xlsx(Walk& walk, const std::string& path, const Parts& parts) {
  Status stop;
  Workbook wb;
  if (!ParsePart(walk, path, parts, "xl/workbook.xml", wb, &stop)) {
    RETURN_IF_ERROR(stop);
    return walk.EmitError(path, "xlsx",
                          DataLoss("xl/workbook.xml is missing or damaged; not a "
                                   "readable .xlsx"));
  }
  Rels rels("xl/");
  ParsePart(walk, path, parts, "xl/_rels/workbook.xml.rels", rels, &stop);
  RETURN_IF_ERROR(stop);
  SharedStrings ss;
  std::string ss_name = "xl/sharedStrings.xml";
  for (const auto& [id, tt] : rels.map) {
    if (tt.second.size() >= 13 && tt.second.substr(tt.second.size() - 13) == "sharedStrings")
      ss_name = tt.first;
  }
  if (parts.count(ss_name)) {
    ParsePart(walk, path, parts, ss_name, ss, &stop);
    RETURN_IF_ERROR(stop);
  }
  Styles styles;
  std::string styles_name = "xl/styles.xml";
  for (const auto& [id, tt] : rels.map) {
    if (tt.second.size() >= 6 && tt.second.substr(tt.second.size() - 6) == "styles")
      styles_name = tt.first;
  }
  if (parts.count(styles_name)) {
    ParsePart(walk, path, parts, styles_name, styles, &stop);
    RETURN_IF_ERROR(stop);
  }
  std::set<std::string> seen;
  for (const auto& [sheet_name_raw, rid] : wb.sheets) {
    std::string sheet_name = CleanName(sheet_name_raw);
    std::string sheet_path = path + "!" + sheet_name;
    auto rel = rels.map.find(rid);
    if (rel == rels.map.end()) {
      RETURN_IF_ERROR(walk.EmitError(sheet_path, "xlsx",
                                     DataLoss("sheet has no relationship in workbook.xml.rels")));
      continue;
    }
    const std::string& target = rel->second.first;
    if (!parts.count(target)) {
      RETURN_IF_ERROR(walk.EmitError(sheet_path, "xlsx",
                                     DataLoss("sheet part " + CleanName(target) + " is missing")));
      continue;
    }
    seen.insert(target);
    auto rows = std::make_shared<std::vector<uint64_t>>();
    std::string text;
    Sheet sheet(ss.strings, styles.date_style, wb.date1904, &text, rows.get(),
                SheetBudget(parts, target));
    if (!ParsePart(walk, path, parts, target, sheet, &stop)) {
      RETURN_IF_ERROR(stop);
      continue;
    }
    RETURN_IF_ERROR(CheckSheet(walk, sheet_path, sheet, text));
    Unit u;
    u.path = sheet_path;
    u.format = "xlsx";
    u.encoding = "UTF-8";
    u.text = text;
    u.field_delimiter = '\t';
    u.locate = [rows, sheet_name](uint64_t line, int32_t field) -> std::string {
      if (line == 0 || line > rows->size()) return sheet_name;
      uint64_t row = (*rows)[line - 1];
      if (field < 0 || static_cast<uint32_t>(field) >= kMaxColumns)
        return sheet_name + "!" + std::to_string(row) + ":" + std::to_string(row);
      return sheet_name + "!" + ColumnName(static_cast<uint32_t>(field)) + std::to_string(row);
    };
    RETURN_IF_ERROR(walk.Emit(u));
  }
  // Worksheets that the workbook does not list are still inspected.
  for (const auto& [name, data] : parts) {
    if (name.rfind("xl/worksheets/", 0) != 0 || name.find('/', 14) != std::string::npos ||
        seen.count(name))
      continue;
    std::string sheet_name = name.substr(14);
    auto rows = std::make_shared<std::vector<uint64_t>>();
    std::string text;
    Sheet sheet(ss.strings, styles.date_style, wb.date1904, &text, rows.get(),
                SheetBudget(parts, name));
    if (!ParsePart(walk, path, parts, name, sheet, &stop)) {
      RETURN_IF_ERROR(stop);
      continue;
    }
    RETURN_IF_ERROR(CheckSheet(walk, path + "!" + sheet_name, sheet, text));
    Unit u;
    u.path = path + "!" + sheet_name;
    u.format = "xlsx";
    u.encoding = "UTF-8";
    u.text = text;
    u.field_delimiter = '\t';
    u.locate = [rows, sheet_name](uint64_t line, int32_t field) -> std::string {
      if (line == 0 || line > rows->size() || field < 0) return sheet_name;
      return sheet_name + "!" + ColumnName(static_cast<uint32_t>(field)) +
             std::to_string((*rows)[line - 1]);
    };
    RETURN_IF_ERROR(walk.Emit(u));
  }
  return Status::Ok();
}

Status Pptx(Walk& walk, const std::string& path, const Parts& parts) {
  Status stop;
  std::vector<std::string> slides;
  Presentation pres;
  Rels rels("ppt/");
  if (ParsePart(walk, path, parts, "ppt/presentation.xml", pres, &stop) &&
      ParsePart(walk, path, parts, "ppt/_rels/presentation.xml.rels", rels, &stop)) {
    for (const auto& rid : pres.rel_ids) {
      auto it = rels.map.find(rid);
      if (it != rels.map.end() && parts.count(it->second.first)) slides.push_back(it->second.first);
    }
  }
  RETURN_IF_ERROR(stop);
  std::set<std::string> listed(slides.begin(), slides.end());
  std::vector<std::string> extra;
  for (const auto& [name, data] : parts) {
    if (name.rfind("ppt/slides/slide", 0) == 0 && name.find('/', 11) == std::string::npos &&
        !listed.count(name))
      extra.push_back(name);
  }
  std::sort(extra.begin(), extra.end(), [](const std::string& a, const std::string& b) {
    return TrailingNumber(a) < TrailingNumber(b);
  });
  slides.insert(slides.end(), extra.begin(), extra.end());
  for (size_t i = 0; i < slides.size(); ++i) {
    std::string text;
    DocText slide(&text);
    if (!ParsePart(walk, path, parts, slides[i], slide, &stop)) {
      RETURN_IF_ERROR(stop);
      continue;
    }
    // Speaker notes, through the slide's relationships.
    Rels srels(Folder(slides[i]));
    ParsePart(walk, path, parts, RelsPathFor(slides[i]), srels, &stop);
    RETURN_IF_ERROR(stop);
    for (const auto& [id, tt] : srels.map) {
      if (tt.second.size() >= 10 && tt.second.substr(tt.second.size() - 10) == "notesSlide") {
        std::string notes;
        DocText nt(&notes);
        if (ParsePart(walk, path, parts, tt.first, nt, &stop) && !notes.empty()) {
          if (!text.empty() && text.back() != '\n') text.push_back('\n');
          text += notes;
        }
        RETURN_IF_ERROR(stop);
      }
    }
    Unit u;
    u.path = path + "!slide" + std::to_string(i + 1);
    u.format = "pptx";
    u.encoding = "UTF-8";
    u.text = text;
    RETURN_IF_ERROR(walk.Emit(u));
  }
  if (slides.empty()) {
    Unit u;
    u.path = path;
    u.format = "pptx";
    u.encoding = "UTF-8";
    return walk.Emit(u);
  }
  return Status::Ok();
}

bool WantedPart(const std::string& name) {
  auto ends = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  if (!(ends(".xml") || ends(".rels"))) return false;
  for (std::string_view skip :
       {"/theme/", "/media/", "customXml/", "word/styles.xml", "/fontTable.xml", "/settings.xml",
        "/webSettings.xml", "/slideLayouts/", "/slideMasters/", "/printerSettings/"}) {
    if (name.find(skip) != std::string::npos) return false;
  }
  return name.rfind("word/", 0) == 0 || name.rfind("xl/", 0) == 0 || name.rfind("ppt/", 0) == 0;
}

bool IsEmbedding(const std::string& name) { return name.find("/embeddings/") != std::string::npos; }

}  // namespace

OoxmlKind DetectOoxml(std::string_view zip_data, std::string_view name) {
  auto dir = ReadZipDirectory(zip_data);
  bool content_types = false;
  OoxmlKind kind = OoxmlKind::kNone;
  for (const auto& e : dir) {
    if (e.name == "[Content_Types].xml") content_types = true;
    if (e.name == "word/document.xml") kind = OoxmlKind::kDocx;
    if (e.name == "xl/workbook.xml") kind = OoxmlKind::kXlsx;
    if (e.name == "ppt/presentation.xml") kind = OoxmlKind::kPptx;
  }
  if (content_types && kind != OoxmlKind::kNone) return kind;
  if (!dir.empty()) return OoxmlKind::kNone;
  std::string ext = Extension(name);
  if (ext == "docx" || ext == "docm" || ext == "dotx" || ext == "dotm") return OoxmlKind::kDocx;
  if (ext == "xlsx" || ext == "xlsm" || ext == "xltx" || ext == "xltm") return OoxmlKind::kXlsx;
  if (ext == "pptx" || ext == "pptm" || ext == "ppsx" || ext == "potx" || ext == "potm")
    return OoxmlKind::kPptx;
  return OoxmlKind::kNone;
}

Status ExtractOoxml(Walk& walk, const std::string& path, std::string_view data, uint32_t depth,
                    OoxmlKind kind) {
  Parts parts;
  RETURN_IF_ERROR(ForEachMember(
      walk, path, data, depth, ArchiveKind::kZip,
      [](const std::string& n) { return WantedPart(n) || IsEmbedding(n); },
      [&](const std::string& n, std::string_view bytes) -> Status {
        if (IsEmbedding(n)) return ExtractBytes(walk, path + "!" + n, n, bytes, depth + 1);
        parts.emplace(n, std::string(bytes));
        return Status::Ok();
      }));
  switch (kind) {
    case OoxmlKind::kDocx:
      return Docx(walk, path, parts);
    case OoxmlKind::kXlsx:
      return Xlsx(walk, path, parts);
    case OoxmlKind::kPptx:
      return Pptx(walk, path, parts);
    case OoxmlKind::kNone:
      break;
  }
  return Status::Ok();
}

}  // namespace mamori::extract::internal
