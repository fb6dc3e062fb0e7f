#include "incident/docs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "common/file_util.h"

namespace mamori::incident {
namespace {

DocInput Input() {
  static const RuleCatalog* cat = new RuleCatalog(std::move(RuleCatalog::LoadDefault()).value());
  auto f = ParseFacts(R"({"aware_at": "2026-12-20T10:00:00+09:00", "sector": "private",
    "persons": 1200, "data_items": ["name", "address", "phone"], "malicious_suspected": false,
    "publicly_viewable": false, "encryption": null, "processor_notified_controller": false,
    "narrative": {"organization": "株式会社テスト", "cause": "ノートPCの紛失 <script>"}})");
  EXPECT_TRUE(f.ok());
  DocInput in;
  in.incident_id = 1;
  in.title = "顧客名簿を保存したノートPCの紛失";
  in.facts = *f;
  auto a = Assess(in.facts, *cat);
  EXPECT_TRUE(a.ok());
  in.assessment = *a;
  in.rules = *cat->InForce(a->aware_date);
  return in;
}

const Document& Find(const std::vector<Document>& docs, const std::string& file) {
  for (const auto& d : docs) {
    if (d.file == file) return d;
  }
  ADD_FAILURE() << "no document " << file;
  static Document none;
  return none;
}

TEST(IncidentDocs, PpcReportHasAllNineItemsAndDeadlines) {
  auto docs = BuildDocuments(Input());
  ASSERT_EQ(docs.size(), 5u);
  std::string md = RenderMarkdown(Find(docs, "ppc_report"));
  for (const char* item :
       {"一 概要", "二 漏えい等が発生し、又は発生したおそれがある個人データの項目",
        "三 漏えい等が発生し、又は発生したおそれがある個人データに係る本人の数", "四 原因",
        "五 二次被害又はそのおそれの有無及びその内容", "六 本人への対応の実施状況",
        "七 公表の実施状況", "八 再発防止のための措置", "九 その他参考となる事項"}) {
    EXPECT_NE(md.find(item), std::string::npos) << item;
  }
  EXPECT_NE(md.find("1,200人"), std::string::npos);
  EXPECT_NE(md.find("2027年1月18日"), std::string::npos);   // 確報
  EXPECT_NE(md.find("2026年12月23日"), std::string::npos);  // 速報 from
  EXPECT_NE(md.find("株式会社テスト"), std::string::npos);
  EXPECT_NE(md.find("【要記入】"), std::string::npos);  // 再発防止策 not given
  EXPECT_NE(md.find("暗号化されていない"), std::string::npos);
}

TEST(IncidentDocs, PpcReportStatesEncryptionWithTheScopeReasons) {
  DocInput in = Input();
  in.scope = {{"objects", 1},
              {"encryption_basis", {"保管庫（vault）からのダウンロード: 平文を端末に渡す。"}}};
  std::string md = RenderMarkdown(Find(BuildDocuments(in), "ppc_report"));
  EXPECT_NE(md.find("暗号化されていない（又は暗号化を確認できない）。監査ログの調査: "
                    "保管庫（vault）からのダウンロード"),
            std::string::npos)
      << md;
  in.facts.encryption = Encryption{"AES-256-XTS", false};
  in.scope = nullptr;
  md = RenderMarkdown(Find(BuildDocuments(in), "ppc_report"));
  EXPECT_NE(md.find("AES-256-XTSで暗号化（復号鍵は漏えいしていない）"), std::string::npos) << md;
}

TEST(IncidentDocs, NoticeToIndividualsOmitsHeadCountAndPublicNoticeHasTwelveItems) {
  auto docs = BuildDocuments(Input());
  std::string notice = RenderMarkdown(Find(docs, "notice_individuals"));
  EXPECT_EQ(notice.find("1,200"), std::string::npos);
  EXPECT_NE(notice.find("二次被害又はそのおそれの有無及びその内容"), std::string::npos);
  std::string pub = RenderMarkdown(Find(docs, "public_notice"));
  for (int i = 1; i <= 12; ++i) {
    EXPECT_NE(pub.find("| " + std::to_string(i) + ". "), std::string::npos) << i;
  }
  EXPECT_NE(pub.find("問い合わせ窓口"), std::string::npos);
}

TEST(IncidentDocs, HtmlIsEscaped) {
  auto docs = BuildDocuments(Input());
  std::string html = RenderHtml(Find(docs, "ppc_report"));
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);
}

TEST(IncidentDocs, PdfTextIsExtractable) {
  auto font = FindPdfFont();
  if (!font.ok()) GTEST_SKIP() << font.status().ToString();
  auto dir =
      std::filesystem::temp_directory_path() / ("incident_docs_" + std::to_string(::getpid()));
  auto written = WriteDocuments(BuildDocuments(Input()), dir.string(), *font);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(written->size(), 15u);
  std::string cmd = "pdftotext -enc UTF-8 " + (dir / "ppc_report.pdf").string() + " - 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  ::pclose(p);
  EXPECT_NE(text.find("1,200人"), std::string::npos) << text.substr(0, 2000);
  EXPECT_NE(text.find("2027年1月18日"), std::string::npos);
  EXPECT_NE(text.find("再発防止のための措置"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mamori::incident
