#!/usr/bin/env python3
"""Measures mamori's detection accuracy on a corpus made by generate.py.

  evaluate.py --corpus DIR --mamori path/to/mamori [--threads N] [--check]
  evaluate.py --corpus DIR --findings scan.jsonl          (a saved scan)

Runs `mamori scan DIR/docs --format jsonl --show-values --min-confidence
medium`, normalises each reported value (corpuslib.normalise: NFKC, digits
only for numeric types, lower-case e-mail, no spaces in names, ISO dates),
and matches the findings against labels.jsonl as multisets per (file, type).
A finding inside a container (`a.zip!x/y.csv`, `b.xlsx!Sheet1!C7`) counts
for the top-level file. Findings that match an "optional" label are ignored.

Prints precision, recall and F1 per type, the distinct-individuals error, a
markdown table, and examples of misses (masked). With --check, exits 1 when a
target of issue 3 is missed, and 2 when the scan itself failed.
"""

import argparse
import collections
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpuslib as cl  # noqa: E402


def mask(type_, v):
    """Masks a value for printing (the corpus is fictitious, but the habit matters)."""
    if type_ == "email" and "@" in v:
        local, domain = v.split("@", 1)
        return local[:1] + "*" * max(len(local) - 1, 1) + "@" + domain
    if len(v) <= 4:
        return v[:1] + "*" * (len(v) - 1)
    keep = 2 if len(v) < 10 else 4
    return v[:keep] + "*" * (len(v) - keep - 2) + v[-2:]


def load_labels(corpus):
    labels = collections.defaultdict(collections.Counter)    # (file, type) -> Counter
    optional = collections.defaultdict(collections.Counter)
    tags = {}
    files = {}
    with open(os.path.join(corpus, "labels.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if "type" not in rec:
                files[rec["file"]] = rec
                continue
            key = (rec["file"], rec["type"])
            (optional if rec.get("optional") else labels)[key][rec["value"]] += rec["count"]
            tags[(rec["file"], rec["type"], rec["value"])] = rec.get("tags", [])
    with open(os.path.join(corpus, "manifest.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    return labels, optional, tags, files, manifest


def top_level(path, corpus):
    outer = path.split("!", 1)[0]
    if os.path.isabs(outer):
        outer = os.path.relpath(outer, os.path.abspath(corpus))
    while outer.startswith("./"):
        outer = outer[2:]
    return outer


def run_scan(args):
    cmd = [os.path.abspath(args.mamori), "scan", "docs", "--format", "jsonl", "--show-values", "--min-confidence",
           args.min_confidence]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    try:
        proc = subprocess.run(cmd, cwd=args.corpus, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=args.timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        sys.exit("evaluate: cannot run %s: %s" % (" ".join(cmd), e))
    if proc.returncode not in (0, 1, 2):
        sys.stderr.write(proc.stderr.decode("utf-8", "replace")[-4000:])
        sys.exit("evaluate: `%s` failed with exit code %d" % (" ".join(cmd), proc.returncode))
    if proc.returncode == 2:
        sys.stderr.write("evaluate: mamori scan exited 2 (errors or incomplete files): %s\n" %
                         proc.stderr.decode("utf-8", "replace")[-2000:])
    return proc.stdout.decode("utf-8", "replace"), proc.returncode


def parse_findings(text):
    findings, summary, bad = [], None, 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if "summary" in rec:
            summary = rec["summary"]
        else:
            findings.append(rec)
    return findings, summary, bad


def evaluate(findings, labels, optional, corpus):
    found = collections.defaultdict(collections.Counter)
    missing_value = 0
    for f in findings:
        if "value" not in f:
            missing_value += 1
            continue
        file = top_level(f.get("path", ""), corpus)
        t = f.get("type", "?")
        found[(file, t)][cl.normalise(t, f["value"])] += 1

    stats = collections.defaultdict(lambda: collections.Counter())
    fps, fns = collections.defaultdict(list), collections.defaultdict(list)
    for key in set(found) | set(labels):
        file, t = key
        got = found.get(key, collections.Counter()).copy()
        want = labels.get(key, collections.Counter()).copy()
        opt = optional.get(key, collections.Counter()).copy()
        tp = 0
        for v in list(got):  # exact matches
            n = min(got[v], want.get(v, 0))
            if n:
                tp += n
                got[v] -= n
                want[v] -= n
        for v in list(got):  # near matches (addresses, bank accounts)
            while got[v] > 0:
                hit = next((w for w in want if want[w] > 0 and cl.fuzzy_match(t, v, w)), None)
                if hit is None:
                    break
                tp += 1
                got[v] -= 1
                want[hit] -= 1
        for v in list(got):  # optional labels: ignored either way
            while got[v] > 0:
                hit = next((w for w in opt if opt[w] > 0 and (w == v or cl.fuzzy_match(t, v, w))), None)
                if hit is None:
                    break
                got[v] -= 1
                opt[hit] -= 1
        fp = sum(n for n in got.values() if n > 0)
        fn = sum(n for n in want.values() if n > 0)
        stats[t]["tp"] += tp
        stats[t]["fp"] += fp
        stats[t]["fn"] += fn
        for v, n in got.items():
            if n > 0:
                fps[t].append((file, v, n))
        for v, n in want.items():
            if n > 0:
                fns[t].append((file, v, n))
    return stats, fps, fns, missing_value


def prf(s):
    tp, fp, fn = s["tp"], s["fp"], s["fn"]
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f1


def group_of(t):
    for g, (target, types) in cl.GROUPS.items():
        if t in types:
            return g, target
    return "other", None


def per_file_individuals(args, files):
    """Diagnostic: scans files one by one and compares each file's
    `individuals` with its label, summed per kind of document."""
    by_kind = collections.defaultdict(lambda: [0, 0, 0])
    worst = []
    names = sorted(files)[:args.individuals_per_file]
    for name in names:
        proc = subprocess.run([os.path.abspath(args.mamori), "scan", name, "--format", "jsonl"],
                              cwd=args.corpus, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              timeout=args.timeout)
        _, summary, _ = parse_findings(proc.stdout.decode("utf-8", "replace"))
        est = (summary or {}).get("individuals", 0)
        true = files[name]["individuals"]
        k = by_kind[files[name]["kind"]]
        k[0] += 1
        k[1] += true
        k[2] += est
        worst.append((abs(est - true), name, true, est))
    print("\nDistinct individuals per file (%d files scanned one by one):" % len(names))
    print("| kind | files | true | estimated | error |\n|---|---:|---:|---:|---:|")
    for kind, (n, true, est) in sorted(by_kind.items()):
        print("| %s | %d | %d | %d | %s |" % (kind, n, true, est,
                                            "%+.1f%%" % (100.0 * (est - true) / true) if true else "-"))
    for _, name, true, est in sorted(worst, reverse=True)[:args.examples]:
        print("  %s: true %d, estimated %d" % (name, true, est))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, help="directory written by generate.py")
    ap.add_argument("--mamori", help="the mamori binary")
    ap.add_argument("--findings", help="evaluate a saved `mamori scan --format jsonl --show-values` output")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--min-confidence", default="medium")
    ap.add_argument("--timeout", type=int, default=900, help="seconds allowed for the scan")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target of issue 3 is missed")
    ap.add_argument("--examples", type=int, default=5, help="misses to print per type")
    ap.add_argument("--individuals-per-file", type=int, default=0, metavar="N",
                    help="diagnostic: also scan the first N files one by one and compare individuals per kind")
    ap.add_argument("--markdown", help="also write the results table to this file")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    args = ap.parse_args()
    if not args.findings and not args.mamori:
        ap.error("give --mamori or --findings")

    labels, optional, tags, files, manifest = load_labels(args.corpus)
    if args.findings:
        with open(args.findings, encoding="utf-8") as fh:
            text, rc = fh.read(), None
    else:
        text, rc = run_scan(args)
    findings, summary, bad = parse_findings(text)
    if summary is None:
        print("evaluate: the scan printed no summary line; the output is incomplete", file=sys.stderr)
        return 2
    stats, fps, fns, missing_value = evaluate(findings, labels, optional, args.corpus)

    failures = []
    rows = []
    for t in cl.TYPES + sorted(set(stats) - set(cl.TYPES)):
        s = stats.get(t, collections.Counter())
        p, r, f1 = prf(s)
        g, target = group_of(t)
        ok = target is None and s["tp"] + s["fp"] == 0 or target is not None and p >= target and r >= target
        if t not in cl.TYPES:
            ok = False  # an unknown type name is a contract violation
        rows.append((t, g, target, s["tp"], s["fp"], s["fn"], p, r, f1, ok))
        if not ok:
            failures.append("%s: precision %.4f recall %.4f (target %s)" % (t, p, r, target))

    true_ind = manifest["individuals"]
    est = summary.get("individuals")
    ind_err = (est - true_ind) / true_ind if isinstance(est, (int, float)) and true_ind else None
    if ind_err is None or abs(ind_err) > cl.INDIVIDUALS_TOLERANCE:
        failures.append("distinct individuals: estimated %s, true %d (tolerance ±%.0f%%)" % (
            est, true_ind, cl.INDIVIDUALS_TOLERANCE * 100))
    errors = summary.get("errors", 0)
    if errors:
        failures.append("%d file(s) reported as errors/incomplete: %s" % (
            errors, json.dumps(summary.get("incomplete", [])[:5], ensure_ascii=False)))
    if missing_value:
        failures.append("%d finding(s) had no \"value\" (was --show-values honoured?)" % missing_value)
    if bad:
        failures.append("%d output line(s) were not JSON" % bad)

    # -- report ---------------------------------------------------------------
    print("corpus: %d files, %.2f MiB, seed %s; scan: %s files, %s bytes, %.2f s, %d findings" % (
        manifest["docs"], manifest["bytes"] / 1048576, manifest["seed"], summary.get("files"),
        summary.get("bytes"), float(summary.get("seconds") or 0), len(findings)))
    table = ["| type | group | target | TP | FP | FN | precision | recall | F1 | ok |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for t, g, target, tp, fp, fn, p, r, f1, ok in rows:
        table.append("| %s | %s | %s | %d | %d | %d | %.4f | %.4f | %.4f | %s |" % (
            t, g, "%.3f" % target if target else "-", tp, fp, fn, p, r, f1, "yes" if ok else "**no**"))
    ind_line = "Distinct individuals: estimated %s, true %d, error %s (target ±%.0f%%)" % (
        est, true_ind, "%+.2f%%" % (ind_err * 100) if ind_err is not None else "n/a",
        cl.INDIVIDUALS_TOLERANCE * 100)
    print("\n".join(table))
    print()
    print(ind_line)

    if args.examples:
        for t in sorted(set(fns) | set(fps)):
            for kind, items in (("missed (FN)", fns.get(t, [])), ("false positive (FP)", fps.get(t, []))):
                if not items:
                    continue
                print("\n%s %s: %d distinct, e.g." % (t, kind, len(items)))
                for file, v, n in sorted(items)[:args.examples]:
                    how = tags.get((file, t, v))
                    print("  %s  %s x%d%s" % (file, mask(t, v), n, ("  <- " + ", ".join(how)) if how else ""))

    if args.individuals_per_file:
        per_file_individuals(args, files)

    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write("\n".join(table) + "\n\n" + ind_line + "\n")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"types": {t: {"tp": tp, "fp": fp, "fn": fn, "precision": p, "recall": r, "f1": f1}
                                 for t, _, _, tp, fp, fn, p, r, f1, _ in rows},
                       "individuals": {"estimated": est, "true": true_ind, "error": ind_err},
                       "failures": failures}, fh, ensure_ascii=False, indent=2)

    if failures:
        print("\nTargets missed:\n  " + "\n  ".join(failures))
    else:
        print("\nAll targets met.")
    return 1 if (args.check and failures) else 0


if __name__ == "__main__":
    sys.exit(main())
