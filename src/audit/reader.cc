// Reader: streaming, chain-checked iteration with filters.
#include "audit/audit.h"
#include "audit/format.h"

namespace mamori::audit {

using internal::ChainWalker;
using internal::LineReader;

bool Filter::Matches(const Record& r) const {
  if (since_micros && r.time_micros < *since_micros) return false;
  if (until_micros && r.time_micros >= *until_micros) return false;
  auto eq = [](const std::string& want, const std::string& have) {
    return want.empty() || want == have;
  };
  return eq(component, r.component) && eq(user, r.user) && eq(device, r.device) &&
         eq(source_ip, r.source_ip) && eq(org, r.org) && eq(action, r.action) &&
         eq(destination, r.destination) && eq(result, r.result);
}

class Reader::Impl {
 public:
  Impl(std::unique_ptr<SequentialFile> f, size_t max_line, Filter filter)
      : lines(std::move(f), max_line), filter(std::move(filter)) {}
  LineReader lines;
  ChainWalker walker;
  Filter filter;
  uint64_t torn = 0;
  bool done = false;
};

Reader::Reader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Reader::~Reader() = default;

Result<std::unique_ptr<Reader>> Reader::Open(const ReaderOptions& options, Filter filter) {
  Env* env = options.env ? options.env : Env::Default();
  ASSIGN_OR_RETURN(auto file, env->NewSequentialFile(options.path));
  return std::unique_ptr<Reader>(new Reader(
      std::make_unique<Impl>(std::move(file), options.max_line_bytes, std::move(filter))));
}

Result<std::optional<StoredRecord>> Reader::Next() {
  Impl& d = *impl_;
  while (!d.done) {
    ASSIGN_OR_RETURN(auto line, d.lines.Next());
    if (!line) {
      d.done = true;
      break;
    }
    if (!line->terminated) {
      d.torn = line->text.size();
      d.done = true;
      break;
    }
    ASSIGN_OR_RETURN(internal::Entry e, d.walker.Feed(*line));
    if (e.kind != internal::Entry::kRecord) continue;
    if (!d.filter.Matches(e.record)) continue;
    StoredRecord out;
    out.seq = e.seq;
    out.hash = std::move(e.hash);
    out.record = std::move(e.record);
    return std::optional<StoredRecord>(std::move(out));
  }
  return std::optional<StoredRecord>();
}

uint64_t Reader::torn_tail_bytes() const { return impl_->torn; }

Status Scan(const ReaderOptions& options, const Filter& filter,
            const std::function<Status(const StoredRecord&)>& fn) {
  ASSIGN_OR_RETURN(auto reader, Reader::Open(options, filter));
  while (true) {
    ASSIGN_OR_RETURN(auto r, reader->Next());
    if (!r) return Status::Ok();
    RETURN_IF_ERROR(fn(*r));
  }
}

Result<Head> ReadHead(const ReaderOptions& options) {
  ASSIGN_OR_RETURN(auto reader, Reader::Open(options));
  Head head{0, internal::kGenesisHash};
  while (true) {
    ASSIGN_OR_RETURN(auto r, reader->Next());
    if (!r) return head;
    head.seq = r->seq;
    head.hash = r->hash;
  }
}

}  // namespace mamori::audit
