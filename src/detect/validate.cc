#include "detect/validate.h"

#include <mecab.h>

#include <algorithm>
#include <cstring>

#include "detect/text.h"
#include "detect/validators.h"

namespace mamori::detect {
namespace {

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// The code point just before `pos` and just after `pos` in text.
uint32_t PrevCp(std::string_view text, size_t pos, size_t* len) {
  return FoldWidth(DecodeBefore(text, pos, len));
}
uint32_t NextCp(std::string_view text, size_t pos, size_t* len) {
  if (pos >= text.size()) {
    *len = 0;
    return 0;
  }
  return FoldWidth(DecodeAt(text, pos, len));
}

// A value must not be a piece of a longer number or code.
bool NumericBoundaryOk(std::string_view text, size_t start, size_t end, bool letters_forbidden) {
  size_t n = 0;
  uint32_t prev = PrevCp(text, start, &n);
  if (n) {
    if (prev >= '0' && prev <= '9') return false;
    if (letters_forbidden && IsAsciiLetterCp(prev)) return false;
    if (prev == '-' || prev == 0x2212 || prev == 0x2010 || prev == 0x2011 || prev == 0x30FC ||
        prev == '.' || prev == '/') {
      size_t m = 0;
      uint32_t pp = PrevCp(text, start - n, &m);
      if (m && pp >= '0' && pp <= '9') return false;
    }
  }
  uint32_t next = NextCp(text, end, &n);
  if (n) {
    if (next >= '0' && next <= '9') return false;
    if (letters_forbidden && IsAsciiLetterCp(next)) return false;
    if (next == '-' || next == 0x2212 || next == 0x2010 || next == 0x2011 || next == 0x30FC ||
        next == '.' || next == '/') {
      size_t m = 0;
      uint32_t nn = NextCp(text, end + n, &m);
      if (m && nn >= '0' && nn <= '9') return false;
    }
  }
  return true;
}

bool LettersBoundaryOk(std::string_view text, size_t start, size_t end) {
  size_t n = 0;
  uint32_t prev = PrevCp(text, start, &n);
  if (n && (IsAsciiLetterCp(prev) || (prev >= '0' && prev <= '9'))) return false;
  uint32_t next = NextCp(text, end, &n);
  if (n && (IsAsciiLetterCp(next) || (next >= '0' && next <= '9'))) return false;
  return true;
}

bool HasSeparator(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (s[i] >= '0' && s[i] <= '9') {  // most candidates are plain ASCII digits
      ++i;
      continue;
    }
    size_t n;
    uint32_t cp = FoldWidth(DecodeAt(s, i, &n));
    if (IsSeparatorCp(cp) || cp == '(' || cp == ')' || cp == 0xFF08 || cp == 0xFF09) return true;
    i += n;
  }
  return false;
}

// Letters and digits of s, width-folded and upper-cased.
std::string AlnumUpper(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    size_t n;
    uint32_t cp = FoldWidth(DecodeAt(s, i, &n));
    if (cp >= 'a' && cp <= 'z') cp = cp - 'a' + 'A';
    if ((cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9')) out.push_back(static_cast<char>(cp));
    i += n;
  }
  return out;
}

// Digit groups of a date-like span: returns up to 3 numbers and the era prefix.
bool ParseDate(std::string_view s, std::string* iso) {
  std::string era;
  size_t i = 0;
  for (const char* e : {"明治", "大正", "昭和", "平成", "令和"}) {
    if (StartsWith(s, e)) {
      era = e;
      i = std::strlen(e);
    }
  }
  if (era.empty() && !s.empty() && std::strchr("MTSHRmtshr", s[0]) != nullptr) {
    era = std::string(1, s[0]);
    i = 1;
  }
  int nums[3] = {0, 0, 0};
  int count = 0;
  bool in_num = false;
  bool gan = false;  // 元年
  for (; i < s.size();) {
    size_t n;
    uint32_t cp = FoldWidth(DecodeAt(s, i, &n));
    if (cp >= '0' && cp <= '9') {
      if (!in_num) {
        if (count == 3) return false;
        ++count;
        in_num = true;
      }
      nums[count - 1] = nums[count - 1] * 10 + static_cast<int>(cp - '0');
      if (nums[count - 1] > 9999) return false;
    } else {
      if (cp == 0x5143 /* 元 */ && count == 0) {
        gan = true;
        count = 1;
        nums[0] = 1;
      }
      in_num = false;
    }
    i += n;
  }
  if (count != 3) return false;
  int year = nums[0];
  if (!era.empty()) {
    int base = EraBaseYear(era);
    if (base == 0 || year < 1 || year > 64) return false;
    year = base + year - 1;
  } else if (gan) {
    return false;
  }
  if (!IsValidDate(year, nums[1], nums[2])) return false;
  // YYYY-MM-DD by hand: snprintf cost more than the rest of the validation
  // on order exports with a date on every line.
  char buf[10] = {static_cast<char>('0' + year / 1000 % 10),
                  static_cast<char>('0' + year / 100 % 10),
                  static_cast<char>('0' + year / 10 % 10),
                  static_cast<char>('0' + year % 10),
                  '-',
                  static_cast<char>('0' + nums[1] / 10),
                  static_cast<char>('0' + nums[1] % 10),
                  '-',
                  static_cast<char>('0' + nums[2] / 10),
                  static_cast<char>('0' + nums[2] % 10)};
  iso->assign(buf, sizeof buf);
  return true;
}

bool IsAddressChar(uint32_t cp) {
  return IsKanjiCp(cp) || IsKanaCp(cp) || (cp >= '0' && cp <= '9') || cp == '-' || cp == 0x2212 ||
         cp == 0x2010 || cp == 0x2011 || cp == 0x30FC || cp == 0xFF70 || cp == 0x30F6 ||
         (cp >= 'A' && cp <= 'Z');
}

// Extends an address forward from `end` over block numbers and names.
size_t ExtendAddress(std::string_view text, size_t end) {
  size_t pos = end;
  size_t limit = std::min(text.size(), end + 150);
  while (pos < limit) {
    size_t n;
    uint32_t cp = FoldWidth(DecodeAt(text, pos, &n));
    if (IsAddressChar(cp)) {
      pos += n;
      continue;
    }
    if (cp == ' ' && pos + n < text.size()) {  // "芝公園 4-2-8": one space before a number
      size_t m;
      uint32_t nx = FoldWidth(DecodeAt(text, pos + n, &m));
      if (nx >= '0' && nx <= '9') {
        pos += n;
        continue;
      }
    }
    break;
  }
  // Do not end on a dash.
  while (pos > end) {
    size_t n;
    uint32_t cp = FoldWidth(DecodeBefore(text, pos, &n));
    if (cp == '-' || cp == 0x2212 || cp == 0x30FC || cp == ' ') {
      pos -= n;
    } else {
      break;
    }
  }
  return pos;
}

std::string FoldNoSpace(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    size_t n;
    uint32_t cp = FoldWidth(DecodeAt(s, i, &n));
    if (cp != ' ' && cp != '\t') {
      if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
      } else {
        out.append(s.substr(i, n));
      }
    }
    i += n;
  }
  return out;
}

bool LooksLikeNameCell(std::string_view s) {
  size_t chars = 0;
  bool has_letter = false;
  for (size_t i = 0; i < s.size();) {
    size_t n;
    uint32_t cp = FoldWidth(DecodeAt(s, i, &n));
    if (IsKanjiCp(cp) || IsKanaCp(cp) || IsAsciiLetterCp(cp)) {
      has_letter = true;
    } else if (cp != ' ' && cp != 0x30FB /* ・ */ && cp != '.' && cp != '-') {
      return false;
    }
    ++chars;
    i += n;
  }
  return has_letter && chars >= 2 && chars <= 30;
}

const char* const kNameLabels[] = {
    "被保険者氏名", "契約者名", "申込者名",      "担当者名",  "担当者",   "口座名義",
    "名義人",       "ご氏名",   "お名前",        "氏名",      "名前",     "受取人",
    "担当",         "名義",     "customer_name", "full_name", "fullName", "name_kana",
    "nameKana",     "name",     "Name",          "NAME"};
const char* const kHonorifics[] = {"先生", "様", "さん", "殿", "氏", "君"};

}  // namespace

ValidatorContext::~ValidatorContext() {
  delete lattice_;
  delete tagger_;
}

bool ValidatorContext::FindPersonName(std::string_view text, size_t* name_start, size_t* name_end) {
  if (!rules_.mecab) return false;
  if (!tagger_) {
    tagger_ = rules_.mecab->createTagger();
    lattice_ = rules_.mecab->createLattice();
    if (!tagger_ || !lattice_) return false;
  }
  std::string buf(text);
  // IPAdic does not know the compatibility forms common in surnames (山﨑,
  // 塚田 written with U+FA10), so MeCab sees their standard forms. Both are
  // three bytes in UTF-8, so offsets into `text` stay exact.
  static const std::pair<std::string_view, std::string_view> kVariants[] = {
      {"\xEF\xA8\x91", "\xE5\xB4\x8E"},  // U+FA11 﨑 -> U+5D0E 崎
      {"\xEF\xA8\x90", "\xE5\xA1\x9A"},  // U+FA10 塚 -> U+585A 塚
  };
  for (const auto& [from, to] : kVariants)
    for (size_t at = buf.find(from); at != std::string::npos; at = buf.find(from, at + 3))
      buf.replace(at, 3, to);
  lattice_->set_sentence(buf.c_str());
  if (!tagger_->parse(lattice_)) return false;
  bool found = false;
  size_t run_start = 0, run_end = 0;
  bool in_run = false;
  for (const MeCab::Node* node = lattice_->bos_node(); node; node = node->next) {
    if (node->stat == MECAB_BOS_NODE || node->stat == MECAB_EOS_NODE) continue;
    std::string_view feature(node->feature);
    size_t begin = static_cast<size_t>(node->surface - buf.c_str());
    size_t end = begin + node->length;
    bool is_name = feature.find("固有名詞,人名") != std::string_view::npos;
    if (is_name) {
      if (!in_run) run_start = begin;
      run_end = end;
      in_run = true;
      found = true;
    } else if (feature.find("記号,空白") != std::string_view::npos && in_run) {
      // "山田 太郎": a space inside a name run keeps the run.
    } else {
      in_run = false;
      if (found && !in_run) {
        // keep the last completed run unless a later one starts
      }
    }
  }
  if (!found) return false;
  *name_start = run_start;
  *name_end = run_end;
  return true;
}

Validated ValidateCandidate(const CompiledRule& rule, std::string_view text, size_t s, size_t e,
                            bool cell, ValidatorContext* vctx) {
  Validated v;
  v.start = s;
  v.end = e;
  std::string_view span = text.substr(s, e - s);
  auto digits_rule = [&](size_t want, bool letters_forbidden, auto check) {
    std::string d = DigitsOf(span);
    if (d.size() != want || !check(d)) return;
    if (!cell && !NumericBoundaryOk(text, s, e, letters_forbidden)) return;
    v.normalized = d;
    v.ok = true;
  };
  switch (rule.validator) {
    case ValidatorKind::kNone:
      v.ok = true;
      v.normalized = std::string(span);
      break;
    case ValidatorKind::kMyNumber:
      digits_rule(12, true, [](const std::string& d) { return IsValidMyNumber(d); });
      // 4-4-4 grouping is the way a My Number is written on the card and forms.
      v.structured = v.ok && HasSeparator(span);
      break;
    case ValidatorKind::kCorporateNumber: {
      size_t n = 0;
      uint32_t first = FoldWidth(DecodeAt(span, 0, &n));
      bool t_prefix = first == 'T';
      std::string d = DigitsOf(span);
      if (d.size() != 13 || !IsValidCorporateNumber(d)) break;
      if (!t_prefix && !cell && !NumericBoundaryOk(text, s, e, true)) break;
      if (t_prefix && !cell && !LettersBoundaryOk(text, s, s)) {
        // "T" must start a token: "ABT1180..." is not a registration number.
        size_t m = 0;
        uint32_t prev = PrevCp(text, s, &m);
        if (m && (IsAsciiLetterCp(prev) || (prev >= '0' && prev <= '9'))) break;
      }
      if (t_prefix) {
        size_t m = 0;
        uint32_t next = NextCp(text, e, &m);
        if (m && next >= '0' && next <= '9') break;
        v.self_context = true;
        v.self_context_word = "T+13桁 (適格請求書発行事業者登録番号)";
      }
      v.normalized = d;
      v.structured = HasSeparator(span);
      v.ok = true;
      if (!t_prefix && IsValidEan13(d) &&
          (d.compare(0, 2, "45") == 0 || d.compare(0, 2, "49") == 0 ||
           d.compare(0, 3, "978") == 0 || d.compare(0, 3, "979") == 0)) {
        v.doubtful = true;  // needs a label right next to it, not just nearby
      }
      break;
    }
    case ValidatorKind::kLuhnCard: {
      std::string d = DigitsOf(span);
      if (d.size() < 14 || d.size() > 19 || !IsLuhnValid(d) || CardBrand(d).empty()) break;
      if (!cell && !NumericBoundaryOk(text, s, e, true)) break;
      v.normalized = d;
      v.structured = HasSeparator(span);
      v.ok = true;
      break;
    }
    case ValidatorKind::kDriversLicense:
      digits_rule(12, true, [](const std::string& d) { return IsValidDriversLicense(d); });
      v.structured = v.ok && HasSeparator(span);
      break;
    case ValidatorKind::kPassport:
    case ValidatorKind::kResidenceCard: {
      std::string a = AlnumUpper(span);
      size_t want = rule.validator == ValidatorKind::kPassport ? 9 : 12;
      if (a.size() != want) break;
      if (!cell && !LettersBoundaryOk(text, s, e)) break;
      v.normalized = a;
      v.ok = true;
      break;
    }
    case ValidatorKind::kBankAccount: {
      std::string d = DigitsOf(span);
      bool kind_word = span.find("普通") != std::string_view::npos ||
                       span.find("当座") != std::string_view::npos ||
                       span.find("貯蓄") != std::string_view::npos;
      if (d.size() != 7 && d.size() != 10 && d.size() != 14) break;
      if (!cell && !NumericBoundaryOk(text, s, e, true)) break;
      std::string account = d.substr(d.size() - 7);
      if (std::all_of(account.begin(), account.end(), [&](char c) { return c == account[0]; }))
        break;
      v.normalized = d;
      v.ok = true;
      if (kind_word) {
        v.self_context = true;
        v.self_context_word = "預金種別";
      } else if (d.size() == 14 && HasSeparator(span)) {
        v.self_context = true;
        v.self_context_word = "銀行-支店-口座 (4-3-7)";
      }
      break;
    }
    case ValidatorKind::kDigitsOnly: {
      std::string d = DigitsOf(span);
      if (d.empty()) break;
      if (!cell && !NumericBoundaryOk(text, s, e, true)) break;
      if (std::all_of(d.begin(), d.end(), [&](char c) { return c == d[0]; })) break;
      v.normalized = d;
      v.structured = HasSeparator(span);
      v.ok = true;
      break;
    }
    case ValidatorKind::kPhoneJp: {
      std::string d = DigitsOf(span);
      size_t n = 0;
      uint32_t first = FoldWidth(DecodeAt(span, 0, &n));
      if (first == '+') {
        if (d.size() < 3 || d.compare(0, 2, "81") != 0) break;
        d = "0" + d.substr(2);
        if (d.size() > 1 && d[1] == '0') d.erase(1, 1);  // "+81 (0)3 ..."
      }
      if (!IsPlausibleJapanesePhone(d)) break;
      if (!cell && !NumericBoundaryOk(text, s, e, false)) break;
      v.normalized = d;
      v.structured = HasSeparator(span) || first == '+';
      v.ok = true;
      break;
    }
    case ValidatorKind::kEmail: {
      // Walk back from the '@' over the local part (at most 64 characters).
      size_t at_pos = span.find('@');
      if (at_pos == std::string_view::npos) break;
      size_t local_start = s + at_pos;
      while (local_start > 0 && s + at_pos - local_start < 64) {
        char ch = text[local_start - 1];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '%' || ch == '+' ||
                  ch == '-';
        if (!ok) break;
        --local_start;
      }
      while (local_start < s + at_pos && (text[local_start] == '.' || text[local_start] == '-'))
        ++local_start;
      if (local_start == s + at_pos) break;
      // The domain ends at the last label made of letters and digits.
      size_t dom_end = e;
      while (dom_end > s + at_pos && (text[dom_end - 1] == '.' || text[dom_end - 1] == '-'))
        --dom_end;
      v.start = local_start;
      v.end = dom_end;
      span = text.substr(local_start, dom_end - local_start);
      std::string lower = FoldForMatch(span);
      size_t at = lower.find('@');
      if (at == std::string::npos) break;
      std::string domain = lower.substr(at + 1);
      size_t dot = domain.rfind('.');
      if (dot == std::string::npos || lower.find("..") != std::string::npos) break;
      std::string tld = domain.substr(dot + 1);
      if (tld.size() < 2 ||
          !std::all_of(tld.begin(), tld.end(), [](char c) { return c >= 'a' && c <= 'z'; }))
        break;
      static const char* kFileExts[] = {"png", "jpg", "jpeg", "gif", "svg",
                                        "js",  "css", "webp", "ico"};
      if (std::any_of(std::begin(kFileExts), std::end(kFileExts),
                      [&](const char* x) { return tld == x; }))
        break;
      if (lower.back() == '.' || lower.back() == '-') break;
      v.normalized = lower;
      v.structured = true;
      v.ok = true;
      break;
    }
    case ValidatorKind::kPostalCode: {
      std::string d = DigitsOf(span);
      if (d.size() != 7) break;
      if (!cell && !NumericBoundaryOk(text, s, e, false)) break;
      v.normalized = d.substr(0, 3) + "-" + d.substr(3);
      if (StartsWith(span, "〒") || StartsWith(span, "郵便番号")) {
        v.self_context = true;
        v.self_context_word = StartsWith(span, "〒") ? "〒" : "郵便番号";
      }
      v.ok = true;
      break;
    }
    case ValidatorKind::kAddress: {
      if (cell) {
        bool kanji = false, digit = false;
        for (size_t i = 0; i < span.size();) {
          size_t n;
          uint32_t cp = FoldWidth(DecodeAt(span, i, &n));
          kanji |= IsKanjiCp(cp);
          digit |= cp >= '0' && cp <= '9';
          i += n;
        }
        // A building line ("コスモハイツ207室") is not an address by itself: it
        // needs a municipality or a block marker.
        static const char* kMarkers[] = {"都", "道", "府", "県",   "市",  "区",
                                         "町", "村", "郡", "丁目", "番地"};
        bool marker = std::any_of(std::begin(kMarkers), std::end(kMarkers), [&](const char* m) {
          return span.find(m) != std::string_view::npos;
        });
        if (!kanji || !marker || CountChars(span) < 4 || CountChars(span) > 80) break;
        v.structured = digit;
        v.normalized = FoldNoSpace(span);
        v.ok = true;
        break;
      }
      // The pattern ends one kanji after the prefecture; the municipality
      // (市, 区, 町, 村 or 郡) must follow within eight characters.
      size_t muni = std::string_view::npos;
      size_t pos = e - 3;  // the kanji the pattern matched
      for (int k = 0; k < 8 && pos < text.size(); ++k) {
        size_t n;
        uint32_t cp = DecodeAt(text, pos, &n);
        if (!IsKanjiCp(cp) && !IsKanaCp(cp)) break;
        pos += n;
        if (k > 0 &&
            (cp == 0x5E02 || cp == 0x533A || cp == 0x753A || cp == 0x6751 || cp == 0x90E1)) {
          muni = pos;
          break;
        }
      }
      if (muni == std::string_view::npos) break;
      size_t end = ExtendAddress(text, muni);
      std::string_view addr = text.substr(s, end - s);
      v.end = end;
      v.structured = DigitsOf(text.substr(muni, end - muni)).size() > 0;
      v.normalized = FoldNoSpace(addr);
      v.ok = true;
      break;
    }
    case ValidatorKind::kPersonName: {
      if (cell) {
        if (!LooksLikeNameCell(span)) break;
        v.normalized = FoldNoSpace(span);
        v.ok = true;
        break;
      }
      // "氏名：鈴木 花子" — a label, then the name.
      for (const char* label : kNameLabels) {
        if (!StartsWith(span, label)) continue;
        size_t pos = std::strlen(label);
        bool colon = false;
        while (pos < span.size()) {
          size_t n;
          uint32_t cp = FoldWidth(DecodeAt(span, pos, &n));
          if (cp == ' ' || cp == '\t' || cp == ':') {
            colon |= cp == ':';
            pos += n;
          } else {
            break;
          }
        }
        // "氏名：X" names X; "氏名 X" (or a tab) does only if MeCab agrees X is a name,
        // since a table row of labels ("氏名\t所属") looks the same.
        bool separated = colon;
        std::string_view rest = span.substr(pos);
        size_t ns = 0, ne = 0;
        bool tagged = vctx->FindPersonName(rest, &ns, &ne);
        if (!separated && !tagged) return v;
        if (!LooksLikeNameCell(rest)) return v;
        v.start = s + pos;
        v.end = e;
        v.normalized = FoldNoSpace(rest);
        v.self_context = true;
        v.self_context_word = label;
        v.ok = true;
        return v;
      }
      // "山田太郎様" — MeCab must tag the words before the honorific as a name.
      // "丸山 麻衣 <mai@…>" — likewise for a display name before an address.
      size_t body_end = span.size();
      bool display = false;  // a display name or signature: the whole text is the name
      {
        // Display names and signatures match on their last character only;
        // walk back over the name ("丸山 麻衣").
        bool before_paren =
            span.size() >= 2 && (span[span.size() - 2] == '<' || span[span.size() - 2] == '(');
        bool before_fw = span.size() >= 4 && span.substr(span.size() - 4, 3) == "\xEF\xBC\x88";
        if (before_paren || before_fw) {
          size_t ns2 = s;
          int chars = 0, spaces = 0;
          while (ns2 > 0 && chars < 11) {
            size_t n;
            uint32_t cp = FoldWidth(DecodeBefore(text, ns2, &n));
            if (n == 0) break;
            if (IsKanjiCp(cp) || IsKanaCp(cp)) {
              ns2 -= n;
              ++chars;
            } else if (cp == ' ' && spaces == 0 && chars > 0) {
              ns2 -= n;
              ++spaces;
            } else {
              break;
            }
          }
          while (ns2 < s && text[ns2] == ' ') ++ns2;
          s = ns2;
          span = text.substr(s, e - s);
          v.start = s;
        }
      }
      if (span.size() >= 2 && (span[span.size() - 2] == '<' || span[span.size() - 2] == '(')) {
        body_end = span.size() - 2;
        display = true;
      } else if (span.size() >= 4 && span.substr(span.size() - 4, 3) == "\xEF\xBC\x88") {  // （
        body_end = span.size() - 4;
        display = true;
      }
      for (const char* h : kHonorifics) {
        size_t hl = std::strlen(h);
        if (body_end == span.size() && span.size() > hl && span.substr(span.size() - hl) == h) {
          body_end = span.size() - hl;
          break;
        }
      }
      std::string_view body = span.substr(0, body_end);
      while (!body.empty() && body.back() == ' ') body.remove_suffix(1);
      if (body.size() >= 3 && body.substr(body.size() - 3) == "\xE3\x80\x80") body.remove_suffix(3);
      size_t ns = 0, ne = 0;
      if (!vctx->FindPersonName(body, &ns, &ne)) break;
      if (display) {
        // "丸山 麻衣 <…>": a family name first is enough; MeCab often reads a
        // given name as a common noun (麻衣).
        size_t first = 0;
        while (first < body.size() && !(IsKanjiCp(FoldWidth(DecodeAt(body, first, &ns))) ||
                                        IsKanaCp(FoldWidth(DecodeAt(body, first, &ns))))) {
          first += ns;
        }
        size_t s2 = 0, e2 = 0;
        if (!vctx->FindPersonName(body.substr(first), &s2, &e2) || s2 != 0) break;
        body = body.substr(first);
        if (!LooksLikeNameCell(body)) break;
        v.start = s + first;
        v.end = s + first + body.size();
        v.normalized = FoldNoSpace(body);
        v.structured = true;
        v.ok = true;
        break;
      }
      if (ne != body.size()) break;  // the name must touch the honorific
      std::string_view name = body.substr(ns, ne - ns);
      if (CountChars(FoldNoSpace(name)) < 2) break;
      v.start = s + ns;
      v.end = s + ne;
      v.normalized = FoldNoSpace(name);
      v.structured = true;
      v.ok = true;
      break;
    }
    case ValidatorKind::kDate: {
      std::string iso;
      if (!ParseDate(span, &iso)) break;
      if (!cell && !NumericBoundaryOk(text, s, e, false)) break;
      v.normalized = iso;
      v.ok = true;
      break;
    }
  }
  return v;
}

}  // namespace mamori::detect
