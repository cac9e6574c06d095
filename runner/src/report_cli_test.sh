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
has rep/report.md "Baseline: **variant=mha**"  # mha ignores kv_heads: not in its label
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
# (a long label may break after '/' or '=': <wbr> marks where; it is no markup of the sweep's)
has rep/report.html "&lt;script&gt;alert(1)&lt;/<wbr>script&gt;"
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
# The direction is read from the metric's name: a loss is lower-is-better without a flag, and
# stated; a flag against the name is obeyed with a warning.
out=$("$ablate" report "$sweep" --metric loss --format json 2>&1)
printf '%s' "$out" | grep -q "says .* is better" && fail "a warning for a loss read as lower-is-better"
printf '%s' "$out" | grep -q '"lower_is_better": true' || fail "loss not read as lower-is-better"
printf '%s' "$out" | grep -qF '"direction": "inferred from the name (loss)"' ||
  fail "the direction's source not stated"
expect 0 "says lower is better \\(loss\\), but --higher-is-better was given" \
  "$ablate" report "$sweep" --metric loss --higher-is-better
expect 0 "lower is better, inferred from the name \\(loss\\)" "$ablate" report "$sweep" --metric loss
expect 2 "give one of --lower-is-better and --higher-is-better" "$ablate" report "$sweep" \
  --metric loss --lower-is-better --higher-is-better

# --- --sequential: anytime-valid comparisons ---
# acc: the range [0, 1] is read from the name, so hedged betting; 4 seeds cannot decide it.
"$ablate" report "$sweep" --metric acc --sequential --format json > seq.json 2> seq.err ||
  fail "report --sequential: $(cat seq.err)"
has seq.json '"sequential": {'
has seq.json '"method": "bounded-betting"'
has seq.json '"bounds": ['
has seq.json '"first_decided_at": null'
has seq.json '"verdict": "undecided"'
lacks out.json '"sequential"'  # without --sequential the JSON has no sequential key
# loss: unbounded, the Gaussian mixture; at 4 looks and alpha / 3 its sequence is still the line.
"$ablate" report "$sweep" --metric loss --sequential --format json > seqloss.json 2> seq.err ||
  fail "report --sequential --metric loss: $(cat seq.err)"
has seqloss.json '"method": "gaussian-mixture"'
has seqloss.json '"cs_low": "-inf"'
has seqloss.json '"cs_high": "inf"'
has seqloss.json '"level": 0.016666'
expect 0 "## Anytime-valid comparisons" "$ablate" report "$sweep" --metric acc --sequential \
  --correction bh --equivalence-margin 0.05
expect 0 "Anytime-valid comparisons" "$ablate" report "$sweep" --metric acc --sequential \
  --format tex
expect 2 "--bounds 1,0: expected LO,HI" "$ablate" report "$sweep" --metric acc --sequential \
  --bounds 1,0
expect 2 "--bounds zero: expected LO,HI" "$ablate" report "$sweep" --metric acc --sequential \
  --bounds zero
expect 2 "outside the bounds \\[0, 0.5\\]" "$ablate" report "$sweep" --metric acc --sequential \
  --bounds 0,0.5
expect 2 "--sequential-method t-test: expected gaussian-mixture or bounded-betting" \
  "$ablate" report "$sweep" --metric acc --sequential --sequential-method t-test
expect 2 "--equivalence-margin -1: must be" "$ablate" report "$sweep" --metric acc --sequential \
  --equivalence-margin=-1
expect 2 "need --sequential" "$ablate" report "$sweep" --metric acc --bounds 0,1

# --- --where, --compare, --reference ---
cat > grid.csv <<'CSV'
attention.variant,attention.kv_heads,attention.ema_window,seed,val_loss
CSV
# gqa kv 1/2/4 and dgqa kv 2/4 x ema_window 100/1000, 3 seeds; dgqa ema 100 is clearly better.
for s in 0 1 2; do
  echo "gqa,1,100,$s,3.$((50 + s))" >> grid.csv
  echo "gqa,2,100,$s,3.$((40 + s))" >> grid.csv
  echo "gqa,4,100,$s,3.$((30 + s))" >> grid.csv
  echo "dgqa,2,100,$s,3.$((20 + s))" >> grid.csv
  echo "dgqa,2,1000,$s,3.$((41 + s))5" >> grid.csv
  echo "dgqa,4,100,$s,3.$((10 + s))" >> grid.csv
  echo "dgqa,4,1000,$s,3.$((31 + s))5" >> grid.csv
done
expect 0 "imported" "$ablate" import --sweep grid --csv grid.csv \
  --params attention.variant,attention.kv_heads,attention.ema_window
"$ablate" report grid --metric val_loss --compare attention.ema_window --format json \
  > cmp.json 2> cmp.err || fail "report --compare: $(cat cmp.err)"
# One family, two cells (dgqa kv 2 and kv 4), each 1000 against 100; gqa ignores ema_window.
eq "--compare: families" "$(grep -c '"reference_reason"' cmp.json)" 1
eq "--compare: comparisons" "$(grep -c '"family": "attention.ema_window"' cmp.json)" 2
has cmp.json '"reference_value": 100'
has cmp.json '"cell": "kv_heads=2 variant=dgqa"'
has cmp.json '"cell": "kv_heads=4 variant=dgqa"'
lacks cmp.json '"family": "baseline"'
"$ablate" report grid --metric val_loss --compare ema_window --reference 1000 > cmp.md 2>&1 ||
  fail "report --compare --reference: $(cat cmp.md)"
has cmp.md "## Family: attention.ema\_window"
has cmp.md "against attention.ema\_window=1000 (given with --reference)"
# Two families and the baseline family beside them when --baseline is given.
"$ablate" report grid --metric val_loss --compare attention.ema_window \
  --compare attention.kv_heads --reference attention.kv_heads=2 \
  --baseline attention.variant=gqa attention.kv_heads=4 --format json > three.json 2>&1 ||
  fail "report with two --compare and --baseline: $(cat three.json)"
eq "two --compare and --baseline: families" "$(grep -c '"reference_reason"' three.json)" 3
# --where keeps a subset; its arms are labelled by what varies among them.
"$ablate" report grid --metric val_loss --where attention.variant=dgqa --where kv_heads=4 \
  > where.md 2> where.err || fail "report --where: $(cat where.err)"
has where.md "2 arms with attention.variant=dgqa and attention.kv\_heads=4"
has where.md "| ema\_window=100 |"
expect 2 "--where attention.variant=mqa keeps no arm.*attention.variant has dgqa, gqa" \
  "$ablate" report grid --metric val_loss --where attention.variant=mqa
expect 2 "--compare model.dim: 'model.dim' is not a param" "$ablate" report grid \
  --metric val_loss --compare model.dim
expect 2 "--reference 7: not a level of attention.ema_window in this report; levels: 100, 1000" \
  "$ablate" report grid --metric val_loss --compare attention.ema_window --reference 7
expect 2 "--reference 2: needs a --compare KEY" "$ablate" report grid --metric val_loss \
  --reference 2
expect 2 "with several --compare flags, write --reference KEY=VALUE" "$ablate" report grid \
  --metric val_loss --compare attention.ema_window --compare attention.kv_heads --reference 2

# --- too few seeds ---
head -n 3 paper.csv >two.csv
sed -n '6,7p' paper.csv >>two.csv
expect 0 "imported" "$ablate" import --sweep two --csv two.csv --params attention.variant,attention.kv_heads
# No arm has the 3 usable runs an automatic baseline needs: refused, with the counts.
expect 2 "no arm of sweep 'two' has the 3 usable runs a baseline needs.*\\[variant=mha\\] 2" \
  "$ablate" report two --metric acc
# A baseline the user names is used; its comparisons say "too few seeds", with no p-value.
expect 0 "too few seeds" "$ablate" report two --metric acc --baseline attention.variant=mha
out=$("$ablate" report two --metric acc --baseline attention.variant=mha --format json 2>/dev/null)
printf '%s' "$out" | grep -q '"p_value": null' || fail "a p-value printed with 2 seeds"

# --- the LaTeX compiles: pdflatex on the arms table and on --compare families' tables ---
if command -v pdflatex >/dev/null 2>&1; then
  "$ablate" report grid --metric val_loss --compare attention.ema_window --baseline \
    attention.variant=gqa attention.kv_heads=4 --format tex > families.tex 2>/dev/null ||
    fail "report --format tex with families"
  cp rep/report.tex arms.tex
  # The anytime-valid tables too (3 seeds: infinite ends, as $-\infty$ and $\infty$).
  "$ablate" report grid --metric val_loss --compare attention.ema_window --sequential \
    --equivalence-margin 0.5 --format tex > sequential.tex 2>/dev/null ||
    fail "report --sequential --format tex"
  printf '%s\n' '\documentclass{article}' '\usepackage{booktabs}' '\usepackage{graphicx}' \
    '\begin{document}' '\input{arms.tex}' '\input{families.tex}' '\input{sequential.tex}' \
    '\end{document}' > doc.tex
  pdflatex -interaction=nonstopmode -halt-on-error doc.tex > latex.log 2>&1 ||
    fail "pdflatex cannot compile the report's LaTeX: $(grep -A3 '^!' latex.log | head -8)"
  [ -s doc.pdf ] || fail "pdflatex wrote no PDF"
  grep -q "Overfull \\\\hbox" latex.log && fail "a report table is wider than the page"
elif [ "${ABLATE_SKIP_LATEX_TEST:-0}" != 1 ]; then
  fail "pdflatex is not installed (scripts/setup installs texlive-latex-base and"\
" texlive-latex-recommended); ABLATE_SKIP_LATEX_TEST=1 skips this check"
fi

# --- bad input: exit 2, what exists listed, nothing written ---
expect 2 "no sweep 'nope'.*sweeps: 50%_\{x\}, grid, two" "$ablate" report nope --metric acc --out bad1
expect 2 "no metric 'accuracy'.*; metrics: acc, loss" "$ablate" report "$sweep" \
  --metric accuracy --out bad2
expect 2 "no metric 'los' in sweep .*; did you mean loss\\?" "$ablate" report "$sweep" --metric los
expect 2 "matches no arm.*\[variant=mha\]" "$ablate" report "$sweep" --metric acc \
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
expect 2 "--cost|cost" "$ablate" report "$sweep" --metric acc --cost bytes
expect 2 "give SWEEP and --metric" "$ablate" report "$sweep"
expect 2 "no database missing.db" "$ablate" report --db missing.db "$sweep" --metric acc
expect 2 "must be in \\[1e-9, 1\\)" "$ablate" report "$sweep" --metric acc --alpha 1e-300
echo "a file" > not-a-folder
expect 2 "--out not-a-folder: a file, not a folder" "$ablate" report "$sweep" --metric acc \
  --out not-a-folder
eq "--out naming a file: the file untouched" "$(cat not-a-folder)" "a file"
expect 2 "--db: .*a folder, not a database file" "$ablate" report --db . "$sweep" --metric acc
for d in bad1 bad2 bad3; do [ -e "$d" ] && fail "$d written on bad input"; done
[ -e missing.db ] && fail "missing.db created by a report"

if [ "$failures" -gt 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "report_cli_test: all passed"
