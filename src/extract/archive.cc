// Archives through libarchive: zip (seekable, with central-directory sizes for
// per-member ratio checks), tar, 7z, cpio, and single gz/bz2/xz/zstd files.
#include <archive.h>
#include <archive_entry.h>
#include <locale.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>

#include "extract/internal.h"

namespace mamori::extract::internal {
namespace {

constexpr uint64_t kRatioFloor = 1 << 20;  // ratios are checked above 1 MiB
constexpr size_t kChunk = 64 * 1024;

uint16_t Le16(std::string_view d, size_t off) {
  return static_cast<uint16_t>(static_cast<unsigned char>(d[off]) |
                               (static_cast<unsigned char>(d[off + 1]) << 8));
}
uint32_t Le32(std::string_view d, size_t off) {
  return static_cast<uint32_t>(Le16(d, off)) | (static_cast<uint32_t>(Le16(d, off + 2)) << 16);
}
uint64_t Le64(std::string_view d, size_t off) {
  return static_cast<uint64_t>(Le32(d, off)) | (static_cast<uint64_t>(Le32(d, off + 4)) << 32);
}

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};

std::string Human(uint64_t n) {
  if (n >= (1ull << 30)) return std::to_string(n >> 30) + " GiB";
  if (n >= (1ull << 20)) return std::to_string(n >> 20) + " MiB";
  if (n >= (1ull << 10)) return std::to_string(n >> 10) + " KiB";
  return std::to_string(n) + " bytes";
}

std::string ErrorString(archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown error";
}

std::string StripCompressionExt(std::string_view name) {
  size_t slash = name.find_last_of("/!");
  if (slash != std::string_view::npos) name = name.substr(slash + 1);
  for (std::string_view ext : {".gz", ".bz2", ".xz", ".zst", ".lz4", ".lzma", ".Z", ".GZ"}) {
    if (name.size() > ext.size() && name.substr(name.size() - ext.size()) == ext)
      return std::string(name.substr(0, name.size() - ext.size()));
  }
  return std::string(name) + ".data";
}

// libarchive converts UTF-8-flagged zip names to the thread's locale charset;
// under the "C" locale that fails and the name is lost. A UTF-8 locale for
// this thread only, for the duration of a walk, keeps them. (Names without the
// flag are passed through as raw bytes and decoded by CleanName.)
class Utf8LocaleScope {
 public:
  Utf8LocaleScope() {
    static locale_t utf8 = [] {
      locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
      if (l == static_cast<locale_t>(0))
        l = newlocale(LC_CTYPE_MASK, "C.utf8", static_cast<locale_t>(0));
      return l;
    }();
    if (utf8 != static_cast<locale_t>(0)) previous_ = uselocale(utf8);
  }
  ~Utf8LocaleScope() {
    if (previous_ != static_cast<locale_t>(0)) uselocale(previous_);
  }
  Utf8LocaleScope(const Utf8LocaleScope&) = delete;
  Utf8LocaleScope& operator=(const Utf8LocaleScope&) = delete;

 private:
  locale_t previous_ = static_cast<locale_t>(0);
};

}  // namespace

std::vector<ZipEntryInfo> ReadZipDirectory(std::string_view d) {
  std::vector<ZipEntryInfo> out;
  if (d.size() < 22) return out;
  // End of central directory: the last signature within 64 KiB + 22 of the end.
  size_t lo = d.size() > 65557 ? d.size() - 65557 : 0;
  size_t eocd = std::string_view::npos;
  for (size_t i = d.size() - 22 + 1; i-- > lo;) {
    if (Le32(d, i) == 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd == std::string_view::npos) return out;
  uint64_t entries = Le16(d, eocd + 10);
  uint64_t cd_size = Le32(d, eocd + 12);
  uint64_t cd_off = Le32(d, eocd + 16);
  if ((entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_off == 0xFFFFFFFF) && eocd >= 20 &&
      Le32(d, eocd - 20) == 0x07064b50) {
    uint64_t e64 = Le64(d, eocd - 20 + 8);
    if (e64 + 56 <= d.size() && Le32(d, e64) == 0x06064b50) {
      entries = Le64(d, e64 + 32);
      cd_size = Le64(d, e64 + 40);
      cd_off = Le64(d, e64 + 48);
    }
  }
  if (cd_off > d.size() || cd_size > d.size() - cd_off) {
    // Data prepended (self-extractor): the directory ends where the EOCD starts.
    if (cd_size > eocd) return out;
    cd_off = eocd - cd_size;
  }
  size_t p = cd_off;
  size_t end = cd_off + cd_size;
  for (uint64_t k = 0; k < entries && p + 46 <= end; ++k) {
    if (Le32(d, p) != 0x02014b50) break;
    ZipEntryInfo e;
    uint16_t flags = Le16(d, p + 8);
    e.encrypted = flags & 1;
    e.compressed = Le32(d, p + 20);
    e.uncompressed = Le32(d, p + 24);
    size_t name_len = Le16(d, p + 28), extra_len = Le16(d, p + 30), comment_len = Le16(d, p + 32);
    if (p + 46 + name_len + extra_len + comment_len > end) break;
    e.name.assign(d.substr(p + 46, name_len));
    e.is_dir = !e.name.empty() && e.name.back() == '/';
    // Zip64 extra field: the 64-bit sizes, in order, for the fields set to all ones.
    size_t x = p + 46 + name_len;
    size_t xend = x + extra_len;
    while (x + 4 <= xend) {
      uint16_t id = Le16(d, x), len = Le16(d, x + 2);
      if (x + 4 + len > xend) break;
      if (id == 0x0001) {
        size_t f = x + 4;
        if (e.uncompressed == 0xFFFFFFFF && f + 8 <= x + 4 + len) {
          e.uncompressed = Le64(d, f);
          f += 8;
        }
        if (e.compressed == 0xFFFFFFFF && f + 8 <= x + 4 + len) e.compressed = Le64(d, f);
      }
      x += 4 + len;
    }
    out.push_back(std::move(e));
    p += 46 + name_len + extra_len + comment_len;
  }
  return out;
}

Status ForEachMember(Walk& walk, const std::string& path, std::string_view data, uint32_t depth,
                     ArchiveKind kind, const std::function<bool(const std::string&)>& want,
                     const MemberFn& fn) {
  const Budgets& b = walk.budgets();
  Utf8LocaleScope utf8_names;
  std::vector<ZipEntryInfo> dir;
  std::map<std::string, const ZipEntryInfo*> by_name;
  if (kind == ArchiveKind::kZip) {
    dir = ReadZipDirectory(data);
    for (const auto& e : dir) by_name.emplace(e.name, &e);
  }
  std::unique_ptr<archive, ArchiveCloser> a(archive_read_new());
  if (!a) return walk.EmitError(path, "archive", Internal("libarchive: out of memory"));
  if (kind == ArchiveKind::kZip) {
    archive_read_support_format_zip_seekable(a.get());
  } else {
    archive_read_support_filter_all(a.get());
    archive_read_support_format_all(a.get());
    archive_read_support_format_raw(a.get());
  }
  if (archive_read_open_memory(a.get(), data.data(), data.size()) != ARCHIVE_OK) {
    return walk.EmitError(
        path, "archive",
        DataLoss(std::string("not a readable archive: ") + (ErrorString(a.get()))));
  }
  uint64_t container_expanded = 0;
  uint64_t index = 0;
  std::string buf;
  while (true) {
    RETURN_IF_ERROR(walk.CheckTime(path));
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(a.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      std::string msg = ErrorString(a.get());
      if (msg.find("ncrypt") != std::string::npos || msg.find("assword") != std::string::npos) {
        return walk.EmitError(path, "encrypted",
                              FailedPrecondition("encrypted archive, cannot inspect (" + msg +
                                                 "); decrypt it or scan the source files"));
      }
      return walk.EmitError(path, "archive",
                            DataLoss("archive is damaged after " + std::to_string(index) +
                                     " member(s), the rest was not inspected: " + msg));
    }
    ++index;
    const char* raw = archive_entry_pathname(entry);
    if (raw == nullptr) raw = archive_entry_pathname_utf8(entry);
    std::string raw_name = raw ? raw : "";
    std::string name = CleanName(raw_name);
    while (name.rfind("./", 0) == 0) name.erase(0, 2);
    while (!name.empty() && name[0] == '/') name.erase(0, 1);
    if (archive_format(a.get()) == ARCHIVE_FORMAT_RAW) name = StripCompressionExt(path);
    if (name.empty()) name = "member" + std::to_string(index);
    std::string member_path = path + "!" + name;
    auto type = archive_entry_filetype(entry);
    if (type == AE_IFDIR || (kind == ArchiveKind::kZip && !name.empty() && name.back() == '/'))
      continue;
    if (type != AE_IFREG && type != 0) continue;  // links, devices: no content of their own
    RETURN_IF_ERROR(walk.AddMember(member_path));
    if (!want(name)) continue;

    const ZipEntryInfo* info = nullptr;
    if (auto it = by_name.find(raw_name); it != by_name.end()) info = it->second;
    bool encrypted = archive_entry_is_data_encrypted(entry) > 0 ||
                     archive_entry_is_encrypted(entry) > 0 || (info && info->encrypted);
    if (encrypted) {
      RETURN_IF_ERROR(walk.EmitError(
          member_path, "encrypted",
          FailedPrecondition("encrypted member, cannot inspect; decrypt the archive or scan the "
                             "source files")));
      if (kind == ArchiveKind::kZip) continue;
      return walk.EmitError(
          path, "archive", FailedPrecondition("members after an encrypted one were not inspected"));
    }
    uint64_t declared = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : 0;
    if (info && info->uncompressed > declared) declared = info->uncompressed;
    uint64_t compressed = info ? info->compressed : 0;

    Status member_error;
    if (declared > b.max_file_bytes) {
      member_error = ResourceExhausted("member is " + Human(declared) +
                                       " uncompressed, over the max_file_bytes budget of " +
                                       Human(b.max_file_bytes));
    } else if (compressed > 0 && declared > kRatioFloor && declared > b.max_ratio * compressed) {
      member_error = ResourceExhausted("member expands " + std::to_string(declared / compressed) +
                                       "x (" + Human(compressed) + " to " + Human(declared) +
                                       "), over the max_ratio budget; a zip bomb?");
    } else if (walk.expanded() + declared > b.max_expanded_bytes) {
      return walk.Abort(
          member_path,
          ResourceExhausted("input expands to more than the max_expanded_bytes "
                            "budget of " +
                            Human(b.max_expanded_bytes) + "; the rest was not inspected"));
    }
    bool unread = true;  // data left in the archive stream for this member
    if (member_error.ok()) {
      buf.clear();
      buf.reserve(std::min<uint64_t>(declared, 64ull << 20));
      uint64_t chunks = 0;
      while (true) {
        size_t old = buf.size();
        buf.resize(old + kChunk);
        la_ssize_t n = archive_read_data(a.get(), buf.data() + old, kChunk);
        if (n < 0) {
          buf.resize(old);
          member_error = DataLoss(std::string("cannot read member: ") + (ErrorString(a.get())));
          break;
        }
        buf.resize(old + static_cast<size_t>(n));
        if (n == 0) {
          unread = false;
          break;
        }
        uint64_t total = buf.size();
        container_expanded += static_cast<uint64_t>(n);
        if (total > b.max_file_bytes) {
          member_error = ResourceExhausted("member is larger than the max_file_bytes budget of " +
                                           Human(b.max_file_bytes));
          break;
        }
        if (compressed > 0 && total > kRatioFloor && total > b.max_ratio * compressed) {
          member_error = ResourceExhausted("member expands more than " +
                                           std::to_string(static_cast<uint64_t>(b.max_ratio)) +
                                           "x, over the max_ratio budget; a zip bomb?");
          break;
        }
        if (kind == ArchiveKind::kOther && container_expanded > kRatioFloor &&
            container_expanded > b.max_ratio * data.size()) {
          member_error = ResourceExhausted("archive expands more than " +
                                           std::to_string(static_cast<uint64_t>(b.max_ratio)) +
                                           "x its size, over the max_ratio budget; a bomb?");
          break;
        }
        RETURN_IF_ERROR(walk.AddExpanded(member_path, static_cast<uint64_t>(n)));
        if (++chunks % 16 == 0) RETURN_IF_ERROR(walk.CheckTime(member_path));
      }
    }
    if (!member_error.ok()) {
      RETURN_IF_ERROR(walk.EmitError(member_path, "archive", member_error));
      // Skipping the rest of a zip member is a seek; in a compressed stream it
      // would mean inflating it, so the rest of such an archive is given up.
      if (kind == ArchiveKind::kZip || !unread) continue;
      return walk.EmitError(
          path, "archive",
          ResourceExhausted("members after " + name + " were not inspected: it exceeded a budget"));
    }
    RETURN_IF_ERROR(fn(name, buf));
  }
  return Status::Ok();
}

Status ExtractArchive(Walk& walk, const std::string& path, std::string_view data, uint32_t depth,
                      ArchiveKind kind, std::string_view name) {
  return ForEachMember(
      walk, path, data, depth, kind, [](const std::string&) { return true; },
      [&](const std::string& member, std::string_view bytes) {
        return ExtractBytes(walk, path + "!" + member, member, bytes, depth + 1);
      });
}

}  // namespace mamori::extract::internal
