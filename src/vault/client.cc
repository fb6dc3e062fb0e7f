#include "vault/client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <limits>

namespace mamori::vault {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

std::string UrlEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Status ParseServerUrl(const std::string& url, std::string* host, uint16_t* port) {
  const std::string prefix = "https://";
  if (url.rfind(prefix, 0) != 0) return InvalidArgument("the server URL must start with https://");
  std::string rest = url.substr(prefix.size());
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::string p = "443";
  if (!rest.empty() && rest[0] == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) return InvalidArgument("bad IPv6 address in the server URL");
    *host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return InvalidArgument("bad server URL");
      p = rest.substr(close + 2);
    }
  } else {
    auto colon = rest.rfind(':');
    *host = rest.substr(0, colon);
    if (colon != std::string::npos) p = rest.substr(colon + 1);
  }
  if (host->empty() || p.empty() || p.size() > 5 ||
      p.find_first_not_of("0123456789") != std::string::npos || std::stoi(p) > 65535 ||
      std::stoi(p) == 0)
    return InvalidArgument("bad server URL '" + url + "' (use https://host:port)");
  *port = static_cast<uint16_t>(std::stoi(p));
  return Status::Ok();
}

struct Client::Impl {
  asio::io_context ioc;
  ssl::context ctx{ssl::context::tls_client};
  std::unique_ptr<beast::ssl_stream<tcp::socket>> stream;
  beast::flat_buffer buffer;
  std::string host;

  template <typename Res>
  static void CopyHeaders(const Res& res, ClientResponse* out) {
    out->status = static_cast<int>(res.result_int());
    for (const auto& f : res) {
      std::string n(f.name_string());
      for (auto& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      out->headers[n] = std::string(f.value());
    }
  }

  template <typename Req>
  void Prepare(Req& req, const std::map<std::string, std::string>& headers) {
    req.set(http::field::host, host);
    req.set(http::field::user_agent, "mamori-client");
    for (const auto& [k, v] : headers) req.set(k, v);
  }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() {
  if (impl_ && impl_->stream) {
    beast::error_code ec;
    impl_->stream->shutdown(ec);
  }
}

Result<std::unique_ptr<Client>> Client::Connect(const ClientOptions& o) {
  auto impl = std::make_unique<Impl>();
  impl->host = o.host;
  SSL_CTX* raw = impl->ctx.native_handle();
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  beast::error_code ec;
  impl->ctx.load_verify_file(o.ca_path, ec);
  if (ec) return FailedPrecondition("cannot load the vault CA " + o.ca_path + ": " + ec.message());
  impl->ctx.set_verify_mode(ssl::verify_peer, ec);
  if (!o.cert_path.empty()) {
    impl->ctx.use_certificate_chain_file(o.cert_path, ec);
    if (ec)
      return FailedPrecondition("cannot load the device certificate " + o.cert_path + ": " +
                                ec.message());
    impl->ctx.use_private_key_file(o.key_path, ssl::context::pem, ec);
    if (ec)
      return FailedPrecondition("cannot load the device key " + o.key_path + ": " + ec.message());
  }
  impl->stream = std::make_unique<beast::ssl_stream<tcp::socket>>(impl->ioc, impl->ctx);
  SSL* ssl = impl->stream->native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  beast::error_code aec;
  (void)asio::ip::make_address(o.host, aec);
  if (!aec) {
    X509_VERIFY_PARAM_set1_ip_asc(param, o.host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, o.host.c_str(), 0);
    SSL_set_tlsext_host_name(ssl, o.host.c_str());
  }
  tcp::resolver resolver(impl->ioc);
  auto results = resolver.resolve(o.host, std::to_string(o.port), ec);
  if (ec) return Unavailable("cannot resolve " + o.host + ": " + ec.message());
  asio::connect(impl->stream->next_layer(), results, ec);
  if (ec)
    return Unavailable("cannot connect to " + o.host + ":" + std::to_string(o.port) + ": " +
                       ec.message());
  int fd = impl->stream->next_layer().native_handle();
  timeval tv{o.timeout_seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  impl->stream->handshake(ssl::stream_base::client, ec);
  if (ec)
    return Unavailable("TLS handshake with " + o.host +
                       " failed (wrong CA or not a vault?): " + ec.message());
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Result<ClientResponse> Client::Call(const std::string& method, const std::string& target,
                                    const std::map<std::string, std::string>& headers,
                                    const std::string& body) {
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  impl_->Prepare(req, headers);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  beast::error_code ec;
  http::write(*impl_->stream, req, ec);
  if (ec) return Unavailable("sending the request: " + ec.message());
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  http::read(*impl_->stream, impl_->buffer, parser, ec);
  if (ec) return Unavailable("reading the response: " + ec.message());
  ClientResponse out;
  Impl::CopyHeaders(parser.get(), &out);
  out.body = std::move(parser.get().body());
  return out;
}

Result<ClientResponse> Client::Upload(const std::string& method, const std::string& target,
                                      const std::map<std::string, std::string>& headers,
                                      uint64_t size,
                                      const std::function<Result<size_t>(char*, size_t)>& read) {
  http::request<http::buffer_body> req{http::string_to_verb(method), target, 11};
  impl_->Prepare(req, headers);
  req.set(http::field::content_type, "application/octet-stream");
  req.content_length(size);
  req.body().data = nullptr;
  req.body().more = true;
  http::request_serializer<http::buffer_body> sr{req};
  beast::error_code ec;
  http::write_header(*impl_->stream, sr, ec);
  if (ec) return Unavailable("sending the request header: " + ec.message());
  std::string buf(256 * 1024, '\0');
  uint64_t sent = 0;
  bool early_reply = false;
  while (sent < size) {
    ASSIGN_OR_RETURN(size_t n, read(buf.data(), buf.size()));
    if (n == 0) return DataLoss("the local file ended after " + std::to_string(sent) + " bytes");
    if (sent + n > size) return DataLoss("the local file grew while uploading");
    req.body().data = buf.data();
    req.body().size = n;
    req.body().more = true;
    http::write(*impl_->stream, sr, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      early_reply = true;  // the server may have refused and closed; read its answer
      break;
    }
    sent += n;
  }
  if (!early_reply) {
    req.body().data = nullptr;
    req.body().size = 0;
    req.body().more = false;
    http::write(*impl_->stream, sr, ec);
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  http::read(*impl_->stream, impl_->buffer, parser, ec);
  if (ec) return Unavailable("reading the upload response: " + ec.message());
  ClientResponse out;
  Impl::CopyHeaders(parser.get(), &out);
  out.body = std::move(parser.get().body());
  return out;
}

Result<ClientResponse> Client::Download(const std::string& target,
                                        const std::map<std::string, std::string>& headers,
                                        const std::function<Status(std::string_view)>& write) {
  http::request<http::empty_body> req{http::verb::get, target, 11};
  impl_->Prepare(req, headers);
  beast::error_code ec;
  http::write(*impl_->stream, req, ec);
  if (ec) return Unavailable("sending the request: " + ec.message());
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read_header(*impl_->stream, impl_->buffer, parser, ec);
  if (ec) return Unavailable("reading the response header: " + ec.message());
  ClientResponse out;
  Impl::CopyHeaders(parser.get(), &out);
  bool ok = out.status / 100 == 2;
  std::string buf(256 * 1024, '\0');
  while (!parser.is_done()) {
    parser.get().body().data = buf.data();
    parser.get().body().size = buf.size();
    http::read(*impl_->stream, impl_->buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return Unavailable("the download was cut off: " + ec.message());
    size_t n = buf.size() - parser.get().body().size;
    if (ok) {
      RETURN_IF_ERROR(write(std::string_view(buf.data(), n)));
    } else if (out.body.size() < 64 * 1024) {
      out.body.append(buf.data(), n);
    }
  }
  return out;
}

}  // namespace mamori::vault
