// Micro-benchmarks of the detection engine through its public headers:
// each validator via ScanText on a small buffer of its type, throughput on a
// 16 MB Japanese prose buffer (one ScanText, and a streaming Scanner fed 64 KiB
// chunks), and extract::DecodeToUtf8 on 4 MB of Shift_JIS/EUC-JP/UTF-16LE.
//
//   build/bench/detect_bench --benchmark_min_time=0.2
//
// The rules come from RuleSet::LoadDefault() (MAMORI_RULES_DIR or the source tree).
#include <benchmark/benchmark.h>
#include <iconv.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "detect/detect.h"
#include "extract/extract.h"

namespace {

using mamori::HashKey;
using mamori::detect::RuleSet;

std::shared_ptr<const RuleSet> Rules() {
  static std::shared_ptr<const RuleSet> rules = [] {
    auto r = RuleSet::LoadDefault();
    if (!r.ok()) {
      std::fprintf(stderr, "detect_bench: cannot load the rules: %s\n",
                   r.status().ToString().c_str());
      std::exit(2);
    }
    return *r;
  }();
  return rules;
}

const HashKey& Key() {
  static HashKey key([] {
    std::array<unsigned char, HashKey::kSize> k{};
    for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<unsigned char>(i * 7 + 1);
    return k;
  }());
  return key;
}

// One small buffer per type, each a valid, in-context value (fictitious).
struct Sample {
  const char* name;
  const char* text;
};
const Sample kSamples[] = {
    {"my_number", "個人番号: 1234-5678-9018 を提出してください。"},
    {"my_number_fullwidth", "マイナンバー １２３４ ５６７８ ９０１８"},
    {"corporate_number", "登録番号：T5835678256246 株式会社サンプル"},
    {"credit_card", "カード番号 3530-1113-3330-0000 有効期限 12/28"},
    {"drivers_license", "運転免許証番号 309012345620"},
    {"passport", "旅券番号 TK1234567"},
    {"residence_card", "在留カード番号 AB12345678CD"},
    {"bank_account", "振込先：みずほ銀行 新宿支店 普通 1234567"},
    {"basic_pension_number", "基礎年金番号 1234-567890"},
    {"employment_insurance_number", "雇用保険被保険者番号 1234-567890-1"},
    {"phone", "お電話は 090-1234-5678 までお願いします。"},
    {"email", "連絡先メール: taro.yamada@example.co.jp"},
    {"postal_code", "〒100-0005 東京都千代田区丸の内1-2-3"},
    {"address", "住所：大阪府大阪市北区梅田2丁目4番9号 サンハイツ203"},
    {"person_name", "山田太郎様、いつもご利用ありがとうございます。"},
    {"birth_date", "生年月日：昭和60年4月1日"},
    {"negative_order_number", "注文番号 202610160001 の商品を発送しました。"},
};

void BM_ScanSmall(benchmark::State& state, const char* text) {
  auto rules = Rules();
  mamori::detect::ScanOptions opts;
  size_t found = 0;
  for (auto _ : state) {
    auto r = mamori::detect::ScanText(rules, Key(), text, opts);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      return;
    }
    found = r->size();
    benchmark::DoNotOptimize(found);
  }
  state.counters["findings"] = static_cast<double>(found);
  state.SetItemsProcessed(state.iterations());
}

// 16 MiB of business prose with a personal-data line about every 50 lines.
const std::string& Prose() {
  static const std::string text = [] {
    const char* sentences[] = {
        "平素より格別のご高配を賜り、厚く御礼申し上げます。",
        "つきましては、下記のとおりご案内申し上げますので、ご確認ください。",
        "会議では来期の予算案と人員計画について活発な議論が行われた。",
        "ご注文番号 202610160001 の商品は、入金確認後三営業日以内に発送いたします。",
        "合計金額は ￥128,400 です。JANコード 4901234567894 の在庫は残り 12 個です。",
        "システムメンテナンスのため、2026/10/16 22:00 から一部サービスを停止します。",
        "資料は共有フォルダに格納してありますので、各自ご確認ください。",
    };
    const char* pii[] = {
        "お客様 山田太郎様（090-1234-5678）より taro.yamada@example.co.jp 宛にご連絡がありました。",
        "〒100-0005 東京都千代田区丸の内1-2-3 佐藤 花子",
        "個人番号：1234 5678 9018　生年月日：昭和60年4月1日",
        "カード番号 4111-1111-1111-1111 でのお支払いを確認しました。",
    };
    std::mt19937 rng(20261016);
    std::string out;
    out.reserve(16u << 20);
    while (out.size() < (16u << 20)) {
      if (rng() % 50 == 0) {
        out += pii[rng() % 4];
      } else {
        for (int i = 0; i < 3; ++i) out += sentences[rng() % 7];
      }
      out += '\n';
    }
    return out;
  }();
  return text;
}

void BM_ScanProse16MB(benchmark::State& state) {
  auto rules = Rules();
  const std::string& text = Prose();
  size_t found = 0;
  for (auto _ : state) {
    auto r = mamori::detect::ScanText(rules, Key(), text);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      return;
    }
    found = r->size();
  }
  state.counters["findings"] = static_cast<double>(found);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(text.size()));
}

void BM_ScannerStream64K(benchmark::State& state) {
  auto rules = Rules();
  const std::string& text = Prose();
  const size_t chunk = 64 << 10;
  size_t found = 0;
  for (auto _ : state) {
    auto s = mamori::detect::Scanner::Create(rules, Key(), {});
    if (!s.ok()) {
      state.SkipWithError(s.status().ToString().c_str());
      return;
    }
    found = 0;
    for (size_t off = 0; off < text.size(); off += chunk) {
      auto st = (*s)->Feed(std::string_view(text).substr(off, chunk));
      if (!st.ok()) {
        state.SkipWithError(st.ToString().c_str());
        return;
      }
      found += (*s)->TakeFindings().size();
    }
    if (!(*s)->Finish().ok()) {
      state.SkipWithError("Finish failed");
      return;
    }
    found += (*s)->TakeFindings().size();
  }
  state.counters["findings"] = static_cast<double>(found);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(text.size()));
}

// UTF-8 -> `charset` with glibc iconv (only to prepare input; not measured).
std::string Encode(const std::string& utf8, const char* charset) {
  iconv_t cd = iconv_open(charset, "UTF-8");
  if (cd == reinterpret_cast<iconv_t>(-1)) return {};
  std::string out(utf8.size() * 2 + 16, '\0');
  char* in = const_cast<char*>(utf8.data());
  size_t in_left = utf8.size();
  char* o = out.data();
  size_t o_left = out.size();
  size_t rc = iconv(cd, &in, &in_left, &o, &o_left);
  iconv_close(cd);
  if (rc == static_cast<size_t>(-1)) return {};
  out.resize(out.size() - o_left);
  return out;
}

void BM_Decode(benchmark::State& state, const char* charset) {
  std::string utf8 = Prose().substr(0, 4u << 20);
  while (!utf8.empty() && (static_cast<unsigned char>(utf8.back()) & 0xC0) == 0x80) utf8.pop_back();
  if (!utf8.empty() && static_cast<unsigned char>(utf8.back()) >= 0xC0) utf8.pop_back();
  std::string data = std::string(charset) == "UTF-16LE" ? "\xFF\xFE" + Encode(utf8, charset)
                                                        : Encode(utf8, charset);
  if (data.empty()) {
    state.SkipWithError("iconv cannot encode the sample");
    return;
  }
  std::string detected;
  for (auto _ : state) {
    auto r = mamori::extract::DecodeToUtf8(data, &detected);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(r->data());
  }
  state.SetLabel(detected);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(data.size()));
}

int RegisterAll() {
  for (const Sample& s : kSamples) {
    benchmark::RegisterBenchmark((std::string("BM_ScanSmall/") + s.name).c_str(), BM_ScanSmall,
                                 s.text);
  }
  benchmark::RegisterBenchmark("BM_ScanProse16MB", BM_ScanProse16MB)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_ScannerStream64K", BM_ScannerStream64K)
      ->Unit(benchmark::kMillisecond);
  for (const char* cs : {"UTF-8", "CP932", "EUC-JP", "UTF-16LE"}) {
    benchmark::RegisterBenchmark((std::string("BM_Decode/") + cs).c_str(), BM_Decode, cs)
        ->Unit(benchmark::kMillisecond);
  }
  return 0;
}
const int registered = RegisterAll();

}  // namespace

BENCHMARK_MAIN();
