// E-mail address helpers for the mail guard: RFC 5322 address lists in
// To/Cc headers, envelope addresses, domains, and typo distance.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mamori::mail {

// Parses an RFC 5322 address-list header value (To, Cc, ...) into bare
// addr-specs ("local@domain", domain lower-cased). Handles display names,
// quoted strings, nested comments, angle addresses with source routes, and
// groups ("team: a@x, b@y;"). Entries without '@' (e.g. the empty group
// "undisclosed-recipients:;") yield nothing. More than max_addresses entries
// is kResourceExhausted; an unterminated quote, comment or angle bracket is
// kInvalidArgument.
Result<std::vector<std::string>> ParseAddressList(std::string_view value,
                                                  size_t max_addresses = 10000);

// Strips the angle brackets and ESMTP framing of an envelope address
// ("<a@B.example>" -> "a@b.example"). "<>" (null sender) becomes "".
std::string NormalizeEnvelopeAddress(std::string_view raw);

// The lower-cased domain of an address, without a trailing dot; "" if none.
std::string DomainOf(std::string_view address);

// True if `domain` equals `listed` or is a subdomain of it (both lower-case).
bool DomainMatches(std::string_view domain, std::string_view listed);

// Optimal-string-alignment Damerau-Levenshtein distance (insert, delete,
// substitute, swap adjacent), computed up to `cap`: any larger distance is
// reported as cap + 1. Inputs longer than 255 bytes report cap + 1.
int EditDistance(std::string_view a, std::string_view b, int cap = 3);

}  // namespace mamori::mail
