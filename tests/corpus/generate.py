#!/usr/bin/env python3
"""Generates a labelled corpus of realistic Japanese documents for measuring
mamori's detection accuracy (issue 3, "Accuracy"), or a bulk corpus for the
speed benchmark.

  generate.py --out DIR [--seed N] [--docs N]      labelled corpus
  generate.py --bulk --out DIR [--size-mb N]       benchmark corpus (UTF-8)

Labelled mode writes the documents under DIR/docs/ and, beside them:
  DIR/labels.jsonl   one line per (file, type, normalised value):
                       {"file": "docs/0001_customers.csv", "type": "email",
                        "value": "taro.yamada@example.jp", "count": 1,
                        "optional": false, "tags": ["customer_list:col=メール"]}
                     and one line per file:
                       {"file": ..., "kind": ..., "format": ..., "encoding": ...,
                        "individuals": N}
  DIR/manifest.json  seed, counts per type, the number of distinct individuals
                     over the whole corpus, bytes.

"optional" labels are values the engine may report or not without penalty
(company addresses and switchboard numbers, role mailboxes, surname-only
mentions): they are personal-data-shaped but not about a person.

Deterministic: the same --seed and options give byte-identical output.
Python 3 standard library only.
"""

import argparse
import base64
import collections
import csv
import datetime
import io
import json
import os
import random
import shutil
import sys
import zipfile
from email.header import Header

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpuslib as cl  # noqa: E402
import jpdata as jd  # noqa: E402

FW_TABLE = str.maketrans(
    "0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "０１２３４５６７８９－ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ"
    "ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ")
FIXED_DATE = datetime.date(2026, 10, 16)  # "today" in the corpus


def fullwidth(s):
    return s.translate(FW_TABLE)


# ---------------------------------------------------------------------------
# Labels of one top-level file.


class Doc:
    def __init__(self, kind):
        self.kind = kind
        self.labels = collections.Counter()
        self.optional = collections.Counter()
        self.tags = collections.defaultdict(set)
        self.persons = set()

    def add(self, type_, surface, tag, optional=False, label_surface=None):
        """Records a value written into the document; returns `surface`."""
        norm = cl.normalise(type_, label_surface if label_surface is not None else surface)
        key = (type_, norm)
        (self.optional if optional else self.labels)[key] += 1
        self.tags[key].add(("zip>" + tag) if self.kind == "zip" else tag)
        return surface


# ---------------------------------------------------------------------------
# People and companies.


class Person:
    pass


class Company:
    pass


class World:
    """Draws fictitious people and companies; every identifier is unique."""

    def __init__(self, rng):
        self.rng = rng
        self.used = collections.defaultdict(set)
        self.next_id = 1
        self.reusable = []  # people already written with their e-mail
        self.companies = [self._company(stem) for stem in jd.COMPANY_STEMS]

    def unique(self, kind, make):
        for _ in range(1000):
            v = make()
            if v not in self.used[kind]:
                self.used[kind].add(v)
                return v
        raise RuntimeError("cannot draw a unique " + kind)

    def digits(self, n):
        return "".join(self.rng.choice("0123456789") for _ in range(n))

    # -- identifiers, all with valid check digits where one exists
    def my_number(self):
        def make():
            base = self.rng.choice("123456789") + self.digits(10)
            return base + cl.my_number_check(base)
        return self.unique("my_number", make)

    def corporate_number(self):
        def make():
            base = self.rng.choice(["0104", "0110", "0111", "1301", "2700", "3400", "4000", "6011",
                                    "7010", "8011", "9013"]) + self.rng.choice(["01", "02", "03", "05"])
            base += self.digits(6)
            return cl.corporate_check(base) + base
        return self.unique("corporate", make)

    def license(self, birth_year):
        def make():
            first = min(birth_year + self.rng.randint(18, 30), 2025)
            base = self.rng.choice(jd.LICENSE_CODES) + "%02d" % (first % 100) + self.digits(6)
            return base + cl.license_check(base) + self.rng.choice("0000000112")
        return self.unique("license", make)

    def card(self):
        brand = self.rng.choices(["jcb", "visa", "mc", "amex", "diners"], [35, 35, 20, 7, 3])[0]
        if brand == "jcb":
            prefix, length = str(self.rng.randint(3528, 3589)), 16
        elif brand == "visa":
            prefix, length = "4", 16
        elif brand == "mc":
            prefix = str(self.rng.randint(51, 55)) if self.rng.random() < 0.8 else str(
                self.rng.randint(2221, 2720))
            length = 16
        elif brand == "amex":
            prefix, length = self.rng.choice(["34", "37"]), 15
        else:
            prefix, length = "36", 14

        def make():
            partial = prefix + self.digits(length - 1 - len(prefix))
            return partial + cl.luhn_check(partial)
        return brand, self.unique("card", make)

    def pension(self):
        return self.unique("pension", lambda: self.rng.choice(
            ["0049", "5099", "1101", "2105", "3312", "4420", "6103", "7011", "9010"]) + self.digits(6))

    def insurance(self):
        return self.unique("insurance", lambda: self.rng.choice(
            ["1301", "2701", "1401", "2301", "4001", "5001", "3901", "0101"]) + self.digits(7))

    def passport(self):
        return self.unique("passport", lambda: self.rng.choice(["TK", "TR", "TZ", "MZ", "ME", "TS"]) +
                           self.digits(7))

    def residence_card(self):
        def make():
            letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
            return (self.rng.choice(letters) + self.rng.choice(letters) + self.digits(8) +
                    self.rng.choice(letters) + self.rng.choice(letters))
        return self.unique("residence", make)

    def account(self):
        return self.unique("account", lambda: self.rng.choice("0123456789") + self.digits(6))

    def mobile(self):
        return self.unique("phone", lambda: self.rng.choice(["090", "080", "070"]) + self.digits(8))

    def landline(self, area):
        return self.unique("phone", lambda: area + self.digits(10 - len(area)))

    def address(self, pref_index=None):
        r = self.rng
        pref, cities = jd.PREFECTURES[pref_index if pref_index is not None else r.randrange(
            len(jd.PREFECTURES))]
        city, postal3, area = r.choice(cities)
        town = r.choice(jd.TOWNS)
        a, b, c = r.randint(1, 9), r.randint(1, 30), r.randint(1, 25)
        style = r.random()
        if style < 0.4:
            block = "%d-%d-%d" % (a, b, c)
        elif style < 0.7:
            block = "%d丁目%d番%d号" % (a, b, c)
        elif style < 0.85:
            block = "%d丁目%d-%d" % (a, b, c)
        else:
            block = "%d番地%d" % (b * 10 + a, c)
        building = ""
        if r.random() < 0.45:
            building = r.choice(jd.BUILDING_NAMES) + r.choice(jd.BUILDING_KINDS) + r.choice(
                ["%d" % r.randint(101, 905), "%d号室" % r.randint(101, 905), " %d号室" % r.randint(101, 905),
                 "%dF" % r.randint(2, 12)])
        postal = self.unique("postal", lambda: postal3 + self.digits(4))
        return dict(pref=pref, city=city, town=town, block=block, building=building, postal=postal,
                    area=area)

    def email(self, romaji_given, romaji_sur, domain=None):
        r = self.rng
        domain = domain or r.choice(["example.jp", "example.co.jp", "example.ne.jp", "example.com",
                                     "mail.example.jp", "docomo.example.ne.jp", "ezweb.example.ne.jp",
                                     "icloud.example.com", "yahoo.example.co.jp"])

        def make():
            style = r.randrange(6)
            if style == 0:
                local = "%s.%s" % (romaji_given, romaji_sur)
            elif style == 1:
                local = "%s.%s" % (romaji_sur, romaji_given)
            elif style == 2:
                local = "%s%s" % (romaji_given[0], romaji_sur)
            elif style == 3:
                local = "%s_%s%02d" % (romaji_sur, romaji_given, r.randint(0, 99))
            elif style == 4:
                local = "%s%s%d" % (romaji_given, romaji_sur[:3], r.randint(1, 999))
            else:
                local = "%s-%s" % (romaji_given, romaji_sur)
            if self.used["email"] and r.random() < 0.3:
                local += str(r.randint(1, 99))
            return "%s@%s" % (local, domain)
        return self.unique("email", make)

    # -- people
    def person(self, foreign=None):
        r = self.rng
        p = Person()
        p.id = self.next_id
        self.next_id += 1
        p.foreign = foreign if foreign is not None else r.random() < 0.04
        p.male = r.random() < 0.5
        if p.foreign:
            name, kana, romaji = r.choice(jd.FOREIGN)
            p.name, p.kana = name, kana
            p.sur_name = name.split("\u3000")[0]
            p.romaji_sur, p.romaji_given = romaji.split(".")[0], romaji.split(".")[1]
            p.sur_kanji = p.sur_name
        else:
            sur = r.choice(jd.SURNAMES)
            given = r.choice(jd.GIVEN_MALE if p.male else jd.GIVEN_FEMALE)
            p.sur_kanji, p.given_kanji = sur[0], given[0]
            p.name = sur[0] + r.choice(["", " ", "\u3000", "\u3000", " "]) + given[0]
            p.kana = sur[1] + r.choice([" ", "\u3000", ""]) + given[1]
            p.romaji_sur, p.romaji_given = sur[2], given[2]
            p.sur_name = sur[0]
        year = r.randint(1942, 2006)
        p.birth = datetime.date(year, r.randint(1, 12), r.randint(1, 28))
        p.addr = self.address()
        p.phone = self.mobile() if r.random() < 0.7 else self.landline(p.addr["area"])
        p.email = self.email(p.romaji_given, p.romaji_sur)
        p.my_number = self.my_number()
        p.extra = {}
        return p

    def lazy(self, p, field):
        if field not in p.extra:
            if field == "pension":
                p.extra[field] = self.pension()
            elif field == "insurance":
                p.extra[field] = self.insurance()
            elif field == "license":
                p.extra[field] = self.license(p.birth.year)
            elif field == "passport":
                p.extra[field] = self.passport()
            elif field == "residence":
                p.extra[field] = self.residence_card()
            elif field == "bank":
                bank, code = self.rng.choice(jd.BANKS)
                p.extra[field] = (bank, code, self.rng.choice(jd.BRANCHES), "%03d" % self.rng.randint(1, 899),
                                  self.rng.choice(["普通", "普通", "普通", "当座"]), self.account())
            elif field == "card":
                p.extra[field] = self.card()
        return p.extra[field]

    def pick(self, reuse_ok=True):
        """A person: usually new, sometimes one already written with the same
        e-mail elsewhere (then the caller must write the e-mail, the strong key
        that links the two appearances)."""
        if reuse_ok and self.reusable and self.rng.random() < 0.12:
            return self.rng.choice(self.reusable)
        return self.person()

    def written_with_email(self, p):
        if p not in self.reusable:
            self.reusable.append(p)

    def _company(self, stem):
        r = self.rng
        c = Company()
        c.name = (stem[0] + "株式会社") if r.random() < 0.35 else ("株式会社" + stem[0])
        c.domain = stem[1] + ".example.co.jp"
        c.corporate = self.corporate_number()
        c.addr = self.address()
        c.phone = self.landline(c.addr["area"])
        c.fax = self.landline(c.addr["area"])
        c.tollfree = self.unique("phone", lambda: "0120" + self.digits(6))
        bank, code = r.choice(jd.BANKS)
        c.bank = (bank, code, r.choice(jd.BRANCHES), "%03d" % r.randint(1, 899), "普通", self.account())
        return c


# ---------------------------------------------------------------------------
# Surface formats.


class Fmt:
    def __init__(self, rng):
        self.r = rng

    def maybe_fw(self, s, p=0.08):
        return fullwidth(s) if self.r.random() < p else s

    def grouped(self, digits, groups, seps=("-", "-", "-", " ", "", "－", "\u3000", ".")):
        sep = self.r.choice(seps)
        out, i = [], 0
        for g in groups:
            out.append(digits[i:i + g])
            i += g
        return self.maybe_fw(sep.join(out) if sep != "－" else "－".join(out))

    def my_number(self, d, plain_ok=True):
        return self.grouped(d, [4, 4, 4], seps=("-", "-", " ", "", "", "－", "\u3000") if plain_ok else
                            ("-", " ", "－"))

    def phone(self, d, ctx="prose"):
        r = self.r
        if d.startswith(("090", "080", "070", "050")):
            parts = [d[:3], d[3:7], d[7:]]
        elif d.startswith("0120"):
            parts = [d[:4], d[4:7], d[7:]]
        else:
            area = next((p[2] for _, cs in jd.PREFECTURES for p in cs if d.startswith(p[2]) and
                         len(p[2]) >= 2), d[:3])
            # longest matching area code
            cands = [c[2] for _, cs in jd.PREFECTURES for c in cs if d.startswith(c[2])]
            area = max(cands, key=len) if cands else area
            local = d[len(area):]
            parts = [area, local[:len(local) - 4], local[-4:]]
        style = r.random()
        if style < 0.55:
            s = "-".join(parts)
        elif style < 0.65:
            s = "(%s)%s-%s" % tuple(parts)
        elif style < 0.75:
            s = d if ctx == "column" else "-".join(parts)
        elif style < 0.82:
            s = " ".join(parts)
        elif style < 0.9:
            s = "+81-%s-%s-%s" % (parts[0][1:], parts[1], parts[2])
        else:
            s = "－".join(parts)
            return fullwidth(s)
        return self.maybe_fw(s, 0.05)

    def postal(self, d, mark=True):
        s = d[:3] + self.r.choice(["-", "-", "-", "－", ""]) + d[3:]
        s = self.maybe_fw(s, 0.1)
        return ("〒" + self.r.choice(["", " "]) + s) if mark else s

    def card(self, brand, d):
        if brand == "amex":
            groups = [4, 6, 5]
        elif brand == "diners":
            groups = [4, 6, 4]
        else:
            groups = [4, 4, 4, 4]
        return self.grouped(d, groups, seps=("-", " ", "", "-", " ", "－"))

    def birth(self, b, column=False):
        r = self.r.random()
        if r < 0.3:
            return "%04d/%02d/%02d" % (b.year, b.month, b.day)
        if r < 0.45:
            return "%04d-%02d-%02d" % (b.year, b.month, b.day)
        if r < 0.65:
            return self.maybe_fw("%d年%d月%d日" % (b.year, b.month, b.day), 0.15)
        era, ey = cl.to_wareki(b.year, b.month, b.day)
        if r < 0.9:
            return "%s%s年%d月%d日" % (era, "元" if ey == 1 else str(ey), b.month, b.day)
        abbr = cl.ERAS[era][1]
        return "%s%d.%d.%d" % (abbr, ey, b.month, b.day)

    def address(self, a, with_pref=True):
        """Returns (full surface, labelled core without the building)."""
        pref = a["pref"] if with_pref else ""
        block = a["block"]
        if self.r.random() < 0.08:
            block = fullwidth(block)
        core = pref + a["city"] + a["town"] + block
        full = core
        if a["building"]:
            full += self.r.choice(["", " ", "\u3000"]) + a["building"]
        return full, core

    def name(self, p):
        return p.name


# ---------------------------------------------------------------------------
# Encodings and containers.


def encode(text, enc, rng, crlf=False):
    """Encodes text; falls back to UTF-8 when a character has no mapping.
    Returns (bytes, encoding actually used)."""
    if crlf:
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    try:
        if enc == "utf-8-sig":
            return b"\xef\xbb\xbf" + text.encode("utf-8"), enc
        if enc == "utf-16le":
            return b"\xff\xfe" + text.encode("utf-16-le"), enc
        if enc == "euc_jp":
            # legacy EUC-JP systems write U+2212 for the full-width hyphen
            return text.replace("－", "−").replace("～", "〜").encode("euc_jp"), enc
        return text.encode(enc), enc
    except UnicodeEncodeError:
        return text.encode("utf-8"), "utf-8"


def pick_encoding(rng, weights=None):
    encs = ["utf-8", "utf-8-sig", "cp932", "euc_jp", "utf-16le"]
    return rng.choices(encs, weights or [40, 15, 30, 8, 7])[0]


def xml_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def col_name(i):
    s = ""
    i += 1
    while i:
        i, rem = divmod(i - 1, 26)
        s = chr(65 + rem) + s
    return s


ZIP_DATE = (2026, 10, 16, 9, 0, 0)


def zip_bytes(members):
    """members: list of (name, bytes). Deterministic timestamps."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


def xlsx_bytes(sheets):
    """sheets: list of (sheet name, rows); a cell is a str (shared string) or
    an int (number cell). Minimal but valid SpreadsheetML."""
    strings, index = [], {}

    def sst(s):
        if s not in index:
            index[s] = len(strings)
            strings.append(s)
        return index[s]

    sheet_xml = []
    for _, rows in sheets:
        out = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
               '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>']
        for ri, row in enumerate(rows, 1):
            out.append('<row r="%d">' % ri)
            for ci, cell in enumerate(row):
                ref = "%s%d" % (col_name(ci), ri)
                if cell is None or cell == "":
                    continue
                if isinstance(cell, int):
                    out.append('<c r="%s"><v>%d</v></c>' % (ref, cell))
                else:
                    out.append('<c r="%s" t="s"><v>%d</v></c>' % (ref, sst(cell)))
            out.append("</row>")
        out.append("</sheetData></worksheet>")
        sheet_xml.append("".join(out))
    ss = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="%d" uniqueCount="%d">'
          % (len(strings), len(strings))]
    for s in strings:
        space = ' xml:space="preserve"' if s != s.strip() else ""
        ss.append("<si><t%s>%s</t></si>" % (space, xml_escape(s)))
    ss.append("</sst>")
    ct = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
          '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
          '<Default Extension="xml" ContentType="application/xml"/>'
          '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
          'spreadsheetml.sheet.main+xml"/>'
          '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
          'officedocument.spreadsheetml.sharedStrings+xml"/>']
    wb = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
          'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>']
    rels = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">']
    members = []
    for i, (name, _) in enumerate(sheets, 1):
        ct.append('<Override PartName="/xl/worksheets/sheet%d.xml" ContentType="application/vnd.'
                  'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' % i)
        wb.append('<sheet name="%s" sheetId="%d" r:id="rId%d"/>' % (xml_escape(name), i, i))
        rels.append('<Relationship Id="rId%d" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                    'relationships/worksheet" Target="worksheets/sheet%d.xml"/>' % (i, i))
        members.append(("xl/worksheets/sheet%d.xml" % i, sheet_xml[i - 1].encode()))
    rels.append('<Relationship Id="rId%d" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                'relationships/sharedStrings" Target="sharedStrings.xml"/>' % (len(sheets) + 1))
    rels.append("</Relationships>")
    ct.append("</Types>")
    wb.append("</sheets></workbook>")
    root_rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                 '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                 '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                 'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
    return zip_bytes([("[Content_Types].xml", "".join(ct).encode()), ("_rels/.rels", root_rels.encode()),
                      ("xl/workbook.xml", "".join(wb).encode()),
                      ("xl/_rels/workbook.xml.rels", "".join(rels).encode()),
                      ("xl/sharedStrings.xml", "".join(ss).encode())] + members)


def docx_bytes(paragraphs, rng):
    """Minimal WordprocessingML. Word splits text into runs at arbitrary
    points (spell check, revision ids); so do we, sometimes inside a value."""
    body = []
    for para in paragraphs:
        runs = [para]
        if len(para) > 6 and rng.random() < 0.35:
            cut = rng.randint(1, len(para) - 1)
            runs = [para[:cut], para[cut:]]
        body.append("<w:p>" + "".join(
            '<w:r><w:t xml:space="preserve">%s</w:t></w:r>' % xml_escape(t) for t in runs) + "</w:p>")
    doc = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
           '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>' +
           "".join(body) + "</w:body></w:document>")
    ct = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
          '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
          '<Default Extension="xml" ContentType="application/xml"/>'
          '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
          'officedocument.wordprocessingml.document.main+xml"/></Types>')
    rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="word/document.xml"/></Relationships>')
    return zip_bytes([("[Content_Types].xml", ct.encode()), ("_rels/.rels", rels.encode()),
                      ("word/document.xml", doc.encode())])


# ---------------------------------------------------------------------------
# Hard negatives: numbers that look like identifiers but are not.


class Negatives:
    def __init__(self, world):
        self.w = world
        self.r = world.rng
        self.seq = 0

    def order_number(self, must_pass=True):
        """Date + sequence order number; by default one that passes the My
        Number check digit (about 1 in 10 do)."""
        while True:
            self.seq += 1
            d = FIXED_DATE - datetime.timedelta(days=self.r.randint(0, 400))
            s = d.strftime("%Y%m%d") + "%04d" % self.r.randint(1, 9999)
            if not must_pass or cl.my_number_valid(s):
                return s

    def jan(self):
        """A JAN/EAN-13 for a Japanese product; half also pass the Corporate
        Number check digit."""
        want_corp = self.r.random() < 0.5
        for _ in range(200):
            d12 = self.r.choice(["45", "49"]) + self.w.digits(10)
            s = d12 + cl.ean13_check(d12)
            if not want_corp or cl.corporate_valid(s):
                return s
        return s

    def isbn(self):
        for _ in range(200):
            pub = self.w.digits(self.r.choice([2, 3, 4]))
            title = self.w.digits(8 - len(pub))
            d12 = "9784" + pub + title
            s = d12 + cl.ean13_check(d12)
            if self.r.random() < 0.5 or cl.corporate_valid(s):
                return "978-4-%s-%s-%s" % (pub, title, s[-1]) if self.r.random() < 0.7 else s

    def lot_number(self):
        """A Luhn-valid 16-digit number with a card-like prefix."""
        partial = self.r.choice(["4", "35", "5"]) + self.w.digits(14)
        partial = partial[:15]
        s = partial + cl.luhn_check(partial)
        return self.r.choice(["%s-%s-%s-%s" % (s[:4], s[4:8], s[8:12], s[12:]), s,
                              "%s %s %s %s" % (s[:4], s[4:8], s[8:12], s[12:])])

    def timestamp14(self):
        d = FIXED_DATE - datetime.timedelta(days=self.r.randint(0, 30))
        return d.strftime("%Y%m%d") + "%02d%02d%02d" % (self.r.randint(0, 23), self.r.randint(0, 59),
                                                        self.r.randint(0, 59))

    def amount(self):
        v = self.r.choice([self.r.randint(100, 9999), self.r.randint(10000, 999999),
                           self.r.randint(1000000, 99999999)])
        return self.r.choice(["¥{:,}".format(v), "{:,}円".format(v), "{}円".format(v), "￥{:,}".format(v)])

    def product_code(self):
        """Phone-shaped product codes."""
        d = self.w.digits
        return self.r.choice(["%s-%s-%s" % ("0" + d(3), d(4), d(2)),
                              "%s-0%s-%s-%s" % (self.r.choice(["KX", "PN", "TS", "HB"]), d(2), d(4), d(4)),
                              "0%s-%s-%s-%s" % (d(1), d(4), d(4), d(2))])

    def member_number(self):
        return self.w.digits(7)

    def some_date(self):
        d = FIXED_DATE - datetime.timedelta(days=self.r.randint(0, 3000))
        return self.r.choice([d.strftime("%Y/%m/%d"), "%d年%d月%d日" % (d.year, d.month, d.day),
                              d.strftime("%Y-%m-%d")])


# ---------------------------------------------------------------------------
# Document generators. Each writes values into the text and records them in
# the Doc; it returns (file name suffix, bytes, format, encoding).


class Generator:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.w = World(self.rng)
        self.f = Fmt(self.rng)
        self.neg = Negatives(self.w)

    # -- helpers ------------------------------------------------------------
    def prose(self, n):
        return "".join(self.rng.choice(jd.PROSE) for _ in range(n))

    def csv_text(self, rows, delim=",", quote_all=False):
        buf = io.StringIO()
        wr = csv.writer(buf, delimiter=delim, lineterminator="\n",
                        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
        for row in rows:
            wr.writerow(row)
        return buf.getvalue()

    def person_columns(self, doc, p, cols, tag, row_fmt):
        """Values of person p for the chosen columns, recorded in doc."""
        f, w = self.f, self.w
        out = []
        emitted_email = False
        for key, header in cols:
            t = "%s:col=%s" % (tag, header)
            if key == "name":
                out.append(doc.add("jp.person_name", p.name, t))
            elif key == "kana":
                out.append(doc.add("jp.person_name", p.kana, t))
            elif key == "birth":
                out.append(doc.add("jp.birth_date", f.birth(p.birth, column=True), t))
            elif key == "postal":
                out.append(doc.add("jp.postal_code", f.postal(p.addr["postal"], mark=self.rng.random() < 0.2), t))
            elif key == "address":
                full, core = f.address(p.addr, with_pref=self.rng.random() > 0.05)
                out.append(doc.add("jp.address", full, t, label_surface=core))
            elif key == "address1":
                full, core = f.address(p.addr)
                out.append(doc.add("jp.address", core, t))
            elif key == "address2":
                # the building alone: part of the address, reported or not
                b = p.addr["building"]
                out.append(doc.add("jp.address", b, t, optional=True) if b else "")
            elif key == "phone":
                out.append(doc.add("jp.phone", f.phone(p.phone, ctx="column"), t))
            elif key == "email":
                out.append(doc.add("email", p.email, t))
                emitted_email = True
            elif key == "my_number":
                d = p.my_number
                if row_fmt == "xlsx" and self.rng.random() < 0.5:
                    doc.add("jp.my_number", d, t + ":number-cell")
                    out.append(int(d))
                else:
                    out.append(doc.add("jp.my_number", f.my_number(d), t))
            elif key == "pension":
                d = w.lazy(p, "pension")
                out.append(doc.add("jp.basic_pension_number", f.grouped(d, [4, 6], seps=("-", "-", "", " ")), t))
            elif key == "insurance":
                d = w.lazy(p, "insurance")
                out.append(doc.add("jp.employment_insurance_number",
                                   f.grouped(d, [4, 6, 1], seps=("-", "-", "-", "")), t))
            elif key == "license":
                d = w.lazy(p, "license")
                out.append(doc.add("jp.drivers_license", f.grouped(d, [12], seps=("",)) if self.rng.random() < 0.8
                                   else f.grouped(d, [4, 4, 4], seps=("-", " ")), t))
            elif key == "passport":
                if p.foreign or self.rng.random() < 0.3:
                    out.append(doc.add("jp.passport", w.lazy(p, "passport"), t))
                else:
                    out.append("")
            elif key == "residence":
                if p.foreign:
                    out.append(doc.add("jp.residence_card", w.lazy(p, "residence"), t))
                else:
                    out.append("")
            elif key in ("bank", "branch", "acct_type", "account", "bank_code", "branch_code"):
                bank = w.lazy(p, "bank")
                if key == "bank":
                    out.append(bank[0])
                elif key == "bank_code":
                    out.append(bank[1])
                elif key == "branch":
                    out.append(bank[2])
                elif key == "branch_code":
                    out.append(bank[3])
                elif key == "acct_type":
                    out.append(bank[4])
                else:
                    out.append(doc.add("jp.bank_account", bank[5], t))
            elif key == "card":
                brand, d = w.lazy(p, "card")
                out.append(doc.add("credit_card", f.card(brand, d), t))
            elif key == "customer_id":
                out.append("C%06d" % (100000 + p.id))
            elif key == "employee_id":
                out.append("%05d" % (10000 + p.id % 90000))
            elif key == "order":
                out.append(self.neg.order_number(must_pass=self.rng.random() < 0.5))
            elif key == "order_date":
                out.append(self.neg.some_date())
            elif key == "amount":
                out.append(self.neg.amount())
            elif key == "joined":
                out.append(self.neg.some_date())
            elif key == "dept":
                out.append(self.rng.choice(jd.DEPARTMENTS))
            elif key == "rank":
                out.append(self.rng.choice(["ゴールド", "シルバー", "一般", "プラチナ"]))
            elif key == "points":
                out.append(str(self.rng.randint(0, 20000)))
            elif key == "member":
                out.append(self.neg.member_number())
            elif key == "gender":
                out.append("男" if p.male else "女")
            else:
                raise KeyError(key)
        if emitted_email:
            self.w.written_with_email(p)
        return out

    def header_choice(self, options):
        return self.rng.choice(options)

    # -- customer list (CSV/TSV) ---------------------------------------------
    CUSTOMER_COLS = [
        ("customer_id", ["顧客ID", "顧客番号", "会員ID"], 0.7),
        ("name", ["氏名", "お名前", "顧客名", "氏名（漢字）", "名前"], 1.0),
        ("kana", ["フリガナ", "ふりがな", "氏名カナ", "カナ氏名"], 0.7),
        ("gender", ["性別"], 0.3),
        ("birth", ["生年月日", "誕生日", "生年月日(西暦)"], 0.6),
        ("postal", ["郵便番号", "〒", "郵便"], 0.8),
        ("address", ["住所", "ご住所", "現住所"], 0.9),
        ("phone", ["電話番号", "TEL", "携帯電話", "連絡先", "電話"], 0.85),
        ("email", ["メールアドレス", "E-mail", "メール", "email"], 0.75),
        ("my_number", ["個人番号", "マイナンバー"], 0.12),
        ("rank", ["会員ランク"], 0.3),
        ("points", ["ポイント残高"], 0.3),
        ("joined", ["登録日", "入会日"], 0.5),
    ]

    def gen_customer_list(self, doc, fmt=None):
        r = self.rng
        cols = []
        for key, headers, prob in self.CUSTOMER_COLS:
            if r.random() < prob:
                cols.append((key, r.choice(headers)))
        if not any(k == "name" for k, _ in cols):
            cols.insert(0, ("name", "氏名"))
        if any(k == "address" for k, _ in cols) and r.random() < 0.25:
            i = [k for k, _ in cols].index("address")
            cols[i:i + 1] = [("address1", "住所1"), ("address2", "住所2")]
        has_email = any(k == "email" for k, _ in cols)
        n = r.randint(15, 120)
        rows = [[h for _, h in cols]]
        for _ in range(n):
            p = self.w.pick(reuse_ok=has_email)
            rows.append(self.person_columns(doc, p, cols, "customer_list", fmt or "csv"))
            doc.persons.add(p.id)
        return self.tabular(doc, rows, fmt, "customers")

    def tabular(self, doc, rows, fmt, stem):
        r = self.rng
        fmt = fmt or r.choices(["csv", "tsv", "xlsx"], [65, 15, 20])[0]
        if fmt == "xlsx":
            sheet = r.choice(["Sheet1", "顧客一覧", "名簿", "社員名簿", "データ"])
            return stem + ".xlsx", xlsx_bytes([(sheet, rows)]), "xlsx", "utf-8"
        delim = "\t" if fmt == "tsv" else ","
        text = self.csv_text([[str(c) for c in row] for row in rows], delim, quote_all=r.random() < 0.2)
        enc = pick_encoding(r, [30, 15, 40, 8, 7] if fmt == "csv" else [30, 5, 15, 5, 45])
        data, enc = encode(text, enc, r, crlf=r.random() < 0.6)
        return stem + (".csv" if fmt == "csv" else (".tsv" if r.random() < 0.5 else ".txt")), data, fmt, enc

    # -- employee master -----------------------------------------------------
    EMPLOYEE_COLS = [
        ("employee_id", ["社員番号", "従業員番号", "社員コード"], 1.0),
        ("name", ["氏名", "社員名", "従業員名"], 1.0),
        ("kana", ["フリガナ", "氏名（カナ）", "カナ氏名"], 0.8),
        ("gender", ["性別"], 0.5),
        ("birth", ["生年月日"], 0.9),
        ("dept", ["所属", "部署"], 0.8),
        ("joined", ["入社日", "入社年月日"], 0.8),
        ("postal", ["郵便番号"], 0.6),
        ("address", ["住所", "現住所"], 0.7),
        ("phone", ["電話番号", "携帯番号", "緊急連絡先"], 0.6),
        ("email", ["メールアドレス", "社用メール"], 0.6),
        ("my_number", ["個人番号", "マイナンバー", "個人番号(マイナンバー)"], 0.6),
        ("pension", ["基礎年金番号", "年金番号"], 0.6),
        ("insurance", ["雇用保険被保険者番号", "雇用保険番号", "被保険者番号"], 0.55),
        ("bank", ["銀行名", "振込先銀行"], 0.5),
        ("branch", ["支店名"], 1.0),  # only kept when the bank is
        ("acct_type", ["口座種別", "預金種目"], 1.0),
        ("account", ["口座番号", "振込口座番号"], 1.0),
        ("license", ["運転免許証番号", "免許証番号", "運転免許番号"], 0.3),
        ("residence", ["在留カード番号", "在留カードNo"], 0.25),
        ("passport", ["パスポート番号", "旅券番号"], 0.2),
    ]

    def gen_employee_master(self, doc, fmt=None):
        r = self.rng
        cols = []
        has_bank = False
        for key, headers, prob in self.EMPLOYEE_COLS:
            if key in ("branch", "acct_type", "account"):
                if has_bank:
                    cols.append((key, r.choice(headers)))
                continue
            if r.random() < prob:
                cols.append((key, r.choice(headers)))
                has_bank = has_bank or key == "bank"
        has_email = any(k == "email" for k, _ in cols)
        foreign_rate = 0.3 if any(k == "residence" for k, _ in cols) else 0.03
        rows = [[h for _, h in cols]]
        for _ in range(r.randint(10, 80)):
            if has_email and self.w.reusable and r.random() < 0.1:
                p = self.w.pick(True)
            else:
                p = self.w.person(foreign=r.random() < foreign_rate)
            rows.append(self.person_columns(doc, p, cols, "employee_master", fmt or "csv"))
            doc.persons.add(p.id)
        return self.tabular(doc, rows, fmt or r.choices(["csv", "tsv", "xlsx"], [45, 15, 40])[0], "employees")

    # -- EC order export with card numbers and hard-negative order numbers ---
    def gen_orders(self, doc, fmt=None):
        r = self.rng
        hdr = ["注文番号", "注文日時", "お名前", "メールアドレス", "電話番号", "郵便番号", "お届け先住所",
               "お支払い方法", "カード番号", "商品JAN", "金額"]
        rows = [hdr]
        for _ in range(r.randint(20, 100)):
            p = self.w.pick(True)
            doc.persons.add(p.id)
            row = [self.neg.order_number(must_pass=r.random() < 0.6), self.neg.timestamp14()]
            row += self.person_columns(doc, p, [("name", "お名前"), ("email", "メールアドレス"),
                                                ("phone", "電話番号"), ("postal", "郵便番号"),
                                                ("address", "お届け先住所")], "orders", "csv")
            if r.random() < 0.5:
                row.append("クレジットカード")
                brand, d = self.w.lazy(p, "card")
                row.append(doc.add("credit_card", self.f.card(brand, d), "orders:col=カード番号"))
            else:
                row += [r.choice(["代金引換", "銀行振込", "コンビニ払い"]), ""]
            row += [self.neg.jan(), self.neg.amount()]
            rows.append(row)
        return self.tabular(doc, rows, fmt or "csv", "orders")

    # -- product catalogue: hard negatives only --------------------------------
    def gen_catalog(self, doc, fmt=None):
        r = self.rng
        hdr = ["品番", "商品名", "JANコード", "ISBN", "ロット番号", "製造番号", "型番", "登録日時", "単価", "在庫数"]
        rows = [hdr]
        for _ in range(r.randint(30, 150)):
            rows.append(["P%05d" % r.randint(1, 99999), r.choice(jd.PRODUCTS), self.neg.jan(),
                         self.neg.isbn() if r.random() < 0.3 else "", self.neg.lot_number(),
                         self.neg.lot_number() if r.random() < 0.5 else self.neg.order_number(),
                         self.neg.product_code(), self.neg.timestamp14(), self.neg.amount(),
                         str(r.randint(0, 5000))])
        return self.tabular(doc, rows, fmt, "catalog")

    # -- supplier master: corporate numbers with contacts ----------------------
    def gen_suppliers(self, doc, fmt=None):
        r = self.rng
        hdr = ["取引先コード", r.choice(["取引先名", "会社名"]), r.choice(["法人番号", "登録番号"]),
               "所在地", "代表電話", "担当者", "担当者メール", "取引開始日", "支払条件"]
        invoice_style = hdr[2] == "登録番号"
        rows = [hdr]
        for _ in range(r.randint(10, 60)):
            stem = r.choice(jd.COMPANY_STEMS)
            name = r.choice(["株式会社", "有限会社", "合同会社"]) + stem[0] + r.choice(["", "販売", "サービス", "西日本"])
            corp = self.w.corporate_number()
            addr = self.w.address()
            full, core = self.f.address(addr)
            contact = self.w.pick(True)
            doc.persons.add(contact.id)
            corp_surface = ("T" + corp) if invoice_style and r.random() < 0.8 else self.f.maybe_fw(corp, 0.05)
            rows.append(["S%04d" % r.randint(1, 9999), name,
                         doc.add("jp.corporate_number", corp_surface, "suppliers:col=" + hdr[2]),
                         doc.add("jp.address", full, "suppliers:company", optional=True, label_surface=core),
                         doc.add("jp.phone", self.f.phone(self.w.landline(addr["area"]), "column"),
                                 "suppliers:company", optional=True),
                         doc.add("jp.person_name", contact.name, "suppliers:col=担当者"),
                         doc.add("email", contact.email, "suppliers:col=担当者メール"),
                         self.neg.some_date(), r.choice(["月末締め翌月末払い", "20日締め翌月10日払い", "都度"])])
            self.w.written_with_email(contact)
        return self.tabular(doc, rows, fmt, "suppliers")

    # -- foreign worker register (外国人雇用状況) --------------------------------
    def gen_foreign_register(self, doc, fmt=None):
        r = self.rng
        hdr = ["社員番号", "氏名", r.choice(["国籍・地域", "国籍"]), "在留資格",
               r.choice(["在留カード番号", "在留カードNo."]), "在留期間満了日",
               r.choice(["パスポート番号", "旅券番号"]), "生年月日", "資格外活動許可"]
        rows = [hdr]
        for _ in range(r.randint(5, 40)):
            p = self.w.person(foreign=True)
            doc.persons.add(p.id)
            rows.append(["%05d" % (10000 + p.id % 90000),
                         doc.add("jp.person_name", p.name, "foreign_register:col=氏名"),
                         r.choice(["ベトナム", "中国", "フィリピン", "ネパール", "インドネシア", "韓国", "ブラジル"]),
                         r.choice(["技術・人文知識・国際業務", "特定技能1号", "技能実習2号ロ", "永住者", "留学"]),
                         doc.add("jp.residence_card", self.w.lazy(p, "residence"), "foreign_register:col=" + hdr[4]),
                         self.neg.some_date(),
                         doc.add("jp.passport", self.f.maybe_fw(self.w.lazy(p, "passport"), 0.05),
                                 "foreign_register:col=" + hdr[6]),
                         doc.add("jp.birth_date", self.f.birth(p.birth, column=True), "foreign_register:col=生年月日"),
                         r.choice(["有", "無"])])
        return self.tabular(doc, rows, fmt, "foreign_workers")

    # -- invoice (text or docx) --------------------------------------------------
    def company_block(self, doc, c, tag):
        f = self.f
        full, core = f.address(c.addr)
        lines = [c.name,
                 "登録番号：" + doc.add("jp.corporate_number", "T" + c.corporate, tag + ":登録番号"),
                 doc.add("jp.postal_code", f.postal(c.addr["postal"]), tag + ":company", optional=True),
                 doc.add("jp.address", full, tag + ":company", optional=True, label_surface=core),
                 "TEL " + doc.add("jp.phone", f.phone(c.phone), tag + ":company", optional=True) +
                 "　FAX " + doc.add("jp.phone", f.phone(c.fax), tag + ":company-fax", optional=True)]
        return lines

    def gen_invoice(self, doc, fmt=None):
        r = self.rng
        seller, buyer = r.sample(self.w.companies, 2)
        contact = self.w.pick(True)
        doc.persons.add(contact.id)
        contact_email = self.w.email(contact.romaji_given, contact.romaji_sur, seller.domain) \
            if r.random() < 0.5 else contact.email
        self.w.used["email"].add(contact_email)
        if contact_email == contact.email:
            self.w.written_with_email(contact)
        lines = ["請求書", "", buyer.name + "　御中", "",
                 "請求日：" + self.neg.some_date(),
                 "請求書番号：INV-%d-%06d" % (FIXED_DATE.year, r.randint(1, 999999)),
                 "ご注文番号：" + self.neg.order_number(), ""]
        lines += self.company_block(doc, seller, "invoice:seller")
        lines += ["担当：" + doc.add("jp.person_name", contact.name, "invoice:担当"),
                  "E-mail：" + doc.add("email", contact_email, "invoice:担当"), ""]
        if r.random() < 0.5:
            lines.append("取引先法人番号：" + doc.add("jp.corporate_number", buyer.corporate, "invoice:buyer"))
        lines.append("品名\tJANコード\t数量\t単価\t金額")
        for _ in range(r.randint(2, 8)):
            lines.append("%s\t%s\t%d\t%s\t%s" % (r.choice(jd.PRODUCTS), self.neg.jan(), r.randint(1, 50),
                                                 self.neg.amount(), self.neg.amount()))
        if r.random() < 0.4:
            lines.append("参考書籍 ISBN" + self.neg.isbn())
        lines += ["", "小計　" + self.neg.amount(), "消費税（10%）　" + self.neg.amount(),
                  "合計金額　" + self.neg.amount(), "お支払期限：" + self.neg.some_date(), ""]
        bank = seller.bank
        lines.append("お振込先：%s %s %s %s" % (bank[0], bank[2], bank[4],
                                            doc.add("jp.bank_account", bank[5], "invoice:振込先", optional=True)))
        lines.append("※振込手数料は貴社にてご負担ください。")
        return self.document(doc, lines, fmt, "invoice")

    def document(self, doc, lines, fmt, stem):
        r = self.rng
        fmt = fmt or r.choices(["txt", "docx", "html"], [55, 35, 10])[0]
        if fmt == "docx":
            return stem + ".docx", docx_bytes(lines, r), "docx", "utf-8"
        if fmt == "html":
            body = "".join("<p>%s</p>\n" % xml_escape(line) if line else "<br>\n" for line in lines)
            html = ('<!DOCTYPE html>\n<html lang="ja"><head><meta charset="utf-8"><title>%s</title></head>'
                    "<body>\n%s</body></html>\n" % (stem, body))
            return stem + ".html", html.encode("utf-8"), "html", "utf-8"
        data, enc = encode("\n".join(lines) + "\n", pick_encoding(r), r, crlf=r.random() < 0.5)
        return stem + ".txt", data, "txt", enc

    # -- prose letter -----------------------------------------------------------
    def gen_letter(self, doc, fmt=None):
        r = self.rng
        p = self.w.person()  # no strong key is guaranteed: always a new person
        doc.persons.add(p.id)
        f = self.f
        full, core = f.address(p.addr)
        sender = r.choice(self.w.companies)
        name_in_text = p.name.replace(" ", "").replace("\u3000", "") if r.random() < 0.5 else p.name
        lines = [f.postal(p.addr["postal"]), full, "", name_in_text + " 様", ""]
        doc.add("jp.postal_code", lines[0], "letter:宛先")
        doc.add("jp.address", full, "letter:宛先", label_surface=core)
        doc.add("jp.person_name", name_in_text, "letter:宛名")
        lines += [self.prose(2), "", "記", ""]
        if r.random() < 0.5:
            lines.append("お客様番号：C%06d" % r.randint(1, 999999))
        if r.random() < 0.6:
            lines.append("ご登録のお電話番号：" + doc.add("jp.phone", f.phone(p.phone), "letter:本文"))
        if r.random() < 0.4:
            lines.append("ご登録のメールアドレス：" + doc.add("email", p.email, "letter:本文"))
            self.w.written_with_email(p)
        if r.random() < 0.4:
            lines.append("生年月日：" + doc.add("jp.birth_date", f.birth(p.birth), "letter:本文"))
        if r.random() < 0.2:
            lines.append("マイナンバー（個人番号）：" + doc.add("jp.my_number", f.my_number(p.my_number, False),
                                                        "letter:本文"))
        if r.random() < 0.3:
            bank = self.w.lazy(p, "bank")
            lines.append("お振込先口座：%s %s %s 口座番号 %s" % (
                bank[0], bank[2], bank[4], doc.add("jp.bank_account", bank[5], "letter:本文")))
        lines += ["ご注文日：" + self.neg.some_date(), "ご注文番号：" + self.neg.order_number(), "",
                  self.prose(3), "", "以上", "", sender.name, "カスタマーサポート",
                  "フリーダイヤル " + doc.add("jp.phone", f.phone(sender.tollfree), "letter:sender", optional=True),
                  "受付時間 平日 9:00～18:00"]
        return self.document(doc, lines, fmt, "letter")

    # -- mail (.eml) --------------------------------------------------------------
    def signature(self, doc, p, c, tag):
        f = self.f
        full, core = f.address(c.addr)
        email = p.email
        lines = ["--", c.name + " " + self.rng.choice(jd.DEPARTMENTS),
                 doc.add("jp.person_name", p.name, tag + ":signature") +
                 (" (%s %s)" % (p.romaji_given.capitalize(), p.romaji_sur.capitalize())
                  if self.rng.random() < 0.5 else ""),
                 doc.add("jp.postal_code", f.postal(c.addr["postal"]), tag + ":company", optional=True) + " " +
                 doc.add("jp.address", full, tag + ":company", optional=True, label_surface=core),
                 "TEL: " + doc.add("jp.phone", f.phone(c.phone), tag + ":company", optional=True)]
        if self.rng.random() < 0.6:
            lines.append("携帯: " + doc.add("jp.phone", f.phone(p.phone), tag + ":signature"))
        lines.append("Mail: " + doc.add("email", email, tag + ":signature"))
        return lines

    def addr_header(self, doc, p, tag, enc):
        display = p.name.replace("\u3000", " ")
        doc.add("jp.person_name", display, tag + ":header")
        doc.add("email", p.email, tag + ":header")
        self.w.written_with_email(p)
        try:
            encoded = Header(display, enc).encode()
        except UnicodeEncodeError:
            # ISO-2022-JP lacks some name kanji (髙, 﨑): real mailers fall back to UTF-8.
            encoded = Header(display, "utf-8").encode()
        return "%s <%s>" % (encoded, p.email)

    def gen_mail(self, doc, fmt=None):
        r = self.rng
        f = self.f
        c_from, c_to = r.sample(self.w.companies, 2)
        sender, rcpt = self.w.pick(True), self.w.pick(True)
        doc.persons.update([sender.id, rcpt.id])
        charset = r.choice(["iso-2022-jp", "iso-2022-jp", "utf-8", "utf-8"])
        header_cs = "iso-2022-jp" if charset == "iso-2022-jp" else "utf-8"
        body = [c_to.name, doc.add("jp.person_name", rcpt.name, "mail:宛名") + " 様", "",
                "いつもお世話になっております。", c_from.name + "の" + sender.sur_name + "です。", ""]
        doc.add("jp.person_name", sender.sur_name, "mail:surname-only", optional=True)
        topic = r.random()
        attach = None
        if topic < 0.35:
            subject = "顧客リスト送付の件"
            body += ["ご依頼いただいておりました顧客リストを添付にてお送りいたします。",
                     "パスワードは別途お送りします。", ""]
            adoc_rows = [["氏名", "フリガナ", "電話番号", "メールアドレス", "住所"]]
            for _ in range(r.randint(3, 15)):
                p = self.w.pick(True)
                doc.persons.add(p.id)
                adoc_rows.append(self.person_columns(doc, p, [("name", "氏名"), ("kana", "フリガナ"),
                                                             ("phone", "電話番号"), ("email", "メールアドレス"),
                                                             ("address", "住所")], "mail_attachment", "csv"))
            attach = ("顧客リスト_%s.csv" % FIXED_DATE.strftime("%Y%m%d"),
                      encode(self.csv_text(adoc_rows), "cp932", r, crlf=True)[0])
        elif topic < 0.6:
            subject = "お振込先変更のご連絡"
            bank = self.w.lazy(sender, "bank")
            body += ["お振込先口座が下記のとおり変更となりましたので、ご連絡いたします。", "",
                     "銀行名：" + bank[0], "支店名：%s（%s）" % (bank[2], bank[3]),
                     "口座種別：" + bank[4],
                     "口座番号：" + doc.add("jp.bank_account", bank[5], "mail:本文"),
                     "口座名義：" + sender.kana, ""]
            doc.add("jp.person_name", sender.kana, "mail:口座名義")
        elif topic < 0.8:
            subject = "入社手続き書類について"
            body += ["入社手続きに必要な情報を以下にお送りします。", "",
                     "氏名：" + doc.add("jp.person_name", sender.name, "mail:本文"),
                     "生年月日：" + doc.add("jp.birth_date", f.birth(sender.birth), "mail:本文"),
                     "個人番号：" + doc.add("jp.my_number", f.my_number(sender.my_number, False), "mail:本文"),
                     "基礎年金番号：" + doc.add("jp.basic_pension_number",
                                          f.grouped(self.w.lazy(sender, "pension"), [4, 6], seps=("-",)),
                                          "mail:本文"), ""]
        else:
            subject = "打ち合わせ日程のご相談"
            body += ["来週の打ち合わせについて、下記の日程でいかがでしょうか。",
                     "・%s 14:00～15:00" % self.neg.some_date(), "・%s 10:00～11:00" % self.neg.some_date(),
                     "会議室：%s階 第%d会議室" % (r.randint(2, 12), r.randint(1, 5)), "",
                     "ご都合が悪い場合は、%s までお電話ください。" % doc.add("jp.phone", f.phone(sender.phone),
                                                                   "mail:本文"), ""]
        body += ["何卒よろしくお願いいたします。", ""] + self.signature(doc, sender, c_from, "mail")
        body_text = "\n".join(body) + "\n"
        msgid = "<%s.%06d@mail.%s>" % (self.neg.timestamp14(), r.randint(0, 999999), c_from.domain)
        headers = ["From: " + self.addr_header(doc, sender, "mail:from", header_cs),
                   "To: " + self.addr_header(doc, rcpt, "mail:to", header_cs),
                   "Subject: " + Header(subject, header_cs).encode(),
                   "Date: Fri, 16 Oct 2026 %02d:%02d:00 +0900" % (r.randint(8, 20), r.randint(0, 59)),
                   "Message-ID: " + msgid, "MIME-Version: 1.0"]
        if charset == "iso-2022-jp":
            try:
                body_part = ("Content-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 7bit\n\n" +
                             body_text.encode("iso2022_jp").decode("ascii"))
            except UnicodeEncodeError:
                charset = "utf-8"
        if charset == "utf-8":
            b64 = base64.encodebytes(body_text.encode("utf-8")).decode("ascii")
            body_part = "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: base64\n\n" + b64
        if attach:
            boundary = "----=_Part_%08d" % r.randint(0, 99999999)
            fname = Header(attach[0], "utf-8").encode()
            msg = "\n".join(headers) + '\nContent-Type: multipart/mixed; boundary="%s"\n\n' % boundary
            msg += "This is a multi-part message in MIME format.\n\n--%s\n%s\n--%s\n" % (boundary, body_part, boundary)
            msg += ('Content-Type: text/csv; charset=Shift_JIS; name="%s"\nContent-Transfer-Encoding: base64\n'
                    'Content-Disposition: attachment; filename="%s"\n\n' % (fname, fname))
            msg += base64.encodebytes(attach[1]).decode("ascii") + "\n--%s--\n" % boundary
        else:
            msg = "\n".join(headers) + "\n" + body_part
        return "mail.eml", msg.replace("\n", "\r\n").encode("ascii"), "eml", charset

    # -- application log -------------------------------------------------------
    def gen_log(self, doc, fmt=None, min_bytes=0):
        """An application log; with min_bytes, a big one (personal data all
        the way to the end, so an engine that stops early is caught)."""
        r = self.rng
        lines = []
        users = [self.w.pick(True) for _ in range(r.randint(3, 12) if not min_bytes else 60)]
        t = datetime.datetime(2026, 10, 16, 0, 0, 0)
        size = 0
        n_lines = r.randint(60, 400)
        while len(lines) < n_lines or size < min_bytes:
            if lines:
                size += len(lines[-1]) + 1
            t += datetime.timedelta(seconds=r.randint(1, 120))
            ts = t.strftime("%Y-%m-%dT%H:%M:%S+09:00") if r.random() < 0.7 else t.strftime("%Y%m%d%H%M%S")
            ip = "%d.%d.%d.%d" % (r.choice([10, 172, 192, 203]), r.randint(0, 255), r.randint(0, 255),
                                  r.randint(1, 254))
            kind = r.random()
            if min_bytes and kind < 0.62 and r.random() < 0.9:
                kind = 0.7 + kind / 2  # big logs: mostly access lines, personal data sparse
            if kind < 0.3:
                u = r.choice(users)
                doc.persons.add(u.id)
                self.w.written_with_email(u)
                lines.append("%s INFO  [auth] login ok user=%s ip=%s session=%016x" % (
                    ts, doc.add("email", u.email, "log:user="), ip, r.getrandbits(64)))
            elif kind < 0.5:
                lines.append("%s INFO  [order] created order_id=%s amount=%d items=%d ip=%s" % (
                    ts, self.neg.order_number(must_pass=r.random() < 0.5), r.randint(100, 99999),
                    r.randint(1, 9), ip))
            elif kind < 0.56:
                u = r.choice(users)
                doc.persons.add(u.id)
                lines.append("%s WARN  [mail] bounce to=<%s> status=5.1.1 ref=%s" % (
                    ts, doc.add("email", u.email, "log:bounce"), self.neg.timestamp14()))
            elif kind < 0.6:
                u = r.choice(users)
                doc.persons.add(u.id)
                lines.append("%s INFO  [sms] sent to=%s template=otp user=%s" % (
                    ts, doc.add("jp.phone", self.f.phone(u.phone), "log:sms"), doc.add("email", u.email, "log:sms")))
                self.w.written_with_email(u)
            elif kind < 0.62:
                u = r.choice(users)
                doc.persons.add(u.id)
                brand, d = self.w.lazy(u, "card")
                lines.append("%s ERROR [payment] declined card=%s user=%s code=05" % (
                    ts, doc.add("credit_card", d, "log:payment"), doc.add("email", u.email, "log:payment")))
                self.w.written_with_email(u)
            elif kind < 0.7:
                lines.append("%s INFO  [batch] job=%s started pid=%d" % (ts, self.neg.timestamp14(),
                                                                         r.randint(1000, 65000)))
            else:
                lines.append('%s - - [%s] "GET /api/v1/items/%d HTTP/1.1" 200 %d' % (
                    ip, t.strftime("%d/%b/%Y:%H:%M:%S +0900"), r.randint(1, 99999), r.randint(200, 90000)))
        text = "\n".join(lines) + "\n"
        data, enc = encode(text, "utf-8", r)
        return ("app.log" if not min_bytes else "big_app.log"), data, "log", enc

    # -- JSON export ------------------------------------------------------------
    def gen_json(self, doc, fmt=None):
        r = self.rng
        records = []
        for _ in range(r.randint(5, 40)):
            p = self.w.pick(True)
            doc.persons.add(p.id)
            rec = collections.OrderedDict()
            rec["id"] = "C%06d" % (100000 + p.id)
            rec["name"] = doc.add("jp.person_name", p.name, "json:name")
            rec["name_kana"] = doc.add("jp.person_name", p.kana, "json:name_kana")
            rec["birth_date"] = doc.add("jp.birth_date", "%04d-%02d-%02d" % (p.birth.year, p.birth.month,
                                                                             p.birth.day), "json:birth_date")
            rec["email"] = doc.add("email", p.email, "json:email")
            self.w.written_with_email(p)
            rec["tel"] = doc.add("jp.phone", self.f.phone(p.phone, "column"), "json:tel")
            rec["zip"] = doc.add("jp.postal_code", self.f.postal(p.addr["postal"], mark=False), "json:zip")
            full, core = self.f.address(p.addr)
            rec["address"] = doc.add("jp.address", full, "json:address", label_surface=core)
            rec["order_no"] = self.neg.order_number()
            rec["created_at"] = self.neg.timestamp14()
            records.append(rec)
        ascii_only = r.random() < 0.25
        text = json.dumps({"customers": records, "exported_at": "2026-10-16T09:00:00+09:00"},
                          ensure_ascii=ascii_only, indent=2 if r.random() < 0.7 else None)
        return "export.json", text.encode("utf-8"), "json", "utf-8" + ("(\\u-escaped)" if ascii_only else "")

    # -- containers ---------------------------------------------------------------
    SIMPLE = ["customer_list", "employee_master", "invoice", "letter", "mail", "log", "orders", "suppliers",
              "foreign_register"]

    def gen_zip(self, doc, fmt=None):
        r = self.rng
        members = []
        for i in range(r.randint(2, 4)):
            kind = r.choice(self.SIMPLE)
            name, data, _, _ = getattr(self, "gen_" + kind)(doc)
            members.append(("%s/%02d_%s" % (r.choice(["顧客データ", "export", "2026年10月", "data"]), i, name), data))
        if r.random() < 0.35:
            inner = []
            for i in range(r.randint(1, 2)):
                kind = r.choice(self.SIMPLE)
                name, data, _, _ = getattr(self, "gen_" + kind)(doc)
                inner.append(("%02d_%s" % (i, name), data))
            members.append(("backup/old_%s.zip" % FIXED_DATE.strftime("%Y%m%d"), zip_bytes(inner)))
        return "archive.zip", zip_bytes(members), "zip", "-"

    KINDS = [("customer_list", 18), ("employee_master", 11), ("orders", 7), ("catalog", 5),
             ("suppliers", 5), ("foreign_register", 4), ("invoice", 10), ("letter", 10), ("mail", 14),
             ("log", 6), ("json", 5), ("zip", 10)]

    def run(self, out_dir, n_docs, big_mb=0):
        docs_dir = os.path.join(out_dir, "docs")
        if os.path.isdir(docs_dir) and os.path.exists(os.path.join(out_dir, "manifest.json")):
            shutil.rmtree(docs_dir)  # a corpus we wrote before: start afresh
        os.makedirs(docs_dir, exist_ok=True)
        kinds = [k for k, _ in self.KINDS]
        weights = [w for _, w in self.KINDS]
        all_persons = set()
        type_counts = collections.Counter()
        total_bytes = 0
        label_lines = []
        for i in range(1, n_docs + 1 + (1 if big_mb else 0)):
            kind = self.rng.choices(kinds, weights)[0] if i <= n_docs else "log"
            doc = Doc(kind)
            if i > n_docs:
                name, data, fmt, enc = self.gen_log(doc, min_bytes=big_mb << 20)
            else:
                name, data, fmt, enc = getattr(self, "gen_" + kind)(doc)
            rel = "docs/%04d_%s" % (i, name)
            with open(os.path.join(out_dir, rel), "wb") as fh:
                fh.write(data)
            total_bytes += len(data)
            all_persons |= doc.persons
            label_lines.append({"file": rel, "kind": kind, "format": fmt, "encoding": enc,
                                "individuals": len(doc.persons), "bytes": len(data)})
            for table, optional in ((doc.labels, False), (doc.optional, True)):
                for (type_, value), count in sorted(table.items()):
                    label_lines.append({"file": rel, "type": type_, "value": value, "count": count,
                                        "optional": optional, "tags": sorted(doc.tags[(type_, value)])})
                    if not optional:
                        type_counts[type_] += count
        with open(os.path.join(out_dir, "labels.jsonl"), "w", encoding="utf-8") as fh:
            for line in label_lines:
                fh.write(json.dumps(line, ensure_ascii=False) + "\n")
        manifest = {"seed": self.seed, "docs": n_docs + (1 if big_mb else 0), "bytes": total_bytes,
                    "individuals": len(all_persons), "counts": dict(sorted(type_counts.items()))}
        with open(os.path.join(out_dir, "manifest.json"), "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, ensure_ascii=False, indent=2)
            fh.write("\n")
        return manifest


# ---------------------------------------------------------------------------
# Bulk mode for the speed benchmark: UTF-8 prose and CSV, sparse personal data.


def bulk(out_dir, size_mb, seed, file_mb=8):
    gen = Generator(seed)
    r = gen.rng
    os.makedirs(out_dir, exist_ok=True)
    # Pools, built once; files are assembled from them quickly.
    prose_lines = [gen.prose(r.randint(2, 6)) for _ in range(3000)]
    neg_lines = []
    for _ in range(1500):
        neg_lines.append(r.choice([
            "ご注文番号：%s（%s）" % (gen.neg.order_number(must_pass=False), gen.neg.some_date()),
            "JANコード %s の商品を%d個出荷しました。" % (gen.neg.jan(), r.randint(1, 99)),
            "合計金額は%sです。ロット番号 %s" % (gen.neg.amount(), gen.neg.lot_number()),
            "処理番号 %s 型番 %s" % (gen.neg.timestamp14(), gen.neg.product_code())]))
    pii_lines = []
    for _ in range(1500):
        p = gen.w.person()
        full, _ = gen.f.address(p.addr)
        pii_lines.append(r.choice([
            "お客様 %s 様（%s）より、%s 宛にご連絡がありました。" % (p.name, gen.f.phone(p.phone), p.email),
            "%s %s %s" % (gen.f.postal(p.addr["postal"]), full, p.name),
            "個人番号：%s　氏名：%s" % (gen.f.my_number(p.my_number, False), p.name),
            "カード番号 %s でのお支払いを確認しました。" % gen.f.card(*gen.w.lazy(p, "card")),
            "生年月日 %s、連絡先 %s" % (gen.f.birth(p.birth), gen.f.phone(p.phone))]))
    # CSV: an order log whose 備考 (remarks) column sometimes holds personal data.
    csv_rows = []
    remarks = ["", "", "", "", "再配達希望", "ギフト包装", "午前中指定", "領収書要", "在庫確認中"]
    for _ in range(5000):
        note = r.choice(remarks)
        if r.random() < 0.03:
            note = r.choice(pii_lines).replace(",", "、")
        csv_rows.append(",".join([gen.neg.order_number(must_pass=False), gen.neg.timestamp14(),
                                  "P%06d" % r.randint(1, 999999), r.choice(jd.PRODUCTS), gen.neg.jan(),
                                  str(r.randint(1, 50)), str(r.randint(100, 99999)), r.choice(jd.DEPARTMENTS),
                                  note]))
    header = "注文番号,注文日時,商品コード,商品名,JANコード,数量,単価,担当部署,備考\n"
    target = size_mb * 1024 * 1024
    written, n = 0, 0
    chunk_target = file_mb * 1024 * 1024
    while written < target:
        n += 1
        is_csv = n % 2 == 0
        parts, size = [], 0
        if is_csv:
            parts.append(header)
        while size < chunk_target and written + size < target:
            if is_csv:
                block = "\n".join(r.choices(csv_rows, k=200)) + "\n"
            else:
                k = r.random()
                src = pii_lines if k < 0.02 else (neg_lines if k < 0.1 else prose_lines)
                block = "\n".join(r.choices(src, k=20 if src is prose_lines else 1)) + "\n"
            parts.append(block)
            size += len(block.encode("utf-8"))
        data = "".join(parts).encode("utf-8")
        path = os.path.join(out_dir, "bulk_%04d.%s" % (n, "csv" if is_csv else "txt"))
        with open(path, "wb") as fh:
            fh.write(data)
        written += len(data)
    return {"files": n, "bytes": written}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--seed", type=int, default=20261016)
    ap.add_argument("--docs", type=int, default=300, help="number of top-level files (labelled mode)")
    ap.add_argument("--big-mb", type=int, default=0,
                    help="labelled mode: add one log file of at least this many MiB")
    ap.add_argument("--bulk", action="store_true", help="write the benchmark corpus instead")
    ap.add_argument("--size-mb", type=int, default=1024, help="bulk mode: total size in MiB")
    ap.add_argument("--file-mb", type=int, default=8, help="bulk mode: size of each file in MiB")
    args = ap.parse_args()
    if args.bulk:
        res = bulk(args.out, args.size_mb, args.seed, args.file_mb)
        print("generate: %d files, %.1f MiB in %s" % (res["files"], res["bytes"] / 1048576, args.out))
        return 0
    if args.docs < 1:
        ap.error("--docs must be at least 1")
    gen = Generator(args.seed)
    gen.seed = args.seed
    m = gen.run(args.out, args.docs, args.big_mb)
    print("generate: %d files, %.2f MiB, %d individuals, %d labelled values in %s" % (
        m["docs"], m["bytes"] / 1048576, m["individuals"], sum(m["counts"].values()), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
