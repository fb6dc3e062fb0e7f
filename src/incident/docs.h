// The documents of an incident response, generated from the facts, the
// assessment, the cost estimate and the timeline:
//   ppc_report        個人情報保護委員会への漏えい等報告（草案）: the 9 items of 規則8条1項
//   notice_individuals 本人への通知: the items of 規則10条 (no head count, no 再発防止策)
//   public_notice     公表文: the 12 items of Japanese practice
//   call_centre_qa    コールセンター想定問答
//   ipa_sharing       IPA「情報漏えい情報共有シート」向けの記録
// Each is written as Markdown, HTML and PDF (libharu, a TrueType Japanese
// font). Free-text parts come from facts.narrative; anything missing is
// marked 【要記入】 so a reviewer sees what to complete. Documents never carry
// user ids or personal values: people are counted, not named.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "incident/assess.h"
#include "incident/estimate.h"
#include "incident/facts.h"
#include "incident/rules.h"
#include "incident/store.h"

namespace mamori::incident {

struct DocBlock {
  enum Kind { kTitle, kHeading, kParagraph, kBullet, kField } kind;
  std::string text;   // heading / paragraph / bullet text, or the field label
  std::string value;  // for kField
};

struct Document {
  std::string file;   // "ppc_report"
  std::string title;  // "個人情報保護委員会への漏えい等報告（草案）"
  std::vector<DocBlock> blocks;
};

struct DocInput {
  int64_t incident_id = 0;
  std::string title;
  Facts facts;
  Assessment assessment;
  const RuleSet* rules = nullptr;  // for the Japanese names of data items
  std::optional<JoResult> jo;
  std::optional<ResponseCostResult> cost;
  std::vector<Event> timeline;
  nlohmann::json scope = nullptr;  // summary recorded by `incident scope`, if any
  int64_t generated_at_micros = 0;
};

std::vector<Document> BuildDocuments(const DocInput& in);

std::string RenderMarkdown(const Document& d);
std::string RenderHtml(const Document& d);
// Renders to a PDF file with the TrueType font at font_path.
Status RenderPdf(const Document& d, const std::string& path, const std::string& font_path);

// A Japanese TrueType-outline font libharu can embed: $MAMORI_PDF_FONT, else
// IPAex Gothic / IPA Gothic / VL Gothic from Debian. (Noto Sans CJK .ttc is
// CFF-based, which libharu cannot load.) NotFound says which package to install.
Result<std::string> FindPdfFont();

// Writes every document as DIR/<file>.md, .html and .pdf (atomically).
// Returns the paths written.
Result<std::vector<std::string>> WriteDocuments(const std::vector<Document>& docs,
                                                const std::string& dir,
                                                const std::string& font_path);

}  // namespace mamori::incident
