#!/usr/bin/env python3
"""Generates mamori's sample documents (examples/) and the extract fuzzers' seed
corpora (fuzz/corpus/extract_*/). Deterministic: same bytes on every run.

All people, numbers and addresses are FICTITIOUS. My Numbers carry a valid
check digit (weights 6,5,4,3,2,7,6,5,4,3,2; r = sum mod 11; check = 0 if r <= 1
else 11 - r) so the detector validates them.

Usage: python3 tests/extract/make_fixtures.py [REPO_ROOT]
"""
import base64
import datetime
import io
import os
import sys
import zipfile

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
EXAMPLES = os.path.join(ROOT, "examples")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
STAMP = (2026, 4, 1, 9, 0, 0)


def my_number(first11: str) -> str:
    weights = [6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2]
    r = sum(int(d) * w for d, w in zip(first11, weights)) % 11
    return first11 + str(0 if r <= 1 else 11 - r)


def zip_bytes(files, compression=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in files:
            info = zipfile.ZipInfo(name, STAMP)
            info.compress_type = compression
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return buf.getvalue()


CUSTOMERS = [
    ("山田 太郎", "ヤマダ タロウ", "1985/04/01", "090-1234-5678", "taro.yamada@example.jp",
     "100-0001", "東京都千代田区千代田9-9-1", "11122233344"),
    ("佐藤 花子", "サトウ ハナコ", "1990/12/24", "080-2345-6789", "hanako.sato@example.co.jp",
     "530-0001", "大阪府大阪市北区梅田9-8-7", "55566677788"),
    ("鈴木 一郎", "スズキ イチロウ", "1978/07/15", "070-3456-7890", "ichiro.suzuki@example.ne.jp",
     "460-0008", "愛知県名古屋市中区栄9-6-5", "98765432109"),
    ("髙橋 美咲", "タカハシ ミサキ", "2001/02/03", "090-4567-8901", "misaki.t@example.jp",
     "812-0011", "福岡県福岡市博多区博多駅前9-4-3", "24681357902"),
    ("渡辺 健", "ワタナベ ケン", "1969/11/30", "080-5678-9012", "ken.watanabe@example.org",
     "060-0001", "北海道札幌市中央区北一条西9-2-1", "13579246801"),
]


def customers_csv_sjis() -> bytes:
    lines = ["顧客番号,氏名,フリガナ,生年月日,電話番号,メールアドレス,郵便番号,住所,個人番号"]
    for i, c in enumerate(CUSTOMERS):
        lines.append(f"C{1001 + i},{c[0]},{c[1]},{c[2]},{c[3]},{c[4]},{c[5]},{c[6]},{my_number(c[7])}")
    # cp932: NEC/IBM extensions (髙) and the Windows reading of ～ round-trip.
    return ("\r\n".join(lines) + "\r\n").encode("cp932")


def xlsx(sheets, shared):
    """sheets: list of (name, rows); rows: list of (row_number, [(col_letter, value)])."""
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rns = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    index = {s: i for i, s in enumerate(shared)}

    def esc(s):
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    files = [("[Content_Types].xml",
              '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
              '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
              '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
              '<Default Extension="xml" ContentType="application/xml"/>'
              '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
              + "".join(f'<Override PartName="/xl/worksheets/sheet{i + 1}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' for i in range(len(sheets)))
              + '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
              '</Types>'),
             ("_rels/.rels",
              '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
              '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')]
    wb = f'<?xml version="1.0" encoding="UTF-8"?><workbook {ns} {rns}><sheets>'
    rels = '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    for i, (name, rows) in enumerate(sheets):
        wb += f'<sheet name="{esc(name)}" sheetId="{i + 1}" r:id="rId{i + 1}"/>'
        rels += (f'<Relationship Id="rId{i + 1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
                 f'Target="worksheets/sheet{i + 1}.xml"/>')
        body = ""
        for rnum, cells in rows:
            body += f'<row r="{rnum}">'
            for col, val in cells:
                ref = f"{col}{rnum}"
                if isinstance(val, datetime.date):  # a serial number with a date style
                    serial = (val - datetime.date(1899, 12, 30)).days
                    body += f'<c r="{ref}" s="1"><v>{serial}</v></c>'
                elif isinstance(val, (int, float)):
                    body += f'<c r="{ref}"><v>{val}</v></c>'
                else:
                    body += f'<c r="{ref}" t="s"><v>{index[val]}</v></c>'
            body += "</row>"
        files.append((f"xl/worksheets/sheet{i + 1}.xml",
                      f'<?xml version="1.0" encoding="UTF-8"?><worksheet {ns}><sheetData>{body}</sheetData></worksheet>'))
    rels += ('<Relationship Id="rIdS" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
             'Target="sharedStrings.xml"/></Relationships>')
    wb += "</sheets></workbook>"
    files.append(("xl/workbook.xml", wb))
    files.append(("xl/styles.xml",
                  f'<?xml version="1.0" encoding="UTF-8"?><styleSheet {ns}><cellXfs count="2">'
                  '<xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/></cellXfs></styleSheet>'))
    files.append(("xl/_rels/workbook.xml.rels", rels))
    files.append(("xl/sharedStrings.xml",
                  f'<?xml version="1.0" encoding="UTF-8"?><sst {ns} count="{len(shared)}" uniqueCount="{len(shared)}">'
                  + "".join(f"<si><t>{esc(s)}</t></si>" for s in shared) + "</sst>"))
    return zip_bytes(files)


def employee_master():
    header = ["社員番号", "氏名", "生年月日", "所属", "個人番号", "基礎年金番号", "雇用保険被保険者番号", "口座"]
    staff = [
        ("E0001", "中村 直樹", datetime.date(1980, 5, 12), "経理部", my_number("31415926535"), "1234-567890", "1234-567890-1",
         "みずほ銀行 本店 普通 1234567"),
        ("E0002", "小林 由美", datetime.date(1992, 9, 3), "人事部", my_number("27182818284"), "2345-678901", "2345-678901-2",
         "三井住友銀行 新宿支店 普通 7654321"),
        ("E0003", "加藤 誠", datetime.date(1975, 1, 20), "営業部", my_number("16180339887"), "3456-789012", "3456-789012-3",
         "ゆうちょ銀行 〇一八支店 普通 1112223"),
    ]
    shared = header + [v for s in staff for v in s if isinstance(v, str) and not v.isdigit()]
    shared = list(dict.fromkeys(shared))
    cols = "BCDEFGHI"  # the table starts at B2, as many real sheets do
    rows = [(2, list(zip(cols, header)))]
    for i, s in enumerate(staff):
        cells = []
        for c, v in zip(cols, s):
            cells.append((c, int(v) if isinstance(v, str) and v.isdigit() else v))
        rows.append((3 + i * 2, cells))  # sparse: every other row
    notes = [(1, [("A", "この名簿は架空のデータです。")])]
    shared.append("この名簿は架空のデータです。")
    return xlsx([("社員名簿", rows), ("備考", notes)], shared)


def docx_letter():
    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'

    def p(text):
        return f"<w:p><w:r><w:t xml:space=\"preserve\">{text}</w:t></w:r></w:p>"

    body = "".join(p(t) for t in [
        "2026年4月1日",
        "山田 太郎 様",
        "拝啓 時下ますますご清祥のこととお喜び申し上げます。",
        "ご登録の電話番号 090-1234-5678 およびメールアドレス taro.yamada@example.jp 宛てに",
        f"確認のご連絡を差し上げました。個人番号 {my_number('11122233344')} の写しは返却いたします。",
        "敬具",
        "株式会社みほん 総務部",
    ])
    doc = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {w}><w:body>{body}</w:body></w:document>'
    return zip_bytes([
        ("[Content_Types].xml",
         '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
         '<Default Extension="xml" ContentType="application/xml"/>'
         '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'),
        ("word/document.xml", doc),
        ("word/header1.xml", f'<w:hdr {w}>{p("社外秘")}</w:hdr>'),
    ])


def pptx_deck():
    a = 'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'
    pns = 'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"'
    r = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    slide = lambda t: f'<p:sld {pns} {a}><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>{t}</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>'
    return zip_bytes([
        ("[Content_Types].xml", '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'),
        ("ppt/presentation.xml", f'<p:presentation {pns} {r}><p:sldIdLst><p:sldId id="256" r:id="rId1"/></p:sldIdLst></p:presentation>'),
        ("ppt/_rels/presentation.xml.rels", '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/slide" Target="slides/slide1.xml"/></Relationships>'),
        ("ppt/slides/slide1.xml", slide("第1四半期 売上報告（個人情報なし）")),
    ])


def mail_with_csv():
    csv = customers_csv_sjis()
    subject = "=?ISO-2022-JP?B?" + base64.b64encode("顧客リスト送付の件".encode("iso2022_jp")).decode() + "?="
    sender = "=?ISO-2022-JP?B?" + base64.b64encode("佐藤 花子".encode("iso2022_jp")).decode() + "?="
    body = ("山田様\r\n\r\n顧客リストを添付します。\r\n不明点は 080-2345-6789 までご連絡ください。\r\n").encode("iso2022_jp")
    att = base64.encodebytes(csv).decode().replace("\n", "\r\n")
    return (
        "From: " + sender + " <hanako.sato@example.co.jp>\r\n"
        "To: taro.yamada@example.jp\r\n"
        "Subject: " + subject + "\r\n"
        "Date: Wed, 01 Apr 2026 09:00:00 +0900\r\n"
        "Message-ID: <sample-0001@example.co.jp>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"mamori-sample\"\r\n\r\n"
        "--mamori-sample\r\n"
        "Content-Type: text/plain; charset=ISO-2022-JP\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\n").encode() + body + (
        "\r\n--mamori-sample\r\n"
        "Content-Type: text/csv; charset=Shift_JIS; name=\"customers.csv\"\r\n"
        "Content-Disposition: attachment;\r\n filename*=UTF-8''%E9%A1%A7%E5%AE%A2%E3%83%AA%E3%82%B9%E3%83%88.csv\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" + att + "--mamori-sample--\r\n").encode()


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with Helvetica text, offsets computed."""
    stream = f"BT /F1 12 Tf 50 700 Td ({text}) Tj ET".encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, o in enumerate(objs):
        offsets.append(len(out))
        out += f"{i + 1} 0 obj\n".encode() + o + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(path, "wb") as f:
        f.write(data)


def main():
    csv = customers_csv_sjis()
    master = employee_master()
    letter = docx_letter()
    mail = mail_with_csv()
    clean = ("会議メモ（2026年4月1日）\n"
             "・新製品の発売日は 2026年10月16日 に決定。\n"
             "・注文番号 202610160001 の出荷を確認（個人情報ではない）。\n"
             "・ISBN 978-4-00-000000-2 の書籍を購入予定。\n").encode("utf-8")
    deck = pptx_deck()
    write(os.path.join(EXAMPLES, "customers_sjis.csv"), csv)
    write(os.path.join(EXAMPLES, "employee_master.xlsx"), master)
    write(os.path.join(EXAMPLES, "letter.docx"), letter)
    write(os.path.join(EXAMPLES, "mail_with_attachment.eml"), mail)
    write(os.path.join(EXAMPLES, "clean_memo.txt"), clean)
    write(os.path.join(EXAMPLES, "sales_report.pptx"), deck)
    write(os.path.join(EXAMPLES, "bundle.zip"),
          zip_bytes([("顧客/customers_sjis.csv", csv), ("人事/employee_master.xlsx", master),
                     ("mail/mail_with_attachment.eml", mail)]))

    # Seed corpora for the fuzzers (small).
    seeds = {
        "extract_zip": {
            "nested.zip": zip_bytes([("a.txt", b"hello"), ("in.zip", zip_bytes([("b.csv", b"a,b\n1,2\n")]))]),
            "stored.zip": zip_bytes([("s.txt", "山田".encode())], zipfile.ZIP_STORED),
            "empty.zip": zip_bytes([]),
        },
        "extract_ooxml": {"book.xlsx": master, "letter.docx": letter, "deck.pptx": deck},
        "extract_pdf": {"hello.pdf": minimal_pdf("Tel 090-1234-5678")},
        "extract_mime": {
            "mail.eml": mail,
            "simple.eml": b"From: a@example.jp\r\nTo: b@example.jp\r\nSubject: =?UTF-8?B?5bGx55Sw?=\r\n\r\nbody\r\n",
        },
        "extract_decode": {
            "sjis.csv": csv,
            "euc.txt": "山田太郎 東京都".encode("euc_jp"),
            "jis.txt": "山田太郎".encode("iso2022_jp"),
            "utf16le.txt": "\ufeff氏名,電話\n山田,090\n".encode("utf-16-le"),
            "utf16be_nobom.txt": "氏名,電話\n山田,090\n".encode("utf-16-be"),
            "utf8bom.txt": "\ufeff山田".encode("utf-8"),
        },
        "extract_text": {
            "a.csv": b"\x00" + "氏名,住所\n\"山田\",\"東京都\n港区\"\n".encode(),
            "b.json": b"\x01" + '{"customers":[{"phone":"090-1234-5678","n":1}]}'.encode(),
            "c.html": b"\x02" + "<table><tr><th>氏名</th></tr><tr><td>山田&amp;</td></tr></table><script>x</script>".encode(),
            "d.tsv": b"\x03a\tb\n1\t2\n",
        },
    }
    for name, files in seeds.items():
        for fname, data in files.items():
            assert len(data) < 50 * 1024, fname
            write(os.path.join(CORPUS, name, fname), data)


if __name__ == "__main__":
    main()
