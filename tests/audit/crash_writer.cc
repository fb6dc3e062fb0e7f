// Test helper: appends audit records until killed (mode "loop") or N records
// then closes (mode "count N"). In loop mode, every acknowledged seq is
// written to stdout as "seq\n" right after Append returns, so the parent
// knows which records were promised durable. Mode "loop-async" does the
// same through Log::AppendAsync (the seq is printed by the callback).
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit.h"

using namespace mamori;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s LOG KEY loop|loop-async|count N\n", argv[0]);
    return 2;
  }
  audit::LogOptions o;
  o.path = argv[1];
  o.signing_key_path = argv[2];
  o.checkpoint_every_records = 50;
  std::string mode = argv[3];
  auto log = audit::Log::Open(o);
  if (!log.ok()) {
    std::fprintf(stderr, "open: %s\n", log.status().ToString().c_str());
    return 2;
  }
  auto rec = [](int t, uint64_t i) {
    audit::Record r;
    r.component = "vault";
    r.user = "user" + std::to_string(t);
    r.device = "dev" + std::to_string(i % 5);
    r.source_ip = "127.0.0.1";
    r.action = i % 2 ? "get" : "put";
    r.object = "obj" + std::to_string(i);
    r.destination = i % 3 ? "a.example.jp" : "b.example.com";
    r.bytes = i;
    r.result = i % 7 ? "allow" : "deny";
    r.labels = {{"individuals", i % 11}};
    return r;
  };
  if (mode == "count") {
    long n = argc > 4 ? std::atol(argv[4]) : 10;
    for (long i = 0; i < n; ++i) {
      auto s = (*log)->Append(rec(0, static_cast<uint64_t>(i)));
      if (!s.ok()) {
        std::fprintf(stderr, "append: %s\n", s.status().ToString().c_str());
        return 2;
      }
    }
    auto st = (*log)->Close();
    return st.ok() ? 0 : 2;
  }
  // Prints an append's sequence number once it is durable; dies (exit 3) on
  // a failed append, so the kill -9 harness sees it.
  std::mutex out_mu;
  auto print_durable = [&](const Result<uint64_t>& s) {
    if (!s.ok()) {
      std::fprintf(stderr, "append: %s\n", s.status().ToString().c_str());
      std::_Exit(3);
    }
    std::string line = std::to_string(*s) + "\n";
    std::lock_guard<std::mutex> l(out_mu);
    if (::write(1, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::_Exit(4);
  };
  if (mode == "loop-async") {
    // Like loop, through AppendAsync: 4 threads keep up to 16 appends each in
    // flight; a seq is printed from the callback, i.e. once it is durable.
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        std::mutex mu;
        std::condition_variable cv;
        int in_flight = 0;
        for (uint64_t i = 0;; ++i) {
          {
            std::unique_lock<std::mutex> l(mu);
            cv.wait(l, [&] { return in_flight < 16; });
            ++in_flight;
          }
          (*log)->AppendAsync(rec(t, i), [&](Result<uint64_t> s) {
            print_durable(s);
            std::lock_guard<std::mutex> l(mu);
            --in_flight;
            cv.notify_one();
          });
        }
      });
    }
    for (auto& th : threads) th.join();
    return 0;
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0;; ++i) print_durable((*log)->Append(rec(t, i)));
    });
  }
  for (auto& th : threads) th.join();
  return 0;
}
