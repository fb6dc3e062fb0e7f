// Decoding micro-benchmarks: mamori's DecodeToUtf8 (detection + ICU conversion)
// against glibc iconv on the same bytes, for Shift_JIS (CP932) and UTF-16LE.
// Prints MB/s of input and the ratio mamori/iconv. Run: build/bench/extract_bench
#include <benchmark/benchmark.h>
#include <iconv.h>

#include <cstdio>
#include <map>
#include <string>

#include "extract/extract.h"

namespace {

std::string Convert(const std::string& in, const char* to, const char* from) {
  iconv_t cd = iconv_open(to, from);
  std::string out(in.size() * 4 + 16, '\0');
  char* src = const_cast<char*>(in.data());
  size_t src_left = in.size();
  char* dst = out.data();
  size_t dst_left = out.size();
  iconv(cd, &src, &src_left, &dst, &dst_left);
  iconv_close(cd);
  out.resize(out.size() - dst_left);
  return out;
}

// About 4 MB of Japanese business prose and CSV rows, UTF-8.
const std::string& Utf8Text() {
  static const std::string text = [] {
    std::string s;
    const char* names[] = {"山田 太郎", "佐藤 花子", "鈴木 一郎", "高橋 美咲", "渡辺 健"};
    for (int i = 0; s.size() < (4u << 20); ++i) {
      s += "お世話になっております。先日の打ち合わせの件につきまして、下記のとおりご連絡いたします"
           "。\n";
      s += std::to_string(10000 + i) + "," + names[i % 5] + ",東京都港区芝公園" +
           std::to_string(i % 9 + 1) + "-" + std::to_string(i % 20 + 1) + ",090-" +
           std::to_string(1000 + i % 9000) + "-" + std::to_string(2000 + i % 7000) + ",customer" +
           std::to_string(i) + "@example.jp\n";
    }
    return s;
  }();
  return text;
}

const std::string& Sjis() {
  static const std::string s = Convert(Utf8Text(), "CP932", "UTF-8");
  return s;
}
const std::string& Utf16() {
  static const std::string s = "\xFF\xFE" + Convert(Utf8Text(), "UTF-16LE", "UTF-8");
  return s;
}

void BM_Mamori_SjisToUtf8(benchmark::State& state) {
  for (auto _ : state) {
    std::string enc;
    auto r = mamori::extract::DecodeToUtf8(Sjis(), &enc);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * Sjis().size());
}
BENCHMARK(BM_Mamori_SjisToUtf8)->Unit(benchmark::kMillisecond);

void BM_Iconv_SjisToUtf8(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(Convert(Sjis(), "UTF-8", "CP932"));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * Sjis().size());
}
BENCHMARK(BM_Iconv_SjisToUtf8)->Unit(benchmark::kMillisecond);

void BM_Mamori_Utf16ToUtf8(benchmark::State& state) {
  for (auto _ : state) {
    std::string enc;
    auto r = mamori::extract::DecodeToUtf8(Utf16(), &enc);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * Utf16().size());
}
BENCHMARK(BM_Mamori_Utf16ToUtf8)->Unit(benchmark::kMillisecond);

void BM_Iconv_Utf16ToUtf8(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(Convert(Utf16(), "UTF-8", "UTF-16"));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * Utf16().size());
}
BENCHMARK(BM_Iconv_Utf16ToUtf8)->Unit(benchmark::kMillisecond);

void BM_Mamori_Utf8Passthrough(benchmark::State& state) {
  // Valid UTF-8 is only validated (ExtractFile maps it and passes a view).
  for (auto _ : state) {
    size_t n = 0;
    auto s =
        mamori::extract::ExtractBuffer("a.txt", Utf8Text(), mamori::extract::Budgets(),
                                       [&](const mamori::extract::Unit& u, const mamori::Status&) {
                                         n += u.text.size();
                                         return mamori::Status::Ok();
                                       });
    benchmark::DoNotOptimize(n);
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * Utf8Text().size());
}
BENCHMARK(BM_Mamori_Utf8Passthrough)->Unit(benchmark::kMillisecond);

// Collects bytes/s per benchmark so main() can print the ratios.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs) {
      auto it = r.counters.find("bytes_per_second");
      if (it != r.counters.end()) rates[r.benchmark_name()] = it->second.value;
    }
  }
  std::map<std::string, double> rates;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  auto ratio = [&](const char* name, const char* ours, const char* peer) {
    auto a = reporter.rates.find(ours), b = reporter.rates.find(peer);
    if (a == reporter.rates.end() || b == reporter.rates.end() || b->second <= 0) return;
    std::printf("%s: mamori %.1f MB/s, iconv %.1f MB/s, ratio %.2f\n", name, a->second / 1e6,
                b->second / 1e6, a->second / b->second);
  };
  ratio("Shift_JIS->UTF-8 (mamori includes detection)", "BM_Mamori_SjisToUtf8",
        "BM_Iconv_SjisToUtf8");
  ratio("UTF-16LE->UTF-8", "BM_Mamori_Utf16ToUtf8", "BM_Iconv_Utf16ToUtf8");
  return 0;
}
