// Incident benchmarks, each against its natural floor (peer) in the same run:
//  - the strict facts parser vs a plain nlohmann::json parse of the same text;
//  - parse + rule engine (the whole `assess`) vs the plain parse;
//  - the JSONL scope reader vs a plain per-line nlohmann::json parse.
// The ratio (ours / peer) is printed at the end.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "incident/assess.h"
#include "incident/facts.h"
#include "incident/scope.h"

namespace {

using namespace mamori::incident;

const char* kFacts = R"({"aware_at": "2026-12-20T10:00:00+09:00", "sector": "private",
  "persons": 1200, "data_items": ["name", "address", "phone", "medical", "credit_card"],
  "malicious_suspected": true, "publicly_viewable": false,
  "encryption": {"algorithm": "AES-256-GCM", "key_exposed": true},
  "processor_notified_controller": false})";

const RuleCatalog& Catalog() {
  static const RuleCatalog* c = new RuleCatalog(std::move(RuleCatalog::LoadDefault()).value());
  return *c;
}

std::string Jsonl(int lines) {
  std::string out;
  for (int i = 0; i < lines; ++i) {
    out += "{\"seq\":" + std::to_string(i + 1) +
           ",\"time\":\"2026-12-18T01:00:00.000000Z\",\"component\":\"vault\",\"user\":\"u" +
           std::to_string(i % 50) + "\",\"device\":\"d" + std::to_string(i % 20) +
           "\",\"action\":\"get\",\"object\":\"obj-" + std::to_string(i % 5000) +
           "\",\"bytes\":1000,\"result\":\"allow\",\"labels\":{\"types\":{\"jp.person_name\":40,"
           "\"jp.address\":40},\"individuals\":40}}\n";
  }
  return out;
}

void BM_PeerJsonParse(benchmark::State& s) {
  for (auto _ : s) benchmark::DoNotOptimize(nlohmann::json::parse(kFacts));
}
BENCHMARK(BM_PeerJsonParse);

void BM_ParseFacts(benchmark::State& s) {
  for (auto _ : s) benchmark::DoNotOptimize(ParseFacts(kFacts));
}
BENCHMARK(BM_ParseFacts);

void BM_ParseAndAssess(benchmark::State& s) {
  const auto& cat = Catalog();
  for (auto _ : s) {
    auto f = ParseFacts(kFacts);
    benchmark::DoNotOptimize(AssessmentToJson(*Assess(*f, cat)));
  }
}
BENCHMARK(BM_ParseAndAssess);

const std::string& Lines() {
  static const std::string* l = new std::string(Jsonl(10000));
  return *l;
}

void BM_PeerJsonlParse(benchmark::State& s) {
  for (auto _ : s) {
    std::istringstream in(Lines());
    std::string line;
    while (std::getline(in, line)) benchmark::DoNotOptimize(nlohmann::json::parse(line));
  }
  s.SetItemsProcessed(s.iterations() * 10000);
}
BENCHMARK(BM_PeerJsonlParse);

void BM_ScopeJsonl(benchmark::State& s) {
  auto map = *LabelMap::LoadDefault();
  for (auto _ : s) {
    std::istringstream in(Lines());
    benchmark::DoNotOptimize(ScopeFromJsonlStream(in, "bench", {}, map));
  }
  s.SetItemsProcessed(s.iterations() * 10000);
}
BENCHMARK(BM_ScopeJsonl);

double Seconds(const std::function<void()>& fn, int reps) {
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  // Ratios against the peers, measured once more in the same process.
  double peer = Seconds([] { benchmark::DoNotOptimize(nlohmann::json::parse(kFacts)); }, 2000);
  double ours = Seconds([] { benchmark::DoNotOptimize(ParseFacts(kFacts)); }, 2000);
  double full = Seconds(
      [] {
        auto f = ParseFacts(kFacts);
        benchmark::DoNotOptimize(AssessmentToJson(*Assess(*f, Catalog())));
      },
      2000);
  auto map = *LabelMap::LoadDefault();
  double peer_l = Seconds(
      [] {
        std::istringstream in(Lines());
        std::string line;
        while (std::getline(in, line)) benchmark::DoNotOptimize(nlohmann::json::parse(line));
      },
      3);
  double ours_l = Seconds(
      [&] {
        std::istringstream in(Lines());
        benchmark::DoNotOptimize(ScopeFromJsonlStream(in, "bench", {}, map));
      },
      3);
  std::printf("ratio parse_facts/json_parse: %.2f\n", ours / peer);
  std::printf("ratio assess(parse+engine+json)/json_parse: %.2f\n", full / peer);
  std::printf("ratio scope_jsonl/jsonl_parse: %.2f\n", ours_l / peer_l);
  benchmark::Shutdown();
  return 0;
}
