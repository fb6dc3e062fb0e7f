#include "vault/client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>

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
  // Uploads write the header and the body separately: do not let Nagle hold
  // the second write for the server's delayed ACK.
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
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

Result<ClientResponse> UploadResumable(
    const ClientOptions& options, const std::map<std::string, std::string>& headers,
    const std::string& folder, const std::string& name, uint64_t size, const std::string& sha256,
    const std::function<Result<size_t>(uint64_t, char*, size_t)>& read_at,
    const ResumableUploadOptions& ro) {
  const std::string base = "/v1/folders/" + UrlEncode(folder) + "/uploads";
  auto json_call = [&](const std::string& method, const std::string& target,
                       const nlohmann::json& body) -> Result<ClientResponse> {
    ASSIGN_OR_RETURN(auto c, Client::Connect(options));
    return c->Call(method, target, headers, body.is_null() ? "" : body.dump());
  };
  ASSIGN_OR_RETURN(ClientResponse created,
                   json_call("POST", base, {{"name", name}, {"size", size}}));
  if (created.status != 201) return created;
  nlohmann::json cj = nlohmann::json::parse(created.body, nullptr, false);
  if (!cj.is_object() || !cj.contains("id") || !cj["id"].is_string())
    return DataLoss("the vault's answer to the upload request is not valid JSON");
  const std::string session = base + "/" + cj["id"].get<std::string>();
  uint64_t offset = 0;
  int failures = 0;
  Status last = Status::Ok();
  auto retry = [&](Status why) -> Status {
    if (getenv("MAMORI_DEBUG"))
      fprintf(stderr, "upload retry at %llu: %s\n", static_cast<unsigned long long>(offset),
              why.ToString().c_str());
    last = std::move(why);
    if (++failures > ro.max_retries)
      return last.WithContext("the upload failed " + std::to_string(failures) +
                              " times in a row; run the command again to start over");
    std::this_thread::sleep_for(std::chrono::milliseconds(ro.retry_delay_ms * failures));
    // Ask where the server is; it only counts durably stored bytes. While it
    // still stores the dropped request ("busy"), wait for it to finish.
    for (int i = 0; i < 40; ++i) {
      auto st = json_call("GET", session, nullptr);
      if (!st.ok()) return Status::Ok();  // still unreachable: the next attempt retries
      if (st->status / 100 != 2) return Status::Ok();
      nlohmann::json sj = nlohmann::json::parse(st->body, nullptr, false);
      if (!sj.is_object()) return Status::Ok();
      if (sj.contains("offset") && sj["offset"].is_number_unsigned())
        offset = sj["offset"].get<uint64_t>();
      if (!sj.value("busy", false)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(ro.retry_delay_ms));
    }
    return Status::Ok();
  };
  while (offset < size) {
    uint64_t part = std::min<uint64_t>(ro.part_bytes, size - offset);
    uint64_t pos = offset;
    auto conn = Client::Connect(options);
    if (!conn.ok()) {
      RETURN_IF_ERROR(retry(conn.status()));
      continue;
    }
    auto r = (*conn)->Upload("PUT", session + "?offset=" + std::to_string(offset), headers, part,
                             [&](char* b, size_t n) -> Result<size_t> {
                               size_t want =
                                   static_cast<size_t>(std::min<uint64_t>(n, offset + part - pos));
                               ASSIGN_OR_RETURN(size_t k, read_at(pos, b, want));
                               pos += k;
                               return k;
                             });
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kDataLoss) return r.status();  // the local file changed
      RETURN_IF_ERROR(retry(r.status()));
      continue;
    }
    if (r->status == 200) {
      nlohmann::json pj = nlohmann::json::parse(r->body, nullptr, false);
      offset = pj.is_object() ? pj.value("offset", offset + part) : offset + part;
      failures = 0;
      continue;
    }
    if (r->status == 409 || r->status / 100 == 5) {  // busy, moved on, or unavailable
      RETURN_IF_ERROR(retry(Unavailable("the vault answered " + std::to_string(r->status))));
      continue;
    }
    return *r;  // refused
  }
  bool tried = false;
  while (true) {
    auto done = json_call("POST", session + "/complete", {{"sha256", sha256}});
    if (tried && done.ok() && done->status == 404) {
      // An earlier completion may have been stored with its answer lost: the
      // session is gone then, and the file has exactly this content.
      auto ls = json_call("GET", "/v1/folders/" + UrlEncode(folder) + "/files", nullptr);
      nlohmann::json lj =
          ls.ok() ? nlohmann::json::parse(ls->body, nullptr, false) : nlohmann::json();
      if (lj.is_object() && lj.contains("files") && lj["files"].is_array())
        for (const auto& f : lj["files"])
          if (f.value("name", "") == name && f.value("sha256", "") == sha256) {
            ClientResponse ok = *ls;
            ok.status = 201;
            ok.body = f.dump();
            return ok;
          }
    }
    if (done.ok() && done->status != 409 && done->status / 100 != 5) return *done;
    tried = true;
    RETURN_IF_ERROR(retry(done.ok()
                              ? Unavailable("the vault answered " + std::to_string(done->status))
                              : done.status()));
  }
}

}  // namespace mamori::vault
