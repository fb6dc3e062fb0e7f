#include "egress/spool.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mamori::egress {

Spool::~Spool() { Clear(); }

void Spool::Unmap() {
  if (map_) ::munmap(map_, map_len_);
  map_ = nullptr;
  map_len_ = 0;
}

void Spool::Clear() {
  Unmap();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  mem_.clear();
  if (mem_.capacity() > (1u << 20)) std::string().swap(mem_);
  if (budget_ && reserved_ > 0) budget_->Release(reserved_);
  reserved_ = 0;
  size_ = 0;
}

Status Spool::MoveToFile() {
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
  if (budget_ && reserved_ > 0) budget_->Release(reserved_);
  reserved_ = 0;
  return Status::Ok();
}

Status Spool::Append(std::string_view data) {
  Unmap();
  if (size_ + data.size() > max_bytes_) {
    return ResourceExhausted("body is larger than the spool budget of " +
                             std::to_string(max_bytes_) + " bytes (settings.spool_max_bytes)");
  }
  if (fd_ < 0 && size_ + data.size() <= memory_limit_) {
    if (!budget_ || budget_->TryReserve(data.size())) {
      reserved_ += budget_ ? data.size() : 0;
      mem_.append(data);
      size_ += data.size();
      return Status::Ok();
    }
    if (!disk_over_budget_) {
      return ResourceExhausted(
          "the memory budget for bodies held at once (settings.memory_budget, " +
          std::to_string(budget_->limit()) +
          " bytes) is used by other uploads, and this destination's category says "
          "over_memory_budget: block");
    }
  }
  if (fd_ < 0) RETURN_IF_ERROR(MoveToFile());
  while (!data.empty()) {
    ssize_t w = ::write(fd_, data.data(), data.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Unavailable(std::string("spool write failed: ") + std::strerror(errno));
    data.remove_prefix(static_cast<size_t>(w));
    size_ += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

Result<std::string_view> Spool::View() {
  if (fd_ < 0) return std::string_view(mem_);
  if (size_ == 0) return std::string_view();
  if (!map_) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (p == MAP_FAILED)
      return Unavailable(std::string("spool mmap failed: ") + std::strerror(errno));
    map_ = p;
    map_len_ = size_;
  }
  return std::string_view(static_cast<const char*>(map_), map_len_);
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
