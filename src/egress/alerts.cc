#include "egress/alerts.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace mamori::egress {

Result<ParsedUrl> ParseHttpUrl(const std::string& url) {
  if (url.rfind("https://", 0) == 0) {
    return Unimplemented("webhook URL must be http:// (use a local relay for https): " + url);
  }
  if (url.rfind("http://", 0) != 0) return InvalidArgument("webhook URL must start with http://");
  std::string rest = url.substr(7);
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  ParsedUrl u;
  u.path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return InvalidArgument("webhook URL: unclosed '['");
    u.host = authority.substr(1, close - 1);
    u.port = close + 2 <= authority.size() ? authority.substr(close + 2) : "";
  } else {
    size_t colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    u.port = colon == std::string::npos ? "" : authority.substr(colon + 1);
  }
  if (u.port.empty()) u.port = "80";
  if (u.host.empty()) return InvalidArgument("webhook URL has no host");
  if (u.path.find_first_of("\r\n ") != std::string::npos) {
    return InvalidArgument("webhook URL path has spaces or line breaks");
  }
  return u;
}

Result<std::unique_ptr<Alerter>> Alerter::Start(const AlertOptions& options) {
  std::unique_ptr<Alerter> a(new Alerter(options));
  if (!options.webhook_url.empty()) {
    ASSIGN_OR_RETURN(a->url_, ParseHttpUrl(options.webhook_url));
  }
  if (options.syslog) openlog("mamori-egress", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
  a->thread_ = std::thread([p = a.get()] { p->Run(); });
  return a;
}

Alerter::~Alerter() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Alerter::Send(nlohmann::json alert) {
  std::string body = alert.dump();
  if (options_.syslog) {
    syslog(LOG_WARNING, "alert %s", body.c_str());
  }
  if (options_.webhook_url.empty()) return;
  std::lock_guard<std::mutex> l(mu_);
  if (queue_.size() >= options_.max_queue) {
    ++dropped_;
    return;
  }
  queue_.push_back(std::move(body));
  cv_.notify_one();
}

void Alerter::Flush(int timeout_ms) {
  std::unique_lock<std::mutex> l(mu_);
  idle_cv_.wait_for(l, std::chrono::milliseconds(timeout_ms),
                    [&] { return queue_.empty() && !busy_; });
}

uint64_t Alerter::sent() const {
  std::lock_guard<std::mutex> l(mu_);
  return sent_;
}
uint64_t Alerter::failed() const {
  std::lock_guard<std::mutex> l(mu_);
  return failed_;
}
uint64_t Alerter::dropped() const {
  std::lock_guard<std::mutex> l(mu_);
  return dropped_;
}

void Alerter::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty() && stop_) break;
    std::string body = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    l.unlock();
    Status st = Post(body);
    if (!st.ok() && options_.syslog) {
      syslog(LOG_ERR, "webhook delivery failed: %s", st.ToString().c_str());
    }
    l.lock();
    busy_ = false;
    (st.ok() ? sent_ : failed_)++;
    if (queue_.empty()) idle_cv_.notify_all();
  }
  idle_cv_.notify_all();
}

namespace {
// Waits for fd to become ready for `events` until the deadline.
bool WaitFd(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
  if (left <= 0) return false;
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, static_cast<int>(left)) == 1;
}
}  // namespace

Status Alerter::Post(const std::string& body) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.timeout_ms);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(url_.host.c_str(), url_.port.c_str(), &hints, &res);
  if (rc != 0) return Unavailable(std::string("webhook host lookup failed: ") + gai_strerror(rc));
  int fd = -1;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
        (errno == EINPROGRESS && WaitFd(fd, POLLOUT, deadline))) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == 0) break;
    }
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) return Unavailable("cannot connect to webhook " + options_.webhook_url);
  std::string req = "POST " + url_.path + " HTTP/1.1\r\nHost: " + url_.host + ":" + url_.port +
                    "\r\nContent-Type: application/json\r\nUser-Agent: mamori-egress\r\n"
                    "Connection: close\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  std::string_view out = req;
  while (!out.empty()) {
    ssize_t w = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    if (w > 0) {
      out.remove_prefix(static_cast<size_t>(w));
      continue;
    }
    if (w < 0 && (errno == EAGAIN || errno == EINTR) && WaitFd(fd, POLLOUT, deadline)) continue;
    ::close(fd);
    return Unavailable("webhook send failed or timed out");
  }
  char buf[512];
  std::string resp;
  while (resp.find("\r\n") == std::string::npos && resp.size() < 4096) {
    ssize_t r = ::recv(fd, buf, sizeof(buf), 0);
    if (r > 0) {
      resp.append(buf, static_cast<size_t>(r));
      continue;
    }
    if (r < 0 && (errno == EAGAIN || errno == EINTR) && WaitFd(fd, POLLIN, deadline)) continue;
    break;
  }
  ::close(fd);
  // "HTTP/1.1 2xx"
  if (resp.size() >= 12 && resp.compare(0, 5, "HTTP/") == 0) {
    size_t sp = resp.find(' ');
    if (sp != std::string::npos && sp + 1 < resp.size() && resp[sp + 1] == '2') return Status::Ok();
    return Unavailable("webhook answered " + resp.substr(0, resp.find("\r\n")).substr(0, 80));
  }
  return Unavailable("webhook gave no HTTP answer");
}

}  // namespace mamori::egress
