#!/usr/bin/env python3
"""Self-test of the corpus tools (no mamori needed): check digits against
published examples, determinism, container validity, and that evaluate.py
scores a perfect scan as perfect and a damaged one as failing."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import corpuslib as cl  # noqa: E402


def run(*args):
    return subprocess.run([sys.executable] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


class CheckDigits(unittest.TestCase):
    def test_my_number(self):  # examples from detection.md §4.1
        for v in ["123456789018", "621498320257", "465281266333", "111111111118", "000111111111"]:
            self.assertTrue(cl.my_number_valid(v), v)
        self.assertFalse(cl.my_number_valid("123456789012"))

    def test_corporate(self):  # §4.2
        for v in ["5835678256246", "1180301018771", "7040001016687", "6010701027558"]:
            self.assertTrue(cl.corporate_valid(v), v)
        self.assertFalse(cl.corporate_valid("5835678256247"))

    def test_license(self):  # §4.3
        self.assertTrue(cl.license_valid("309012345620"))
        self.assertFalse(cl.license_valid("309212345610"))

    def test_luhn(self):  # §4.6
        for v in ["4111111111111111", "3530111333300000", "4532015112830366", "5425233430109903"]:
            self.assertTrue(cl.luhn_valid(v), v)
        self.assertFalse(cl.luhn_valid("4111111111111112"))

    def test_dates(self):
        self.assertEqual(cl.parse_date("昭和60年4月1日"), "1985-04-01")
        self.assertEqual(cl.parse_date("S60.4.1"), "1985-04-01")
        self.assertEqual(cl.parse_date("平成元年1月8日"), "1989-01-08")
        self.assertEqual(cl.parse_date("１９９０年１２月３１日"), "1990-12-31")
        self.assertEqual(cl.to_wareki(1989, 1, 7), ("昭和", 64))
        self.assertEqual(cl.to_wareki(2019, 5, 1), ("令和", 1))

    def test_normalise(self):
        self.assertEqual(cl.normalise("jp.my_number", "１２３４－５６７８－９０１８"), "123456789018")
        self.assertEqual(cl.normalise("jp.phone", "+81-90-1234-5678"), "09012345678")
        self.assertEqual(cl.normalise("jp.person_name", "山田　太郎様"), "山田太郎")
        self.assertEqual(cl.normalise("jp.address", "東京都千代田区丸の内1丁目2番3号 サンハイツ203"),
                         cl.normalise("jp.address", "東京都千代田区丸の内１－２－３サンハイツ203"))
        self.assertTrue(cl.fuzzy_match("jp.address", cl.normalise("jp.address", "東京都千代田区丸の内1-2-3 サンハイツ"),
                                       cl.normalise("jp.address", "東京都千代田区丸の内1-2-3")))
        self.assertFalse(cl.fuzzy_match("jp.address", "東京都", "東京都千代田区丸の内1-2-3"))


class Corpus(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mamori-corpus-selftest-")
        cls.a = os.path.join(cls.tmp, "a")
        cls.b = os.path.join(cls.tmp, "b")
        for d in (cls.a, cls.b):
            r = run(os.path.join(HERE, "generate.py"), "--out", d, "--docs", "60", "--seed", "7")
            assert r.returncode == 0, r.stderr.decode()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_deterministic(self):
        names = sorted(os.listdir(os.path.join(self.a, "docs")))
        self.assertEqual(names, sorted(os.listdir(os.path.join(self.b, "docs"))))
        for n in names + ["../labels.jsonl"]:
            with open(os.path.join(self.a, "docs", n), "rb") as x, open(os.path.join(self.b, "docs", n), "rb") as y:
                self.assertEqual(x.read(), y.read(), n)

    def test_containers_open(self):
        for n in os.listdir(os.path.join(self.a, "docs")):
            if n.endswith((".zip", ".xlsx", ".docx")):
                with zipfile.ZipFile(os.path.join(self.a, "docs", n)) as z:
                    self.assertIsNone(z.testzip(), n)

    def test_labels_are_valid(self):
        checks = {"jp.my_number": cl.my_number_valid, "jp.corporate_number": cl.corporate_valid,
                  "jp.drivers_license": cl.license_valid, "credit_card": cl.luhn_valid}
        with open(os.path.join(self.a, "labels.jsonl"), encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                if rec.get("type") in checks:
                    self.assertTrue(checks[rec["type"]](rec["value"]), rec)

    def findings_from_labels(self, damage=False):
        out = []
        with open(os.path.join(self.a, "labels.jsonl"), encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                if "type" not in rec or rec["optional"]:
                    continue
                path = rec["file"] + ("!inner/x.csv" if rec["file"].endswith(".zip") else "")
                for _ in range(rec["count"]):
                    out.append({"path": path, "type": rec["type"], "value": rec["value"]})
        if damage:  # lose a tenth of the e-mails and invent order numbers as My Numbers
            kept, dropped = [], 0
            for f in out:
                if f["type"] == "email" and dropped * 10 < len(out) // 50:
                    dropped += 1
                    continue
                kept.append(f)
            kept += [{"path": "docs/0001_x", "type": "jp.my_number", "value": "202610160001"}] * 20
            out = kept
        with open(os.path.join(self.a, "manifest.json"), encoding="utf-8") as fh:
            individuals = json.load(fh)["individuals"]
        out.append({"summary": {"files": 60, "errors": 0, "individuals": individuals, "seconds": 0.1}})
        path = os.path.join(self.tmp, "damaged.jsonl" if damage else "perfect.jsonl")
        with open(path, "w", encoding="utf-8") as fh:
            for f in out:
                fh.write(json.dumps(f, ensure_ascii=False) + "\n")
        return path

    def test_perfect_scan_passes(self):
        r = run(os.path.join(HERE, "evaluate.py"), "--corpus", self.a, "--findings", self.findings_from_labels(),
                "--check")
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())
        self.assertIn("All targets met", r.stdout.decode())

    def test_damaged_scan_fails(self):
        r = run(os.path.join(HERE, "evaluate.py"), "--corpus", self.a, "--findings",
                self.findings_from_labels(damage=True), "--check")
        self.assertEqual(r.returncode, 1, r.stdout.decode())
        self.assertIn("jp.my_number", r.stdout.decode())
        self.assertIn("email", r.stdout.decode())


if __name__ == "__main__":
    unittest.main()
