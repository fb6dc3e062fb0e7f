#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <thread>

#include "detect/detect.h"

namespace mamori::detect {
namespace {

class ScannerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto r = RuleSet::LoadDirectory(std::string(MAMORI_SOURCE_DIR) + "/rules/detect");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    rules_ = *r;
  }
  std::vector<Finding> Scan(std::string_view text, ScanOptions opt = {}) {
    opt.keep_values = true;
    auto r = ScanText(rules_, key_, text, opt);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<Finding>{};
  }
  static std::vector<Finding> OfType(const std::vector<Finding>& all, const std::string& type) {
    std::vector<Finding> out;
    for (const auto& f : all)
      if (f.type == type) out.push_back(f);
    return out;
  }
  static inline std::shared_ptr<const RuleSet> rules_;
  HashKey key_;
};

TEST_F(ScannerTest, MyNumberWithContextIsHighAndMasked) {
  auto f = OfType(Scan("お客様の個人番号は 1234-5678-9018 です。"), "jp.my_number");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].confidence, Confidence::kHigh);
  EXPECT_EQ(f[0].masked, "1234-****-**18");
  EXPECT_EQ(f[0].value, "1234-5678-9018");
  EXPECT_EQ(f[0].line, 1u);
  EXPECT_EQ(f[0].column, 11u);  // characters, not bytes
  EXPECT_EQ(f[0].context, std::vector<std::string>{"個人番号"});
}

TEST_F(ScannerTest, HashIsOfTheNormalisedValue) {
  auto a = OfType(Scan("個人番号 1234-5678-9018"), "jp.my_number");
  auto b = OfType(Scan("マイナンバー １２３４５６７８９０１８"), "jp.my_number");
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(a[0].hash, b[0].hash);
}

TEST_F(ScannerTest, HardNegatives) {
  // An order number that passes the My Number check digit.
  EXPECT_TRUE(OfType(Scan("注文番号 202610160001"), "jp.my_number").empty());
  EXPECT_TRUE(OfType(Scan("202610160001"), "jp.my_number").empty());
  // A Luhn-valid number labelled as a lot number.
  EXPECT_TRUE(OfType(Scan("ロット番号 4111111111111111"), "credit_card").empty());
  // A timestamp and an amount.
  EXPECT_TRUE(Scan("20261016123456 ¥1,234,567").empty());
}

TEST_F(ScannerTest, ValueSplitAcrossChunksIsFound) {
  std::string text = "顧客データ\n個人番号: 4652-8126-6333\nメール taro@example.co.jp\n";
  for (size_t cut = 1; cut < text.size(); ++cut) {
    auto scanner = Scanner::Create(rules_, key_, {});
    ASSERT_TRUE(scanner.ok());
    ASSERT_TRUE((*scanner)->Feed(std::string_view(text).substr(0, cut)).ok());
    ASSERT_TRUE((*scanner)->Feed(std::string_view(text).substr(cut)).ok());
    ASSERT_TRUE((*scanner)->Finish().ok());
    auto f = (*scanner)->TakeFindings();
    ASSERT_EQ(f.size(), 2u) << "cut at " << cut;
    EXPECT_EQ(f[0].type, "jp.my_number");
    EXPECT_EQ(f[0].line, 2u);
    EXPECT_EQ(f[1].type, "email");
    EXPECT_EQ(f[1].line, 3u);
  }
}

// A scanner is used by one thread at a time, but not always the thread that
// created it (egress feeds it from a coroutine that resumes on any I/O
// thread). Two scanners created on one thread and fed on two others at once
// must not share Vectorscan scratch.
TEST_F(ScannerTest, ScannersCreatedOnOneThreadFedOnOthers) {
  std::string block;
  while (block.size() < 64 * 1024) block += "会議の議事録です。個人番号: 4652-8126-6333\n";
  std::vector<std::unique_ptr<Scanner>> scanners;
  for (int i = 0; i < 2; ++i) {
    auto sc = Scanner::Create(rules_, key_, {});
    ASSERT_TRUE(sc.ok());
    scanners.push_back(std::move(sc).value());
  }
  Status results[2];
  size_t found[2] = {0, 0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      Status st;
      for (int n = 0; n < 40 && st.ok(); ++n) {
        st = scanners[i]->Feed(block);
        found[i] += scanners[i]->TakeFindings().size();
      }
      if (st.ok()) st = scanners[i]->Finish();
      found[i] += scanners[i]->TakeFindings().size();
      results[i] = st;
    });
  }
  for (auto& t : threads) t.join();
  size_t per_block = 0;
  for (size_t p = block.find("4652"); p != std::string::npos; p = block.find("4652", p + 1))
    ++per_block;
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(results[i].ok()) << results[i].ToString();
    EXPECT_EQ(found[i], 40 * per_block) << i;
  }
}

// One thread's Vectorscan scratch serves every rule set it scans with: it is
// fitted once per rule set, and growing it for a larger set must keep it
// fitting the smaller one (the small set is loaded first, so its scratch is
// the one that has to grow).
TEST_F(ScannerTest, OneThreadAlternatesBetweenRuleSets) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("mamori-two-rulesets-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(fs::path(MAMORI_SOURCE_DIR) / "rules/detect/email.yaml", dir / "email.yaml",
                fs::copy_options::overwrite_existing);
  std::shared_ptr<const RuleSet> small;
  std::thread([&] {
    auto r = RuleSet::LoadDirectory(dir.string());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    small = *r;
    const std::string text = "連絡先: taro.yamada@example.co.jp 個人番号: 4652-8126-6333\n";
    for (int round = 0; round < 3; ++round) {
      for (const auto& rules : {small, rules_}) {
        ScanOptions opt;
        opt.keep_values = true;
        auto found = ScanText(rules, key_, text, opt);
        ASSERT_TRUE(found.ok()) << found.status().ToString();
        EXPECT_EQ(OfType(*found, "email").size(), 1u) << round;
        EXPECT_EQ(OfType(*found, "jp.my_number").size(), rules == small ? 0u : 1u) << round;
      }
    }
  }).join();
  fs::remove_all(dir);
  ASSERT_NE(small, nullptr);
}

TEST_F(ScannerTest, ByteAtATimeMatchesWholeBuffer) {
  std::string text =
      "氏名,電話番号,個人番号,住所\n"
      "山田太郎,03-1234-5678,123456789018,東京都港区芝公園4-2-8\n"
      "鈴木花子,090-1111-2222,621498320257,大阪府大阪市北区梅田1-2-3\n";
  ScanOptions opt;
  opt.field_delimiter = ',';
  auto whole = Scan(text, opt);
  auto scanner = Scanner::Create(rules_, key_, opt);
  ASSERT_TRUE(scanner.ok());
  for (char c : text) ASSERT_TRUE((*scanner)->Feed(std::string_view(&c, 1)).ok());
  ASSERT_TRUE((*scanner)->Finish().ok());
  auto pieces = (*scanner)->TakeFindings();
  ASSERT_EQ(whole.size(), pieces.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    EXPECT_EQ(whole[i].type, pieces[i].type);
    EXPECT_EQ(whole[i].offset, pieces[i].offset);
    EXPECT_EQ(whole[i].line, pieces[i].line);
    EXPECT_EQ(whole[i].column, pieces[i].column);
    EXPECT_EQ(whole[i].field, pieces[i].field);
  }
}

// Western dates are matched by the digit tokenizer, which must wait for a
// date's rest when a chunk ends inside it.
TEST_F(ScannerTest, WesternBirthDatesWholeAndByteAtATime) {
  std::string text =
      "生年月日 1985/04/01 登録\n"
      "誕生日は１９９０年１２月３１日です。\n"
      "生年月日：2001－1－2日、DOB ５1985.4.1\n"
      "生年月日 12-1999-12-31\n"  // the validator refuses a date inside a longer number
      "生年月日 11985/04/01 (part of a longer number)\n"
      "生年月日 2000/1/5";  // at the very end, without a newline
  auto whole = OfType(Scan(text), "jp.birth_date");
  std::vector<std::string> values;
  for (const auto& f : whole) values.push_back(f.value);
  EXPECT_EQ(values, (std::vector<std::string>{"1985/04/01", "１９９０年１２月３１日",
                                              "2001－1－2日", "2000/1/5"}));
  ScanOptions opt;
  opt.keep_values = true;
  auto scanner = Scanner::Create(rules_, key_, opt);
  ASSERT_TRUE(scanner.ok());
  for (char c : text) ASSERT_TRUE((*scanner)->Feed(std::string_view(&c, 1)).ok());
  ASSERT_TRUE((*scanner)->Finish().ok());
  std::vector<std::string> fed;
  for (const auto& f : (*scanner)->TakeFindings())
    if (f.type == "jp.birth_date") fed.push_back(f.value);
  EXPECT_EQ(fed, values);
}

// In delimited text the digit tokenizer drops, before positioning them, the
// candidates that can only be reported with a keyword nearby and have none
// (the date on every order line). What a column header or a keyword on either
// side makes personal must survive it, however the text arrives: whole (64 KB
// slices until the header row is known, then 4 MB) or in odd-sized pieces.
TEST_F(ScannerTest, LargeCsvKeepsWhatHeadersAndKeywordsMakePersonal) {
  auto count = [&](const std::string& csv, size_t piece, const char* type) {
    ScanOptions opt;
    opt.field_delimiter = ',';
    if (piece == 0) return OfType(Scan(csv, opt), type).size();
    auto scanner = Scanner::Create(rules_, key_, opt);
    EXPECT_TRUE(scanner.ok());
    for (size_t i = 0; i < csv.size(); i += piece)
      EXPECT_TRUE((*scanner)->Feed(std::string_view(csv).substr(i, piece)).ok());
    EXPECT_TRUE((*scanner)->Finish().ok());
    return OfType((*scanner)->TakeFindings(), type).size();
  };
  auto count_dates = [&](const std::string& csv, size_t piece) {
    return count(csv, piece, "jp.birth_date");
  };
  // A 6,000-row CSV under `header`: each row is an id counting from
  // `first_id`, then what row_rest(i) gives (from the comma on).
  auto rows = [](const char* header, int first_id, const std::function<std::string(int)>& rest) {
    std::string out = std::string(header) + "\n";
    for (int i = 0; i < 6000; ++i) out += std::to_string(first_id + i) + rest(i) + "\n";
    return out;
  };
  // Long enough that a keyword's window never reaches the next row.
  const std::string filler =
      ",定期便のご用命、配送は来週の予定です。倉庫の在庫を確認してから出荷します。";
  // A 個人番号 column makes every bare 12-digit number in it a My Number (a
  // header that gives context, not a typed column), and a birth-date column
  // every date, far past the first slice.
  std::string members =
      rows("会員番号,個人番号,生年月日", 100000, [](int) { return ",123456789018,1985/04/01"; });
  ASSERT_GT(members.size(), size_t{64 << 10});
  // No such column: only the dates with a keyword before or after them count.
  size_t with_keyword = 0;
  std::string orders = rows("注文番号,メモ", 100000, [&](int i) -> std::string {
    if (i % 250 == 7 || i % 250 == 99) ++with_keyword;
    if (i % 250 == 7) return ",誕生日 1990/12/31";
    if (i % 250 == 99) return ",1990/12/31 (誕生日)";
    return filler +
           " 2026/10/02 お支払いは請求書でお願いします。検収が済みましたらご連絡ください。";
  });
  // A corporate number with its "T" (an invoice registration number) gives
  // itself context; the same digits bare, far from any keyword, do not.
  size_t registered = 0;
  std::string invoices = rows("伝票,メモ", 100000, [&](int i) -> std::string {
    if (i % 300 != 5)
      return ",5835678256246 ご注文ありがとうございました。またのご利用をお待ちしております。";
    ++registered;
    return ",登録 T5835678256246";
  });
  // Seven-digit order numbers are neither accounts nor postal codes, but a
  // 口座番号 column, a keyword, 普通 or 〒 before the digits make them so.
  size_t by_keyword = 0, by_kind = 0, by_mark = 0;
  std::string accounts = rows("注文番号,振込先,メモ", 1200000, [&](int i) -> std::string {
    switch (i % 400) {
      case 11:
        ++by_keyword;
        return ",口座番号 7654321,";
      case 13:
        ++by_kind;
        return ",みずほ銀行 普通 7654321,";
      case 17:  // padded so that the order numbers stay outside the 〒's window
        ++by_mark;
        return ",,配送の件、倉庫と確認のうえ来週出荷します。送付先 〒105-0011 東京都港区芝公園 "
               "不在の場合は宅配ボックスへお願いいたします。";
      default:
        return "," + filler;
    }
  });
  std::string account_column = "氏名,口座番号\n";
  for (int i = 0; i < 6000; ++i) account_column += "顧客,12" + std::to_string(10000 + i) + "\n";
  for (size_t piece : {size_t{0}, size_t{997}, size_t{70000}}) {
    EXPECT_EQ(count(accounts, piece, "jp.bank_account"), by_keyword + by_kind) << "piece " << piece;
    EXPECT_EQ(count(accounts, piece, "jp.postal_code"), by_mark) << "piece " << piece;
    EXPECT_EQ(count(account_column, piece, "jp.bank_account"), 6000u) << "piece " << piece;
    EXPECT_EQ(count(invoices, piece, "jp.corporate_number"), registered) << "piece " << piece;
    EXPECT_EQ(count_dates(members, piece), 6000u) << "piece " << piece;
    EXPECT_EQ(count(members, piece, "jp.my_number"), 6000u) << "piece " << piece;
    EXPECT_EQ(count_dates(orders, piece), with_keyword) << "piece " << piece;
  }
}

TEST_F(ScannerTest, CsvHeaderIsContextForItsColumn) {
  std::string csv =
      "氏名,電話番号,個人番号,住所\n"
      "山田太郎,03-1234-5678,123456789018,東京都港区芝公園4-2-8\n";
  ScanOptions opt;
  opt.field_delimiter = ',';
  auto all = Scan(csv, opt);
  auto mn = OfType(all, "jp.my_number");
  ASSERT_EQ(mn.size(), 1u);  // a bare 12-digit number, but under 個人番号
  EXPECT_EQ(mn[0].confidence, Confidence::kHigh);
  EXPECT_EQ(mn[0].field, 2);
  EXPECT_EQ(mn[0].record, 1u);
  auto names = OfType(all, "jp.person_name");
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names[0].value, "山田太郎");
  EXPECT_EQ(OfType(all, "jp.address").size(), 1u);
  EXPECT_EQ(OfType(all, "jp.phone").size(), 1u);
  // Without the header the bare number is not enough.
  EXPECT_TRUE(OfType(Scan("山田太郎,03-1234-5678,123456789018\n"), "jp.my_number").empty());
}

TEST_F(ScannerTest, WarekiBirthDateWithContext) {
  auto f = OfType(Scan("生年月日：昭和60年4月1日"), "jp.birth_date");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].value, "昭和60年4月1日");
  EXPECT_TRUE(OfType(Scan("発行日：昭和60年4月1日"), "jp.birth_date").empty());
}

TEST_F(ScannerTest, TypesFilterAndMinConfidence) {
  ScanOptions opt;
  opt.types = {"email"};
  auto f = Scan("個人番号 1234-5678-9018 taro@example.jp", opt);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].type, "email");
  opt.types = {"no.such.type"};
  EXPECT_FALSE(Scanner::Create(rules_, key_, opt).ok());
  ScanOptions low;
  low.min_confidence = Confidence::kLow;
  EXPECT_EQ(OfType(Scan("123456789018", low), "jp.my_number").size(), 1u);
}

TEST_F(ScannerTest, FindingBudgetIsAnError) {
  ScanOptions opt;
  opt.max_findings = 3;
  std::string text;
  for (int i = 0; i < 10; ++i) text += "user" + std::to_string(i) + "@example.com\n";
  auto r = ScanText(rules_, key_, text, opt);
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  opt.max_findings = 1000;
  opt.max_bytes = 10;
  EXPECT_EQ(ScanText(rules_, key_, text, opt).status().code(), StatusCode::kResourceExhausted);
}

TEST_F(ScannerTest, ParagraphsAreRecords) {
  auto f = Scan("山田太郎様\n電話 03-1234-5678\n\n鈴木花子様\nメール hanako@example.jp\n");
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[0].record, f[1].record);
  EXPECT_EQ(f[2].record, f[3].record);
  EXPECT_NE(f[0].record, f[2].record);
}

}  // namespace
}  // namespace mamori::detect
