#include "vault/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <set>
#include <thread>

#include "crypto/crypto.h"

namespace mamori::vault {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

using Stream = beast::ssl_stream<tcp::socket>;

std::string PeerFingerprint(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return "";
  std::string fp;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (X509_digest(cert, EVP_sha256(), md, &n))
      fp = crypto::ToHex(std::string_view(reinterpret_cast<char*>(md), n));
  }
  X509_free(cert);
  return fp;
}

class BeastBody : public BodySource {
 public:
  BeastBody(Stream& s, beast::flat_buffer& b, http::request_parser<http::buffer_body>& p)
      : s_(s), b_(b), p_(p) {}
  Result<size_t> Read(char* buf, size_t n) override {
    if (p_.is_done()) return size_t{0};
    p_.get().body().data = buf;
    p_.get().body().size = n;
    beast::error_code ec;
    http::read(s_, b_, p_, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return Unavailable("reading the request body: " + ec.message());
    size_t got = n - p_.get().body().size;
    if (got == 0 && !p_.is_done()) return Unavailable("the request body stalled");
    return got;
  }

 private:
  Stream& s_;
  beast::flat_buffer& b_;
  http::request_parser<http::buffer_body>& p_;
};

// Responses of known, small length (JSON answers: lists, errors) are built in
// memory and written with one write, so header and body leave in one TLS
// record and one segment; streamed and large ones (downloads) go out as they
// come.
constexpr uint64_t kCoalesceLimit = 64 * 1024;  // buffered per connection at most

class BeastSink : public ResponseSink {
 public:
  BeastSink(Stream& s, unsigned version, bool keep_alive)
      : s_(s), version_(version), keep_alive_(keep_alive) {}
  Status Start(int status, const std::vector<std::pair<std::string, std::string>>& headers,
               std::optional<uint64_t> length) override {
    if (started_) return Internal("response started twice");
    started_ = true;
    auto set_common = [&](auto& res) {
      res.set(http::field::server, "mamori");
      res.set("strict-transport-security", "max-age=31536000");
      res.set("cache-control", "no-store");
      for (const auto& [k, v] : headers) res.set(k, v);
      res.keep_alive(keep_alive_);
    };
    if (length && *length <= kCoalesceLimit) {
      small_ = std::make_unique<http::response<http::string_body>>(
          static_cast<http::status>(status), version_);
      set_common(*small_);
      small_length_ = *length;
      small_->body().reserve(static_cast<size_t>(*length));
      return Status::Ok();
    }
    res_ = std::make_unique<http::response<http::buffer_body>>(static_cast<http::status>(status),
                                                               version_);
    set_common(*res_);
    if (length)
      res_->content_length(*length);
    else
      res_->chunked(true);
    res_->body().data = nullptr;
    res_->body().more = true;
    sr_ = std::make_unique<http::response_serializer<http::buffer_body>>(*res_);
    beast::error_code ec;
    http::write_header(s_, *sr_, ec);
    if (ec) return Unavailable("writing the response header: " + ec.message());
    return Status::Ok();
  }
  Status Write(std::string_view data) override {
    if (small_) {
      if (data.size() > small_length_ - small_->body().size())
        return Internal("the response is longer than its announced length");
      small_->body().append(data);
      return Status::Ok();
    }
    if (!sr_) return Internal("response not started");
    if (data.empty()) return Status::Ok();
    res_->body().data = const_cast<char*>(data.data());
    res_->body().size = data.size();
    res_->body().more = true;
    beast::error_code ec;
    http::write(s_, *sr_, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return Unavailable("writing the response: " + ec.message());
    return Status::Ok();
  }
  Status Finish() override {
    beast::error_code ec;
    if (small_) {
      if (small_->body().size() != small_length_)
        return Internal("the response is shorter than its announced length");
      small_->content_length(small_length_);
      http::write(s_, *small_, ec);  // header and body in one write
      if (ec) return Unavailable("writing the response: " + ec.message());
      finished_ = true;
      return Status::Ok();
    }
    if (!sr_) return Internal("response not started");
    res_->body().data = nullptr;
    res_->body().size = 0;
    res_->body().more = false;
    http::write(s_, *sr_, ec);
    if (ec) return Unavailable("finishing the response: " + ec.message());
    finished_ = true;
    return Status::Ok();
  }
  bool started() const override { return started_; }
  bool finished() const { return finished_; }

 private:
  Stream& s_;
  unsigned version_;
  bool keep_alive_;
  bool started_ = false;
  std::unique_ptr<http::response<http::string_body>> small_;
  uint64_t small_length_ = 0;
  std::unique_ptr<http::response<http::buffer_body>> res_;
  std::unique_ptr<http::response_serializer<http::buffer_body>> sr_;
  bool finished_ = false;
};

}  // namespace

struct Server::Impl {
  ServerOptions opt;
  Vault* vault = nullptr;
  asio::io_context ioc;
  ssl::context ctx{ssl::context::tls_server};
  std::unique_ptr<tcp::acceptor> acceptor;
  std::thread accept_thread;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::condition_variable cv;
  std::set<int> open_fds;
  int active = 0;

  void AcceptLoop() {
    while (!stopping) {
      tcp::socket sock(ioc);
      beast::error_code ec;
      acceptor->accept(sock, ec);
      if (stopping) break;
      if (ec) continue;
      {
        std::lock_guard<std::mutex> l(mu);
        if (active >= opt.max_connections) {
          sock.close(ec);
          continue;
        }
        ++active;
        open_fds.insert(sock.native_handle());
      }
      std::thread([this, s = std::move(sock)]() mutable { Serve(std::move(s)); }).detach();
    }
  }

  void Serve(tcp::socket sock) {
    int fd = sock.native_handle();
    timeval tv{opt.io_timeout_seconds, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    // Without it, Nagle holds a short write back until the client's delayed
    // ACK (40 ms on Linux) whenever one response takes two writes.
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    beast::error_code ec;
    std::string peer_ip;
    auto ep = sock.remote_endpoint(ec);
    if (!ec) {
      auto addr = ep.address();
      if (addr.is_v6() && addr.to_v6().is_v4_mapped())
        addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
      peer_ip = addr.to_string();
    }
    {
      Stream stream(std::move(sock), ctx);
      stream.handshake(ssl::stream_base::server, ec);
      if (!ec) ServeRequests(stream, peer_ip);
      stream.shutdown(ec);
    }
    std::lock_guard<std::mutex> l(mu);
    open_fds.erase(fd);
    --active;
    cv.notify_all();
  }

  void ServeRequests(Stream& stream, const std::string& peer_ip) {
    std::string fingerprint = PeerFingerprint(stream.native_handle());
    beast::flat_buffer buffer;
    while (!stopping) {
      http::request_parser<http::buffer_body> parser;
      parser.body_limit(
          std::numeric_limits<std::uint64_t>::max());  // the vault enforces its own budgets
      parser.header_limit(static_cast<uint32_t>(opt.max_header_bytes));
      beast::error_code ec;
      http::read_header(stream, buffer, parser, ec);
      if (ec) {
        if (ec != http::error::end_of_stream && ec != asio::error::eof &&
            ec != ssl::error::stream_truncated && ec != asio::error::connection_reset &&
            ec != asio::error::timed_out && ec != asio::error::would_block) {
          // Malformed request: answer 400 once and close.
          if (getenv("MAMORI_DEBUG")) fprintf(stderr, "read_header: %s\n", ec.message().c_str());
          http::response<http::string_body> res{http::status::bad_request, 11};
          res.set(http::field::content_type, "application/json");
          res.body() = "{\"error\":\"malformed HTTP request\",\"code\":\"INVALID_ARGUMENT\"}";
          res.prepare_payload();
          res.keep_alive(false);
          http::write(stream, res, ec);
        }
        return;
      }
      auto& h = parser.get();
      HttpRequest req;
      req.method = std::string(h.method_string());
      req.target = std::string(h.target());
      for (const auto& f : h) {
        std::string name(f.name_string());
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        req.headers[name] = std::string(f.value());
      }
      req.source_ip = peer_ip;
      req.cert_fingerprint = fingerprint;
      if (parser.content_length()) req.content_length = *parser.content_length();
      if (req.header("expect") == "100-continue") {
        http::response<http::empty_body> cont{http::status::continue_, 11};
        http::write(stream, cont, ec);
        if (ec) return;
      }
      bool keep_alive = h.keep_alive();
      BeastBody body(stream, buffer, parser);
      BeastSink sink(stream, h.version(), keep_alive);
      vault->Handle(req, body, sink);
      if (!sink.finished() || !keep_alive) return;
      if (!parser.is_done()) return;  // unread body: the connection cannot be reused
    }
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { Stop(); }

uint16_t Server::port() const { return impl_->acceptor->local_endpoint().port(); }

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& o, Vault* vault) {
  auto impl = std::make_unique<Impl>();
  impl->opt = o;
  impl->vault = vault;
  SSL_CTX* raw = impl->ctx.native_handle();
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  SSL_CTX_set_options(raw,
                      SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_cipher_list(raw, "ECDHE+AESGCM:ECDHE+CHACHA20");
  static const unsigned char kSid[] = "mamori-vault";
  SSL_CTX_set_session_id_context(raw, kSid, sizeof kSid - 1);
  beast::error_code ec;
  impl->ctx.use_certificate_chain_file(o.cert_path, ec);
  if (ec)
    return FailedPrecondition("cannot load the server certificate " + o.cert_path + ": " +
                              ec.message());
  impl->ctx.use_private_key_file(o.key_path, ssl::context::pem, ec);
  if (ec)
    return FailedPrecondition("cannot load the server key " + o.key_path + ": " + ec.message());
  impl->ctx.load_verify_file(o.client_ca_path, ec);
  if (ec)
    return FailedPrecondition("cannot load the device CA " + o.client_ca_path + ": " +
                              ec.message());
  // Ask for a device certificate; the vault refuses requests without one
  // except enrolment and health.
  impl->ctx.set_verify_mode(ssl::verify_peer, ec);
  impl->ctx.set_verify_callback([](bool preverified, ssl::verify_context&) { return true; }, ec);
  // The callback accepts the handshake so an unverified cert can be refused
  // per request with a clear message; PeerFingerprint only trusts X509_V_OK.
  SSL_CTX_set_verify_depth(raw, 2);

  auto addr = asio::ip::make_address(o.address, ec);
  if (ec) return InvalidArgument("'" + o.address + "' is not an IP address to listen on");
  impl->acceptor = std::make_unique<tcp::acceptor>(impl->ioc);
  tcp::endpoint ep(addr, o.port);
  impl->acceptor->open(ep.protocol(), ec);
  if (!ec) impl->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor->bind(ep, ec);
  if (!ec) impl->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return Unavailable("cannot listen on " + o.address + ":" + std::to_string(o.port) + ": " +
                       ec.message());
  Impl* p = impl.get();
  impl->accept_thread = std::thread([p] { p->AcceptLoop(); });
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

void Server::Stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  beast::error_code ec;
  // Unblock accept(): shutting the listening socket down makes it return.
  ::shutdown(impl_->acceptor->native_handle(), SHUT_RDWR);
  if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
  impl_->acceptor->close(ec);
  std::unique_lock<std::mutex> l(impl_->mu);
  for (int fd : impl_->open_fds) ::shutdown(fd, SHUT_RDWR);
  impl_->cv.wait(l, [&] { return impl_->active == 0; });
}

}  // namespace mamori::vault
