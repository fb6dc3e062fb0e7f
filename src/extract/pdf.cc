// PDF text through poppler-cpp, one unit per page.
#include <poppler-document.h>
#include <poppler-global.h>
#include <poppler-page.h>

#include <climits>
#include <memory>
#include <mutex>

#include "extract/internal.h"

namespace mamori::extract::internal {
namespace {

void Quiet(const std::string&, void*) {}

bool HasVisibleText(const std::string& s) {
  for (unsigned char c : s) {
    if (c > ' ') return true;
  }
  return false;
}

}  // namespace

Status ExtractPdf(Walk& walk, const std::string& path, std::string_view data, uint32_t depth) {
  static std::once_flag quiet;
  std::call_once(quiet, [] { poppler::set_debug_error_function(Quiet, nullptr); });
  if (data.size() > static_cast<size_t>(INT_MAX)) {
    return walk.EmitError(path, "pdf", ResourceExhausted("PDF larger than 2 GiB; not inspected"));
  }
  std::unique_ptr<poppler::document> doc(
      poppler::document::load_from_raw_data(data.data(), static_cast<int>(data.size())));
  if (!doc) {
    return walk.EmitError(path, "pdf",
                          DataLoss("not a readable PDF (damaged or truncated); not inspected"));
  }
  if (doc->is_locked()) {
    return walk.EmitError(path, "encrypted",
                          FailedPrecondition("password-protected PDF, cannot inspect; remove the "
                                             "password to scan it"));
  }
  int pages = doc->pages();
  bool any_text = false;
  std::vector<int> empty_pages;
  for (int i = 0; i < pages; ++i) {
    std::string page_path = path + "!page" + std::to_string(i + 1);
    RETURN_IF_ERROR(walk.CheckTime(page_path));
    RETURN_IF_ERROR(walk.AddMember(page_path));
    std::unique_ptr<poppler::page> page(doc->create_page(i));
    if (!page) {
      RETURN_IF_ERROR(walk.EmitError(page_path, "pdf", DataLoss("page cannot be read")));
      continue;
    }
    poppler::byte_array utf8 =
        page->text(poppler::rectf(), poppler::page::physical_layout).to_utf8();
    std::string text(utf8.begin(), utf8.end());
    RETURN_IF_ERROR(walk.AddExpanded(page_path, text.size()));
    // poppler separates pages' lines with \n and may leave form feeds.
    for (char& c : text) {
      if (c == '\f') c = '\n';
    }
    if (!HasVisibleText(text)) {
      empty_pages.push_back(i + 1);
      continue;
    }
    any_text = true;
    Unit u;
    u.path = page_path;
    u.format = "pdf";
    u.encoding = "UTF-8";
    u.text = text;
    RETURN_IF_ERROR(walk.Emit(u));
  }
  if (!any_text) {
    return walk.EmitError(
        path, "pdf",
        FailedPrecondition("no text layer (a scanned or image-only PDF?); cannot inspect "
                           "without OCR"));
  }
  // Pages without text in a document that has text (blank pages, or a scanned
  // page) are reported as OK units of format "pdf-no-text" with empty text,
  // so they are listed, not silently clean; a wholly textless PDF is an error.
  for (int p : empty_pages) {
    Unit u;
    u.path = path + "!page" + std::to_string(p);
    u.format = "pdf-no-text";
    u.encoding = "UTF-8";
    RETURN_IF_ERROR(walk.Emit(u));
  }
  return Status::Ok();
}

}  // namespace mamori::extract::internal
