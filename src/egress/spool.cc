#include "egress/spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mamori::egress {

Spool::~Spool() { Clear(); }

void Spool::Clear() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  mem_.clear();
  if (mem_.capacity() > (1u << 20)) std::string().swap(mem_);
  size_ = 0;
}

Status Spool::Append(std::string_view data) {
  if (size_ + data.size() > max_bytes_) {
    return ResourceExhausted("body is larger than the spool budget of " +
                             std::to_string(max_bytes_) + " bytes (settings.spool_max_bytes)");
  }
  if (fd_ < 0 && size_ + data.size() <= memory_limit_) {
    mem_.append(data);
    size_ += data.size();
    return Status::Ok();
  }
  if (fd_ < 0) {
    fd_ = ::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      std::string tmpl = dir_ + "/mamori-spool-XXXXXX";
      fd_ = ::mkostemp(tmpl.data(), O_CLOEXEC);
      if (fd_ >= 0) ::unlink(tmpl.c_str());
    }
    if (fd_ < 0) {
      return Unavailable("cannot create a spool file in " + dir_ + ": " + std::strerror(errno));
    }
    // Move what is in memory to the file first.
    std::string_view m = mem_;
    while (!m.empty()) {
      ssize_t w = ::write(fd_, m.data(), m.size());
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return Unavailable(std::string("spool write failed: ") + std::strerror(errno));
      m.remove_prefix(static_cast<size_t>(w));
    }
    std::string().swap(mem_);
  }
  while (!data.empty()) {
    ssize_t w = ::write(fd_, data.data(), data.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Unavailable(std::string("spool write failed: ") + std::strerror(errno));
    data.remove_prefix(static_cast<size_t>(w));
    size_ += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

Result<size_t> Spool::Read(uint64_t offset, char* buf, size_t n) const {
  if (offset >= size_) return size_t{0};
  n = static_cast<size_t>(std::min<uint64_t>(n, size_ - offset));
  if (fd_ < 0) {
    std::memcpy(buf, mem_.data() + offset, n);
    return n;
  }
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd_, buf + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Unavailable(std::string("spool read failed: ") + std::strerror(errno));
    done += static_cast<size_t>(r);
  }
  return done;
}

}  // namespace mamori::egress
