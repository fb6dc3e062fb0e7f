// Load generator for the vault list API (used by bench/serve_vs_nginx.sh):
// N connections, each a keep-alive mTLS client with the profile's device
// certificate and session, issuing GET requests for a fixed time. Prints
// requests/s and latency percentiles. Every request is audited by the server.
//
//   vault_bench PROFILE_DIR TARGET [CONNECTIONS=64] [SECONDS=10]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "common/file_util.h"
#include "vault/client.h"

using namespace mamori;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: vault_bench PROFILE_DIR TARGET [CONNECTIONS] [SECONDS]\n");
    return 2;
  }
  std::string dir = argv[1], target = argv[2];
  int conns = argc > 3 ? std::atoi(argv[3]) : 64;
  int seconds = argc > 4 ? std::atoi(argv[4]) : 10;
  auto cfg_text = ReadFile(dir + "/profile.json");
  auto session = ReadFile(dir + "/session");
  if (!cfg_text.ok() || !session.ok()) {
    std::fprintf(stderr, "vault_bench: %s has no profile or session\n", dir.c_str());
    return 2;
  }
  auto cfg = nlohmann::json::parse(*cfg_text);
  vault::ClientOptions o;
  if (!vault::ParseServerUrl(cfg.value("server", ""), &o.host, &o.port).ok()) return 2;
  o.ca_path = dir + "/ca.crt";
  o.cert_path = dir + "/device.crt";
  o.key_path = dir + "/device.key";
  std::map<std::string, std::string> h{{"authorization", "Bearer " + *session}};

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> errors{0};
  std::vector<std::vector<double>> lat(static_cast<size_t>(conns));
  std::vector<std::thread> threads;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < conns; ++i) {
    threads.emplace_back([&, i] {
      auto c = vault::Client::Connect(o);
      if (!c.ok()) {
        errors++;
        return;
      }
      while (!stop) {
        auto t0 = std::chrono::steady_clock::now();
        auto r = (*c)->Call("GET", target, h, "");
        auto t1 = std::chrono::steady_clock::now();
        if (!r.ok() || r->status != 200) {
          errors++;
          auto again = vault::Client::Connect(o);
          if (!again.ok()) return;
          c = std::move(again);
          continue;
        }
        lat[static_cast<size_t>(i)].push_back(
            std::chrono::duration<double, std::milli>(t1 - t0).count());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<size_t>(p * all.size()))];
  };
  std::printf(
      "list API: %d connections, %zu requests in %.1f s: %.0f req/s, p50 %.2f ms, "
      "p99 %.2f ms, errors %llu\n",
      conns, all.size(), elapsed, all.size() / elapsed, pct(0.50), pct(0.99),
      static_cast<unsigned long long>(errors.load()));
  return errors.load() == 0 ? 0 : 1;
}
