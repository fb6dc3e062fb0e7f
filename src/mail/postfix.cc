#include "mail/postfix.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace mamori::mail {

Result<std::vector<QueueEntry>> ParsePostqueueJson(const std::string& text) {
  std::vector<QueueEntry> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    start = nl == std::string::npos ? text.size() : nl + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      auto j = nlohmann::json::parse(line);
      QueueEntry e;
      e.queue_name = j.value("queue_name", "");
      e.queue_id = j.value("queue_id", "");
      e.arrival_time = j.value("arrival_time", int64_t{0});
      e.message_size = j.value("message_size", uint64_t{0});
      e.sender = j.value("sender", "");
      if (j.contains("recipients") && j["recipients"].is_array()) {
        for (const auto& r : j["recipients"]) {
          if (r.is_object()) e.recipients.push_back(r.value("address", ""));
        }
      }
      out.push_back(std::move(e));
    } catch (const std::exception& ex) {
      return InvalidArgument(std::string("unexpected postqueue -j output: ") + ex.what());
    }
  }
  return out;
}

bool ValidQueueId(const std::string& id) {
  if (id.size() < 5 || id.size() > 40) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

Result<std::string> RunProgram(const std::vector<std::string>& argv, size_t max_output,
                               std::string_view input) {
  if (input.size() > 60000) {
    return InvalidArgument("input for " + argv[0] + " exceeds 60000 bytes");
  }
  int in_pipe[2] = {-1, -1};
  if (!input.empty() && pipe2(in_pipe, O_CLOEXEC) != 0) {
    return Internal(std::string("pipe: ") + strerror(errno));
  }
  auto close_in = [&] {
    for (int& fd : in_pipe) {
      if (fd >= 0) close(fd);
      fd = -1;
    }
  };
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    close_in();
    return Internal(std::string("pipe: ") + strerror(errno));
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close_in();
    close(out_pipe[0]);
    close(out_pipe[1]);
    return Internal(std::string("pipe: ") + strerror(errno));
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    close_in();
    return Internal(std::string("fork: ") + strerror(errno));
  }
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    if (in_pipe[0] >= 0) {
      dup2(in_pipe[0], 0);
    } else {
      int devnull = open("/dev/null", O_RDONLY);
      if (devnull >= 0) dup2(devnull, 0);
    }
    execv(args[0], args.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (in_pipe[1] >= 0) {
    close(in_pipe[0]);
    in_pipe[0] = -1;
    // Fits in the pipe buffer (64 KiB on Linux), so this cannot block on a
    // child that writes before it reads.
    size_t off = 0;
    while (off < input.size()) {
      ssize_t n = write(in_pipe[1], input.data() + off, input.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        break;  // the child exited early; its status tells why
      }
      off += static_cast<size_t>(n);
    }
    close_in();
  }
  std::string out, err;
  bool too_big = false;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      std::string& dst = i == 0 ? out : err;
      if (dst.size() + static_cast<size_t>(n) > max_output) {
        too_big = true;
      } else {
        dst.append(buf, static_cast<size_t>(n));
      }
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (too_big) {
    return ResourceExhausted(argv[0] + " printed more than " + std::to_string(max_output) +
                             " bytes");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == 127) return Unavailable(argv[0] + " could not be run (is Postfix installed?)");
    while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.pop_back();
    return Unavailable(argv[0] + " failed (exit " + std::to_string(code) + "): " + err);
  }
  return out;
}

Result<std::string> PostfixTools::Run(std::vector<std::string> args) const {
  if (!config_dir_.empty()) {
    args.insert(args.begin() + 1, config_dir_);
    args.insert(args.begin() + 1, "-c");
  }
  return RunProgram(args);
}

Result<std::vector<QueueEntry>> PostfixTools::ListQueue() const {
  ASSIGN_OR_RETURN(std::string out, Run({sbin_ + "/postqueue", "-j"}));
  return ParsePostqueueJson(out);
}

Status PostfixTools::Release(const std::string& id) const {
  if (!ValidQueueId(id)) return InvalidArgument("'" + id + "' is not a Postfix queue id");
  ASSIGN_OR_RETURN(std::string out, Run({sbin_ + "/postsuper", "-H", id}));
  // Schedule immediate delivery; failure here only delays it to the next queue run.
  auto flushed = Run({sbin_ + "/postqueue", "-i", id});
  (void)flushed;
  return Status::Ok();
}

Status PostfixTools::DeleteHeld(const std::string& id) const {
  if (!ValidQueueId(id)) return InvalidArgument("'" + id + "' is not a Postfix queue id");
  ASSIGN_OR_RETURN(std::string out, Run({sbin_ + "/postsuper", "-d", id, "hold"}));
  return Status::Ok();
}

}  // namespace mamori::mail
