#!/usr/bin/env python3
"""Writes a customer list (顧客名簿) of N made-up people for the vault end-to-end
test: 顧客番号, 氏名, 住所, 電話番号, 生年月日 per person, every phone number
distinct. Names and places come from tests/corpus/jpdata.py; all values are
fictitious. Deterministic for a given seed.

Formats:
  csv     UTF-8 CSV with a header row (what a CRM export looks like).
  ledger  a UTF-8 text ledger (顧客台帳), one "項目: 値" line per field and a blank
          line between customers. The vault labels uploads by scanning their raw
          bytes without CSV column context, so today only this form of the same
          data is labelled completely by the vault (see docs/incident.md §11).

usage: make_customers.py [--format csv|ledger] [--seed N] N OUT
"""
import argparse
import datetime
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus"))
import jpdata as jd  # noqa: E402


def people(n, rng):
    phones = set()
    for i in range(n):
        sur = rng.choice(jd.SURNAMES)
        given = rng.choice(jd.GIVEN_MALE if rng.random() < 0.5 else jd.GIVEN_FEMALE)
        pref, cities = rng.choice(jd.PREFECTURES)
        city, _, _ = rng.choice(cities)
        addr = "%s%s%s%d-%d-%d" % (pref, city, rng.choice(jd.TOWNS), rng.randint(1, 9),
                                   rng.randint(1, 30), rng.randint(1, 25))
        while True:
            phone = "%s-%04d-%04d" % (rng.choice(["090", "080", "070"]), rng.randint(0, 9999),
                                      rng.randint(0, 9999))
            if phone not in phones:
                phones.add(phone)
                break
        birth = datetime.date(rng.randint(1945, 2005), rng.randint(1, 12), rng.randint(1, 28))
        yield "C%06d" % (i + 1), "%s %s" % (sur[0], given[0]), addr, phone, birth


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--format", choices=["csv", "ledger"], default="csv")
    ap.add_argument("--seed", type=int, default=20261220)
    ap.add_argument("n", type=int)
    ap.add_argument("out")
    a = ap.parse_args()
    if not 1 <= a.n <= 100000:
        ap.error("N must be 1..100000")
    rng = random.Random(a.seed)
    if a.format == "csv":
        rows = ["顧客番号,氏名,住所,電話番号,生年月日"]
        for cid, name, addr, phone, birth in people(a.n, rng):
            rows.append("%s,%s,%s,%s,%s" % (cid, name, addr, phone, birth.strftime("%Y/%m/%d")))
        text = "\r\n".join(rows) + "\r\n"
    else:
        blocks = []
        for cid, name, addr, phone, birth in people(a.n, rng):
            blocks.append("お客様番号: %s\n氏名: %s\n住所: %s\n電話番号: %s\n生年月日: %d年%d月%d日\n" %
                          (cid, name, addr, phone, birth.year, birth.month, birth.day))
        text = "顧客台帳\n\n" + "\n".join(blocks)
    with open(a.out, "w", encoding="utf-8", newline="") as f:
        f.write(text)


if __name__ == "__main__":
    main()
