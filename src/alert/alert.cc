#include "alert/alert.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace mamori::alert {

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
  if (!options.smtp.relay.empty()) RETURN_IF_ERROR(ValidateSmtpOptions(options.smtp));
  // openlog keeps the pointer: the ident lives as long as the Alerter.
  if (options.syslog) openlog(a->options_.syslog_ident.c_str(), LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
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
  if (options_.syslog) {
    std::string line = alert.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    syslog(LOG_WARNING, "alert %s", line.c_str());
  }
  if (options_.webhook_url.empty() && options_.smtp.relay.empty()) return;
  std::lock_guard<std::mutex> l(mu_);
  if (queue_.size() >= options_.max_queue) {
    ++dropped_;
    return;
  }
  queue_.push_back(std::move(alert));
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
    nlohmann::json alert = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    l.unlock();
    std::string body = alert.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    uint64_t ok = 0, bad = 0;
    if (!options_.webhook_url.empty()) {
      Status st = Post(body);
      (st.ok() ? ok : bad)++;
      if (!st.ok() && options_.syslog)
        syslog(LOG_ERR, "webhook delivery failed: %s", st.ToString().c_str());
    }
    if (!options_.smtp.relay.empty()) {
      std::string kind = alert.is_object() && alert.contains("kind") && alert["kind"].is_string()
                             ? alert["kind"].get<std::string>()
                             : "alert";
      std::string subject = "[mamori] " + kind;
      for (char& ch : subject)
        if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) > 0x7e)
          ch = '?';
      Status st =
          SendMail(options_.smtp, subject,
                   alert.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                   options_.timeout_ms);
      (st.ok() ? ok : bad)++;
      if (!st.ok() && options_.syslog)
        syslog(LOG_ERR, "alert mail delivery failed: %s", st.ToString().c_str());
    }
    l.lock();
    busy_ = false;
    sent_ += ok;
    failed_ += bad;
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

// Connects (non-blocking) to host:port before the deadline; -1 on failure.
int ConnectTcp(const std::string& host, const std::string& port,
               std::chrono::steady_clock::time_point deadline, std::string* error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    *error = std::string("host lookup failed: ") + gai_strerror(rc);
    return -1;
  }
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
  if (fd < 0) *error = "cannot connect to " + host + ":" + port;
  return fd;
}

// Sends all of `data` before the deadline.
bool SendAll(int fd, std::string_view out, std::chrono::steady_clock::time_point deadline) {
  while (!out.empty()) {
    ssize_t w = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    if (w > 0) {
      out.remove_prefix(static_cast<size_t>(w));
      continue;
    }
    if (w < 0 && (errno == EAGAIN || errno == EINTR) && WaitFd(fd, POLLOUT, deadline)) continue;
    return false;
  }
  return true;
}

}  // namespace

Status Alerter::Post(const std::string& body) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.timeout_ms);
  std::string error;
  int fd = ConnectTcp(url_.host, url_.port, deadline, &error);
  if (fd < 0) return Unavailable("webhook " + options_.webhook_url + ": " + error);
  std::string req = "POST " + url_.path + " HTTP/1.1\r\nHost: " + url_.host + ":" + url_.port +
                    "\r\nContent-Type: application/json\r\nUser-Agent: mamori\r\n"
                    "Connection: close\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  if (!SendAll(fd, req, deadline)) {
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

namespace {

// One SMTP conversation over a connected socket, with a shared deadline.
class SmtpConversation {
 public:
  SmtpConversation(int fd, std::chrono::steady_clock::time_point deadline)
      : fd_(fd), deadline_(deadline) {}
  ~SmtpConversation() { ::close(fd_); }

  // Reads one (possibly multi-line) reply; returns its code, 0 on failure.
  int Reply(std::string* text) {
    text->clear();
    while (true) {
      std::string line;
      if (!ReadLine(&line)) return 0;
      if (line.size() < 3) return 0;
      if (text->size() < 512) *text += line.substr(0, 200) + " ";
      if (line.size() == 3 || line[3] == ' ') {
        int code = std::atoi(line.substr(0, 3).c_str());
        return code >= 100 && code < 600 ? code : 0;
      }
      if (line[3] != '-') return 0;
    }
  }

  // Sends `line` (CRLF added) and expects a reply of class `want` (2 or 3).
  Status Step(const std::string& step, const std::string& line, int want) {
    if (!line.empty() && !SendAll(fd_, line + "\r\n", deadline_))
      return Unavailable("SMTP " + step + ": send failed or timed out");
    std::string text;
    int code = Reply(&text);
    if (code == 0) return Unavailable("SMTP " + step + ": no valid reply from the relay");
    if (code / 100 != want) return Unavailable("SMTP " + step + " refused: " + text.substr(0, 200));
    return Status::Ok();
  }

  Status SendRaw(const std::string& data) {
    if (!SendAll(fd_, data, deadline_)) return Unavailable("SMTP DATA: send failed or timed out");
    return Status::Ok();
  }

 private:
  bool ReadLine(std::string* line) {
    while (true) {
      size_t nl = buf_.find("\r\n");
      if (nl != std::string::npos) {
        *line = buf_.substr(0, nl);
        buf_.erase(0, nl + 2);
        return true;
      }
      if (buf_.size() > 4096) return false;  // a reply line longer than any real one
      char tmp[512];
      ssize_t r = ::recv(fd_, tmp, sizeof tmp, 0);
      if (r > 0) {
        buf_.append(tmp, static_cast<size_t>(r));
        continue;
      }
      if (r < 0 && (errno == EAGAIN || errno == EINTR) && WaitFd(fd_, POLLIN, deadline_)) continue;
      return false;
    }
  }
  int fd_;
  std::chrono::steady_clock::time_point deadline_;
  std::string buf_;
};

Status ValidateAddress(const std::string& a, const char* what) {
  if (a.empty() || a.size() > 254 || a.find('@') == std::string::npos ||
      a.find('@') != a.rfind('@') || a.find_first_of("<>\r\n \t,") != std::string::npos)
    return InvalidArgument(std::string(what) + " '" + a.substr(0, 80) +
                           "' is not a plain mail address (user@domain)");
  return Status::Ok();
}

Status SplitRelay(const std::string& relay, std::string* host, std::string* port) {
  if (!relay.empty() && relay.front() == '[') {
    size_t close = relay.find(']');
    if (close == std::string::npos) return InvalidArgument("SMTP relay: unclosed '['");
    *host = relay.substr(1, close - 1);
    *port = close + 2 <= relay.size() ? relay.substr(close + 2) : "";
  } else {
    size_t colon = relay.rfind(':');
    *host = relay.substr(0, colon);
    *port = colon == std::string::npos ? "" : relay.substr(colon + 1);
  }
  if (port->empty()) *port = "25";
  if (host->empty() || port->find_first_not_of("0123456789") != std::string::npos)
    return InvalidArgument("SMTP relay must be host[:port], e.g. 127.0.0.1:25; got '" +
                           relay.substr(0, 80) + "'");
  return Status::Ok();
}

}  // namespace

Status ValidateSmtpOptions(const SmtpOptions& o) {
  std::string host, port;
  RETURN_IF_ERROR(SplitRelay(o.relay, &host, &port));
  RETURN_IF_ERROR(ValidateAddress(o.from, "the alert sender (--alert-mail-from)"));
  if (o.to.empty()) return InvalidArgument("alert mail needs at least one recipient");
  for (const auto& t : o.to) RETURN_IF_ERROR(ValidateAddress(t, "the alert recipient"));
  if (o.helo.empty() || o.helo.find_first_of(" \r\n") != std::string::npos)
    return InvalidArgument("the EHLO name must be one word");
  return Status::Ok();
}

Status SendMail(const SmtpOptions& o, const std::string& subject, const std::string& body,
                int timeout_ms) {
  RETURN_IF_ERROR(ValidateSmtpOptions(o));
  for (char ch : subject)
    if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) > 0x7e)
      return InvalidArgument("the mail subject must be printable ASCII");
  std::string host, port;
  RETURN_IF_ERROR(SplitRelay(o.relay, &host, &port));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string error;
  int fd = ConnectTcp(host, port, deadline, &error);
  if (fd < 0) return Unavailable("SMTP relay " + o.relay + ": " + error);
  SmtpConversation smtp(fd, deadline);
  RETURN_IF_ERROR(smtp.Step("greeting", "", 2));
  if (!smtp.Step("EHLO", "EHLO " + o.helo, 2).ok())
    RETURN_IF_ERROR(smtp.Step("HELO", "HELO " + o.helo, 2));
  RETURN_IF_ERROR(smtp.Step("MAIL FROM", "MAIL FROM:<" + o.from + ">", 2));
  for (const auto& to : o.to) RETURN_IF_ERROR(smtp.Step("RCPT TO", "RCPT TO:<" + to + ">", 2));
  RETURN_IF_ERROR(smtp.Step("DATA", "DATA", 3));

  char date[64];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  std::string to_list;
  for (const auto& t : o.to) to_list += (to_list.empty() ? "" : ", ") + t;
  std::string msg = "From: " + o.from + "\r\nTo: " + to_list + "\r\nSubject: " + subject +
                    "\r\nDate: " + date +
                    "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                    "Content-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n\r\n";
  // CRLF line ends and dot-stuffing (RFC 5321 4.5.2): a line that starts
  // with '.' gets a second one, so the body can never end the DATA early.
  bool line_start = true;
  for (size_t i = 0; i < body.size(); ++i) {
    char ch = body[i];
    if (line_start && ch == '.') msg += '.';
    line_start = false;
    if (ch == '\r') continue;
    if (ch == '\n') {
      msg += "\r\n";
      line_start = true;
      continue;
    }
    msg += ch;
  }
  if (!line_start) msg += "\r\n";
  msg += ".\r\n";
  RETURN_IF_ERROR(smtp.SendRaw(msg));
  RETURN_IF_ERROR(smtp.Step("end of DATA", "", 2));
  (void)smtp.Step("QUIT", "QUIT", 2);  // the message is accepted; QUIT is courtesy
  return Status::Ok();
}

}  // namespace mamori::alert
