#include "detect/text.h"

#include <gtest/gtest.h>
#include <hs/hs.h>

#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace mamori::detect {
namespace {

// birth_date.yaml's Western-date patterns as the rule loader expands their
// macros ({ND}, {D}) for Vectorscan, which matched them before the tokenizer did.
const char* const kDigit = R"((?:[0-9]|\xEF\xBC[\x90-\x99]))";
std::string Expanded(bool wide_century) {
  std::string d = kDigit;
  return std::string(R"((?:^|[^0-9]))") +
         (wide_century ? R"((?:\xEF\xBC\x91\xEF\xBC\x99|\xEF\xBC\x92\xEF\xBC\x90))" : "(?:19|20)") +
         d + "{2}" + R"((?:/|-|\.|\xE5\xB9\xB4|\xEF\xBC\x8F|\xEF\xBC\x8D))" + d + "{1,2}" +
         R"((?:/|-|\.|\xE6\x9C\x88|\xEF\xBC\x8F|\xEF\xBC\x8D))" + d + "{1,2}" +
         R"((?:\xE6\x97\xA5)?)";
}

using Spans = std::set<std::pair<size_t, size_t>>;

int OnMatch(unsigned, unsigned long long from, unsigned long long to, unsigned, void* ctx) {
  static_cast<Spans*>(ctx)->insert({from, to});
  return 0;
}

// The spans WesternDateEnds gives, in Vectorscan's terms: a match starts at
// its {ND} byte, or at 0 for a year at the start.
Spans Tokenized(std::string_view s, bool wide) {
  Spans out;
  for (size_t at = 0; at < s.size(); ++at) {
    if (at > 0 && s[at - 1] >= '0' && s[at - 1] <= '9') continue;
    size_t ends[3];
    int n = WesternDateEnds(s, at, wide, /*final=*/true, ends);
    EXPECT_GE(n, 0);
    for (int e = 0; e < n; ++e) out.insert({at == 0 ? 0 : at - 1, ends[e]});
  }
  return out;
}

// The hand-written matcher must report exactly what the regex reported (every
// end, leftmost start), on strings made of the pieces a date is made of; and
// on a prefix of the data it must either wait (-1) or already be final.
TEST(WesternDateEndsTest, SameMatchesAsTheRegex) {
  const std::vector<std::string> pieces = {"1",    "9",        "2",  "0",    "5",   "1", "2", "0",
                                           "１",   "９",       "２", "０",   "５",  "/", "-", ".",
                                           "年",   "月",       "日", "／",   "－",  "a", " ", "\n",
                                           "\xEF", "\xEF\xBC", "x",  "1985", "2020"};
  std::mt19937 rng(20261123);
  for (bool wide : {false, true}) {
    hs_database_t* db = nullptr;
    hs_compile_error_t* err = nullptr;
    std::string expr = Expanded(wide);
    ASSERT_EQ(hs_compile(expr.c_str(), HS_FLAG_SOM_LEFTMOST, HS_MODE_BLOCK, nullptr, &db, &err),
              HS_SUCCESS)
        << (err ? err->message : "");
    hs_scratch_t* scratch = nullptr;
    ASSERT_EQ(hs_alloc_scratch(db, &scratch), HS_SUCCESS);
    size_t with_matches = 0;
    auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
    const std::vector<std::string> century = {"19", "20", "１９", "２０", "18", "2０"};
    const std::vector<std::string> digit = {"0", "1", "4", "9", "０", "１", "９"};
    const std::vector<std::string> sep1 = {"/", "-", ".", "年", "／", "－", "月", " "};
    const std::vector<std::string> sep2 = {"/", "-", ".", "月", "／", "－", "年", " "};
    for (int iter = 0; iter < 20000; ++iter) {
      // A date's parts in order, each one replaced by a random piece or left
      // out now and then: matches, near misses and overlapping dates.
      std::vector<std::string> parts = {rng() % 2 ? pick(pieces) : "",
                                        pick(century),
                                        pick(digit),
                                        pick(digit),
                                        pick(sep1),
                                        pick(digit),
                                        rng() % 2 ? pick(digit) : "",
                                        pick(sep2),
                                        pick(digit),
                                        rng() % 2 ? pick(digit) : "",
                                        rng() % 2 ? "日" : "",
                                        rng() % 2 ? pick(pieces) : "",
                                        rng() % 3 ? "" : pick(century) + pick(digit) + pick(digit)};
      std::string s;
      for (auto& part : parts) {
        unsigned r = rng() % 100;
        if (r < 3) continue;
        s += r < 8 ? pick(pieces) : part;
      }
      Spans regex;
      ASSERT_EQ(hs_scan(db, s.data(), static_cast<unsigned>(s.size()), 0, scratch, OnMatch, &regex),
                HS_SUCCESS);
      Spans mine = Tokenized(s, wide);
      ASSERT_EQ(mine, regex) << "input: " << s << (wide ? " (wide century)" : "");
      with_matches += !regex.empty();
      // Streaming: on a prefix, a position either waits or has its final answer.
      for (size_t len = 0; len < s.size(); ++len) {
        std::string_view prefix(s.data(), len);
        for (size_t at = 0; at < len; ++at) {
          size_t part[3], whole[3];
          int got = WesternDateEnds(prefix, at, wide, /*final=*/false, part);
          if (got < 0) continue;
          int want = WesternDateEnds(s, at, wide, /*final=*/true, whole);
          ASSERT_EQ(got, want) << "input: " << s << " prefix " << len << " at " << at;
          for (int e = 0; e < got; ++e) EXPECT_EQ(part[e], whole[e]);
        }
      }
    }
    EXPECT_GT(with_matches, 1500u) << with_matches;  // the inputs do exercise the matcher
    hs_free_scratch(scratch);
    hs_free_database(db);
  }
}

}  // namespace
}  // namespace mamori::detect
