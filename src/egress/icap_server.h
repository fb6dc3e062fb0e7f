// `mamori icap`: an ICAP/1.0 server (RFC 3507) for Squid, on Boost.Asio.
//
// Services: icap://HOST:PORT/reqmod (uploads) and /respmod (downloads, for
// categories with inspect_downloads). OPTIONS advertises Preview, Allow: 204
// and 206, ISTag (changes with the policy), Max-Connections and Options-TTL.
//
// Per transaction: the destination and identity are classified from the
// encapsulated HTTP headers; a block that needs no body is answered at once
// (during the preview, so the body is never sent). Otherwise the chunked
// body is streamed through the decoders into the detection engine and into a
// bounded spool (memory, then an unlinked temp file); once the verdict is
// final the request is either answered with an HTTP 403 page, with 204 (when
// allowed), or echoed back from the spool. Nothing is forwarded before the
// verdict. Every decision on a message with a body, and every block, is
// appended to the audit log; a failed audit append blocks (fail closed).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "alert/alert.h"
#include "common/clock.h"
#include "common/status.h"
#include "egress/audit_sink.h"
#include "egress/icap_protocol.h"
#include "egress/inspector.h"
#include "egress/policy.h"
#include "egress/volume.h"

namespace mamori::egress {

using alert::Alerter;  // moved to src/alert (shared with the vault)

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 1344;  // 0 = pick a free port (tests)
  int threads = 2;
  PolicyStore* policies = nullptr;         // required
  InspectorFactory* inspectors = nullptr;  // required
  AuditSink* audit = nullptr;              // required
  Alerter* alerter = nullptr;              // optional
  // Cumulative cap state. Production passes a journaled tracker
  // (VolumeTracker::Open) so a restart keeps the windows; nullptr = a private
  // in-memory tracker (tests).
  VolumeTracker* volume = nullptr;
  const Clock* clock = &Clock::Real();
  std::function<std::string()> new_event_id;  // default: 10 random base32 chars
  std::string spool_dir = "/var/tmp";
  ProtocolLimits limits;
  // Also audit requests without a body (GET, CONNECT) that are allowed.
  bool audit_bodyless = false;
  // If false, a clean allow (no personal data found, no error) is answered
  // once its audit record is written, and the record is synced within the
  // log's written_sync_delay_micros: a crash or kill -9 loses nothing, a
  // power loss at most that window of clean allows. Blocks, errors and
  // anything with personal data are always synced before the answer.
  bool audit_sync_every_decision = false;
  int policy_poll_ms = 2000;  // 0 = never reload
};

struct ServerStats {
  uint64_t connections = 0, transactions = 0, options = 0, allowed = 0, blocked = 0, errors = 0,
           aborted = 0, refused_connections = 0;
  uint64_t held_bytes = 0;  // body bytes held in memory now (settings.memory_budget)
};

class IcapServer {
 public:
  // Binds and starts serving on options.threads threads.
  static Result<std::unique_ptr<IcapServer>> Start(ServerOptions options);
  ~IcapServer();
  // Stops accepting, closes connections and joins the threads. Waits for
  // audit appends still being committed (they end in a record or an error).
  void Stop();
  uint16_t port() const;
  ServerStats stats() const;
  // Blocks until Stop() is called from another thread or a signal handler.
  void Wait();

  class Impl;

 private:
  explicit IcapServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A random event ID: 10 characters of Crockford base32.
std::string RandomEventId();

}  // namespace mamori::egress
