#include "egress/icap_server.h"

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "egress/body_decoder.h"
#include "egress/decision.h"
#include "egress/memory_budget.h"
#include "egress/spool.h"
#include "egress/volume.h"

namespace mamori::egress {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using net::awaitable;
using net::use_awaitable;

std::string RandomEventId() {
  static const char* kAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  // Random bytes are drawn 4 KB at a time per thread: a getrandom() system
  // call per request was measurable on small requests.
  thread_local unsigned char pool[4096];
  thread_local size_t used = sizeof(pool);
  constexpr size_t kLen = 10;
  if (used + kLen > sizeof(pool)) {
    randombytes_buf(pool, sizeof(pool));
    used = 0;
  }
  std::string out;
  out.reserve(kLen);
  for (size_t i = 0; i < kLen; ++i) out.push_back(kAlphabet[pool[used + i] & 31]);
  sodium_memzero(pool + used, kLen);  // each byte is used once
  used += kLen;
  return out;
}

namespace {

void LogLine(const std::string& line) {
  static std::mutex mu;
  std::lock_guard<std::mutex> l(mu);
  std::cerr << "mamori icap: " << line << "\n";
}

constexpr size_t kReadSize = 256 * 1024;

// One client connection: a read buffer, an idle timer, and write helpers.
class Conn {
 public:
  Conn(tcp::socket sock, int64_t idle_seconds)
      : sock_(std::move(sock)),
        timer_(sock_.get_executor()),
        idle_(std::chrono::seconds(std::max<int64_t>(1, idle_seconds))),
        watch_(std::make_shared<Watch>()) {
    // Not zero-filled: only what is read is ever looked at (a vector's
    // resize wrote 512 KB per connection).
    buf_ = std::make_unique_for_overwrite<char[]>(cap_);
    watch_->last = std::chrono::steady_clock::now();
    ArmFor(idle_);
  }
  ~Conn() { watch_->closed = true; }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  std::string_view data() const { return {buf_.get() + begin_, end_ - begin_}; }
  void Consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }

  // Reads more bytes. False on EOF, error or idle timeout.
  awaitable<bool> Fill() {
    if (cap_ - end_ < kReadSize / 4) {
      if (begin_ > 0) {
        std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      }
      if (cap_ - end_ < kReadSize / 4) {
        auto bigger = std::make_unique_for_overwrite<char[]>(cap_ * 2);
        std::memcpy(bigger.get(), buf_.get(), end_);
        buf_ = std::move(bigger);
        cap_ *= 2;
      }
    }
    BeginIo();
    boost::system::error_code ec;
    size_t n = co_await sock_.async_read_some(net::buffer(buf_.get() + end_, cap_ - end_),
                                              net::redirect_error(use_awaitable, ec));
    EndIo();
    if (ec || n == 0) {
      if (getenv("MAMORI_ICAP_DEBUG")) LogLine("read ended: " + ec.message());
      co_return false;
    }
    end_ += n;
    co_return true;
  }

  // Ensures at least n bytes are buffered.
  awaitable<bool> Need(size_t n) {
    while (end_ - begin_ < n) {
      bool filled = co_await Fill();
      if (!filled) co_return false;
    }
    co_return true;
  }

  awaitable<bool> Write(std::string_view out) {
    BeginIo();
    boost::system::error_code ec;
    co_await net::async_write(sock_, net::buffer(out.data(), out.size()),
                              net::redirect_error(use_awaitable, ec));
    EndIo();
    co_return !ec;
  }

  void Close() {
    watch_->closed = true;
    timer_.cancel();
    boost::system::error_code ec;
    sock_.shutdown(tcp::socket::shutdown_both, ec);
    sock_.close(ec);
  }
  tcp::socket& socket() { return sock_; }

 private:
  // The idle timeout ends a read or write that waited idle_ without
  // progress. The timer is armed once and not on every read and write (each
  // re-arm cancels a wait, one more handler per I/O):
  // I/O only notes the time, and the timer, when it fires, sleeps again for
  // what is left, or cancels the socket's operation.
  struct Watch {
    bool closed = false;  // the Conn is gone or closed: touch nothing
    bool in_io = false;
    std::chrono::steady_clock::time_point last;
  };
  void BeginIo() {
    watch_->in_io = true;
    watch_->last = std::chrono::steady_clock::now();
  }
  void EndIo() { watch_->in_io = false; }
  void ArmFor(std::chrono::steady_clock::duration after) {
    timer_.expires_after(after);
    // Runs on the connection's I/O thread, like the session; `w` tells whether
    // this Conn still exists.
    timer_.async_wait([this, w = watch_](const boost::system::error_code& ec) {
      if (ec || w->closed) return;
      auto waited = std::chrono::steady_clock::now() - w->last;
      if (!w->in_io || waited < idle_) return ArmFor(w->in_io ? idle_ - waited : idle_);
      boost::system::error_code ignored;
      sock_.cancel(ignored);  // the pending read or write ends with an error
      ArmFor(idle_);
    });
  }
  tcp::socket sock_;
  net::steady_timer timer_;
  const std::chrono::steady_clock::duration idle_;
  std::shared_ptr<Watch> watch_;
  std::unique_ptr<char[]> buf_;
  size_t cap_ = kReadSize * 2;
  size_t begin_ = 0, end_ = 0;
};

struct BodyResult {
  bool io_ok = true;  // false: connection lost (client abort) or protocol error
  bool ieof = false;  // the zero chunk carried ieof
  Status protocol;    // framing error
  Status data;        // first error returned by the data callback
};

std::string IcapStatusLine(int code) {
  switch (code) {
    case 100:
      return "ICAP/1.0 100 Continue\r\n";
    case 200:
      return "ICAP/1.0 200 OK\r\n";
    case 204:
      return "ICAP/1.0 204 No Content\r\n";
    case 206:
      return "ICAP/1.0 206 Partial Content\r\n";
    case 400:
      return "ICAP/1.0 400 Bad Request\r\n";
    case 404:
      return "ICAP/1.0 404 ICAP Service Not Found\r\n";
    case 405:
      return "ICAP/1.0 405 Method Not Allowed for Service\r\n";
    case 413:
      return "ICAP/1.0 413 Request Entity Too Large\r\n";
    case 501:
      return "ICAP/1.0 501 Method Not Implemented\r\n";
    case 503:
      return "ICAP/1.0 503 Service Overloaded\r\n";
    default:
      return "ICAP/1.0 500 Server Error\r\n";
  }
}

}  // namespace

class IcapServer::Impl {
 public:
  explicit Impl(ServerOptions o)
      : opt_(std::move(o)),
        ios_(MakeShards(opt_.threads)),
        acceptor_(*ios_[0]),
        own_volume_(opt_.volume ? nullptr : std::make_unique<VolumeTracker>(opt_.clock)),
        decider_(opt_.volume ? opt_.volume : own_volume_.get()),
        reload_timer_(*ios_[0]) {
    if (!opt_.new_event_id) opt_.new_event_id = RandomEventId;
  }

  Status Bind() {
    boost::system::error_code ec;
    auto addr = net::ip::make_address(opt_.address, ec);
    if (ec) return InvalidArgument("listen address '" + opt_.address + "' is not an IP address");
    tcp::endpoint ep(addr, opt_.port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return Unavailable("cannot listen on " + opt_.address + ":" + std::to_string(opt_.port) +
                         ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    return Status::Ok();
  }

  // One io_context per I/O thread, and each connection lives on one of them
  // from accept to close: with one io_context shared by the threads and a
  // strand per connection, every handler was handed from thread to thread
  // (a futex wake-up each), a tenth of the CPU of a small form post.
  static std::vector<std::unique_ptr<net::io_context>> MakeShards(int threads) {
    std::vector<std::unique_ptr<net::io_context>> ios;
    for (int i = 0; i < std::max(1, threads); ++i)
      ios.push_back(std::make_unique<net::io_context>(1));
    return ios;
  }

  void Run() {
    net::co_spawn(*ios_[0], Accept(), net::detached);
    if (opt_.policy_poll_ms > 0) net::co_spawn(*ios_[0], Reload(), net::detached);
    for (auto& io : ios_) {
      // Kept running while it has no connection yet.
      work_.push_back(net::make_work_guard(*io));
      threads_.emplace_back([io = io.get()] { io->run(); });
    }
  }

  ~Impl() { Stop(); }

  void Stop() {
    std::call_once(stop_once_, [this] {
      // Sessions still open are abandoned; their coroutine frames are
      // destroyed with the io_contexts.
      for (auto& io : ios_) io->stop();
      for (auto& t : threads_) t.join();
      threads_.clear();
      {
        // Appends still committing will post to ios_; they must outlive them.
        std::unique_lock<std::mutex> l(wait_mu_);
        audits_cv_.wait(l, [this] { return audits_in_flight_ == 0; });
      }
      boost::system::error_code ec;
      acceptor_.close(ec);
      reload_timer_.cancel();
      std::lock_guard<std::mutex> l(wait_mu_);
      stopped_ = true;
      wait_cv_.notify_all();
    });
  }

  void Wait() {
    std::unique_lock<std::mutex> l(wait_mu_);
    wait_cv_.wait(l, [this] { return stopped_; });
  }

  uint16_t port() const { return port_; }
  ServerStats stats() const {
    ServerStats s;
    s.connections = connections_;
    s.transactions = transactions_;
    s.options = options_;
    s.allowed = allowed_;
    s.blocked = blocked_;
    s.errors = errors_;
    s.aborted = aborted_;
    s.refused_connections = refused_;
    s.held_bytes = memory_.used();
    return s;
  }

 private:
  awaitable<void> Reload() {
    while (true) {
      reload_timer_.expires_after(std::chrono::milliseconds(opt_.policy_poll_ms));
      boost::system::error_code ec;
      co_await reload_timer_.async_wait(net::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      auto r = opt_.policies->Poll();
      if (!r.ok()) {
        LogLine("policy reload failed, keeping the previous policy: " + r.status().ToString());
      } else if (*r) {
        LogLine("policy reloaded, version " + opt_.policies->Current()->version);
      }
    }
  }

  awaitable<void> Accept() {
    while (true) {
      boost::system::error_code ec;
      // Round robin over the I/O threads; the connection never leaves its own.
      tcp::socket sock(*ios_[next_shard_]);
      next_shard_ = (next_shard_ + 1) % ios_.size();
      co_await acceptor_.async_accept(sock, net::redirect_error(use_awaitable, ec));
      if (ec) {
        if (!acceptor_.is_open()) co_return;
        continue;
      }
      sock.set_option(tcp::no_delay(true), ec);
      ++connections_;
      auto exec = sock.get_executor();
      net::co_spawn(exec, Session(std::move(sock)), net::detached);
    }
  }

  awaitable<void> Session(tcp::socket sock) {
    auto policy = opt_.policies->Current();
    Conn c(std::move(sock), policy->settings.idle_timeout_seconds);
    size_t active = ++active_;
    if (active > policy->settings.max_connections) {
      ++refused_;
      std::string busy = IcapStatusLine(503) + "ISTag: \"" + IsTag(*policy) +
                         "\"\r\nConnection: close\r\nEncapsulated: null-body=0\r\n\r\n";
      co_await c.Write(busy);
      c.Close();
      --active_;
      co_return;
    }
    while (true) {
      bool keep = co_await Transaction(c);
      if (!keep) break;
    }
    c.Close();
    --active_;
  }

  static std::string IsTag(const Policy& p) { return "mamori-" + p.version; }

  awaitable<bool> SendError(Conn& c, int code, std::shared_ptr<const Policy> p) {
    ++errors_;
    std::string out = IcapStatusLine(code) + "ISTag: \"" + IsTag(*p) +
                      "\"\r\nConnection: close\r\nEncapsulated: null-body=0\r\n\r\n";
    co_await c.Write(out);
    co_return false;
  }

  // Reads chunked body data until the zero chunk, calling on_data for each
  // piece. After on_data fails, the rest is read and dropped (to stay in sync).
  awaitable<BodyResult> ReadBody(Conn& c, std::function<Status(std::string_view)> on_data) {
    BodyResult r;
    ChunkedDecoder dec(opt_.limits);
    while (true) {
      std::string_view in = c.data();
      size_t before = in.size();
      while (true) {
        auto ev = dec.Next(&in);
        if (!ev.ok()) {
          r.io_ok = false;
          r.protocol = ev.status();
          LogLine("bad ICAP body, closing the connection: " + ev.status().ToString());
          c.Consume(before - in.size());
          co_return r;
        }
        if (ev->kind == ChunkedDecoder::Kind::kData) {
          if (r.data.ok()) r.data = on_data(ev->data);
          continue;
        }
        if (ev->kind == ChunkedDecoder::Kind::kEnd) {
          r.ieof = ev->ieof;
          c.Consume(before - in.size());
          co_return r;
        }
        break;  // need more
      }
      c.Consume(before - in.size());
      bool filled = co_await c.Fill();
      if (!filled) {
        r.io_ok = false;
        co_return r;
      }
    }
  }

  awaitable<bool> SendOptions(Conn& c, const IcapRequest& req, const Policy& p) {
    bool resp = req.service == "respmod";
    std::string out = IcapStatusLine(200);
    out += "Methods: ";
    out += resp ? "RESPMOD" : "REQMOD";
    out += "\r\nService: mamori egress DLP 0.1\r\nISTag: \"" + IsTag(p) +
           "\"\r\nMax-Connections: " + std::to_string(p.settings.max_connections) +
           "\r\nOptions-TTL: " + std::to_string(p.settings.options_ttl_seconds) +
           "\r\nAllow: 204, 206\r\nPreview: " + std::to_string(p.settings.preview_bytes) +
           "\r\nTransfer-Preview: *\r\nX-Include: X-Client-IP, X-Client-Username, "
           "X-Authenticated-User\r\nEncapsulated: null-body=0\r\n";
    if (!req.keep_alive) out += "Connection: close\r\n";
    out += "\r\n";
    ++options_;
    {
      bool written = co_await c.Write(out);
      co_return written&& req.keep_alive;
    }
  }

  // Writes "ICAP/1.0 200" with an encapsulated HTTP head and a body streamed
  // from the spool (or no body).
  awaitable<bool> SendModified(Conn& c, const IcapRequest& req, const Policy& p,
                               std::string http_head, bool is_response, const Spool* body,
                               bool has_body) {
    std::string hdr = is_response ? "res" : "req";
    std::string out = IcapStatusLine(200) + "ISTag: \"" + IsTag(p) + "\"\r\nEncapsulated: " + hdr +
                      "-hdr=0, " + (has_body ? hdr + "-body=" : std::string("null-body=")) +
                      std::to_string(http_head.size()) + "\r\n";
    if (!req.keep_alive) out += "Connection: close\r\n";
    out += "\r\n";
    out += http_head;
    if (!has_body) {
      bool written = co_await c.Write(out);
      co_return written&& req.keep_alive;
    }
    constexpr size_t kPiece = 1 << 20;
    auto piece = std::make_unique_for_overwrite<char[]>(kPiece);
    uint64_t off = 0;
    while (true) {
      auto n = body->Read(off, piece.get(), kPiece);
      if (!n.ok()) {
        LogLine("spool read failed: " + n.status().ToString());
        co_return false;  // the connection is closed mid-message; Squid reports an error
      }
      if (*n == 0) break;
      AppendChunk(&out, std::string_view(piece.get(), *n));
      off += *n;
      {
        bool awaited_ok = co_await c.Write(out);
        if (!awaited_ok) co_return false;
      }
      out.clear();
    }
    out += "0\r\n\r\n";
    {
      bool written = co_await c.Write(out);
      co_return written&& req.keep_alive;
    }
  }

  awaitable<bool> SendBlock(Conn& c, const IcapRequest& req, const Policy& p,
                            const BlockPage& page) {
    std::string out =
        IcapStatusLine(200) + "ISTag: \"" + IsTag(p) +
        "\"\r\nEncapsulated: res-hdr=0, res-body=" + std::to_string(page.head.size()) + "\r\n";
    if (!req.keep_alive) out += "Connection: close\r\n";
    out += "\r\n" + page.head;
    AppendChunk(&out, page.body);
    out += "0\r\n\r\n";
    {
      bool written = co_await c.Write(out);
      co_return written&& req.keep_alive;
    }
  }

  awaitable<bool> Send204(Conn& c, const IcapRequest& req, const Policy& p) {
    std::string out = IcapStatusLine(204) + "ISTag: \"" + IsTag(p) + "\"\r\n";
    if (!req.keep_alive) out += "Connection: close\r\n";
    out += "Encapsulated: null-body=0\r\n\r\n";
    {
      bool written = co_await c.Write(out);
      co_return written&& req.keep_alive;
    }
  }

  awaitable<bool> Send206(Conn& c, const IcapRequest& req, const Policy& p, std::string http_head) {
    std::string out =
        IcapStatusLine(206) + "ISTag: \"" + IsTag(p) +
        "\"\r\nEncapsulated: req-hdr=0, req-body=" + std::to_string(http_head.size()) + "\r\n";
    if (!req.keep_alive) out += "Connection: close\r\n";
    out += "\r\n" + http_head + "0; use-original-body=0\r\n\r\n";
    {
      bool written = co_await c.Write(out);
      co_return written&& req.keep_alive;
    }
  }

  // Returns false to close the connection.
  awaitable<bool> Transaction(Conn& c) {
    // 1. The ICAP head.
    size_t head_end;
    while (true) {
      std::string_view d = c.data();
      head_end = d.find("\r\n\r\n");
      if (head_end != std::string_view::npos) break;
      if (d.size() > opt_.limits.max_icap_head_bytes) {
        co_return co_await SendError(c, 400, opt_.policies->Current());
      }
      {
        bool awaited_ok = co_await c.Fill();
        if (!awaited_ok) co_return false;  // EOF between requests: normal
      }
    }
    auto policy = opt_.policies->Current();
    const Policy& p = *policy;
    auto parsed = ParseIcapHead(c.data().substr(0, head_end + 4), opt_.limits);
    c.Consume(head_end + 4);
    if (!parsed.ok()) {
      LogLine("bad ICAP request: " + parsed.status().ToString());
      int code = parsed.status().code() == StatusCode::kUnimplemented ? 501 : 400;
      co_return co_await SendError(c, code, policy);
    }
    IcapRequest req = std::move(parsed).value();
    bool want_resp = req.service == "respmod";
    if (req.service != "reqmod" && req.service != "respmod") {
      co_return co_await SendError(c, 404, policy);
    }
    if (req.method == IcapMethod::kOptions) {
      if (req.has_body) {
        auto r = co_await ReadBody(c, [](std::string_view) { return Status::Ok(); });
        if (!r.io_ok) co_return false;
      }
      co_return co_await SendOptions(c, req, p);
    }
    if ((req.method == IcapMethod::kRespmod) != want_resp)
      co_return co_await SendError(c, 405, policy);
    ++transactions_;

    // 2. The encapsulated HTTP heads.
    size_t heads_len = static_cast<size_t>(req.req_hdr_len + req.res_hdr_len);
    {
      bool awaited_ok = co_await c.Need(heads_len);
      if (!awaited_ok) co_return false;
    }
    std::string_view heads = c.data().substr(0, heads_len);
    HttpHead http_req, http_res;
    bool have_req = false;
    if (req.has_req_hdr) {
      auto h = ParseHttpHead(heads.substr(0, req.req_hdr_len), true, opt_.limits);
      if (!h.ok()) {
        LogLine("bad encapsulated HTTP request: " + h.status().ToString());
        c.Consume(heads_len);
        co_return co_await SendError(c, 400, policy);
      }
      http_req = std::move(h).value();
      have_req = true;
    }
    if (req.has_res_hdr) {
      auto h = ParseHttpHead(heads.substr(req.req_hdr_len, req.res_hdr_len), false, opt_.limits);
      if (!h.ok()) {
        LogLine("bad encapsulated HTTP response: " + h.status().ToString());
        c.Consume(heads_len);
        co_return co_await SendError(c, 400, policy);
      }
      http_res = std::move(h).value();
    }
    c.Consume(heads_len);

    // 3. Who, where, what.
    bool is_response = req.method == IcapMethod::kRespmod;
    const HttpHead& msg = is_response ? http_res : http_req;
    Exchange ex;
    ex.is_response = is_response;
    ex.has_body = req.has_body;
    ex.method = have_req ? http_req.method : "";
    ex.host = have_req ? RequestHost(http_req) : "";
    ex.category = &p.Classify(ex.host, &ex.site);
    memory_.set_limit(p.settings.memory_budget_bytes);
    std::string username(FindHeader(req.headers, "X-Client-Username").value_or(""));
    if (username.empty()) {
      username = std::string(FindHeader(req.headers, "X-Authenticated-User").value_or(""));
    }
    ex.client_ip = std::string(FindHeader(req.headers, "X-Client-IP").value_or(""));
    ex.user = p.ResolveUser(username, ex.client_ip);
    if (auto cl = FindHeader(msg.headers, "Content-Length")) {
      uint64_t v = 0;
      auto [ptr, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), v);
      if (ec == std::errc() && ptr == cl->data() + cl->size()) ex.content_length = v;
    }
    std::string content_type(FindHeader(msg.headers, "Content-Type").value_or(""));
    std::string content_encoding(FindHeader(msg.headers, "Content-Encoding").value_or(""));

    // Tenant-restriction headers (requests only).
    bool modified = false;
    if (!is_response && have_req) {
      // Tenant rules apply by host, whatever category the host is in.
      for (const auto& cat : p.categories)
        for (const auto& rule : cat.tenant_headers) {
          bool match = false;
          for (const auto& h : rule.hosts) {
            if (ex.host == h || (ex.host.size() > h.size() &&
                                 ex.host.compare(ex.host.size() - h.size(), h.size(), h) == 0 &&
                                 ex.host[ex.host.size() - h.size() - 1] == '.')) {
              match = true;
            }
          }
          if (!match || http_req.method == "CONNECT") continue;
          for (const auto& [name, value] : rule.headers) RemoveHeader(http_req.headers, name);
          for (const auto& hv : rule.headers) http_req.headers.push_back(hv);
          modified = true;
        }
    }

    std::string event_id = opt_.new_event_id();
    Verdict verdict;
    PreAction pre = decider_.PreBody(p, ex, &verdict);
    uint64_t body_bytes = 0;
    std::optional<InspectionSummary> summary;

    auto finish_block = [&]() -> awaitable<bool> {
      auto page = MakeBlockPage(p.settings, ex, verdict, event_id, opt_.clock->NowMicros());
      (void)co_await Audit(ex, verdict, event_id, body_bytes, summary, p);  // blocks either way
      if (verdict.alert) Alert(ex, verdict, event_id, summary);
      ++blocked_;
      co_return co_await SendBlock(c, req, p, page);
    };

    if (pre == PreAction::kBlock) {
      if (req.has_body) {
        // In preview mode only the preview arrives; otherwise drain the body.
        auto r = co_await ReadBody(c, [&](std::string_view d) {
          body_bytes += d.size();
          return Status::Ok();
        });
        if (!r.io_ok) {
          ++aborted_;
          co_return false;
        }
      }
      co_return co_await finish_block();
    }

    if (pre == PreAction::kAllow) {
      std::string head = modified ? http_req.Serialize() : std::string();
      if (!req.has_body) {
        if (ex.has_body || opt_.audit_bodyless) {
          bool audited = co_await Audit(ex, verdict, event_id, 0, summary, p);
          if (!audited) co_return co_await finish_block();
        }
        ++allowed_;
        if (modified) co_return co_await SendModified(c, req, p, head, false, nullptr, false);
        if (req.allow_204) co_return co_await Send204(c, req, p);
        co_return co_await SendModified(c, req, p, msg.Serialize(), is_response, nullptr, false);
      }
      // A body: audit first (fail closed), then answer without reading more
      // than needed.
      body_bytes = ex.content_length.value_or(0);
      bool audited = co_await Audit(ex, verdict, event_id, body_bytes, summary, p);
      if (!audited) {
        auto r = co_await ReadBody(c, [](std::string_view) { return Status::Ok(); });
        if (!r.io_ok) co_return false;
        co_return co_await finish_block();
      }
      ++allowed_;
      if (req.preview && (!modified || req.allow_206)) {
        auto r = co_await ReadBody(c, [](std::string_view) { return Status::Ok(); });
        if (!r.io_ok) co_return false;
        if (!modified) co_return co_await Send204(c, req, p);
        co_return co_await Send206(c, req, p, head);
      }
      // Echo: read everything into the spool, then send it back.
      Spool spool(p.settings.spool_memory_bytes, p.settings.spool_max_bytes, opt_.spool_dir,
                  &memory_, ex.category->disk_over_budget);
      auto on_data = [&](std::string_view d) { return spool.Append(d); };
      auto r = co_await ReadBody(c, on_data);
      if (!r.io_ok) co_return false;
      if (req.preview && !r.ieof) {
        {
          bool awaited_ok = co_await c.Write("ICAP/1.0 100 Continue\r\n\r\n");
          if (!awaited_ok) co_return false;
        }
        BodyResult rest = co_await ReadBody(c, on_data);
        r = rest;
        if (!r.io_ok) co_return false;
      }
      if (!r.data.ok()) {
        if (req.allow_204 && !modified) co_return co_await Send204(c, req, p);
        verdict = Verdict{true, "inspection_failed", r.data.ToString(), true, 0};
        co_return co_await finish_block();
      }
      if (!modified && req.allow_204) co_return co_await Send204(c, req, p);
      std::string h = modified ? head : msg.Serialize();
      co_return co_await SendModified(c, req, p, h, is_response, &spool, true);
    }

    // 4. Inspect: stream the body through decoders into the engine and the spool.
    Spool spool(p.settings.spool_memory_bytes, p.settings.spool_max_bytes, opt_.spool_dir, &memory_,
                ex.category->disk_over_budget);
    std::unique_ptr<Inspector> inspector;
    std::unique_ptr<BodyDecoder> decoder;
    Status inspect_status;
    {
      InspectOptions io;
      io.min_confidence = p.settings.min_confidence;
      io.max_bytes = p.settings.inspect_max_bytes;
      io.memory_limit = p.settings.spool_memory_bytes;
      io.memory = &memory_;
      io.disk_over_budget = ex.category->disk_over_budget;
      io.spill_dir = opt_.spool_dir;
      auto ins = opt_.inspectors->New(io);
      if (!ins.ok()) {
        inspect_status = ins.status();
      } else {
        inspector = std::move(ins).value();
        DecodeBudgets budgets;
        budgets.max_decoded_bytes = p.settings.inspect_max_bytes;
        auto dec = BodyDecoder::Create(content_type, content_encoding, budgets, inspector.get());
        if (!dec.ok()) {
          inspect_status = dec.status();
        } else {
          decoder = std::move(dec).value();
        }
      }
    }
    Status spool_status;
    auto on_data = [&](std::string_view d) -> Status {
      body_bytes += d.size();
      if (spool_status.ok()) spool_status = spool.Append(d);
      if (inspect_status.ok()) inspect_status = decoder->Feed(d);
      // Keep reading even after an inspection error: the verdict is decided
      // at the end, and the connection must stay in sync.
      return Status::Ok();
    };
    auto r = co_await ReadBody(c, on_data);
    if (r.io_ok && req.preview && !r.ieof) {
      {
        bool awaited_ok = co_await c.Write("ICAP/1.0 100 Continue\r\n\r\n");
        if (!awaited_ok) r.io_ok = false;
      }
      if (r.io_ok) {
        BodyResult rest = co_await ReadBody(c, on_data);
        r = rest;
      }
    }
    if (!r.io_ok) {
      ++aborted_;
      Verdict abort_v{true, "client_abort",
                      r.protocol.ok() ? "connection closed mid-body" : r.protocol.ToString(), false,
                      0};
      (void)co_await Audit(ex, abort_v, event_id, body_bytes, summary, p, "error");
      co_return false;
    }
    Result<InspectionSummary> inspection = InspectionSummary{};
    if (inspect_status.ok()) inspect_status = decoder->Finish();
    if (inspect_status.ok()) {
      inspection = inspector->Finish();
    } else {
      inspection = inspect_status;
    }
    if (inspection.ok()) summary = *inspection;
    verdict = decider_.PostBody(p, ex, body_bytes, inspection);
    if (!verdict.block && !spool_status.ok() && !(req.allow_204 && !modified)) {
      // Allowed, but the body cannot be sent back: fail closed.
      verdict = Verdict{true, "inspection_failed", spool_status.ToString(), true, 0};
    }
    if (verdict.block) co_return co_await finish_block();
    bool audited = co_await Audit(ex, verdict, event_id, body_bytes, summary, p);
    if (!audited) {
      verdict = Verdict{true, "inspection_failed", "audit log unavailable", true, 0};
      co_return co_await finish_block();
    }
    ++allowed_;
    if (!modified && req.allow_204) co_return co_await Send204(c, req, p);
    std::string h = modified ? http_req.Serialize() : msg.Serialize();
    co_return co_await SendModified(c, req, p, h, is_response, &spool, true);
  }

  // Appends the decision to the audit log and resumes once it is durable,
  // without holding the I/O thread meanwhile (group commit: the decisions of
  // other connections share the fdatasync). False if that failed (the caller
  // must then block).
  awaitable<bool> Audit(const Exchange& ex, const Verdict& v, const std::string& event_id,
                        uint64_t bytes, const std::optional<InspectionSummary>& summary,
                        const Policy& p, const char* result = nullptr) {
    audit::Record r;
    r.component = "egress";
    r.event_id = event_id;
    r.user = ex.user;
    r.source_ip = ex.client_ip;
    r.action = ex.is_response ? "download" : (ex.method == "CONNECT" ? "connect" : "upload");
    r.destination = ex.host;
    // The size the user tried to send (Content-Length), even when a block
    // stopped it after the preview; what was actually read is in extra.
    r.bytes = std::max(bytes, ex.content_length.value_or(0));
    r.result = result ? result : (v.block ? "block" : "allow");
    r.reason = v.reason;
    r.labels = nlohmann::json::object();
    if (summary) {
      nlohmann::json types = nlohmann::json::object();
      for (const auto& [t, n] : summary->types) types[t] = n;
      r.labels["types"] = types;
      r.labels["individuals"] = summary->individuals;
      if (!summary->max_confidence.empty()) r.labels["max_confidence"] = summary->max_confidence;
      if (summary->not_inspected) r.labels["not_inspected"] = summary->not_inspected;
    }
    r.extra = {{"category", ex.category->name},
               {"site", ex.site},
               {"method", ex.method},
               {"policy", p.version}};
    if (!v.detail.empty()) r.extra["detail"] = v.detail;
    r.extra["bytes_read"] = bytes;
    if (summary) r.extra["units"] = summary->units;
    const bool clean_allow =
        r.result == "allow" && (!summary || (summary->types.empty() && !summary->not_inspected));
    const audit::Durability durability = clean_allow && !opt_.audit_sync_every_decision
                                             ? audit::Durability::kWritten
                                             : audit::Durability::kSynced;
    Status st = co_await net::async_initiate<decltype(use_awaitable), void(Status)>(
        [this, &r, durability](auto handler) {
          using Handler = decltype(handler);
          struct Waiting {
            net::associated_executor_t<Handler, net::io_context::executor_type> ex;
            Handler handler;
          };
          auto ex = net::get_associated_executor(handler, ios_[0]->get_executor());
          auto w = std::make_shared<Waiting>(Waiting{ex, std::move(handler)});
          ++audits_in_flight_;
          opt_.audit->AppendAsync(
              std::move(r),
              [this, w](Result<uint64_t> res) mutable {
                Status s = res.ok() ? Status::Ok() : res.status();
                // Resume the session on its own executor. Nothing that refers to
                // ios_ may outlive AuditDone(): Stop() waits for it, then ios_ go.
                auto local = std::move(w);
                net::post(local->ex, [h = std::move(local->handler), s = std::move(s)]() mutable {
                  std::move(h)(std::move(s));
                });
                local.reset();
                AuditDone();
              },
              durability);
        },
        use_awaitable);
    if (!st.ok()) {
      LogLine("audit append failed, blocking: " + st.ToString());
      co_return false;
    }
    co_return true;
  }

  // Under wait_mu_, so that Stop() cannot see zero, return and free this
  // object while the commit thread is still between decrement and notify.
  void AuditDone() {
    std::lock_guard<std::mutex> l(wait_mu_);
    if (--audits_in_flight_ == 0) audits_cv_.notify_all();
  }

  void Alert(const Exchange& ex, const Verdict& v, const std::string& event_id,
             const std::optional<InspectionSummary>& summary) {
    if (!opt_.alerter) return;
    nlohmann::json a = {{"source", "mamori-egress"},
                        {"event_id", event_id},
                        {"time_micros", opt_.clock->NowMicros()},
                        {"user", ex.user},
                        {"client_ip", ex.client_ip},
                        {"destination", ex.host},
                        {"category", ex.category->name},
                        {"reason", v.reason},
                        {"detail", v.detail}};
    if (summary) {
      nlohmann::json types = nlohmann::json::object();
      for (const auto& [t, n] : summary->types) types[t] = n;
      a["types"] = types;
      a["individuals"] = summary->individuals;
    }
    opt_.alerter->Send(std::move(a));
  }

  ServerOptions opt_;
  // Before ios_: coroutine frames destroyed with them release their spools here.
  MemoryBudget memory_{256ull << 20};                  // limit follows settings.memory_budget
  std::vector<std::unique_ptr<net::io_context>> ios_;  // one per I/O thread
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work_;
  size_t next_shard_ = 0;  // Accept()'s round robin (one coroutine, one thread)
  tcp::acceptor acceptor_;
  std::unique_ptr<VolumeTracker> own_volume_;
  Decider decider_;
  net::steady_timer reload_timer_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  std::once_flag stop_once_;
  std::mutex wait_mu_;
  std::condition_variable wait_cv_;
  bool stopped_ = false;
  std::atomic<size_t> active_{0};
  std::atomic<uint64_t> audits_in_flight_{0};
  std::condition_variable audits_cv_;
  std::atomic<uint64_t> connections_{0}, transactions_{0}, options_{0}, allowed_{0}, blocked_{0},
      errors_{0}, aborted_{0}, refused_{0};
};

IcapServer::IcapServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
IcapServer::~IcapServer() { Stop(); }

Result<std::unique_ptr<IcapServer>> IcapServer::Start(ServerOptions options) {
  if (!options.policies || !options.inspectors || !options.audit) {
    return InvalidArgument(
        "ICAP server needs a policy store, an inspector factory and an audit sink");
  }
  if (sodium_init() < 0) return Internal("libsodium failed to initialise");
  auto impl = std::make_unique<Impl>(std::move(options));
  RETURN_IF_ERROR(impl->Bind());
  impl->Run();
  return std::unique_ptr<IcapServer>(new IcapServer(std::move(impl)));
}

void IcapServer::Stop() {
  if (impl_) impl_->Stop();
}
uint16_t IcapServer::port() const { return impl_->port(); }
ServerStats IcapServer::stats() const { return impl_->stats(); }
void IcapServer::Wait() { impl_->Wait(); }

}  // namespace mamori::egress
