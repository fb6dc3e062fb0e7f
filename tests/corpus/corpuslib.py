"""Shared helpers for the mamori accuracy corpus: check digits, value
normalisation and the matching rules used by generate.py and evaluate.py.

Python 3 standard library only.
"""

import re
import unicodedata

# Every type the engine reports (the contract in issue 3).
TYPES = [
    "jp.my_number",
    "jp.corporate_number",
    "credit_card",
    "jp.drivers_license",
    "jp.passport",
    "jp.residence_card",
    "jp.bank_account",
    "jp.basic_pension_number",
    "jp.employment_insurance_number",
    "jp.phone",
    "email",
    "jp.postal_code",
    "jp.address",
    "jp.person_name",
    "jp.birth_date",
]

# Accuracy targets from issue 3 ("Accuracy"). Precision and recall must both
# reach the group's target.
GROUPS = {
    "validated": (0.995, ["jp.my_number", "jp.corporate_number", "credit_card", "jp.drivers_license"]),
    "contextual": (0.97, ["jp.bank_account", "jp.basic_pension_number",
                          "jp.employment_insurance_number", "jp.passport", "jp.residence_card"]),
    "contact": (0.93, ["jp.phone", "email", "jp.postal_code", "jp.address", "jp.person_name",
                       "jp.birth_date"]),
}
INDIVIDUALS_TOLERANCE = 0.03

NUMERIC_TYPES = {
    "jp.my_number", "jp.corporate_number", "credit_card", "jp.drivers_license",
    "jp.bank_account", "jp.basic_pension_number", "jp.employment_insurance_number",
    "jp.phone", "jp.postal_code",
}

# ---------------------------------------------------------------------------
# Check digits (tests/corpus is independent of the engine's code on purpose;
# formulas from /work/shared/reference/detection.md section 4).


def my_number_check(d11):
    """Check digit for the first 11 digits of a My Number (個人番号)."""
    weights = [6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2]
    r = sum(int(c) * w for c, w in zip(d11, weights)) % 11
    return "0" if r <= 1 else str(11 - r)


def my_number_valid(s):
    return len(s) == 12 and s.isdigit() and my_number_check(s[:11]) == s[11]


def corporate_check(base12):
    """Leading check digit of a Corporate Number (法人番号) for its 12-digit base."""
    total = 0
    for i, c in enumerate(reversed(base12)):
        total += int(c) * (1 if i % 2 == 0 else 2)
    return str(9 - total % 9)


def corporate_valid(s):
    return len(s) == 13 and s.isdigit() and corporate_check(s[1:]) == s[0]


def license_check(d10):
    """Check digit (digit 11) of a driver's licence number over digits 1-10."""
    weights = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2]
    return str((11 - sum(int(c) * w for c, w in zip(d10, weights)) % 11) % 10)


def license_valid(s):
    return len(s) == 12 and s.isdigit() and license_check(s[:10]) == s[10]


def luhn_check(partial):
    """Luhn check digit to append to `partial`."""
    total = 0
    for i, c in enumerate(reversed(partial)):
        d = int(c)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(s):
    return s.isdigit() and len(s) >= 2 and luhn_check(s[:-1]) == s[-1]


def ean13_check(d12):
    total = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(d12))
    return str((10 - total % 10) % 10)


# ---------------------------------------------------------------------------
# Dates, including 和暦 (Japanese eras).

ERAS = {  # name -> (first Gregorian year, abbreviation)
    "明治": (1868, "M"),
    "大正": (1912, "T"),
    "昭和": (1926, "S"),
    "平成": (1989, "H"),
    "令和": (2019, "R"),
}
ERA_BY_ABBR = {abbr: start for _, (start, abbr) in ERAS.items()}


def to_wareki(year, month, day):
    """Returns (era name, era year) for a Gregorian date (era switch dates respected)."""
    ymd = (year, month, day)
    if ymd >= (2019, 5, 1):
        return "令和", year - 2018
    if ymd >= (1989, 1, 8):
        return "平成", year - 1988
    if ymd >= (1926, 12, 25):
        return "昭和", year - 1925
    if ymd >= (1912, 7, 30):
        return "大正", year - 1911
    return "明治", year - 1867


_DATE_PATTERNS = [
    re.compile(r"(?P<y>\d{4})\s*[/\-.年]\s*(?P<m>\d{1,2})\s*[/\-.月]\s*(?P<d>\d{1,2})\s*日?"),
    re.compile(r"(?P<era>明治|大正|昭和|平成|令和)\s*(?P<ey>\d{1,2}|元)\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日?"),
    re.compile(r"(?P<abbr>[MTSHRmtshr])\s*(?P<ey>\d{1,2})\s*[./\-]\s*(?P<m>\d{1,2})\s*[./\-]\s*(?P<d>\d{1,2})"),
    re.compile(r"^(?P<y>(?:19|20)\d{2})(?P<m>\d{2})(?P<d>\d{2})$"),
]


def parse_date(text):
    """Parses a date in any of the corpus' formats to 'YYYY-MM-DD', or None."""
    t = unicodedata.normalize("NFKC", text).strip()
    for pat in _DATE_PATTERNS:
        m = pat.search(t)
        if not m:
            continue
        g = m.groupdict()
        if g.get("y"):
            year = int(g["y"])
        else:
            ey = 1 if g["ey"] == "元" else int(g["ey"])
            start = ERAS[g["era"]][0] if g.get("era") else ERA_BY_ABBR[g["abbr"].upper()]
            year = start + ey - 1
        month, day = int(g["m"]), int(g["d"])
        if 1 <= month <= 12 and 1 <= day <= 31:
            return "%04d-%02d-%02d" % (year, month, day)
    return None


# ---------------------------------------------------------------------------
# Normalisation: labels are written normalised; findings are normalised with
# the same function before matching.

_SPACES = re.compile(r"[\s\u3000・･]+")
_HONORIFIC = re.compile(r"(様|さま|さん|殿|氏|君|先生)$")
_HYPHENS = re.compile(r"[\-‐‑‒–—―−－ーｰ]")
_ADDR_BLOCK = re.compile(r"(\d+)(丁目|番地|番|号)")
_ADDR_POSTAL = re.compile(r"^〒?\s*\d{3}-?\d{4}\s*")


def normalise(type_, value):
    v = unicodedata.normalize("NFKC", value).strip()
    if type_ in NUMERIC_TYPES:
        digits = "".join(c for c in v if c.isdigit())
        if type_ == "jp.phone" and v.startswith("+81"):
            digits = "0" + digits[2:]
        return digits
    if type_ == "email":
        return v.strip("<>()[]\"' ,;").lower()
    if type_ in ("jp.passport", "jp.residence_card"):
        return "".join(c for c in v if c.isalnum()).upper()
    if type_ == "jp.person_name":
        v = _SPACES.sub("", v)
        return _HONORIFIC.sub("", v)
    if type_ == "jp.address":
        v = _SPACES.sub("", v)
        v = _ADDR_POSTAL.sub("", v)
        v = _HYPHENS.sub("-", v)
        v = _ADDR_BLOCK.sub(r"\1-", v)
        v = re.sub(r"-+", "-", v)
        return re.sub(r"-(?![0-9])", "", v)
    if type_ == "jp.birth_date":
        return parse_date(v) or v
    return v


def fuzzy_match(type_, found, label):
    """Whether a normalised finding counts as the normalised label when they
    are not equal. Exact equality is tried first by the evaluator."""
    if type_ == "jp.address":
        # The finding may run on into the building name, or stop a little
        # short of the block number; it must cover at least 80% of the label.
        if found.startswith(label):
            return True
        return label.startswith(found) and len(found) >= 0.8 * len(label)
    if type_ == "jp.bank_account":
        # Reported with its branch (and bank) code in front: ends with the account.
        return found.endswith(label) and len(found) <= len(label) + 7
    return False
