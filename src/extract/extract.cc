// The walk, format detection and dispatch, and the public entry points.
#include "extract/extract.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "extract/internal.h"

namespace mamori::extract {
namespace internal {

Walk::Walk(const Budgets& budgets, const Visitor& visit)
    : budgets_(budgets),
      visit_(visit),
      clock_(budgets.clock ? *budgets.clock : Clock::Real()),
      start_micros_(clock_.NowMicros()) {}

Status AbortedStatus() {
  return ResourceExhausted("extraction aborted: a budget of the whole input was exceeded");
}

Status Walk::Emit(const Unit& unit) {
  if (aborted_) return AbortedStatus();
  Status s = visit_(unit, Status::Ok());
  if (!s.ok()) visitor_stopped_ = true;
  return s;
}

Status Walk::EmitError(const std::string& path, std::string_view format, const Status& error) {
  if (aborted_) return AbortedStatus();
  Unit u;
  u.path = path;
  u.format = std::string(format);
  Status s = visit_(u, error);
  if (!s.ok()) visitor_stopped_ = true;
  return s;
}

Status Walk::Abort(const std::string& path, const Status& error) {
  if (aborted_) return AbortedStatus();
  Status s = EmitError(path, "budget", error);
  aborted_ = true;
  return s.ok() ? AbortedStatus() : s;
}

Status Walk::CheckTime(const std::string& path) {
  if (aborted_) return AbortedStatus();
  int64_t elapsed = clock_.NowMicros() - start_micros_;
  if (elapsed > static_cast<int64_t>(budgets_.max_seconds) * 1'000'000) {
    return Abort(path, ResourceExhausted("took longer than the max_seconds budget of " +
                                         std::to_string(budgets_.max_seconds) +
                                         " s; the rest of the input was not inspected"));
  }
  return Status::Ok();
}

Status Walk::AddExpanded(const std::string& path, uint64_t n) {
  if (aborted_) return AbortedStatus();
  expanded_ += n;
  if (expanded_ > budgets_.max_expanded_bytes) {
    return Abort(path, ResourceExhausted("input expands to more than the max_expanded_bytes "
                                         "budget of " +
                                         std::to_string(budgets_.max_expanded_bytes) +
                                         " bytes; the rest was not inspected"));
  }
  return Status::Ok();
}

Status Walk::AddMember(const std::string& path) {
  if (aborted_) return AbortedStatus();
  if (++members_ > budgets_.max_members) {
    return Abort(path, ResourceExhausted("input holds more than the max_members budget of " +
                                         std::to_string(budgets_.max_members) +
                                         " members; the rest was not inspected"));
  }
  return Status::Ok();
}

std::string Extension(std::string_view name) {
  size_t sep = name.find_last_of("/!\\");
  if (sep != std::string_view::npos) name = name.substr(sep + 1);
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return {};
  std::string ext(name.substr(dot + 1));
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

namespace {

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

bool IsImage(std::string_view d) {
  return StartsWith(d, "\x89PNG\r\n\x1a\n") || StartsWith(d, "\xFF\xD8\xFF") ||
         StartsWith(d, "GIF87a") || StartsWith(d, "GIF89a") ||
         StartsWith(d, std::string_view("II*\0", 4)) ||
         StartsWith(d, std::string_view("MM\0*", 4)) ||
         (d.size() >= 12 && StartsWith(d, "RIFF") && d.substr(8, 4) == "WEBP") ||
         (d.size() >= 12 && d.substr(4, 4) == "ftyp" &&
          (d.substr(8, 4) == "heic" || d.substr(8, 4) == "heix" || d.substr(8, 4) == "mif1"));
}

bool IsOtherArchive(std::string_view d) {
  return StartsWith(d, "7z\xBC\xAF\x27\x1C") || StartsWith(d, "\x1F\x8B") ||
         (d.size() >= 10 && StartsWith(d, "BZh") && d[3] >= '1' && d[3] <= '9' &&
          d.substr(4, 6) == "\x31\x41\x59\x26\x53\x59") ||
         StartsWith(d, std::string_view("\xFD"
                                        "7zXZ\0",
                                        6)) ||
         StartsWith(d, "\x28\xB5\x2F\xFD") || (d.size() >= 262 && d.substr(257, 5) == "ustar") ||
         StartsWith(d, "070701") || StartsWith(d, "070707") || StartsWith(d, "Rar!\x1A\x07");
}

// The charset an HTML or XML document declares in its first bytes.
std::string DeclaredCharset(std::string_view d) {
  std::string head(d.substr(0, 4096));
  for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view key : {"charset=", "encoding="}) {
    size_t p = head.find(key);
    if (p == std::string::npos) continue;
    p += key.size();
    while (p < head.size() && (head[p] == '"' || head[p] == '\'' || head[p] == ' ')) ++p;
    size_t e = p;
    while (e < head.size() &&
           (std::isalnum(static_cast<unsigned char>(head[e])) || head[e] == '-' || head[e] == '_'))
      ++e;
    if (e > p) return head.substr(p, e - p);
  }
  return {};
}

}  // namespace

Status ExtractBytes(Walk& walk, const std::string& path, std::string_view name,
                    std::string_view data, uint32_t depth) {
  const Budgets& b = walk.budgets();
  RETURN_IF_ERROR(walk.CheckTime(path));
  if (data.size() > b.max_file_bytes) {
    return walk.EmitError(path, "",
                          ResourceExhausted("is " + std::to_string(data.size()) +
                                            " bytes, over the max_file_bytes budget of " +
                                            std::to_string(b.max_file_bytes)));
  }
  std::string ext = Extension(name);
  auto too_deep = [&](std::string_view format) {
    return walk.EmitError(
        path, format,
        ResourceExhausted("containers nested deeper than the max_depth budget "
                          "of " +
                          std::to_string(b.max_depth) + " levels; not inspected"));
  };

  if (StartsWith(data, "PK\x03\x04") || StartsWith(data, "PK\x05\x06") ||
      StartsWith(data, "PK\x07\x08")) {
    OoxmlKind kind = DetectOoxml(data, name);
    if (kind != OoxmlKind::kNone) {
      if (depth >= b.max_depth) return too_deep(ext);
      return ExtractOoxml(walk, path, data, depth, kind);
    }
    if (depth >= b.max_depth) return too_deep("zip");
    return ExtractArchive(walk, path, data, depth, ArchiveKind::kZip, name);
  }
  if (data.substr(0, 1024).find("%PDF-") != std::string_view::npos) {
    return ExtractPdf(walk, path, data, depth);
  }
  if (IsOtherArchive(data)) {
    if (depth >= b.max_depth) return too_deep("archive");
    return ExtractArchive(walk, path, data, depth, ArchiveKind::kOther, name);
  }
  if (StartsWith(data, "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1")) {
    static const std::string kEncryptedPackage("E\0n\0c\0r\0y\0p\0t\0e\0d\0P\0a\0c\0k\0a\0g\0e\0",
                                               32);
    if (data.find(kEncryptedPackage) != std::string_view::npos) {
      return walk.EmitError(path, "encrypted",
                            FailedPrecondition("password-protected Office document, cannot "
                                               "inspect; remove the password to scan it"));
    }
    if (ext == "msg") {
      return walk.EmitError(path, "msg",
                            Unimplemented("Outlook .msg files are not supported; save the mail "
                                          "as .eml to scan it"));
    }
    return walk.EmitError(path, "ole2",
                          Unimplemented("legacy binary Office format (.doc/.xls/.ppt), cannot "
                                        "inspect; save it as .docx/.xlsx/.pptx to scan it"));
  }
  if (IsImage(data)) {
    Unit u;
    u.path = path;
    u.format = "image";
    u.encoding = "binary";
    return walk.Emit(u);
  }
  if (ext == "eml" || ext == "mht" || ext == "mhtml" || LooksLikeMime(data)) {
    return ExtractMime(walk, path, data, depth);
  }
  std::string storage;
  std::string hint;
  if (ext == "html" || ext == "htm" || ext == "xhtml" || ext == "xml" || StartsWith(data, "<"))
    hint = DeclaredCharset(data);
  Decoded dec = DecodeText(data, &storage, hint);
  if (dec.binary) {
    Unit u;
    u.path = path;
    u.format = "binary";
    u.encoding = "binary";
    return walk.Emit(u);
  }
  return EmitText(walk, path, dec.text, dec.encoding, DetectTextFormat(name, dec.text));
}

}  // namespace internal

using internal::Walk;

bool IsContainer(std::string_view head) {
  auto starts = [&](std::string_view magic) { return head.substr(0, magic.size()) == magic; };
  using namespace std::string_view_literals;
  return starts("PK\x03\x04"sv) || starts("PK\x05\x06"sv) || starts("%PDF-"sv) ||
         starts("\x1f\x8b"sv) || starts("7z\xBC\xAF\x27\x1C"sv) || starts("BZh"sv) ||
         starts(
             "\xFD"
             "7zXZ"sv) ||
         starts("\xD0\xCF\x11\xE0"sv);
}

char FieldDelimiterForName(std::string_view name) {
  std::string ext = internal::Extension(name);
  return ext == "csv" ? ',' : ext == "tsv" ? '\t' : 0;
}

bool NeedsDecoding(std::string_view head) {
  using namespace std::string_view_literals;
  if (head.substr(0, 2) == "\xFF\xFE"sv || head.substr(0, 2) == "\xFE\xFF"sv) return true;
  if (head.find('\0') != std::string_view::npos) return true;
  if (internal::HasIso2022Escapes(head)) return true;
  // Drop a multi-byte sequence the end of `head` may have cut.
  size_t cut = head.size();
  for (size_t k = 1; k <= 3 && k <= head.size(); ++k) {
    unsigned char c = static_cast<unsigned char>(head[head.size() - k]);
    if ((c & 0xC0) == 0x80) continue;      // a continuation byte: look further back
    if (c >= 0xC0) cut = head.size() - k;  // a lead byte: its sequence may be cut
    break;
  }
  return !internal::IsValidUtf8(head.substr(0, cut));
}

Status ExtractBuffer(std::string_view name, std::string_view data, const Budgets& budgets,
                     const Visitor& visit) {
  Walk walk(budgets, visit);
  Status s = internal::ExtractBytes(walk, std::string(name), name, data, 0);
  return walk.visitor_stopped() ? s : Status::Ok();
}

Status ExtractFile(const std::string& path, const Budgets& budgets, const Visitor& visit) {
  Walk walk(budgets, visit);
  auto finish = [&](Status s) { return walk.visitor_stopped() ? s : Status::Ok(); };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    Status err = e == ENOENT ? NotFound("no such file; check the path")
                 : e == EACCES
                     ? PermissionDenied("permission denied; run as a user who can read it")
                     : Unavailable(std::string("cannot open: ") + std::strerror(e));
    return finish(walk.EmitError(path, "", err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return finish(
        walk.EmitError(path, "", Unavailable(std::string("cannot stat: ") + std::strerror(e))));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return finish(walk.EmitError(
        path, "",
        InvalidArgument("not a regular file (a directory, device or pipe); pass files, "
                        "or let the caller recurse into directories")));
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > budgets.max_file_bytes) {
    ::close(fd);
    return finish(walk.EmitError(path, "",
                                 ResourceExhausted("is " + std::to_string(size) +
                                                   " bytes, over the max_file_bytes budget of " +
                                                   std::to_string(budgets.max_file_bytes))));
  }
  if (size == 0) {
    ::close(fd);
    return finish(internal::ExtractBytes(walk, path, path, std::string_view(), 0));
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) {
    int e = errno;
    return finish(walk.EmitError(
        path, "", Unavailable(std::string("cannot map the file: ") + std::strerror(e))));
  }
  ::madvise(map, size, MADV_SEQUENTIAL);
  Status s = internal::ExtractBytes(walk, path, path,
                                    std::string_view(static_cast<const char*>(map), size), 0);
  ::munmap(map, size);
  return finish(s);
}

Result<std::string> DecodeToUtf8(std::string_view data, std::string* encoding) {
  std::string storage;
  internal::Decoded d = internal::DecodeText(data, &storage);
  if (encoding) *encoding = d.encoding;
  if (d.binary) {
    return InvalidArgument(
        "binary data (NUL bytes or control characters), not text in a known "
        "encoding");
  }
  if (d.text.data() == storage.data() && d.text.size() == storage.size()) return storage;
  return std::string(d.text);
}

bool HasNoTextToInspect(const Unit& unit) {
  return unit.format == "image" || unit.format == "binary" || unit.format == "pdf-no-text";
}

std::string LocationPath(const Unit& unit, uint64_t line, int32_t field) {
  if (!unit.locate) return unit.path;
  std::string loc = unit.locate(line, field);
  if (loc.empty()) return unit.path;
  // loc is "<sheet>!<cell>"; the sheet (which may itself hold '!') is the
  // last component of unit.path, and is replaced by loc.
  size_t cell = loc.rfind('!');
  if (cell != std::string::npos) {
    std::string sheet_suffix = "!" + loc.substr(0, cell);
    if (unit.path.size() > sheet_suffix.size() &&
        unit.path.compare(unit.path.size() - sheet_suffix.size(), sheet_suffix.size(),
                          sheet_suffix) == 0) {
      return unit.path.substr(0, unit.path.size() - sheet_suffix.size()) + "!" + loc;
    }
  }
  return unit.path + "!" + loc;
}

}  // namespace mamori::extract
