#include "vault/blob_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "crypto/crypto.h"

namespace mamori::vault {
namespace {

namespace fs = std::filesystem;

Status Errno(const std::string& what) { return Unavailable(what + ": " + std::strerror(errno)); }

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open directory " + dir);
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) {
    errno = e;
    return Errno("fsync directory " + dir);
  }
  return Status::Ok();
}

Status MkdirP(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Unavailable("cannot create " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  return Status::Ok();
}

class LocalWriter : public BlobWriter {
 public:
  LocalWriter(int fd, std::string tmp, std::string final_dir, std::string final_path)
      : fd_(fd), tmp_(std::move(tmp)), dir_(std::move(final_dir)), path_(std::move(final_path)) {}
  ~LocalWriter() override {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  Status Write(std::string_view data) override {
    if (fd_ < 0) return FailedPrecondition("blob writer is closed");
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno("write " + tmp_);
      }
      data.remove_prefix(static_cast<size_t>(n));
      bytes_ += static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }
  Status Commit() override {
    if (fd_ < 0) return FailedPrecondition("blob writer is closed");
    if (::fsync(fd_) != 0) return Errno("fsync " + tmp_);
    ::close(fd_);
    fd_ = -1;
    RETURN_IF_ERROR(MkdirP(dir_));
    // link() refuses to replace an existing blob, unlike rename().
    if (::link(tmp_.c_str(), path_.c_str()) != 0) {
      if (errno == EEXIST) return AlreadyExists("blob " + path_ + " already exists");
      return Errno("link " + tmp_ + " -> " + path_);
    }
    ::unlink(tmp_.c_str());
    committed_ = true;
    return FsyncDir(dir_);
  }
  uint64_t bytes_written() const override { return bytes_; }

 private:
  int fd_;
  std::string tmp_, dir_, path_;
  uint64_t bytes_ = 0;
  bool committed_ = false;
};

class LocalReader : public BlobReader {
 public:
  LocalReader(int fd, uint64_t size) : fd_(fd), size_(size) {}
  ~LocalReader() override { ::close(fd_); }
  Result<size_t> Read(char* buf, size_t n) override {
    while (true) {
      ssize_t r = ::read(fd_, buf, n);
      if (r < 0) {
        if (errno == EINTR) continue;
        return Errno("read blob");
      }
      return static_cast<size_t>(r);
    }
  }
  uint64_t size() const override { return size_; }

 private:
  int fd_;
  uint64_t size_;
};

class LocalBlobStore : public BlobStore {
 public:
  explicit LocalBlobStore(std::string root) : root_(std::move(root)) {}
  Status Init() {
    RETURN_IF_ERROR(MkdirP(root_));
    RETURN_IF_ERROR(MkdirP(root_ + "/objects"));
    return MkdirP(root_ + "/tmp");
  }
  std::string DirOf(const std::string& id) const { return root_ + "/objects/" + id.substr(0, 2); }
  std::string PathOf(const std::string& id) const { return DirOf(id) + "/" + id; }

  Result<std::unique_ptr<BlobWriter>> Create(const std::string& id) override {
    if (!ValidBlobId(id)) return InvalidArgument("invalid blob id");
    if (Exists(id)) return AlreadyExists("blob " + id + " already exists");
    std::string tmp = root_ + "/tmp/" + id + "." + crypto::ToHex(crypto::RandomBytes(6));
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Errno("create " + tmp);
    return std::unique_ptr<BlobWriter>(new LocalWriter(fd, tmp, DirOf(id), PathOf(id)));
  }
  Result<std::unique_ptr<BlobReader>> Open(const std::string& id) override {
    if (!ValidBlobId(id)) return InvalidArgument("invalid blob id");
    std::string p = PathOf(id);
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return NotFound("blob " + id + " is missing from the store");
      return Errno("open " + p);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return Errno("stat " + p);
    }
    return std::unique_ptr<BlobReader>(new LocalReader(fd, static_cast<uint64_t>(st.st_size)));
  }
  Status Delete(const std::string& id) override {
    if (!ValidBlobId(id)) return InvalidArgument("invalid blob id");
    if (::unlink(PathOf(id).c_str()) != 0 && errno != ENOENT) return Errno("delete blob " + id);
    return FsyncDir(DirOf(id));
  }
  bool Exists(const std::string& id) override {
    if (!ValidBlobId(id)) return false;
    struct stat st {};
    return ::stat(PathOf(id).c_str(), &st) == 0;
  }
  Result<std::vector<std::string>> List() override {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root_ + "/objects", ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file()) out.push_back(it->path().filename().string());
    }
    if (ec) return Unavailable("listing blobs: " + ec.message());
    return out;
  }
  Result<uint64_t> CleanupTemporary() override {
    uint64_t n = 0;
    std::error_code ec;
    for (auto it = fs::directory_iterator(root_ + "/tmp", ec);
         !ec && it != fs::directory_iterator(); it.increment(ec)) {
      if (fs::remove(it->path(), ec)) ++n;
    }
    if (ec) return Unavailable("cleaning blob temporaries: " + ec.message());
    return n;
  }

 private:
  std::string root_;
};

}  // namespace

bool ValidBlobId(std::string_view id) {
  if (id.size() < 16 || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Result<std::unique_ptr<BlobStore>> OpenLocalBlobStore(const std::string& root) {
  auto s = std::make_unique<LocalBlobStore>(root);
  RETURN_IF_ERROR(s->Init());
  return std::unique_ptr<BlobStore>(std::move(s));
}

}  // namespace mamori::vault
