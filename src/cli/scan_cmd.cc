// `mamori scan`: finds personal data in files, directories, archives and stdin.
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "cli/command.h"
#include "common/process.h"
#include "common/redact.h"
#include "detect/detect.h"
#include "extract/extract.h"

namespace mamori::cli {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct ScanArgs {
  std::vector<std::string> paths;
  std::string format = "text";
  std::string min_confidence = "medium";
  std::string fail_on;  // default: min_confidence
  std::string types;
  unsigned threads = 0;
  std::vector<std::string> excludes;
  std::string max_file_size = "1G";
  std::string hash_key_file;
  std::string rules_dir;
  bool show_values = false;
  bool quiet = false;
};

struct UnitFindings {
  std::string unit_path;
  std::vector<detect::Finding> findings;
  std::vector<std::string> display_paths;  // per finding, with cell location
};

struct FileResult {
  std::vector<UnitFindings> units;
  std::vector<std::pair<std::string, std::string>> incomplete;  // path, error
  std::vector<std::string> not_inspected;                       // binary members
  uint64_t bytes = 0;
  uint64_t unit_count = 0;
};

Result<uint64_t> ParseSize(const std::string& s) {
  if (s.empty()) return InvalidArgument("--max-file-size is empty; use e.g. 100M or 2G");
  size_t pos = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &pos);
  } catch (...) {
    return InvalidArgument("--max-file-size '" + s + "' is not a size; use e.g. 100M or 2G");
  }
  std::string unit = s.substr(pos);
  uint64_t mult = 1;
  if (unit == "" || unit == "B")
    mult = 1;
  else if (unit == "K" || unit == "KB" || unit == "KiB")
    mult = 1ull << 10;
  else if (unit == "M" || unit == "MB" || unit == "MiB")
    mult = 1ull << 20;
  else if (unit == "G" || unit == "GB" || unit == "GiB")
    mult = 1ull << 30;
  else
    return InvalidArgument("--max-file-size unit '" + unit + "' is not one of K, M, G");
  return static_cast<uint64_t>(v) * mult;
}

std::string DefaultHashKeyPath() {
  if (const char* p = std::getenv("MAMORI_HASH_KEY_FILE"); p && *p) return p;
  std::string base;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x)
    base = x;
  else if (const char* h = std::getenv("HOME"); h && *h)
    base = std::string(h) + "/.config";
  else
    base = ".";
  return base + "/mamori/hash.key";
}

bool Excluded(const std::string& path, const std::vector<std::string>& excludes) {
  std::string name = fs::path(path).filename().string();
  for (const auto& pat : excludes) {
    if (fnmatch(pat.c_str(), path.c_str(), 0) == 0 || fnmatch(pat.c_str(), name.c_str(), 0) == 0)
      return true;
  }
  return false;
}

// Expands the command-line paths into files. Unreadable directories are
// reported, never skipped silently; directory symlinks are not followed.
void CollectFiles(const std::string& root, const std::vector<std::string>& excludes,
                  std::vector<std::string>* files,
                  std::vector<std::pair<std::string, std::string>>* errors) {
  std::error_code ec;
  auto st = fs::status(root, ec);
  if (ec) {
    errors->emplace_back(root, "cannot access: " + ec.message());
    return;
  }
  if (!fs::is_directory(st)) {
    if (!Excluded(root, excludes)) files->push_back(root);
    return;
  }
  std::vector<std::string> stack{root};
  while (!stack.empty()) {
    std::string dir = stack.back();
    stack.pop_back();
    fs::directory_iterator it(dir, ec), end;
    if (ec) {
      errors->emplace_back(dir, "cannot read directory: " + ec.message());
      continue;
    }
    std::vector<fs::directory_entry> entries;
    for (; it != end; it.increment(ec)) {
      if (ec) {
        errors->emplace_back(dir, "cannot read directory: " + ec.message());
        break;
      }
      entries.push_back(*it);
    }
    std::sort(entries.begin(), entries.end());
    for (auto e = entries.rbegin(); e != entries.rend(); ++e) {
      std::string p = e->path().string();
      if (Excluded(p, excludes)) continue;
      std::error_code ec2;
      if (e->is_symlink(ec2) && fs::is_directory(e->path(), ec2)) continue;  // avoid loops
      if (e->is_directory(ec2)) {
        stack.push_back(p);
      } else if (e->is_regular_file(ec2)) {
        files->push_back(p);
      } else if (e->is_symlink(ec2)) {
        errors->emplace_back(p, "dangling symbolic link");
      }
    }
  }
  std::sort(files->begin() + 0, files->end());
}

// JSON string escaping for the jsonl writer, as nlohmann::json::dump() does
// it (UTF-8 kept, control characters escaped), except that invalid UTF-8
// (a file name from another system) becomes U+FFFD instead of an exception.
void AppendJsonString(std::string* out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    // Printable ASCII other than '"' and '\\' goes out as a run (paths,
    // hashes, type names), not byte by byte.
    size_t j = i;
    while (j < s.size()) {
      unsigned char b = static_cast<unsigned char>(s[j]);
      if (b < 0x20 || b >= 0x80 || b == '"' || b == '\\') break;
      ++j;
    }
    if (j > i) {
      out->append(s.data() + i, j - i);
      i = j;
      continue;
    }
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
      bool ok = n >= 2 && i + n <= s.size() && c <= 0xF4 && !(c == 0xC0 || c == 0xC1);
      for (size_t k = 1; ok && k < n; ++k)
        ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
      if (ok && n == 3) {
        unsigned char d = static_cast<unsigned char>(s[i + 1]);
        ok = !(c == 0xE0 && d < 0xA0) && !(c == 0xED && d >= 0xA0);
      } else if (ok && n == 4) {
        unsigned char d = static_cast<unsigned char>(s[i + 1]);
        ok = !(c == 0xF0 && d < 0x90) && !(c == 0xF4 && d >= 0x90);
      }
      if (ok) {
        out->append(s.substr(i, n));
        i += n;
      } else {
        out->append("\xEF\xBF\xBD");
        ++i;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

// One jsonl line, byte for byte what FindingJson(...).dump() gives for valid
// UTF-8 (keys in the same sorted order), at a tenth of the cost: with sparse
// data a scan prints tens of thousands of lines.
void AppendFindingLine(std::string* out, const detect::Finding& f, const std::string& path,
                       bool show_values) {
  char num[64];
  auto append_num = [&](auto v) {
    auto r = std::to_chars(num, num + sizeof num, v);
    out->append(num, r.ptr);
  };
  out->append("{\"column\":");
  append_num(f.column);
  out->append(",\"confidence\":");
  AppendJsonString(out, detect::ConfidenceName(f.confidence));
  out->append(",\"context\":[");
  for (size_t i = 0; i < f.context.size(); ++i) {
    if (i) out->push_back(',');
    AppendJsonString(out, f.context[i]);
  }
  out->append("]");
  if (f.field >= 0) {
    out->append(",\"field\":");
    append_num(f.field);
  }
  out->append(",\"hash\":");
  AppendJsonString(out, f.hash);
  out->append(",\"line\":");
  append_num(f.line);
  out->append(",\"masked\":");
  AppendJsonString(out, f.masked);
  out->append(",\"path\":");
  AppendJsonString(out, path);
  out->append(",\"record\":");
  append_num(f.record);
  out->append(",\"risk\":");
  AppendJsonString(out, detect::RiskName(f.risk));
  out->append(",\"score\":");
  {
    auto r = std::to_chars(num, num + sizeof num, f.score);
    std::string_view d(num, static_cast<size_t>(r.ptr - num));
    out->append(d);
    if (d.find_first_of(".eE") == std::string_view::npos)
      out->append(".0");  // as nlohmann writes 1.0
  }
  out->append(",\"type\":");
  AppendJsonString(out, f.type);
  if (show_values) {
    out->append(",\"value\":");
    AppendJsonString(out, f.value);
  }
  out->append("}\n");
}

json FindingJson(const detect::Finding& f, const std::string& path, bool show_values) {
  json j = {
      {"path", path},        {"type", f.type},
      {"line", f.line},      {"column", f.column},
      {"record", f.record},  {"confidence", std::string(detect::ConfidenceName(f.confidence))},
      {"score", f.score},    {"risk", std::string(detect::RiskName(f.risk))},
      {"masked", f.masked},  {"hash", f.hash},
      {"context", f.context}};
  if (f.field >= 0) j["field"] = f.field;
  if (show_values) j["value"] = f.value;
  return j;
}

class ScanCommand {
 public:
  explicit ScanCommand(ScanArgs args) : a_(std::move(args)) {}

  int Run() {
    // One file after another: each file's buffer and the scanner's candidate
    // lists are megabytes, and glibc would hand them back to the kernel and
    // fault them in, zeroed, for the next file (a quarter of the CPU on
    // number-heavy CSV).
    KeepFreedMemoryForReuse();
    // Validate everything before touching the files.
    auto min_conf = detect::ParseConfidence(a_.min_confidence);
    if (!min_conf.ok()) return Fail(min_conf.status().WithContext("--min-confidence"));
    auto fail_on = detect::ParseConfidence(a_.fail_on.empty() ? a_.min_confidence : a_.fail_on);
    if (!fail_on.ok()) return Fail(fail_on.status().WithContext("--fail-on"));
    if (a_.format != "text" && a_.format != "json" && a_.format != "jsonl" && a_.format != "sarif")
      return Fail(
          InvalidArgument("--format must be text, json, jsonl or sarif, not '" + a_.format + "'"));
    auto max_size = ParseSize(a_.max_file_size);
    if (!max_size.ok()) return Fail(max_size.status());
    auto rules = a_.rules_dir.empty() ? detect::RuleSet::LoadDefault()
                                      : detect::RuleSet::LoadDirectory(a_.rules_dir);
    if (!rules.ok()) return Fail(rules.status().WithContext("loading detection rules"));
    rules_ = *rules;
    auto key =
        HashKey::LoadOrCreate(a_.hash_key_file.empty() ? DefaultHashKeyPath() : a_.hash_key_file);
    if (!key.ok()) return Fail(key.status().WithContext("hash key (--hash-key)"));
    key_ = *key;
    opt_.min_confidence = *min_conf;
    opt_.keep_values = a_.show_values;
    std::stringstream ts(a_.types);
    for (std::string t; std::getline(ts, t, ',');)
      if (!t.empty()) opt_.types.push_back(t);
    // Check --types once, up front.
    if (auto probe = detect::Scanner::Create(rules_, key_, opt_); !probe.ok())
      return Fail(probe.status());
    budgets_.max_file_bytes = *max_size;
    fail_on_ = *fail_on;

    if (a_.paths.empty()) a_.paths.push_back("-");
    for (const auto& p : a_.paths) {
      if (p == "-") {
        files_.push_back("-");
      } else {
        CollectFiles(p, a_.excludes, &files_, &walk_errors_);
      }
    }
    unsigned threads = a_.threads ? a_.threads : std::max(1u, std::thread::hardware_concurrency());
    threads = std::min<unsigned>(threads, std::max<size_t>(1, files_.size()));
    counter_ = std::make_unique<detect::PersonCounter>(rules_);
    start_ = std::chrono::steady_clock::now();
    for (const auto& [path, err] : walk_errors_) incomplete_.emplace_back(path, err);

    results_.resize(files_.size());
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) pool.emplace_back([this] { Worker(); });
    bool tty = !a_.quiet && isatty(STDERR_FILENO);
    // The main thread writes results in input order, as they complete.
    size_t next = 0;
    while (next < files_.size()) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(200),
                   [&] { return results_[next].has_value(); });
      while (next < files_.size() && results_[next].has_value()) {
        FileResult r = std::move(*results_[next]);
        results_[next].reset();
        lock.unlock();
        Emit(r);
        lock.lock();
        ++next;
      }
      if (tty) Progress(next);
    }
    for (auto& t : pool) t.join();
    if (tty) std::cerr << "\r\033[K";
    return Finish();
  }

 private:
  int Fail(const Status& s) {
    PrintError(s.message());
    return 2;
  }

  void Worker() {
    while (true) {
      size_t i = next_file_.fetch_add(1);
      if (i >= files_.size()) return;
      FileResult r = ScanOne(files_[i]);
      {
        std::lock_guard<std::mutex> lock(mu_);
        results_[i] = std::move(r);
      }
      cv_.notify_all();
    }
  }

  FileResult ScanOne(const std::string& path) {
    FileResult r;
    auto visit = [&](const extract::Unit& u, const Status& err) -> Status {
      if (!err.ok()) {
        r.incomplete.emplace_back(u.path, err.message());
        return Status::Ok();
      }
      ++r.unit_count;
      if (extract::HasNoTextToInspect(u)) {
        r.not_inspected.push_back(u.path);
        return Status::Ok();
      }
      detect::ScanOptions o = opt_;
      o.field_delimiter = u.field_delimiter;
      auto found = detect::ScanText(rules_, key_, u.text, o);
      r.bytes += u.text.size();
      bytes_done_ += u.text.size();
      if (!found.ok()) {
        r.incomplete.emplace_back(u.path, found.status().message());
        return Status::Ok();
      }
      UnitFindings uf;
      uf.unit_path = u.path;
      for (const auto& f : *found)
        uf.display_paths.push_back(f.field >= 0 ? extract::LocationPath(u, f.line, f.field)
                                                : u.path);
      uf.findings = std::move(found).value();
      r.units.push_back(std::move(uf));
      return Status::Ok();
    };
    Status s;
    if (path == "-") {
      std::string data;
      char buf[1 << 16];
      size_t n;
      while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        data.append(buf, n);
        if (data.size() > budgets_.max_file_bytes) {
          r.incomplete.emplace_back("-", "standard input is larger than --max-file-size");
          return r;
        }
      }
      s = extract::ExtractBuffer("-", data, budgets_, visit);
    } else {
      s = extract::ExtractFile(path, budgets_, visit);
    }
    if (!s.ok()) r.incomplete.emplace_back(path, s.message());
    return r;
  }

  void Progress(size_t done) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    double mb = bytes_done_.load() / 1e6;
    std::fprintf(stderr, "\r\033[K[%zu/%zu files] %.1f MB %.1f MB/s", done, files_.size(), mb,
                 secs > 0 ? mb / secs : 0.0);
  }

  void Emit(FileResult& r) {
    ++files_done_;
    bytes_ += r.bytes;
    units_ += r.unit_count;
    for (auto& e : r.incomplete) incomplete_.push_back(std::move(e));
    for (auto& p : r.not_inspected) not_inspected_.push_back(std::move(p));
    for (auto& u : r.units) {
      counter_->Add(u.unit_path, u.findings);
      for (size_t i = 0; i < u.findings.size(); ++i) {
        const auto& f = u.findings[i];
        const std::string& path = u.display_paths[i];
        counts_[f.type]++;
        if (f.confidence >= fail_on_) failing_ = true;
        if (a_.format == "jsonl") {
          line_.clear();
          AppendFindingLine(&line_, f, path, a_.show_values);
          std::cout << line_;
        } else if (a_.format == "text") {
          std::cout << path << ":" << f.line << ":" << f.column << ": " << f.type << " "
                    << (a_.show_values ? f.value : f.masked) << " ("
                    << detect::ConfidenceName(f.confidence) << " " << f.score << ")";
          if (!f.context.empty()) {
            std::cout << " [";
            for (size_t k = 0; k < f.context.size(); ++k)
              std::cout << (k ? ", " : "") << f.context[k];
            std::cout << "]";
          }
          std::cout << "\n";
        } else {
          buffered_.push_back(FindingJson(f, path, a_.show_values));
        }
      }
    }
  }

  std::string line_;  // the jsonl line being written, reused

  json Summary() const {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    json inc = json::array();
    for (const auto& [p, e] : incomplete_) inc.push_back({{"path", p}, {"error", e}});
    return {{"files", files_done_},
            {"units", units_},
            {"bytes", bytes_},
            {"seconds", secs},
            {"errors", incomplete_.size()},
            {"incomplete", inc},
            {"not_inspected", not_inspected_},
            {"counts", counts_},
            {"findings", TotalFindings()},
            {"individuals", counter_->Estimate()}};
  }

  uint64_t TotalFindings() const {
    uint64_t n = 0;
    for (const auto& [_, c] : counts_) n += c;
    return n;
  }

  json Sarif() const {
    json rules = json::array();
    for (const auto& r : rules_->rules())
      rules.push_back({{"id", r.type},
                       {"name", r.type},
                       {"shortDescription", {{"text", r.name}}},
                       {"properties", {{"risk", std::string(detect::RiskName(r.risk))}}}});
    json results = json::array();
    for (const auto& f : buffered_) {
      std::string conf = f["confidence"];
      results.push_back(
          {{"ruleId", f["type"]},
           {"level", conf == "high"     ? "error"
                     : conf == "medium" ? "warning"
                                        : "note"},
           {"message",
            {{"text",
              std::string(f["type"]) + " " + std::string(f["masked"]) + " (" + conf + ")"}}},
           {"locations",
            {{{"physicalLocation",
               {{"artifactLocation", {{"uri", f["path"]}}},
                {"region", {{"startLine", f["line"]}, {"startColumn", f["column"]}}}}}}}},
           {"partialFingerprints", {{"mamoriValueHash/v1", f["hash"]}}}});
    }
    json notes = json::array();
    for (const auto& [p, e] : incomplete_)
      notes.push_back({{"level", "error"}, {"message", {{"text", p + ": " + e}}}});
    return {{"$schema", "https://json.schemastore.org/sarif-2.1.0.json"},
            {"version", "2.1.0"},
            {"runs",
             {{{"tool", {{"driver", {{"name", "mamori"}, {"version", "0.1.0"}, {"rules", rules}}}}},
               {"invocations",
                {{{"executionSuccessful", incomplete_.empty()},
                  {"toolExecutionNotifications", notes}}}},
               {"results", results},
               {"properties", {{"summary", Summary()}}}}}}};
  }

  int Finish() {
    if (a_.format == "jsonl") {
      std::cout << json{{"summary", Summary()}}.dump() << "\n";
    } else if (a_.format == "json") {
      std::cout << json{{"findings", buffered_}, {"summary", Summary()}}.dump(2) << "\n";
    } else if (a_.format == "sarif") {
      std::cout << Sarif().dump(2) << "\n";
    } else {
      json s = Summary();
      std::cout << "\n"
                << files_done_ << " files, " << units_ << " units, " << bytes_ / 1000000.0
                << " MB scanned in " << s["seconds"].get<double>() << " s\n";
      for (const auto& [t, c] : counts_) std::cout << "  " << t << ": " << c << "\n";
      std::cout << "estimated distinct individuals: " << counter_->Estimate() << "\n";
      if (!not_inspected_.empty())
        std::cout << not_inspected_.size()
                  << " binary members not inspected (listed in --format json)\n";
      for (const auto& [p, e] : incomplete_) std::cout << "INCOMPLETE " << p << ": " << e << "\n";
    }
    std::cout.flush();
    if (!incomplete_.empty()) return 2;
    return failing_ ? 1 : 0;
  }

  ScanArgs a_;
  std::shared_ptr<const detect::RuleSet> rules_;
  HashKey key_;
  detect::ScanOptions opt_;
  extract::Budgets budgets_;
  detect::Confidence fail_on_ = detect::Confidence::kMedium;
  std::vector<std::string> files_;
  std::vector<std::pair<std::string, std::string>> walk_errors_;
  std::vector<std::optional<FileResult>> results_;
  std::atomic<size_t> next_file_{0};
  std::atomic<uint64_t> bytes_done_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::chrono::steady_clock::time_point start_;
  std::unique_ptr<detect::PersonCounter> counter_;
  std::map<std::string, uint64_t> counts_;
  std::vector<std::pair<std::string, std::string>> incomplete_;
  std::vector<std::string> not_inspected_;
  std::vector<json> buffered_;
  uint64_t files_done_ = 0, units_ = 0, bytes_ = 0;
  bool failing_ = false;
};

void Setup(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ScanArgs>();
  auto* cmd = app.add_subcommand(
      "scan", "Find personal data in files, directories, archives, mail and stdin");
  cmd->add_option("paths", args->paths, "Files or directories to scan ('-' for stdin)");
  cmd->add_option("--format", args->format, "Output: text, json, jsonl or sarif")
      ->capture_default_str();
  cmd->add_option("--min-confidence", args->min_confidence,
                  "Report findings at or above: low, medium, high")
      ->capture_default_str();
  cmd->add_option("--fail-on", args->fail_on,
                  "Exit 1 if a finding is at or above this (default: --min-confidence)");
  cmd->add_option("--types", args->types,
                  "Comma-separated types to report (default: all; see `mamori rules list`)");
  cmd->add_option("--threads", args->threads, "Worker threads (default: all cores)");
  cmd->add_option("--exclude", args->excludes, "Glob of paths or names to skip (repeatable)");
  cmd->add_option("--max-file-size", args->max_file_size,
                  "Largest file or member to inspect, e.g. 100M")
      ->capture_default_str();
  cmd->add_option("--hash-key", args->hash_key_file,
                  "Key file for value hashes (created if absent)");
  cmd->add_option("--rules", args->rules_dir,
                  "Directory of detection rules (default: the shipped rules)");
  cmd->add_flag("--show-values", args->show_values,
                "Print raw values (personal data!) instead of masked ones");
  cmd->add_flag("-q,--quiet", args->quiet, "No progress bar");
  cmd->callback([args, exit_code] { *exit_code = ScanCommand(*args).Run(); });
}

MAMORI_REGISTER_COMMAND("scan", Setup);

}  // namespace
}  // namespace mamori::cli
