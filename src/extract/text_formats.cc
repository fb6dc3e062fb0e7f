// Decoded text formats: plain text, CSV/TSV, JSON and HTML.
#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>

#include "extract/internal.h"

namespace mamori::extract::internal {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

std::string_view TrimLeft(std::string_view s) {
  while (!s.empty() && (s[0] == ' ' || s[0] == '\t' || s[0] == '\r' || s[0] == '\n'))
    s.remove_prefix(1);
  return s;
}

// The first lines of a text, for sniffing (at most `n` lines of 64 KiB).
std::vector<std::string_view> FirstLines(std::string_view s, size_t n) {
  std::vector<std::string_view> lines;
  s = s.substr(0, 64 * 1024);
  while (!s.empty() && lines.size() < n) {
    size_t nl = s.find('\n');
    std::string_view line = s.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (nl == std::string_view::npos) {
      break;  // possibly cut: ignore the last partial line
    }
    if (!line.empty()) lines.push_back(line);
    s.remove_prefix(nl + 1);
  }
  return lines;
}

// A delimiter that appears the same number of times (>= min) on every sampled line.
char ConsistentDelimiter(std::string_view text, std::string_view candidates, size_t min_count,
                         size_t min_lines) {
  auto lines = FirstLines(text, 20);
  if (lines.size() < min_lines) return 0;
  for (char d : candidates) {
    size_t first = std::count(lines[0].begin(), lines[0].end(), d);
    if (first < min_count) continue;
    bool same = true;
    for (auto l : lines) {
      if (static_cast<size_t>(std::count(l.begin(), l.end(), d)) != first) {
        same = false;
        break;
      }
    }
    if (same) return d;
  }
  return 0;
}

// ---- JSON ----
class JsonLines : public nlohmann::json_sax<nlohmann::json> {
 public:
  JsonLines(std::string* out, uint32_t max_depth, size_t max_out, std::string prefix)
      : out_(out), max_depth_(max_depth), max_out_(max_out), root_(std::move(prefix)) {}

  bool null() override { return Skip(); }
  bool boolean(bool) override { return Skip(); }
  bool number_integer(number_integer_t v) override { return Value(std::to_string(v)); }
  bool number_unsigned(number_unsigned_t v) override { return Value(std::to_string(v)); }
  bool number_float(number_float_t, const string_t& s) override { return Value(s); }
  bool string(string_t& s) override { return Value(s); }
  bool binary(binary_t&) override { return Skip(); }
  bool start_object(std::size_t) override { return Push(false); }
  bool end_object() override { return Pop(); }
  bool start_array(std::size_t) override { return Push(true); }
  bool end_array() override { return Pop(); }
  bool key(string_t& k) override {
    if (!stack_.empty()) stack_.back().key = k;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  struct Frame {
    std::string path;
    bool array;
    uint64_t index = 0;
    std::string key;
  };
  std::string ChildPath() {
    if (stack_.empty()) return root_;
    Frame& f = stack_.back();
    if (f.array) return f.path + "[" + std::to_string(f.index++) + "]";
    return f.path.empty() ? f.key : f.path + "." + f.key;
  }
  bool Skip() {
    ChildPath();
    return true;
  }
  bool Value(const std::string& v) {
    std::string p = ChildPath();
    out_->append(p.empty() ? "value" : p);
    out_->append(": ");
    size_t start = out_->size();
    out_->append(v);
    for (size_t i = start; i < out_->size(); ++i) {
      if ((*out_)[i] == '\n' || (*out_)[i] == '\r') (*out_)[i] = ' ';
    }
    out_->push_back('\n');
    return out_->size() <= max_out_;
  }
  bool Push(bool array) {
    if (stack_.size() >= max_depth_) return false;
    std::string p = ChildPath();
    stack_.push_back(Frame{std::move(p), array, 0, {}});
    return true;
  }
  bool Pop() {
    if (!stack_.empty()) stack_.pop_back();
    return true;
  }

  std::string* out_;
  uint32_t max_depth_;
  size_t max_out_;
  std::string root_;
  std::vector<Frame> stack_;
};

// ---- HTML ----
const std::array<std::pair<std::string_view, uint32_t>, 24> kEntities = {{
    {"amp", '&'},      {"lt", '<'},       {"gt", '>'},        {"quot", '"'},     {"apos", '\''},
    {"nbsp", ' '},     {"ensp", ' '},     {"emsp", ' '},      {"thinsp", ' '},   {"yen", 0xA5},
    {"copy", 0xA9},    {"reg", 0xAE},     {"middot", 0xB7},   {"times", 0xD7},   {"divide", 0xF7},
    {"ndash", 0x2013}, {"mdash", 0x2014}, {"hellip", 0x2026}, {"laquo", 0xAB},   {"raquo", 0xBB},
    {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C},  {"rdquo", 0x201D},
}};

bool IsBlockTag(std::string_view t) {
  static const char* kBlocks[] = {
      "p",          "div",  "br",    "li",      "ul",    "ol",      "h1",      "h2",     "h3",
      "h4",         "h5",   "h6",    "tr",      "table", "section", "article", "header", "footer",
      "blockquote", "pre",  "hr",    "dd",      "dt",    "dl",      "form",    "title",  "address",
      "nav",        "main", "aside", "caption", "thead", "tbody",   "tfoot",   "option", "body"};
  for (const char* b : kBlocks) {
    if (t == b) return true;
  }
  return false;
}

class HtmlText {
 public:
  HtmlText(std::string* main, std::vector<std::string>* tables) : main_(main), tables_(tables) {}

  void Run(std::string_view h) {
    size_t i = 0;
    while (i < h.size()) {
      char c = h[i];
      if (c == '<') {
        i = Tag(h, i);
      } else if (c == '&') {
        i = Entity(h, i);
      } else {
        Text(c);
        ++i;
      }
    }
    while (!tables_open_.empty()) CloseTable();
    FlushLine();
  }

 private:
  struct Table {
    std::vector<std::vector<std::string>> rows;
    bool header = false;
    bool in_cell = false;
  };

  std::string& Sink() {
    if (!tables_open_.empty()) {
      Table& t = tables_open_.back();
      if (t.rows.empty()) t.rows.emplace_back();
      if (t.rows.back().empty() || !t.in_cell) {
        t.rows.back().emplace_back();
        t.in_cell = true;
      }
      return t.rows.back().back();
    }
    return line_;
  }

  void Text(char c) {
    bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
    if (space) {
      pending_space_ = true;
      return;
    }
    std::string& s = Sink();
    if (pending_space_ && !s.empty()) s.push_back(' ');
    pending_space_ = false;
    s.push_back(c);
  }

  void TextCp(uint32_t cp) {
    if (cp == ' ') {
      pending_space_ = true;
      return;
    }
    std::string& s = Sink();
    if (pending_space_ && !s.empty()) s.push_back(' ');
    pending_space_ = false;
    AppendUtf8(&s, cp);
  }

  size_t Entity(std::string_view h, size_t i) {
    size_t semi = h.substr(i, 14).find(';');
    if (semi != std::string_view::npos) semi += i;
    if (semi == std::string_view::npos || semi - i > 12) {
      Text('&');
      return i + 1;
    }
    std::string_view name = h.substr(i + 1, semi - i - 1);
    if (!name.empty() && name[0] == '#') {
      uint32_t cp = 0;
      bool hex = name.size() > 1 && (name[1] == 'x' || name[1] == 'X');
      std::string_view digits = name.substr(hex ? 2 : 1);
      if (digits.empty()) {
        Text('&');
        return i + 1;
      }
      for (char d : digits) {
        int v = std::isdigit(static_cast<unsigned char>(d)) ? d - '0'
                : hex && std::isxdigit(static_cast<unsigned char>(d))
                    ? std::tolower(static_cast<unsigned char>(d)) - 'a' + 10
                    : -1;
        if (v < 0) {
          Text('&');
          return i + 1;
        }
        cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(v);
        if (cp > 0x10FFFF) cp = 0xFFFD;
      }
      TextCp(cp == 0 ? 0xFFFD : cp);
      return semi + 1;
    }
    for (const auto& [n, cp] : kEntities) {
      if (name == n) {
        TextCp(cp);
        return semi + 1;
      }
    }
    Text('&');
    return i + 1;
  }

  // Parses a tag at h[i] == '<'; returns the index after it.
  size_t Tag(std::string_view h, size_t i) {
    if (h.substr(i, 4) == "<!--") {
      size_t e = h.find("-->", i + 4);
      return e == std::string_view::npos ? h.size() : e + 3;
    }
    size_t j = i + 1;
    bool closing = j < h.size() && h[j] == '/';
    if (closing) ++j;
    size_t name_start = j;
    while (j < h.size() && (std::isalnum(static_cast<unsigned char>(h[j])))) ++j;
    if (j == name_start && !(i + 1 < h.size() && (h[i + 1] == '!' || h[i + 1] == '?'))) {
      Text('<');  // a lone '<' in text
      return i + 1;
    }
    std::string name(h.substr(name_start, j - name_start));
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    // Find the end of the tag, honouring quoted attribute values.
    char quote = 0;
    while (j < h.size()) {
      char ch = h[j];
      if (quote) {
        if (ch == quote) quote = 0;
      } else if (ch == '"' || ch == '\'') {
        quote = ch;
      } else if (ch == '>') {
        break;
      }
      ++j;
    }
    size_t after = j < h.size() ? j + 1 : h.size();
    if (!closing && (name == "script" || name == "style" || name == "template")) {
      std::string close = "</" + name;
      size_t k = after;
      while (true) {
        size_t p = h.find("</", k);
        if (p == std::string_view::npos) return h.size();
        if (IEquals(h.substr(p, close.size()), close)) {
          size_t e = h.find('>', p);
          return e == std::string_view::npos ? h.size() : e + 1;
        }
        k = p + 2;
      }
    }
    OnTag(name, closing);
    return after;
  }

  void OnTag(const std::string& name, bool closing) {
    if (name == "table") {
      if (!closing) {
        if (tables_open_.empty()) FlushLine();
        tables_open_.emplace_back();
        if (tables_open_.size() > 32) tables_open_.pop_back();  // absurd nesting: flatten
      } else if (!tables_open_.empty()) {
        CloseTable();
      }
      pending_space_ = false;
      return;
    }
    if (!tables_open_.empty()) {
      Table& t = tables_open_.back();
      if (name == "tr") {
        if (!closing) t.rows.emplace_back();
        t.in_cell = false;
        pending_space_ = false;
      } else if (name == "td" || name == "th") {
        if (!closing) {
          if (t.rows.empty()) t.rows.emplace_back();
          t.rows.back().emplace_back();
          t.in_cell = true;
          if (name == "th" && t.rows.size() == 1) t.header = true;
        } else {
          t.in_cell = false;
        }
        pending_space_ = false;
      } else if (IsBlockTag(name)) {
        pending_space_ = true;
      }
      return;
    }
    if (IsBlockTag(name)) FlushLine();
  }

  static std::string Clean(std::string s) {
    for (char& c : s) {
      if (c == '\t' || c == '\n' || c == '\r') c = ' ';
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  }

  void CloseTable() {
    Table t = std::move(tables_open_.back());
    tables_open_.pop_back();
    std::string rendered;
    for (auto& row : t.rows) {
      if (row.empty()) continue;
      bool any = false;
      for (size_t k = 0; k < row.size(); ++k) {
        if (k) rendered.push_back('\t');
        std::string cell = Clean(std::move(row[k]));
        any = any || !cell.empty();
        rendered += cell;
      }
      if (!any) {
        // drop the separators of a row with no text
        while (!rendered.empty() && rendered.back() == '\t') rendered.pop_back();
        continue;
      }
      rendered.push_back('\n');
    }
    if (!tables_open_.empty()) {
      // A nested table: its text joins the outer cell.
      std::string& s = Sink();
      if (!s.empty()) s.push_back(' ');
      s += Clean(rendered);
      return;
    }
    if (t.header) {
      tables_->push_back(std::move(rendered));
    } else {
      *main_ += rendered;
    }
  }

  void FlushLine() {
    if (!line_.empty()) {
      *main_ += line_;
      main_->push_back('\n');
      line_.clear();
    }
    pending_space_ = false;
  }

  std::string* main_;
  std::vector<std::string>* tables_;
  std::string line_;
  bool pending_space_ = false;
  std::vector<Table> tables_open_;
};

}  // namespace

TextFormat DetectTextFormat(std::string_view name, std::string_view utf8) {
  std::string ext = Extension(name);
  if (ext == "csv") return TextFormat::kCsv;
  if (ext == "tsv" || ext == "tab") return TextFormat::kTsv;
  if (ext == "json" || ext == "jsonl" || ext == "ndjson" || ext == "geojson")
    return TextFormat::kJson;
  if (ext == "html" || ext == "htm" || ext == "xhtml") return TextFormat::kHtml;
  std::string_view head = TrimLeft(utf8.substr(0, 1024));
  if (!head.empty() && (head[0] == '{' || head[0] == '[')) return TextFormat::kJson;
  std::string lower(head.substr(0, 512));
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.rfind("<!doctype html", 0) == 0 || lower.rfind("<html", 0) == 0 ||
      lower.find("<html") != std::string::npos)
    return TextFormat::kHtml;
  if (ext.empty() || ext == "txt" || ext == "dat") {
    char d = ConsistentDelimiter(utf8, "\t", 1, 2);
    if (d == '\t') return TextFormat::kTsv;
    if (ConsistentDelimiter(utf8, ",", 2, 3) == ',') return TextFormat::kCsv;
  }
  return TextFormat::kText;
}

void NeutralizeQuoted(std::string* csv, char delim) {
  constexpr size_t kMaxQuoted = 64 * 1024;
  std::string& s = *csv;
  size_t i = 0;
  bool field_start = true;
  std::vector<std::pair<size_t, char>> changed;
  while (i < s.size()) {
    char c = s[i];
    if (field_start && c == '"') {
      size_t open = i;
      changed.clear();
      size_t j = i + 1;
      bool closed = false;
      while (j < s.size() && j - open <= kMaxQuoted) {
        if (s[j] == '"') {
          if (j + 1 < s.size() && s[j + 1] == '"') {
            j += 2;
            continue;
          }
          closed = true;
          break;
        }
        if (s[j] == '\n' || s[j] == '\r' || s[j] == delim) {
          changed.emplace_back(j, s[j]);
          s[j] = ' ';
        }
        ++j;
      }
      if (closed) {
        i = j + 1;
        field_start = false;
        continue;
      }
      // Unterminated or absurdly long: undo, and read the quote as a literal.
      for (auto [pos, orig] : changed) s[pos] = orig;
      i = open + 1;
      field_start = false;
      continue;
    }
    field_start = c == delim || c == '\n' || c == '\r';
    ++i;
  }
}

bool JsonToLines(std::string_view json, std::string* out, uint32_t max_depth) {
  size_t max_out = json.size() * 4 + (1 << 20);
  out->clear();
  {
    JsonLines sax(out, max_depth, max_out, "");
    bool ok = false;
    try {
      ok = nlohmann::json::sax_parse(json.begin(), json.end(), &sax);
    } catch (const std::exception&) {
      ok = false;
    }
    if (ok) return true;
  }
  // JSON Lines: every non-empty line a document, addressed as [line index].
  out->clear();
  uint64_t index = 0;
  size_t pos = 0;
  bool any = false;
  while (pos < json.size()) {
    size_t nl = json.find('\n', pos);
    std::string_view line = json.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? json.size() : nl + 1;
    if (TrimLeft(line).empty()) continue;
    JsonLines sax(out, max_depth, max_out, "[" + std::to_string(index++) + "]");
    bool ok = false;
    try {
      ok = nlohmann::json::sax_parse(line.begin(), line.end(), &sax);
    } catch (const std::exception&) {
      ok = false;
    }
    if (!ok) return false;
    any = true;
  }
  return any;
}

void HtmlToText(std::string_view html, std::string* main, std::vector<std::string>* tables) {
  HtmlText h(main, tables);
  h.Run(html);
}

Status EmitText(Walk& walk, const std::string& path, std::string_view utf8,
                const std::string& encoding, TextFormat format) {
  Unit u;
  u.path = path;
  u.encoding = encoding;
  switch (format) {
    case TextFormat::kCsv:
    case TextFormat::kTsv: {
      char d = format == TextFormat::kTsv ? '\t' : ',';
      if (format == TextFormat::kCsv) {
        auto lines = FirstLines(utf8, 1);
        std::string_view first = lines.empty() ? utf8.substr(0, utf8.find('\n')) : lines[0];
        if (first.find(',') == std::string_view::npos) {
          for (char alt : {'\t', ';', '|'}) {
            if (first.find(alt) != std::string_view::npos) {
              d = alt;
              break;
            }
          }
        }
      }
      u.format = d == '\t' ? "tsv" : "csv";
      u.field_delimiter = d;
      if (utf8.find('"') == std::string_view::npos) {
        u.text = utf8;
        return walk.Emit(u);
      }
      std::string copy(utf8);
      NeutralizeQuoted(&copy, d);
      u.text = copy;
      return walk.Emit(u);
    }
    case TextFormat::kJson: {
      std::string lines;
      if (JsonToLines(utf8, &lines, 256)) {
        u.format = "json";
        u.text = lines;
        return walk.Emit(u);
      }
      u.format = "text";  // not valid JSON: scanned as it is
      u.text = utf8;
      return walk.Emit(u);
    }
    case TextFormat::kHtml: {
      std::string main;
      std::vector<std::string> tables;
      HtmlToText(utf8, &main, &tables);
      u.format = "html";
      u.text = main;
      RETURN_IF_ERROR(walk.Emit(u));
      for (size_t i = 0; i < tables.size(); ++i) {
        Unit t;
        t.path = path + "!table" + std::to_string(i + 1);
        t.format = "html-table";
        t.encoding = encoding;
        t.field_delimiter = '\t';
        t.text = tables[i];
        RETURN_IF_ERROR(walk.Emit(t));
      }
      return Status::Ok();
    }
    case TextFormat::kText:
      break;
  }
  u.format = "text";
  u.text = utf8;
  return walk.Emit(u);
}

}  // namespace mamori::extract::internal
