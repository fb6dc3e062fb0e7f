#include "incident/assess.h"

#include <fmt/format.h>

#include <algorithm>

namespace mamori::incident {
namespace {

// 1234567 -> "1,234,567"
std::string Commas(int64_t n) {
  std::string s = std::to_string(n < 0 ? -n : n);
  std::string out;
  int count = 0;
  for (auto it = s.rbegin(); it != s.rend(); ++it) {
    if (count > 0 && count % 3 == 0) out += ',';
    out += *it;
    ++count;
  }
  if (n < 0) out += '-';
  std::reverse(out.begin(), out.end());
  return out;
}

std::string JoinJa(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += "、";
    out += s;
  }
  return out;
}

std::string TriggerList(const std::vector<int>& t) {
  std::string out;
  for (int x : t) {
    if (!out.empty()) out += "・";
    out += std::to_string(x) + "号";
  }
  return out;
}

// Dates when the offices are closed (行政機関の休日に関する法律: weekends and
// 12/29–1/3; national holidays are not tabulated here).
std::string ClosedDayNote(Date d) {
  std::chrono::weekday wd{std::chrono::sys_days(d)};
  unsigned m = static_cast<unsigned>(d.month()), day = static_cast<unsigned>(d.day());
  bool year_end = (m == 12 && day >= 29) || (m == 1 && day <= 3);
  if (wd == std::chrono::Saturday || wd == std::chrono::Sunday || year_end) {
    return fmt::format(
        "期限日 {} は{}です。行政機関の休日を理由とする期限の繰延べは本ツールでは適用しません"
        "（根拠を確認できていないため安全側）。前の開庁日までに提出してください。",
        FormatDateJa(d), year_end ? "年末年始の閉庁日" : "土曜日・日曜日");
  }
  return "";
}

struct Articles {
  const char* report;    // 法26条1項 / 法68条1項
  const char* notify;    // 法26条2項 / 法68条2項
  const char* triggers;  // 規則7条 / 規則43条
  const char* timing;    // 規則8条 / 規則44条
};

constexpr Articles kPrivate = {"法26条1項", "法26条2項", "規則7条", "規則8条"};
constexpr Articles kPublic = {"法68条1項", "法68条2項", "規則43条", "規則44条"};

void SetDeadlines(Date aware, int from_days, int to_days, int final_days,
                  std::optional<Date>* pfrom, std::optional<Date>* pto, std::optional<Date>* fdue,
                  std::optional<Date>* fcivil) {
  *pfrom = AddDays(aware, from_days);
  *pto = AddDays(aware, to_days);
  // The awareness date is day 1: day N is aware + (N - 1).
  *fdue = AddDays(aware, final_days - 1);
  // 民法140条: the first day is not counted, so day N is aware + N.
  *fcivil = AddDays(aware, final_days);
}

}  // namespace

Result<Assessment> Assess(const Facts& f, const RuleCatalog& catalog) {
  Assessment a;
  a.aware_date = JstDate(f.aware_at_micros);
  a.aware_at_jst = FormatDateTimeJst(f.aware_at_micros);
  ASSIGN_OR_RETURN(const RuleSet* rs, catalog.InForce(a.aware_date));
  a.rule_set_id = rs->id;
  a.rule_set_effective_from = rs->effective_from;

  // Validate the vocabulary first: an unknown item must not silently count as harmless.
  std::vector<std::string> sensitive, financial;
  bool has_my_number = false, has_bank_account = false;
  for (size_t i = 0; i < f.data_items.size(); ++i) {
    const auto& item = f.data_items[i];
    if (item.rfind("other:", 0) == 0) continue;  // declared as triggering nothing
    auto it = rs->items.find(item);
    if (it == rs->items.end()) {
      std::string known;
      for (const auto& [k, _] : rs->items) known += (known.empty() ? "" : ", ") + k;
      return InvalidArgument(fmt::format(
          "data_items[{}]: unknown item \"{}\" in rule set {}; use one of: {}; or write "
          "\"other:<description>\" for an item that triggers no rule",
          i, item.substr(0, 64), rs->id, known));
    }
    if (it->second.sensitive) sensitive.push_back(it->second.ja);
    if (it->second.financial) financial.push_back(it->second.ja);
    if (it->second.my_number) has_my_number = true;
    if (item == "bank_account") has_bank_account = true;
  }

  const bool is_public = f.sector == Sector::kPublic;
  const Articles& art = is_public ? kPublic : kPrivate;
  const int64_t threshold = is_public ? rs->public_threshold : rs->private_threshold;
  auto& R = a.reasons;
  auto& N = a.notes;

  R.push_back(fmt::format(
      "発覚日（当該事態を知った日）は日本時間で{}です（aware_at {} を日本時間 {} に換算）。"
      "適用するルールセットは {}（施行日 {}）です。",
      FormatDateJa(a.aware_date), f.aware_at, a.aware_at_jst, rs->id,
      FormatDate(rs->effective_from)));
  if (is_public) {
    R.push_back(
        "行政機関等（sector="
        "public）のため、保有個人情報の漏えい等について法68条・規則43条の基準で判断します。");
  }

  // --- APPI triggers ---
  AppiDuty& ap = a.appi;
  if (!sensitive.empty() || (is_public && f.ordinance_sensitive)) {
    ap.triggers.push_back(1);
    std::vector<std::string> what = sensitive;
    if (is_public && f.ordinance_sensitive) what.push_back("条例要配慮個人情報");
    R.push_back(fmt::format(
        "要配慮個人情報（{}）が含まれるため、{}1号に該当します（本人が1人でも、漏えい等が"
        "発生したおそれにとどまる場合でも対象です）。",
        JoinJa(what), art.triggers));
  } else {
    R.push_back(
        fmt::format("要配慮個人情報は含まれていないため、{}1号には該当しません。", art.triggers));
  }
  if (!financial.empty()) {
    ap.triggers.push_back(2);
    R.push_back(fmt::format(
        "不正に利用されることにより財産的被害が生じるおそれがある個人データ（{}）が含まれるため、"
        "{}2号に該当します（クレジットカード番号のみでも該当: PPC Q&A 6-12）。",
        JoinJa(financial), art.triggers));
  } else {
    R.push_back(fmt::format(
        "クレジットカード番号やネットバンキング等の認証情報など、財産的被害が生じるおそれがある"
        "項目は含まれていないため、{}2号には該当しません（住所・電話番号・メールアドレス等のみでは"
        "直ちに該当しない: PPC Q&A 6-11）。",
        art.triggers));
    if (has_bank_account) {
      N.push_back(
          "口座番号それ自体では直ちに財産的被害のおそれがあるとはいえないと解されています"
          "（PPC Q&A 14-8 の考え方）。暗証番号やログイン情報も漏えいしたおそれがあれば "
          "bank_login を加えて再評価してください。");
    }
  }
  if (f.malicious_suspected) {
    ap.triggers.push_back(3);
    R.push_back(fmt::format(
        "不正の目的をもって行われたおそれがある行為（不正アクセス、従業者による持ち出し、"
        "ランサムウェア、盗難等）による漏えい等のため、{}3号に該当します。",
        art.triggers));
  } else {
    R.push_back(
        fmt::format("不正の目的をもって行われたおそれは示されていないため、{}"
                    "3号には該当しません。盗難や内部不正"
                    "の疑いが判明した時点で再評価してください。",
                    art.triggers));
  }
  if (f.persons > threshold) {
    ap.triggers.push_back(4);
    R.push_back(fmt::format("本人の数は{}人で、{}人を超えるため、{}4号に該当します。",
                            Commas(f.persons), Commas(threshold), art.triggers));
  } else {
    R.push_back(fmt::format("本人の数は{}人で、{}人を超えないため、{}4号には該当しません。",
                            Commas(f.persons), Commas(threshold), art.triggers));
  }

  // --- the encryption exemption ---
  bool encryption_ok = false;
  if (f.encryption) {
    std::string norm = RuleSet::NormalizeAlgorithm(f.encryption->algorithm);
    auto ok = rs->approved_algorithms.find(norm);
    if (ok == rs->approved_algorithms.end()) {
      auto bad = rs->rejected_algorithms.find(norm);
      R.push_back(fmt::format(
          "暗号化方式 {} は承認リスト（電子政府推奨暗号リスト・ISO/IEC 18033 に基づく {} の "
          "encryption.approved）にないため{}"
          "、高度な暗号化による除外は適用しません（安全側の判断）。",
          norm, rs->id, bad == rs->rejected_algorithms.end() ? "" : "（" + bad->second + "）"));
    } else if (f.encryption->key_exposed) {
      R.push_back(fmt::format(
          "暗号化方式 {} は承認リストにあります（{}）が、復号鍵またはパスワードも漏えいしたおそれが"
          "あるため、高度な暗号化による除外は適用しません（PPC Q&A Q17-14: "
          "復号手段の適切な管理が必要）。",
          norm, ok->second));
    } else {
      encryption_ok = true;
      R.push_back(fmt::format(
          "暗号化方式 {} は{}に掲載された暗号技術で、復号鍵は漏えいしていないとされています。"
          "{}"
          "1号括弧書きの「高度な暗号化その他の個人の権利利益を保護するために必要な措置を講じたもの"
          "」"
          "は「以下この条及び次条第一項において同じ」とされ全号に及ぶため、報告対象の事態に当たりま"
          "せん"
          "（判断基準: PPC Q&A Q17-14）。",
          norm, ok->second, art.triggers));
      N.push_back(
          "暗号化による除外の前提: "
          "①暗号化した情報と復号鍵を分離し復号鍵の漏えいを防止していること、"
          "②遠隔操作で情報または復号鍵を削除できること、③第三者が復号鍵を行使できない設計であること"
          "、"
          "のいずれかを満たし、暗号が適切に実装されていること。判断の根拠（方式、鍵の保管場所、"
          "鍵が漏えいしていないと判断した理由）を記録してください。任意の報告は可能です。");
    }
  }

  // --- APPI conclusion ---
  if (ap.triggers.empty()) {
    R.push_back(fmt::format(
        "結論: {}各号のいずれにも該当しないため、個人情報保護委員会への報告義務（{}）と本人への"
        "通知義務（{}）はありません。ただし、内部報告・被害拡大防止、事実調査・原因究明、影響範囲"
        "の特定、再発防止策（ガイドライン通則編3-5-2）は必要で、任意の報告もできます。",
        art.triggers, art.report, art.notify));
  } else if (encryption_ok) {
    ap.exempt = "encryption";
    R.push_back(
        fmt::format("結論: {}{}に形式上は当たりますが、高度な暗号化により報告と本人通知は"
                    "不要です。",
                    art.triggers, TriggerList(ap.triggers)));
  } else if (f.processor_notified_controller) {
    ap.exempt = "processor";
    R.push_back(fmt::format(
        "結論: {}{}に該当しますが、委託を受けた者（委託先）が委託元に当該事態を通知したため、"
        "委託先は個人情報保護委員会への報告（{}ただし書）と本人への通知（{}括弧書き）を要しません。"
        "報告と本人通知は委託元が行います。",
        art.triggers, TriggerList(ap.triggers), art.report, art.notify));
    N.push_back(
        "委託先に残る対応: 委託元への通知は「速やかに」、その時点で把握している規則8条1項の事項を"
        "伝えること（規則9条）。委託元の報告・本人通知への協力（事実関係の調査、原因究明、影響範囲"
        "の特定）、被害拡大の防止、再発防止策、安全管理措置（法23条）は委託先にも引き続き必要です。"
        "委託元の期限は委託元が知った日から数えます。");
  } else {
    ap.report_required = true;
    R.push_back(
        fmt::format("結論: {}{}に該当するため、個人情報保護委員会への報告（{}）が必要です。",
                    art.triggers, TriggerList(ap.triggers), art.report));
  }

  if (ap.report_required) {
    bool malicious = std::find(ap.triggers.begin(), ap.triggers.end(), 3) != ap.triggers.end();
    ap.final_days = malicious ? rs->final_days_malicious : rs->final_days;
    SetDeadlines(a.aware_date, rs->preliminary_from_days, rs->preliminary_to_days, ap.final_days,
                 &ap.preliminary_from, &ap.preliminary_to, &ap.final_due, &ap.final_due_civil_code);
    R.push_back(fmt::format(
        "速報: {}1項は「速やかに」報告するよう定め、ガイドライン（通則編）3-5-3-3 "
        "は目安を「当該事態を"
        "知った時点から概ね3～5日以内」としています。本ツールは発覚日の{}日後から{}日後（{}～{}）を"
        "目標期間として示します。法定の期限ではなく、早いほど望ましく、判明している事項だけで報告し"
        "ます。",
        art.timing, rs->preliminary_from_days, rs->preliminary_to_days,
        FormatDateJa(*ap.preliminary_from), FormatDateJa(*ap.preliminary_to)));
    R.push_back(fmt::format(
        "確報: "
        "{}2項により、当該事態を知った日から{}日以内{}に報告しなければなりません。発覚日（{}）を"
        "1日目として数え、期限は{}です。確報では{}1項の9項目すべてを報告します。",
        art.timing, ap.final_days,
        malicious ? fmt::format("（{}3号の事態のため60日以内）", art.triggers) : std::string(),
        FormatDateJa(a.aware_date), FormatDateJa(*ap.final_due), art.timing));
    N.push_back(fmt::format(
        "民法140条（期間の初日を算入しない）の読み方では確報期限は1日後の{}になりますが、本ツールは"
        "安全側の読み方（発覚日を1日目）で{}を期限として示します。",
        FormatDateJa(*ap.final_due_civil_code), FormatDateJa(*ap.final_due)));
    if (auto n = ClosedDayNote(*ap.final_due); !n.empty()) N.push_back(n);
    if (is_public) {
      N.push_back(
          "行政機関等の報告の時期と期限は規則44条によります（規則8条と同じ「速やかに」・30日/60日"
          "と理解していますが、条文は rules/incident の出典で確認してください）。");
    }
    // Individuals.
    if (rs->individual_notice == IndividualNotice::kUnlessLowRisk && f.low_risk_to_individuals) {
      ap.notify_individuals = false;
      R.push_back(fmt::format(
          "本人への通知: ルールセット {} "
          "では、本人の権利利益の保護に欠けるおそれが少ない場合は本人への"
          "通知を要しません（改正後の法26条2項）。low_risk_to_individuals=true と判断されているため"
          "通知は不要ですが、その判断理由を記録してください。",
          rs->id));
    } else {
      ap.notify_individuals = true;
      R.push_back(fmt::format(
          "本人への通知: {}により本人への通知が必要です。規則10条により「当該事態の状況に応じて"
          "速やかに」、概要、個人データの項目、原因、二次被害又はそのおそれの有無及びその内容、その"
          "他"
          "参考となる事項を通知します。通知が困難な場合は、事案の公表や問合せ窓口の設置などの代替措"
          "置を"
          "とります（同項ただし書）。",
          art.notify));
    }
  }

  // --- My Number Act ---
  MyNumberDuty& mn = a.my_number;
  mn.applicable = has_my_number;
  if (!has_my_number) {
    R.push_back(
        "個人番号（マイナンバー）は含まれていないため、番号法29条の4の報告は対象外です"
        "（含まれるか不明な場合は my_number を加えて判断してください。PPCの報告フォームも"
        "「不明な場合は『はい』」としています）。");
  } else {
    int64_t mn_persons = f.my_number_persons.value_or(f.persons);
    if (f.my_number_system) {
      mn.triggers.push_back(1);
      R.push_back(
          "番号法: 情報提供ネットワークシステム、個人番号利用事務の情報システム又は行政機関等の"
          "個人番号関係事務の情報システムで管理される特定個人情報のため、特定個人情報漏えい等"
          "報告規則2条1号に該当します（1人でも対象）。");
    }
    if (f.malicious_suspected) {
      mn.triggers.push_back(2);
      R.push_back(
          "番号法: 不正の目的をもって行われたおそれがある特定個人情報の漏えい等のため、"
          "特定個人情報漏えい等報告規則2条2号に該当します（1人でも対象、確報は60日以内）。");
    }
    if (f.publicly_viewable) {
      mn.triggers.push_back(3);
      R.push_back(
          "番号法: 特定個人情報が電磁的方法により不特定多数の者に閲覧され、又は閲覧されるおそれが"
          "あるため、特定個人情報漏えい等報告規則2条3号に該当します（1人でも対象）。");
    }
    if (mn_persons > rs->my_number_threshold) {
      mn.triggers.push_back(4);
      R.push_back(fmt::format(
          "番号法: "
          "特定個人情報に係る本人の数は{}人で、{}人を超えるため、特定個人情報漏えい等報告規則"
          "2条4号に該当します。",
          Commas(mn_persons), Commas(rs->my_number_threshold)));
    } else {
      R.push_back(fmt::format(
          "番号法: 特定個人情報に係る本人の数は{}人で、{}人を超えないため、特定個人情報漏えい等報告"
          "規則2条4号には該当しません。",
          Commas(mn_persons), Commas(rs->my_number_threshold)));
    }
    if (mn.triggers.empty()) {
      R.push_back(
          "番号法: 特定個人情報漏えい等報告規則2条各号のいずれにも該当しないため、番号法29条の4"
          "の報告義務はありません（民間事業者の給与システム等は同条1号の対象外）。");
    } else if (encryption_ok) {
      mn.exempt = "encryption";
      R.push_back(
          "番号法: "
          "高度な暗号化（同規則2条1号括弧書き「以下同じ」）により報告と本人通知は不要です。");
    } else if (f.processor_notified_controller) {
      mn.exempt = "processor";
      R.push_back(
          "番号法: 委託先が委託元に通知したため、委託先は報告と本人通知を要しません（番号法29条の4"
          "第1項ただし書）。委託元への通知の目安は概ね3～5日です。");
    } else {
      mn.report_required = true;
      bool malicious = std::find(mn.triggers.begin(), mn.triggers.end(), 2) != mn.triggers.end();
      mn.final_days = malicious ? rs->my_number_final_days_malicious : rs->my_number_final_days;
      SetDeadlines(a.aware_date, rs->preliminary_from_days, rs->preliminary_to_days, mn.final_days,
                   &mn.preliminary_from, &mn.preliminary_to, &mn.final_due,
                   &mn.final_due_civil_code);
      mn.notify_individuals = true;
      R.push_back(fmt::format(
          "番号法: "
          "個人情報保護委員会への報告（番号法29条の4第1項）と本人への通知（同条2項）が必要です。"
          "速報は速やかに（目安 "
          "{}～{}）、確報は知った日から{}日以内{}で、発覚日を1日目として期限は{}"
          "です（特定個人情報漏えい等報告規則3条）。",
          FormatDateJa(*mn.preliminary_from), FormatDateJa(*mn.preliminary_to), mn.final_days,
          malicious ? "（同規則2条2号の事態のため60日以内）" : "", FormatDateJa(*mn.final_due)));
      if (ap.report_required) {
        N.push_back(
            "個人情報保護法と番号法の両方の報告が必要です。PPCの報告フォームは最初に「マイナンバー"
            "は"
            "含まれていますか」と尋ね、両方を一度に報告できます。");
      }
    }
  }
  if (ap.report_required || mn.report_required) {
    N.push_back(
        "報告先は個人情報保護委員会の漏えい等報告フォームです。権限委任の業種では事業所管大臣に"
        "報告します（PPC 漏えい等報告ページ）。業法上の報告義務がある場合は別途必要です。");
  }
  return a;
}

nlohmann::json AssessmentToJson(const Assessment& a) {
  auto date_or_null = [](const std::optional<Date>& d) -> nlohmann::json {
    if (!d) return nullptr;
    return FormatDate(*d);
  };
  auto range = [&](const std::optional<Date>& from,
                   const std::optional<Date>& to) -> nlohmann::json {
    if (!from || !to) return nullptr;
    return {{"from", FormatDate(*from)}, {"to", FormatDate(*to)}};
  };
  auto exempt = [](const std::string& e) -> nlohmann::json {
    if (e.empty()) return nullptr;
    return e;
  };
  nlohmann::json j;
  j["appi"] = {{"report_required", a.appi.report_required},
               {"triggers", a.appi.triggers},
               {"exempt", exempt(a.appi.exempt)},
               {"preliminary_due", range(a.appi.preliminary_from, a.appi.preliminary_to)},
               {"final_due", date_or_null(a.appi.final_due)},
               {"final_due_civil_code_140", date_or_null(a.appi.final_due_civil_code)},
               {"final_days", a.appi.final_days == 0 ? nlohmann::json(nullptr)
                                                     : nlohmann::json(a.appi.final_days)},
               {"notify_individuals", a.appi.notify_individuals}};
  j["my_number"] = {
      {"applicable", a.my_number.applicable},
      {"report_required", a.my_number.report_required},
      {"triggers", a.my_number.triggers},
      {"exempt", exempt(a.my_number.exempt)},
      {"preliminary_due", range(a.my_number.preliminary_from, a.my_number.preliminary_to)},
      {"final_due", date_or_null(a.my_number.final_due)},
      {"final_due_civil_code_140", date_or_null(a.my_number.final_due_civil_code)},
      {"notify_individuals", a.my_number.notify_individuals}};
  j["reasons"] = a.reasons;
  j["notes"] = a.notes;
  j["rule_set"] = {{"id", a.rule_set_id},
                   {"effective_from", FormatDate(a.rule_set_effective_from)}};
  j["aware_date"] = FormatDate(a.aware_date);
  j["aware_at_jst"] = a.aware_at_jst;
  return j;
}

std::string AssessmentToText(const Assessment& a) {
  std::string out;
  out += fmt::format("ルールセット: {}（施行日 {}）\n", a.rule_set_id,
                     FormatDate(a.rule_set_effective_from));
  out += fmt::format("発覚日: {}\n\n", FormatDateJa(a.aware_date));
  out += fmt::format("個人情報保護法: 報告{}", a.appi.report_required ? "必要" : "不要");
  if (!a.appi.exempt.empty()) out += fmt::format("（除外: {}）", a.appi.exempt);
  out += "\n";
  if (a.appi.report_required) {
    out += fmt::format("  速報（目安）: {} ～ {}\n", FormatDateJa(*a.appi.preliminary_from),
                       FormatDateJa(*a.appi.preliminary_to));
    out += fmt::format("  確報期限: {}（{}日以内、発覚日を1日目）\n",
                       FormatDateJa(*a.appi.final_due), a.appi.final_days);
    out += fmt::format("  本人への通知: {}\n", a.appi.notify_individuals ? "必要" : "不要");
  }
  if (a.my_number.applicable) {
    out += fmt::format("番号法: 報告{}", a.my_number.report_required ? "必要" : "不要");
    if (!a.my_number.exempt.empty()) out += fmt::format("（除外: {}）", a.my_number.exempt);
    out += "\n";
    if (a.my_number.report_required) {
      out += fmt::format("  確報期限: {}（{}日以内）\n", FormatDateJa(*a.my_number.final_due),
                         a.my_number.final_days);
    }
  }
  out += "\n理由:\n";
  for (const auto& r : a.reasons) out += "- " + r + "\n";
  if (!a.notes.empty()) {
    out += "\n注記:\n";
    for (const auto& n : a.notes) out += "- " + n + "\n";
  }
  return out;
}

}  // namespace mamori::incident
