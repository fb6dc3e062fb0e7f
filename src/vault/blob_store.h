// Blob storage for encrypted content, behind an interface so an
// S3-compatible back end can replace the local directory.
//
// Blobs are immutable once committed. A writer streams into a temporary
// object that is invisible to readers; Commit() makes it durable and visible
// atomically (local: fsync, rename, fsync of the directory). A crash or kill -9
// before Commit leaves only a temporary file, which CleanupTemporary() removes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mamori::vault {

class BlobWriter {
 public:
  virtual ~BlobWriter() = default;  // aborts if not committed
  virtual Status Write(std::string_view data) = 0;
  // Makes the blob durable and visible under its id. No Write after Commit.
  virtual Status Commit() = 0;
  virtual uint64_t bytes_written() const = 0;
};

class BlobReader {
 public:
  virtual ~BlobReader() = default;
  // Reads up to n bytes; 0 at the end.
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
  virtual uint64_t size() const = 0;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // Starts a new blob. `id` is [0-9a-f]{16,64}; an existing id is refused.
  virtual Result<std::unique_ptr<BlobWriter>> Create(const std::string& id) = 0;
  virtual Result<std::unique_ptr<BlobReader>> Open(const std::string& id) = 0;
  virtual Status Delete(const std::string& id) = 0;
  virtual bool Exists(const std::string& id) = 0;
  // Committed blob ids (for garbage collection and consistency checks).
  virtual Result<std::vector<std::string>> List() = 0;
  // Removes temporaries left by crashed writers; returns how many.
  virtual Result<uint64_t> CleanupTemporary() = 0;
};

// Local directory: ROOT/objects/ab/<id> and ROOT/tmp/. ROOT is created 0700.
Result<std::unique_ptr<BlobStore>> OpenLocalBlobStore(const std::string& root);

// Whether `id` is a valid blob id.
bool ValidBlobId(std::string_view id);

}  // namespace mamori::vault
