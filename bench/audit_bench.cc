// Audit log append throughput against its natural peer, a plain
// write()+fdatasync() per record, in the same run on the same disk.
//
//   BM_AuditAppend/threads:1      Log::Append, one thread
//   BM_AuditAppend/threads:8      Log::Append, 8 threads (group commit)
//   BM_WriteFdatasync/threads:1   write+fdatasync per record, one thread
//   BM_WriteFdatasync/threads:8   write+fdatasync per record, 8 threads
//
// The log lives in $MAMORI_BENCH_DIR (default: the system temp directory);
// put it on the disk you mean to measure.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "audit/audit.h"

namespace {

namespace fs = std::filesystem;
using namespace mamori;

fs::path BenchDir() {
  const char* d = std::getenv("MAMORI_BENCH_DIR");
  fs::path base = d ? fs::path(d) : fs::temp_directory_path();
  fs::path dir = base / ("mamori_audit_bench_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

audit::Record SampleRecord(int i) {
  audit::Record r;
  r.component = "vault";
  r.user = "user" + std::to_string(i % 100);
  r.device = "laptop-" + std::to_string(i % 37);
  r.source_ip = "192.0.2." + std::to_string(i % 250);
  r.action = "get";
  r.object = "3f9a1c0e5b7d4e21a8c6f0b2d4e6a8c0";
  r.destination = "";
  r.bytes = 123456;
  r.result = "allow";
  r.reason = "acl";
  r.labels = {{"types", {{"jp.my_number", 3}, {"jp.phone", 12}}},
              {"individuals", 50},
              {"max_confidence", "high"}};
  return r;
}

// One Log shared by all threads of a benchmark run.
std::unique_ptr<audit::Log> g_log;
std::unique_ptr<audit::FaultInjectionEnv> g_env;  // no faults; counts fdatasyncs
std::shared_ptr<const audit::SigningKey> g_key;
fs::path g_dir;
int g_fd = -1;

void BM_AuditAppend(benchmark::State& state) {
  if (state.thread_index() == 0) {
    if (!g_key) g_key = std::make_shared<const audit::SigningKey>(audit::SigningKey::Generate());
    g_dir = BenchDir();
    fs::remove(g_dir / "audit.log");
    audit::LogOptions o;
    o.path = (g_dir / "audit.log").string();
    o.signing_key = g_key;
    g_env = std::make_unique<audit::FaultInjectionEnv>(audit::Env::Default());
    o.env = g_env.get();
    auto log = audit::Log::Open(o);
    if (!log.ok()) {
      state.SkipWithError(log.status().ToString().c_str());
      return;
    }
    g_log = std::move(log).value();
  }
  int i = 0;
  for (auto _ : state) {
    auto seq = g_log->Append(SampleRecord(i++));
    if (!seq.ok()) {
      state.SkipWithError(seq.status().ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    // Other threads have finished their loops (the loop end is a barrier).
    (void)g_log->Close();
    g_log.reset();
    state.counters["syncs_per_record"] = benchmark::Counter(
        static_cast<double>(g_env->syncs()) /
        static_cast<double>(std::max<int64_t>(1, state.iterations() * state.threads())));
    fs::remove_all(g_dir);
  }
}

void BM_WriteFdatasync(benchmark::State& state) {
  static std::string line;
  if (state.thread_index() == 0) {
    g_dir = BenchDir();
    g_fd = ::open((g_dir / "plain.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    // The same bytes per record as the audit log writes (hash + JSON line).
    line =
        std::string(64, 'a') + " " + SampleRecord(0).labels.dump() + std::string(330, 'x') + "\n";
  }
  for (auto _ : state) {
    if (::write(g_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
        ::fdatasync(g_fd) != 0) {
      state.SkipWithError("write/fdatasync failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    ::close(g_fd);
    fs::remove_all(g_dir);
  }
}

BENCHMARK(BM_AuditAppend)->Threads(1)->Threads(8)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_WriteFdatasync)->Threads(1)->Threads(8)->UseRealTime()->MinTime(1.0);

// Remembers items/s per benchmark so main() can print the ratios.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs) {
      auto it = r.counters.find("items_per_second");
      if (it != r.counters.end()) rate[r.benchmark_name()] = it->second.value;
    }
  }
  std::map<std::string, double> rate;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  auto get = [&](const std::string& prefix) {
    for (const auto& [name, v] : reporter.rate)
      if (name.rfind(prefix, 0) == 0) return v;
    return 0.0;
  };
  for (int t : {1, 8}) {
    std::string suffix = "/min_time:1.000/real_time/threads:" + std::to_string(t);
    double a = get("BM_AuditAppend" + suffix), b = get("BM_WriteFdatasync" + suffix);
    if (a > 0 && b > 0)
      std::printf("audit append vs write+fdatasync, %d thread%s: %.0f vs %.0f records/s = %.2fx\n",
                  t, t == 1 ? "" : "s", a, b, a / b);
  }
  benchmark::Shutdown();
  return 0;
}
