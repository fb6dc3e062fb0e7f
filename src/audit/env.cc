#include "audit/env.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

namespace mamori::audit {
namespace {

Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  std::string msg = what + " " + path + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) msg += " (free disk space, then reopen the log)";
  if (err == EACCES || err == EPERM || err == EROFS)
    msg += " (make the file and its directory writable, then reopen the log)";
  if (err == EIO) msg += " (the disk reported an I/O error; check it before reopening)";
  return Unavailable(std::move(msg));
}

class PosixWritableFile : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Append(std::string_view data) override {
    if (fd_ < 0) return FailedPrecondition(path_ + " is closed");
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("cannot write", path_, errno);
      }
      if (n == 0) return ErrnoStatus("cannot write", path_, ENOSPC);
      data.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }
  Status Sync() override {
    if (fd_ < 0) return FailedPrecondition(path_ + " is closed");
    while (::fdatasync(fd_) != 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot fdatasync", path_, errno);
    }
    return Status::Ok();
  }
  Status Truncate(uint64_t size) override {
    if (fd_ < 0) return FailedPrecondition(path_ + " is closed");
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
      return ErrnoStatus("cannot truncate", path_, errno);
    return Sync();
  }
  Status Close() override {
    if (fd_ < 0) return Status::Ok();
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return ErrnoStatus("cannot close", path_, errno);
    return Status::Ok();
  }

 private:
  std::string path_;
  int fd_;
};

class PosixSequentialFile : public SequentialFile {
 public:
  PosixSequentialFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixSequentialFile() override { ::close(fd_); }
  Result<size_t> Read(char* buf, size_t n) override {
    while (true) {
      ssize_t r = ::read(fd_, buf, n);
      if (r < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("cannot read", path_, errno);
      }
      return static_cast<size_t>(r);
    }
  }

 private:
  std::string path_;
  int fd_;
};

class PosixEnv : public Env {
 public:
  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return NotFound(path + ": no such file");
      return ErrnoStatus("cannot open", path, errno);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return InvalidArgument(path + " is not a regular file");
    }
    return std::unique_ptr<SequentialFile>(new PosixSequentialFile(path, fd));
  }

  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path,
                                                          int mode) override {
    bool existed = FileExists(path);
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode);
    if (fd < 0) return ErrnoStatus("cannot open for appending", path, errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return InvalidArgument(path + " is not a regular file");
    }
    if (!existed) {
      // Make the new directory entry durable too.
      std::filesystem::path p(path);
      std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
      int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd < 0 || ::fsync(dfd) != 0) {
        Status st2 = ErrnoStatus("cannot fsync directory", dir, errno);
        if (dfd >= 0) ::close(dfd);
        ::close(fd);
        return st2;
      }
      ::close(dfd);
    }
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd));
  }

  bool FileExists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv env;
  return &env;
}

// ---------------------------------------------------------------- fault injection

class FaultyWritableFile : public WritableFile {
 public:
  FaultyWritableFile(FaultInjectionEnv* env, std::unique_ptr<WritableFile> base)
      : env_(env), base_(std::move(base)) {}
  Status Append(std::string_view data) override {
    size_t allowed = data.size();
    int err = 0;
    {
      std::lock_guard<std::mutex> l(env_->mu_);
      if (env_->write_limit_set_) {
        if (env_->write_budget_ < data.size()) {
          allowed = static_cast<size_t>(env_->write_budget_);
          err = env_->write_errno_;
        }
        env_->write_budget_ -= allowed;
      }
    }
    if (allowed > 0) RETURN_IF_ERROR(base_->Append(data.substr(0, allowed)));
    if (err != 0) return ErrnoStatus("cannot write", "(injected)", err);
    return Status::Ok();
  }
  Status Sync() override {
    int err;
    {
      std::lock_guard<std::mutex> l(env_->mu_);
      err = env_->sync_errno_;
    }
    env_->syncs_++;
    if (err != 0) return ErrnoStatus("cannot fdatasync", "(injected)", err);
    return base_->Sync();
  }
  Status Truncate(uint64_t size) override {
    {
      std::lock_guard<std::mutex> l(env_->mu_);
      if (env_->write_limit_set_ && env_->write_budget_ == 0)
        return ErrnoStatus("cannot truncate", "(injected)", env_->write_errno_);
    }
    return base_->Truncate(size);
  }
  Status Close() override { return base_->Close(); }

 private:
  FaultInjectionEnv* env_;
  std::unique_ptr<WritableFile> base_;
};

void FaultInjectionEnv::FailWritesAfter(uint64_t bytes_ok, int err) {
  std::lock_guard<std::mutex> l(mu_);
  write_limit_set_ = true;
  write_budget_ = bytes_ok;
  write_errno_ = err;
}

void FaultInjectionEnv::FailSyncs(int err) {
  std::lock_guard<std::mutex> l(mu_);
  sync_errno_ = err;
}

void FaultInjectionEnv::Heal() {
  std::lock_guard<std::mutex> l(mu_);
  write_limit_set_ = false;
  sync_errno_ = 0;
}

Result<std::unique_ptr<SequentialFile>> FaultInjectionEnv::NewSequentialFile(
    const std::string& path) {
  return base_->NewSequentialFile(path);
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewAppendableFile(const std::string& path,
                                                                           int mode) {
  ASSIGN_OR_RETURN(auto base, base_->NewAppendableFile(path, mode));
  return std::unique_ptr<WritableFile>(new FaultyWritableFile(this, std::move(base)));
}

bool FaultInjectionEnv::FileExists(const std::string& path) { return base_->FileExists(path); }

class GatedWritableFile : public WritableFile {
 public:
  GatedWritableFile(std::unique_ptr<WritableFile> f, GatedSyncEnv* env)
      : f_(std::move(f)), env_(env) {}
  Status Append(std::string_view data) override { return f_->Append(data); }
  Status Sync() override {
    {
      std::unique_lock<std::mutex> l(env_->mu_);
      ++env_->started_;
      env_->cv_.notify_all();
      env_->cv_.wait(l, [&] { return env_->open_; });
    }
    return f_->Sync();
  }
  Status Truncate(uint64_t size) override { return f_->Truncate(size); }
  Status Close() override { return f_->Close(); }

 private:
  std::unique_ptr<WritableFile> f_;
  GatedSyncEnv* env_;
};

void GatedSyncEnv::Release() {
  std::lock_guard<std::mutex> l(mu_);
  open_ = true;
  cv_.notify_all();
}

bool GatedSyncEnv::WaitSyncsStarted(uint64_t n) {
  std::unique_lock<std::mutex> l(mu_);
  return cv_.wait_for(l, std::chrono::seconds(30), [&] { return started_ >= n; });
}

uint64_t GatedSyncEnv::started() {
  std::lock_guard<std::mutex> l(mu_);
  return started_;
}

Result<std::unique_ptr<SequentialFile>> GatedSyncEnv::NewSequentialFile(const std::string& path) {
  return base_->NewSequentialFile(path);
}

Result<std::unique_ptr<WritableFile>> GatedSyncEnv::NewAppendableFile(const std::string& path,
                                                                      int mode) {
  ASSIGN_OR_RETURN(auto f, base_->NewAppendableFile(path, mode));
  return std::unique_ptr<WritableFile>(std::make_unique<GatedWritableFile>(std::move(f), this));
}

bool GatedSyncEnv::FileExists(const std::string& path) { return base_->FileExists(path); }

}  // namespace mamori::audit
