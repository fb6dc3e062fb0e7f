// Test-only helpers for servers on 127.0.0.1: a free port, and an HTTP sink
// that records what it is sent (webhook receivers in alert and vault tests).
// Header-only, so any test can include it without linking a library.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mamori::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (bind it right away).
inline uint16_t FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// An HTTP/1.1 listener on 127.0.0.1 that answers every request with
// "204 No Content", closes the connection and keeps each whole request
// (head and body, read up to its Content-Length).
class HttpSink {
 public:
  HttpSink() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~HttpSink() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    if (thread_.joinable()) thread_.join();
  }
  HttpSink(const HttpSink&) = delete;
  HttpSink& operator=(const HttpSink&) = delete;

  uint16_t port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  // Every request received so far, in order.
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }
  // The body of a request (what follows the blank line).
  static std::string BodyOf(const std::string& request) {
    size_t h = request.find("\r\n\r\n");
    return h == std::string::npos ? std::string() : request.substr(h + 4);
  }

 private:
  void Serve() {
    while (true) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (true) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
        size_t h = req.find("\r\n\r\n");
        if (h == std::string::npos) continue;
        size_t cl = req.find("Content-Length: ");
        size_t len = cl == std::string::npos || cl > h ? 0 : std::stoul(req.substr(cl + 16));
        if (req.size() >= h + 4 + len) break;
      }
      // Recorded before the reply: a sender that has its answer may look
      // for its request at once.
      {
        std::lock_guard<std::mutex> l(mu_);
        requests_.push_back(std::move(req));
      }
      const std::string resp = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
      ::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

}  // namespace mamori::testing
