#!/usr/bin/env bash
# `ablate report` as a user meets it, on sweeps brought in with `ablate import` (no training, so
# it runs in seconds): the formats and files, figures, verdicts, diverged runs, too few seeds,
# escaping of hostile names, determinism, and errors (exit status 2, what exists listed, nothing
# written). Usage: report_cli_test.sh PATH_TO_ABLATE
set -u
ablate=$1
. "$(dirname "$0")/cli_test_lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

# Per-seed results of four arms, 4 seeds each: kv_heads=2 is clearly better than mha (the same
# seeds, a consistent gain), kv_heads=1 is noisy, and a `<script>` tag names the last variant.
# One run of kv_heads=1 diverged (nan).
cat > paper.csv <<'CSV'
attention.variant,attention.kv_heads,seed,acc,loss
mha,4,0,0.800,0.50
mha,4,1,0.820,0.48
mha,4,2,0.790,0.52
mha,4,3,0.810,0.49
gqa,2,0,0.815,0.49
gqa,2,1,0.833,0.47
gqa,2,2,0.806,0.50
gqa,2,3,0.826,0.48
gqa,1,0,0.780,0.55
gqa,1,1,0.830,0.47
gqa,1,2,nan,nan
gqa,1,3,0.800,0.51
<script>alert(1)</script>,2,0,0.790,0.52
<script>alert(1)</script>,2,1,0.805,0.50
<script>alert(1)</script>,2,2,0.785,0.53
<script>alert(1)</script>,2,3,0.800,0.51
CSV
sweep='50%_{x}'
expect 0 "imported" "$ablate" import --sweep "$sweep" --csv paper.csv \
  --params attention.variant,attention.kv_heads

# --- every format into a folder ---
expect 0 "report.html" "$ablate" report "$sweep" --metric acc --format md,html,tex,json --out rep
for f in report.md report.html report.tex report.json figures/metric_vs_groups.png \
  figures/metric_vs_groups.svg figures/quality_vs_cost.png; do
  [ -s "rep/$f" ] || [ "$f" = figures/quality_vs_cost.png ] || fail "rep/$f missing or empty"
done
ls rep/.*.tmp >/dev/null 2>&1 && fail "temporary files left in rep/"
has rep/report.md "Baseline: **kv\_heads=4 variant=mha**"
has rep/report.md "(attention.variant=mha)"
has rep/report.md "**better**"
has rep/report.md "paired t-test"
has rep/report.md "Holm"
has rep/report.md "![acc vs key/value head groups"
has rep/report.md "figures/metric_vs_groups.png"
has rep/report.md "learning curves"  # not drawn: an imported sweep has no curves; the note says so
has rep/report.md "diverged"
has rep/report.md "1 diverged"
# Names escaped per format: nothing of the sweep or the variant is markup.
lacks rep/report.html "<script>"
has rep/report.html "&lt;script&gt;alert(1)&lt;/script&gt;"
has rep/report.html "50%_{x}"
has rep/report.html "data:image/png;base64,"
lacks rep/report.html "src=\"figures/"  # self-contained
lacks rep/report.md "<script>"
has rep/report.md "&lt;script&gt;"
has rep/report.tex "50\\%\\_\\{x\\}"
has rep/report.tex "\\textless{}script\\textgreater{}"
has rep/report.tex "\\toprule"
has rep/report.json '"sweep": "50%_{x}"'
has rep/report.json '"attention.variant": "<script>alert(1)</script>"'
has rep/report.json '"seeds_for_80_power"'
has rep/report.json '"p_adjusted"'

# --- stdout: one format, nothing else on stdout ---
"$ablate" report "$sweep" --metric acc --format json >out.json 2>err.txt || fail "json to stdout"
[ "$(head -c 1 out.json)" = "{" ] && [ "$(tail -c 2 out.json | head -c 1)" = "}" ] ||
  fail "stdout is not only the JSON object"
cmp -s out.json rep/report.json || fail "the same report twice differs (not deterministic)"
"$ablate" report "$sweep" --metric acc --format html >out.html 2>/dev/null || fail "html to stdout"
has out.html "data:image/png;base64,"
expect 0 "Δ vs baseline" "$ablate" report "$sweep" --metric acc
expect 0 "toprule" "$ablate" report "$sweep" --metric acc --format tex

# --- options ---
expect 0 '"test": "welch"' "$ablate" report "$sweep" --metric acc --test welch --format json
expect 0 '"correction": "bh"' "$ablate" report "$sweep" --metric acc --correction bh --format json
expect 0 'Baseline: \*\*kv\\_heads=1 variant=gqa\*\*' "$ablate" report "$sweep" --metric acc \
  --baseline attention_kv_heads=1
# A loss treated as higher-is-better is suspicious: a warning on stderr; --lower-is-better flips.
expect 0 "suggests lower is better" "$ablate" report "$sweep" --metric loss
out=$("$ablate" report "$sweep" --metric loss --lower-is-better --format json 2>&1)
printf '%s' "$out" | grep -q "suggests" && fail "warning despite --lower-is-better"
printf '%s' "$out" | grep -q '"lower_is_better": true' || fail "lower_is_better not in JSON"

# --- too few seeds ---
head -n 3 paper.csv >two.csv
sed -n '6,7p' paper.csv >>two.csv
expect 0 "imported" "$ablate" import --sweep two --csv two.csv --params attention.variant,attention.kv_heads
expect 0 "too few seeds" "$ablate" report two --metric acc
out=$("$ablate" report two --metric acc --format json 2>/dev/null)
printf '%s' "$out" | grep -q '"p_value": null' || fail "a p-value printed with 2 seeds"

# --- bad input: exit 2, what exists listed, nothing written ---
expect 2 "no sweep 'nope'.*sweeps: 50%_\{x\}, two" "$ablate" report nope --metric acc --out bad1
expect 2 "no metric 'accuracy'.*summary metrics: acc, loss" "$ablate" report "$sweep" \
  --metric accuracy --out bad2
expect 2 "matches no arm.*\[kv_heads=4 variant=mha\]" "$ablate" report "$sweep" --metric acc \
  --baseline attention.variant=mqa --out bad3
expect 2 "'model.heads' is not a param" "$ablate" report "$sweep" --metric acc \
  --baseline model.heads=4
expect 2 "matches 2 arms" "$ablate" report "$sweep" --metric acc --baseline attention.kv_heads=2
expect 2 "expected KEY=VALUE" "$ablate" report "$sweep" --metric acc --baseline mha
expect 2 "expected auto, paired-t" "$ablate" report "$sweep" --metric acc --test ttest
expect 2 "expected holm, bh" "$ablate" report "$sweep" --metric acc --correction sidak
expect 2 "'pdf' is not one of" "$ablate" report "$sweep" --metric acc --format pdf
expect 2 "several formats need --out" "$ablate" report "$sweep" --metric acc --format md,json
expect 2 "alpha" "$ablate" report "$sweep" --metric acc --alpha 2
expect 2 "give SWEEP and --metric" "$ablate" report "$sweep"
expect 2 "no database missing.db" "$ablate" report --db missing.db "$sweep" --metric acc
for d in bad1 bad2 bad3; do [ -e "$d" ] && fail "$d written on bad input"; done
[ -e missing.db ] && fail "missing.db created by a report"

if [ "$failures" -gt 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "report_cli_test: all passed"
