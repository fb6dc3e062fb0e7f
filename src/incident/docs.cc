#include "incident/docs.h"

#include <fmt/format.h>
#include <hpdf.h>

#include <cstdlib>
#include <filesystem>

#include "common/file_util.h"

namespace mamori::incident {
namespace {

constexpr const char* kTodo = "【要記入】";

std::string Commas(int64_t n) {
  std::string s = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return n < 0 ? "-" + out : out;
}

class Builder {
 public:
  Builder(std::string file, std::string title) {
    doc_.file = std::move(file);
    doc_.title = title;
    doc_.blocks.push_back({DocBlock::kTitle, std::move(title), ""});
  }
  Builder& H(std::string t) {
    doc_.blocks.push_back({DocBlock::kHeading, std::move(t), ""});
    return *this;
  }
  Builder& P(std::string t) {
    doc_.blocks.push_back({DocBlock::kParagraph, std::move(t), ""});
    return *this;
  }
  Builder& B(std::string t) {
    doc_.blocks.push_back({DocBlock::kBullet, std::move(t), ""});
    return *this;
  }
  Builder& F(std::string label, std::string value) {
    doc_.blocks.push_back({DocBlock::kField, std::move(label), std::move(value)});
    return *this;
  }
  Document Take() { return std::move(doc_); }

 private:
  Document doc_;
};

// Common facts, in Japanese, shared by the documents.
struct View {
  const DocInput& in;
  std::string org, contact, aware_ja, items_ja, persons_ja;

  explicit View(const DocInput& i) : in(i) {
    org = N("organization", "【要記入: 事業者の名称】");
    contact = N("contact", "【要記入: 問い合わせ窓口（電話番号・受付時間・メールアドレス）】");
    aware_ja = FormatDateJa(i.assessment.aware_date);
    std::vector<std::string> names;
    for (const auto& item : i.facts.data_items) {
      if (item.rfind("other:", 0) == 0) {
        names.push_back(item.substr(6));
        continue;
      }
      auto it = i.rules ? i.rules->items.find(item) : decltype(i.rules->items.end()){};
      names.push_back(i.rules && it != i.rules->items.end() ? it->second.ja : item);
    }
    for (const auto& n : names) items_ja += (items_ja.empty() ? "" : "、") + n;
    if (items_ja.empty()) items_ja = "【要記入: 漏えい等した個人データの項目】";
    persons_ja = Commas(i.facts.persons) + "人";
  }
  // Narrative text or a placeholder.
  std::string N(const char* key, std::string fallback = "") const {
    const auto& n = in.facts.narrative;
    if (n.is_object() && n.contains(key) && n[key].is_string() &&
        !n[key].get<std::string>().empty()) {
      return n[key].get<std::string>();
    }
    return fallback.empty() ? std::string(kTodo) : fallback;
  }
  std::string Summary() const {
    std::string auto_summary = fmt::format("{}に、{}が発覚しました。", aware_ja, in.title);
    if (in.scope.is_object() && in.scope.contains("objects")) {
      auto_summary += fmt::format(
          "監査ログの調査により、{}件のファイル（オブジェクト）が対象と判明しました（利用者{}"
          "名、端末{}台）。",
          in.scope.value("objects", 0), in.scope.value("users", 0), in.scope.value("devices", 0));
    }
    return N("summary", auto_summary);
  }
  std::string PersonsNote() const {
    if (!in.scope.is_object()) return "";
    std::string m = in.scope.value("person_method", "");
    if (m == "dedup") return "（監査ログのラベルの本人ハッシュにより重複を除いた人数）";
    if (m == "sum") return "（対象ファイルごとの人数の合計。重複を含む可能性がある上限値）";
    if (m == "mixed") return "（一部は重複を除き、一部はファイルごとの人数を合計した上限値）";
    return "";
  }
  // The state of encryption, with the scope's reasons (規則7条 括弧書き: the
  // exemption needs the data protected where it leaked).
  std::string Protection() const {
    const auto& e = in.facts.encryption;
    std::string out = e ? fmt::format("{}で暗号化（復号鍵は{}）", e->algorithm,
                                      e->key_exposed ? "漏えいした又は不明" : "漏えいしていない")
                        : "暗号化されていない（又は暗号化を確認できない）";
    if (in.scope.is_object() && in.scope.contains("encryption_basis") &&
        in.scope["encryption_basis"].is_array() && !in.scope["encryption_basis"].empty()) {
      out += "。監査ログの調査: ";
      for (const auto& b : in.scope["encryption_basis"]) {
        if (b.is_string()) out += b.get<std::string>();
      }
    }
    return out;
  }
  std::string Deadlines() const {
    const auto& a = in.assessment.appi;
    if (!a.report_required) return "個人情報保護法に基づく報告義務の対象外（判断理由は下記）";
    return fmt::format(
        "速報: {}～{}（目安: 規則8条1項「速やかに」、ガイドライン3-5-3-3「概ね3～5日以内」）／"
        "確報: {}まで（規則8条2項、{}日以内、発覚日を1日目として計算）",
        FormatDateJa(*a.preliminary_from), FormatDateJa(*a.preliminary_to),
        FormatDateJa(*a.final_due), a.final_days);
  }
  std::string Triggers() const {
    const auto& t = in.assessment.appi.triggers;
    if (t.empty()) return "該当なし";
    static const char* kNames[] = {"", "1号 要配慮個人情報", "2号 財産的被害のおそれ",
                                   "3号 不正の目的によるおそれ", "4号 本人の数が1,000人超"};
    std::string out;
    for (int x : t) out += (out.empty() ? "" : "、") + std::string(kNames[x]);
    if (in.facts.sector == Sector::kPublic) out += "（行政機関等: 規則43条、4号は100人超）";
    return out;
  }
};

Document PpcReport(const View& v) {
  const auto& a = v.in.assessment;
  Builder b("ppc_report", "個人情報保護委員会への漏えい等報告（草案）");
  b.P("この草案は mamori が監査ログと記録された事実から作成したものです。提出は個人情報保護委員会の"
      "漏えい等報告フォーム（権限委任業種は事業所管大臣）から行い、【要記入】の箇所を補ってください"
      "。"
      "報告時点で把握している事項を記載し、判明次第追完します。");
  b.H("報告の概要");
  b.F("報告者（事業者の名称）", v.org);
  b.F("報告の種類", a.appi.report_required ? "速報（確報で追完）" : "任意の報告");
  b.F("発覚日（当該事態を知った日）", v.aware_ja);
  b.F("規則7条の該当号", v.Triggers());
  b.F("暗号化等の保護措置", v.Protection());
  b.F("報告期限", v.Deadlines());
  if (a.my_number.applicable) {
    b.F("番号法に基づく報告",
        a.my_number.report_required
            ? fmt::format("必要（確報期限 {}）", FormatDateJa(*a.my_number.final_due))
            : "不要（判断理由は下記）");
  }
  b.F("適用ルールセット",
      fmt::format("{}（施行日 {}）", a.rule_set_id, FormatDate(a.rule_set_effective_from)));
  b.H("規則8条1項に定める報告事項");
  b.F("一 概要", v.Summary());
  b.F("二 漏えい等が発生し、又は発生したおそれがある個人データの項目", v.items_ja);
  b.F("三 漏えい等が発生し、又は発生したおそれがある個人データに係る本人の数",
      v.persons_ja + v.PersonsNote());
  b.F("四 原因", v.N("cause"));
  b.F("五 二次被害又はそのおそれの有無及びその内容", v.N("secondary_damage"));
  b.F("六 本人への対応の実施状況",
      v.N("individual_response",
          a.appi.notify_individuals
              ? "【要記入】本人への通知を準備中（法26条2項。通知文案は notice_individuals を参照）"
              : "【要記入】"));
  b.F("七 公表の実施状況", v.N("publication"));
  b.F("八 再発防止のための措置", v.N("prevention"));
  b.F("九 その他参考となる事項",
      v.N("other",
          "警察への届出、他の行政機関への報告、委託元・委託先の有無等を記入してください。"));
  b.H("判断の理由（mamori の規則エンジン）");
  for (const auto& r : a.reasons) b.B(r);
  for (const auto& n : a.notes) b.B("注記: " + n);
  if (!v.in.timeline.empty()) {
    b.H("対応経過（5W1H）");
    for (const auto& e : v.in.timeline) {
      std::string line =
          fmt::format("#{} {} [{}] {}", e.seq, FormatDateTimeJst(e.at_micros), e.kind, e.what);
      for (auto [label, val] :
           {std::pair{"誰が", &e.who}, std::pair{"いつ", &e.when}, std::pair{"どこで", &e.where},
            std::pair{"なぜ", &e.why}, std::pair{"どのように", &e.how}}) {
        if (!val->empty()) line += fmt::format(" ／{}: {}", label, *val);
      }
      b.B(line);
    }
  }
  return b.Take();
}

Document NoticeIndividuals(const View& v) {
  Builder b("notice_individuals", "個人情報の漏えい等に関するお知らせとお詫び（本人への通知）");
  b.P(fmt::format(
      "{}は、お客様の個人情報の漏えい等が発生した（又は発生したおそれがある）ことを確認"
      "いたしました。多大なるご迷惑とご心配をおかけしますことを深くお詫び申し上げます。"
      "個人情報保護法26条2項及び同法施行規則10条に基づき、以下のとおりお知らせいたします。",
      v.org));
  b.F("1. 概要", v.Summary());
  b.F("2. 漏えい等が発生し、又は発生したおそれがある個人データの項目", v.items_ja);
  b.F("3. 原因", v.N("cause"));
  b.F("4. 二次被害又はそのおそれの有無及びその内容", v.N("secondary_damage"));
  b.F("5. その他参考となる事項", v.N("advice_to_individuals",
                                     "不審な電話・メール・郵便物にご注意ください。当社からパスワー"
                                     "ドやカード番号をお尋ねすることは"
                                     "ありません。") +
                                     " お問い合わせ窓口: " + v.contact);
  return b.Take();
}

Document PublicNotice(const View& v) {
  Builder b("public_notice", "個人情報の漏えい等に関するお知らせとお詫び（公表文）");
  b.P("（公表時点で確定していない事項は、現時点の調査結果であることを明記し、判明次第、第二報以降で"
      "更新します。）");
  b.F("1. 事故発生の状況報告", v.Summary());
  b.F("2. 事故に関する謝罪",
      v.N("apology",
          fmt::format("お客様をはじめ関係者の皆様に多大なるご迷惑とご心配をおかけしますことを、"
                      "深くお詫び申し上げます。（{}）",
                      v.org)));
  b.F("3. 事故の発生とそれが発覚するまでの経緯",
      v.N("discovery", fmt::format("{}に発覚。【要記入: 発生から発覚までの経緯】", v.aware_ja)));
  b.F("4. 漏えいした期間", v.N("leak_period"));
  b.F("5. 漏えいした情報の内容・件数",
      fmt::format("{}／{}（現時点で判明している範囲）", v.items_ja, v.persons_ja));
  b.F("6. 現在発生している被害の状況", v.N("damage_status"));
  b.F("7. 漏えいの原因", v.N("cause"));
  b.F("8. 事実調査の方法及び現時点で講じた処置", v.N("investigation"));
  b.F("9. 今後予想される二次被害の内容と二次被害防止のための措置", v.N("secondary_damage"));
  b.F("10. 会社が予定している今後の対応",
      v.N("future_actions", v.in.assessment.appi.report_required
                                ? "個人情報保護委員会への報告（確報期限 " +
                                      FormatDateJa(*v.in.assessment.appi.final_due) +
                                      "）及び対象となるお客様への個別の通知を行います。"
                                : "【要記入】"));
  b.F("11. 再発防止策", v.N("prevention"));
  b.F("12. 問い合わせ窓口", v.contact);
  return b.Take();
}

Document CallCentreQa(const View& v) {
  Builder b("call_centre_qa", "コールセンター想定問答（Q&A）");
  b.P("応対者向け。確定していない事項は「調査中」と回答し、推測で答えないでください。個人を特定する"
      "照会"
      "には本人確認の上で回答します。");
  auto qa = [&](std::string q, std::string a) { b.F("Q. " + q, "A. " + a); };
  qa("何が起きたのですか。", v.Summary());
  qa("私の情報は含まれていますか。",
     "対象となるお客様には個別にご連絡しています。ご本人確認の上、お調べします。【要記入: "
     "確認手順】");
  qa("どの情報が漏えいしたのですか。", v.items_ja + "です（現時点で判明している範囲）。");
  qa("何人分ですか。", v.persons_ja + "です（現時点の調査結果）。");
  qa("なぜ起きたのですか。", v.N("cause"));
  qa("悪用される心配はありますか。", v.N("secondary_damage"));
  qa("私は何をすればよいですか。",
     v.N("advice_to_individuals",
         "不審な連絡にご注意ください。当社からパスワードやカード番号をお尋ねする"
         "ことはありません。"));
  qa("補償はありますか。", v.N("compensation"));
  qa("いつ分かったのですか。なぜ連絡が遅れたのですか。",
     v.aware_ja + "に発覚し、調査の上でご連絡しています。");
  qa("再発防止策は。", v.N("prevention"));
  qa("問い合わせ先は。", v.contact);
  return b.Take();
}

Document IpaSharing(const View& v) {
  const auto& a = v.in.assessment;
  Builder b("ipa_sharing", "情報漏えい情報共有シート（IPA）向け記録");
  b.P("IPA「情報漏えい発生時の対応ポイント集」の情報漏えい情報共有シート（例）の項目は確認できてい"
      "ないため、"
      "規則8条1項の9項目と対応の時刻を記録します。");
  b.F("事案の類型",
      v.N("incident_type",
          "【要記入: 紛失・盗難／誤送信・Web誤公開／内部犯行／不正プログラム／不正アクセス】"));
  b.F("発生日時", v.N("occurred_at"));
  b.F("発覚日時（incident_known_at）", FormatDateTimeJst(v.in.facts.aware_at_micros));
  b.F("漏えいした情報", v.items_ja);
  b.F("本人の数", v.persons_ja);
  b.F("悪意の有無",
      v.in.facts.malicious_suspected ? "不正の目的によるおそれあり" : "現時点で示されていない");
  b.F("個人情報保護委員会への報告",
      a.appi.report_required ? "要（確報期限 " + FormatDateJa(*a.appi.final_due) + "）" : "不要");
  b.F("速報日（initial_report_at）", v.N("initial_report_at"));
  b.F("確報日（final_report_at）", v.N("final_report_at"));
  b.F("本人通知開始（notice_started_at）", v.N("notice_started_at"));
  b.F("本人通知完了（notice_completed_at）", v.N("notice_completed_at"));
  b.F("原因", v.N("cause"));
  b.F("二次被害", v.N("secondary_damage"));
  b.F("再発防止策", v.N("prevention"));
  if (v.in.jo) {
    b.F("想定損害賠償額（JNSA JOモデル）",
        fmt::format("1人あたり{}、合計{}", Yen(v.in.jo->per_person), Yen(v.in.jo->total)));
  }
  if (v.in.cost) b.F("対応費用の見積り", Yen(v.in.cost->total));
  return b.Take();
}

std::string HtmlEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

// Markdown special characters at the start of a line or in table cells.
std::string MdCell(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '|') {
      o += "\\|";
    } else if (c == '\n') {
      o += "<br>";
    } else {
      o += c;
    }
  }
  return o;
}

// Splits UTF-8 into code points (invalid bytes become U+FFFD-like '?').
std::vector<std::string> Utf8Chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) {
      out.push_back("?");
      ++i;
      continue;
    }
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

struct PdfErr {
  HPDF_STATUS code = 0, detail = 0;
};

void PdfErrorHandler(HPDF_STATUS error_no, HPDF_STATUS detail_no, void* user_data) {
  auto* e = static_cast<PdfErr*>(user_data);
  if (e->code == 0) {
    e->code = error_no;
    e->detail = detail_no;
  }
}

}  // namespace

std::vector<Document> BuildDocuments(const DocInput& in) {
  View v(in);
  return {PpcReport(v), NoticeIndividuals(v), PublicNotice(v), CallCentreQa(v), IpaSharing(v)};
}

std::string RenderMarkdown(const Document& d) {
  std::string out;
  bool in_table = false, in_list = false;
  for (const auto& b : d.blocks) {
    if (b.kind != DocBlock::kField && in_table) {
      out += "\n";
      in_table = false;
    }
    if (b.kind != DocBlock::kBullet && in_list) {
      out += "\n";
      in_list = false;
    }
    if (b.kind == DocBlock::kBullet) in_list = true;
    switch (b.kind) {
      case DocBlock::kTitle:
        out += "# " + b.text + "\n\n";
        break;
      case DocBlock::kHeading:
        out += "## " + b.text + "\n\n";
        break;
      case DocBlock::kParagraph:
        out += b.text + "\n\n";
        break;
      case DocBlock::kBullet:
        out += "- " + b.text + "\n";
        break;
      case DocBlock::kField:
        if (!in_table) {
          out += "| 項目 | 内容 |\n|---|---|\n";
          in_table = true;
        }
        out += "| " + MdCell(b.text) + " | " + MdCell(b.value) + " |\n";
        break;
    }
  }
  return out;
}

std::string RenderHtml(const Document& d) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"ja\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
      HtmlEscape(d.title) +
      "</title>\n<style>body{font-family:'Noto Sans CJK "
      "JP','IPAexGothic',sans-serif;max-width:52em;"
      "margin:2em auto;line-height:1.7}table{border-collapse:collapse;width:100%}th,td{border:1px "
      "solid #999;padding:.4em;vertical-align:top;text-align:left}th{width:30%;background:#f3f3f3}"
      "</style>\n</head>\n<body>\n";
  bool in_table = false, in_list = false;
  for (const auto& b : d.blocks) {
    if (b.kind != DocBlock::kField && in_table) {
      out += "</table>\n";
      in_table = false;
    }
    if (b.kind != DocBlock::kBullet && in_list) {
      out += "</ul>\n";
      in_list = false;
    }
    switch (b.kind) {
      case DocBlock::kTitle:
        out += "<h1>" + HtmlEscape(b.text) + "</h1>\n";
        break;
      case DocBlock::kHeading:
        out += "<h2>" + HtmlEscape(b.text) + "</h2>\n";
        break;
      case DocBlock::kParagraph:
        out += "<p>" + HtmlEscape(b.text) + "</p>\n";
        break;
      case DocBlock::kBullet:
        if (!in_list) {
          out += "<ul>\n";
          in_list = true;
        }
        out += "<li>" + HtmlEscape(b.text) + "</li>\n";
        break;
      case DocBlock::kField:
        if (!in_table) {
          out += "<table>\n";
          in_table = true;
        }
        out += "<tr><th>" + HtmlEscape(b.text) + "</th><td>" + HtmlEscape(b.value) + "</td></tr>\n";
        break;
    }
  }
  if (in_table) out += "</table>\n";
  if (in_list) out += "</ul>\n";
  out += "</body>\n</html>\n";
  return out;
}

Result<std::string> FindPdfFont() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("MAMORI_PDF_FONT"); env && *env) candidates.push_back(env);
  for (const char* p : {"/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf",
                        "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
                        "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
                        "/usr/share/fonts/truetype/vlgothic/VL-Gothic-Regular.ttf",
                        "/usr/share/fonts/truetype/takao-gothic/TakaoGothic.ttf"}) {
    candidates.push_back(p);
  }
  std::error_code ec;
  for (const auto& c : candidates) {
    if (std::filesystem::is_regular_file(c, ec)) return c;
  }
  return NotFound(
      "no TrueType Japanese font for the PDF; install fonts-ipaexfont-gothic (apt) or set "
      "MAMORI_PDF_FONT to a .ttf file (Noto Sans CJK .ttc is CFF-based and libharu cannot embed "
      "it)");
}

Status RenderPdf(const Document& d, const std::string& path, const std::string& font_path) {
  PdfErr err;
  HPDF_Doc pdf = HPDF_New(PdfErrorHandler, &err);
  if (!pdf) return Internal("libharu: cannot create a PDF document");
  struct Free {
    HPDF_Doc p;
    ~Free() { HPDF_Free(p); }
  } free_pdf{pdf};
  auto check = [&](const char* what) -> Status {
    if (err.code != 0) {
      return Internal(fmt::format("libharu: {} failed (error 0x{:04X}, detail {})", what, err.code,
                                  err.detail));
    }
    return Status::Ok();
  };
  HPDF_SetCompressionMode(pdf, HPDF_COMP_ALL);
  HPDF_UseUTFEncodings(pdf);
  HPDF_SetCurrentEncoder(pdf, "UTF-8");
  RETURN_IF_ERROR(check("UTF-8 encoder"));
  const char* font_name = HPDF_LoadTTFontFromFile(pdf, font_path.c_str(), HPDF_TRUE);
  if (!font_name || err.code != 0) {
    return Unavailable(fmt::format(
        "cannot load the PDF font {} (libharu error 0x{:04X}); it must be a TrueType-outline font "
        "such as IPAex Gothic (fonts-ipaexfont-gothic)",
        font_path, err.code));
  }
  HPDF_Font font = HPDF_GetFont(pdf, font_name, "UTF-8");
  RETURN_IF_ERROR(check("font"));
  HPDF_SetInfoAttr(pdf, HPDF_INFO_TITLE, d.title.c_str());
  HPDF_SetInfoAttr(pdf, HPDF_INFO_CREATOR, "mamori incident docs");

  const float kMargin = 50, kWidth = 595 - 2 * kMargin, kTop = 842 - kMargin;
  HPDF_Page page = nullptr;
  float y = 0;
  auto new_page = [&] {
    page = HPDF_AddPage(pdf);
    HPDF_Page_SetSize(page, HPDF_PAGE_SIZE_A4, HPDF_PAGE_PORTRAIT);
    y = kTop;
  };
  new_page();
  // Writes text wrapped to the width, with an indent, at a font size.
  auto write = [&](const std::string& text, float size, float indent) -> Status {
    HPDF_Page_SetFontAndSize(page, font, size);
    float leading = size * 1.5f;
    float width = kWidth - indent;
    auto chars = Utf8Chars(text);
    std::string line;
    auto flush = [&]() -> Status {
      if (y - leading < kMargin) {
        new_page();
        HPDF_Page_SetFontAndSize(page, font, size);
      }
      y -= leading;
      HPDF_Page_BeginText(page);
      HPDF_Page_TextOut(page, kMargin + indent, y, line.c_str());
      HPDF_Page_EndText(page);
      line.clear();
      return check("text");
    };
    for (const auto& c : chars) {
      if (c == "\n") {
        RETURN_IF_ERROR(flush());
        continue;
      }
      std::string candidate = line + c;
      if (!line.empty() && HPDF_Page_TextWidth(page, candidate.c_str()) > width) {
        RETURN_IF_ERROR(flush());
        candidate = c;
      }
      line = candidate;
    }
    if (!line.empty()) RETURN_IF_ERROR(flush());
    return Status::Ok();
  };
  for (const auto& b : d.blocks) {
    switch (b.kind) {
      case DocBlock::kTitle:
        RETURN_IF_ERROR(write(b.text, 15, 0));
        y -= 8;
        break;
      case DocBlock::kHeading:
        y -= 6;
        RETURN_IF_ERROR(write("■ " + b.text, 12, 0));
        break;
      case DocBlock::kParagraph:
        RETURN_IF_ERROR(write(b.text, 9.5f, 0));
        y -= 4;
        break;
      case DocBlock::kBullet:
        RETURN_IF_ERROR(write("・" + b.text, 9, 8));
        break;
      case DocBlock::kField:
        RETURN_IF_ERROR(write("【" + b.text + "】", 10, 0));
        RETURN_IF_ERROR(write(b.value, 9.5f, 14));
        y -= 4;
        break;
    }
  }
  HPDF_SaveToFile(pdf, path.c_str());
  if (err.code != 0) {
    return Unavailable(
        fmt::format("cannot write the PDF {} (libharu error 0x{:04X})", path, err.code));
  }
  return Status::Ok();
}

Result<std::vector<std::string>> WriteDocuments(const std::vector<Document>& docs,
                                                const std::string& dir,
                                                const std::string& font_path) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Unavailable(fmt::format("cannot create {}: {}", dir, ec.message()));
  std::vector<std::string> written;
  for (const auto& d : docs) {
    std::string base = (std::filesystem::path(dir) / d.file).string();
    RETURN_IF_ERROR(WriteFileAtomic(base + ".md", RenderMarkdown(d)));
    written.push_back(base + ".md");
    RETURN_IF_ERROR(WriteFileAtomic(base + ".html", RenderHtml(d)));
    written.push_back(base + ".html");
    // libharu writes the file itself: render to a temporary name, then rename.
    std::string tmp = base + ".pdf.tmp";
    Status st = RenderPdf(d, tmp, font_path);
    if (!st.ok()) {
      std::filesystem::remove(tmp, ec);
      return st;
    }
    std::filesystem::rename(tmp, base + ".pdf", ec);
    if (ec) return Unavailable(fmt::format("cannot rename {}: {}", tmp, ec.message()));
    written.push_back(base + ".pdf");
  }
  return written;
}

}  // namespace mamori::incident
