#!/usr/bin/env bash
# Scan speed: `mamori scan` against ripgrep with the equivalent raw regex set,
# on the same generated Japanese prose and CSV (issue 3, "Speed").
#
# usage: bench/scan_vs_ripgrep.sh [BUILD_DIR]
# env:   MAMORI_BENCH_MB   corpus size in MiB (default 1024)
#        MAMORI_BENCH_DIR  where the corpus goes (default bench/out/scan_<MB>mb; git-ignored)
#        MAMORI            the mamori binary (default BUILD_DIR/src/cli/mamori)
#        THREADS           the "all threads" count (default: nproc)
#
# Each measurement follows a warm-up run of the same command, so both tools
# read from the page cache. Prints MB/s (10^6 bytes per second of wall time),
# the ratio mamori/rg (higher is better for mamori) and peak RSS. ripgrep only
# matches; mamori also validates check digits, scores context and counts people.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
mamori="${MAMORI:-$build/src/cli/mamori}"
size_mb="${MAMORI_BENCH_MB:-1024}"
data="${MAMORI_BENCH_DIR:-$root/bench/out/scan_${size_mb}mb}"
threads="${THREADS:-$(nproc)}"

die() { echo "scan_vs_ripgrep: $*" >&2; exit 2; }
command -v rg >/dev/null || die "ripgrep (rg) is not installed: apt-get install ripgrep"
[ -x /usr/bin/time ] || die "/usr/bin/time is not installed: apt-get install time"
[ -x "$mamori" ] || die "no mamori binary at $mamori; build it (cmake --build $build --target mamori) or set MAMORI"
command -v python3 >/dev/null || die "python3 is needed to generate the corpus"

# 1. The corpus, generated once per size (bulk mode of the accuracy generator).
# Regenerated when the generator changes (its hash is kept in .complete).
stamp="$(cat "$root/tests/corpus/generate.py" "$root/tests/corpus/jpdata.py" | sha256sum | cut -c1-16)"
if [ "$(cat "$data/.complete" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$data"
  python3 "$root/tests/corpus/generate.py" --bulk --out "$data" --size-mb "$size_mb" --seed 1016
  echo "$stamp" > "$data/.complete"
fi
bytes=$(find "$data" -type f ! -name .complete -printf '%s\n' | awk '{s+=$1} END {print s}')
nfiles=$(find "$data" -type f ! -name .complete | wc -l)

# 2. The raw regex set: what mamori's prefilter looks for, as ripgrep patterns
# (Rust regex syntax, full-width digits and separators included).
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
D='[0-9０-９]'
S='[ \-.\x{3000}\x{FF0D}\x{2010}-\x{2015}\x{2212}\x{30FC}\x{FF70}\x{FF0E}]'
B='(?:^|[^0-9０-９])'
cat > "$work/patterns" <<EOF
${B}${D}{4}${S}?${D}{4}${S}?${D}{4}
${B}[TＴ]?${D}{13}
${B}${D}{4}${S}?${D}{4,6}${S}?${D}{4,5}(?:${S}?${D}{1,4})?
${B}[0０]${D}{1,4}${S}?[(（]?${D}{1,4}[)）]?${S}?${D}{4}
\+81${S}?${D}{1,4}${S}?${D}{1,4}${S}?${D}{4}
[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}
〒\s?${D}{3}${S}?${D}{4}
${B}${D}{3}[\-－]${D}{4}
[A-Za-zＡ-Ｚａ-ｚ]{2}${D}{7}
[A-Za-zＡ-Ｚａ-ｚ]{2}${D}{8}[A-Za-zＡ-Ｚａ-ｚ]{2}
${B}${D}{4}${S}${D}{6}(?:${S}${D})?
${B}${D}{7}
(?:明治|大正|昭和|平成|令和)(?:${D}{1,2}|元)年${D}{1,2}月${D}{1,2}日
${B}(?:19|20|１９|２０)${D}{2}[/\-.年／－]${D}{1,2}[/\-.月／－]${D}{1,2}
(?:北海道|東京都|大阪府|京都府|\p{Han}{2,3}県)\p{Han}{1,6}[市区町村郡]
\p{Han}{1,4}[ \x{3000}]?\p{Han}{1,4}(?:様|さん|殿)
EOF

# 3. Measurements.
run_measured() {  # name threads cmd... ; prints "seconds rss_kb"
  local name="$1" n="$2"; shift 2
  "$@" > "$work/$name.warm" 2>/dev/null || true   # warm-up (page cache, lazy init)
  local start end rc
  start=$(date +%s.%N)
  set +e
  /usr/bin/time -v -o "$work/$name.time" "$@" > "$work/$name.out" 2> "$work/$name.err"
  rc=$?
  set -e
  end=$(date +%s.%N)
  if [ "$name" != "${name#mamori}" ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
    tail -5 "$work/$name.err" >&2
    die "mamori scan exited $rc"
  fi
  local rss cpu
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/$name.time")
  cpu=$(awk -F': ' '/User time|System time/ {s+=$2} END {print s}' "$work/$name.time")
  echo "$(echo "$end - $start" | bc -l) $rss $cpu"
}

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
declare -A secs rss cpu
for n in 1 "$threads"; do
  read -r secs[rg$n] rss[rg$n] cpu[rg$n] < <(run_measured "rg$n" "$n" \
    rg -c --no-ignore --hidden --no-messages -j "$n" -f "$work/patterns" "$data")
  read -r secs[mamori$n] rss[mamori$n] cpu[mamori$n] < <(run_measured "mamori$n" "$n" \
    "$mamori" scan "$data" --format jsonl --threads "$n")
  rg_lines=$(awk -F: '{s+=$NF} END {print s+0}' "$work/rg$n.out")
  mamori_findings=$(($(wc -l < "$work/mamori$n.out") - 1))
  counts[$n]="rg matching lines: $rg_lines; mamori findings: $mamori_findings"
done

mbps() { echo "scale=1; $bytes / 1000000 / $1" | bc -l; }
echo
echo "corpus: $nfiles files, $(echo "scale=1; $bytes/1048576" | bc -l) MiB ($data)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load average before: $load_before"
printf '%-8s %8s %10s %10s %12s %12s\n' tool threads seconds MB/s "CPU seconds" "peak RSS MB"
for n in 1 "$threads"; do
  for tool in rg mamori; do
    s=${secs[$tool$n]}
    printf '%-8s %8s %10.2f %10s %12.2f %12s\n' "$tool" "$n" "$s" "$(mbps "$s")" "${cpu[$tool$n]}" \
      "$((${rss[$tool$n]} / 1024))"
  done
done
for n in 1 "$threads"; do
  ratio=$(printf "%.3f" "$(echo "${secs[rg$n]} / ${secs[mamori$n]}" | bc -l)")
  cpu_ratio=$(printf "%.3f" "$(echo "${cpu[rg$n]} / ${cpu[mamori$n]}" | bc -l)")
  echo "ratio mamori/rg at $n thread(s): $ratio by wall time, $cpu_ratio by CPU time   (${counts[$n]})"
done
echo "(ratio = mamori MB/s / rg MB/s; goal >= 1.0. On a shared machine the CPU-time ratio is the steadier one.)"
