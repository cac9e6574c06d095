#!/usr/bin/env bash
# Seeds until decided, end to end with real tiny `ablate train` jobs on CPU: `ablate plan` says
# what the first round runs; `ablate run` adds seeds only to undecided arms and stops an arm whose
# comparison is decided (a learning rate of 1e-6 against 3e-3 is decided at the first look that
# can decide); the decision log in the database agrees with the jobs; a re-run trains nothing and
# logs nothing; `ablate status` shows each comparison's confidence sequence; `ablate report
# --sequential` reports the same decision; the mistakes of the sweep file and of `--until` are
# refused with exit status 2 before anything is written. About a minute on two cores.
# Usage: until_decided_cli_test.sh PATH_TO_ABLATE
set -u
ablate=$(readlink -f "$1")
. "$(dirname "$0")/cli_test_lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

for i in $(seq 1 400); do echo "the quick brown fox jumps over the lazy dog $i"; done > corpus.txt
db=ud.db
# sweep FILE NAME SEEDS REPORT: three arms (lr 3e-3 with kv_heads 4 and 2, lr 1e-6 with 4).
sweep() {
  cat > "$1" <<YAML
name: $2
task: lm
base:
  data: {dataset: text, path: $tmp/corpus.txt, seq_len: 16}
  model: {dim: 32, depth: 1, heads: 4}
  attention: {variant: gqa, kv_heads: 4}
  train: {steps: 30, batch_size: 4, warmup: 2, eval_every: 100, eval_batches: 2, lr: 3.0e-3}
seeds: $3
grid:
  - {}
  - train.lr: 1.0e-6
  - attention.kv_heads: 2
$4
YAML
}
arm_seeds() {  # arm_seeds WHERE: registered jobs of the sweep ud matching WHERE (on params)
  q "$db" "SELECT COUNT(*) FROM runs WHERE sweep = 'ud' AND $1"
}
question="report: {metric: final_val_loss, baseline: {train.lr: 0.003, kv_heads: 4}}"

###################################################################################################
section "1. mistakes are refused before anything is written"
sweep bad1.yaml ud "{min: 3, max: 7, until: decided}" ""
expect 2 "bad1.yaml:8:1: seeds.*needs a report: block" "$ablate" run bad1.yaml --db $db
sweep bad2.yaml ud "{min: 3, max: 7, until: decided}" "report: {metrc: final_val_loss}"
expect 2 "report.metrc.*did you mean metric" "$ablate" run bad2.yaml --db $db
sweep fixed.yaml ud 3 ""
expect 2 "--until.*needs the sweep file's report: block" \
  "$ablate" run fixed.yaml --db $db --until decided --max-seeds 6
expect 2 "--until decided and --max-seeds N go together" \
  "$ablate" run fixed.yaml --db $db --until decided
expect 2 "--until sometime: expected decided" \
  "$ablate" run fixed.yaml --db $db --until sometime --max-seeds 6
[ -e $db ] && fail "a refused run wrote $db"

###################################################################################################
section "2. plan: every job up to max, and what the first round runs"
sweep ud.yaml ud "{min: 3, max: 7, step: 1, until: decided}" "$question"
"$ablate" plan ud.yaml > plan.txt 2>&1 || fail "ablate plan: $(cat plan.txt)"
has plan.txt "total: 21 jobs"
has plan.txt "seeds until decided: every arm runs its first 3 seeds (9 jobs), then 1 more per round"
eq "plan --json: first-round jobs" "$("$ablate" plan ud.yaml --json | grep -c '"first_round":true')" 9

###################################################################################################
section "3. run until decided"
"$ablate" run ud.yaml --db $db --workdir w --per-device 2 > run.txt 2> run.err ||
  fail "ablate run exited $?: $(cat run.txt run.err)"
has run.txt "look 1:"
has run.txt "stop: decided"
# lr 1e-6 is decided at the first look that can decide: K = 2 comparisons, level 0.025, the
# Gaussian mixture's first possible decision is at 6 seeds.
eq "lr 1e-6: seeds" "$(arm_seeds 'train_lr < 1e-5')" 6
eq "log: lr 1e-6 decided at 6 seeds" \
  "$(q $db "SELECT MIN(seeds) FROM sequential_looks WHERE sweep = 'ud' AND arm_label LIKE '%lr=1.0e-6%'
    AND decided = 1")" 6
# kv 2 against kv 4: whatever the data say, the jobs agree with the log's last look.
kv2_last=$(q $db "SELECT seeds || '|' || decided || '|' || action FROM sequential_looks
  WHERE sweep = 'ud' AND arm_label LIKE '%kv_heads=2%' ORDER BY look DESC LIMIT 1")
kv2_seeds=$(arm_seeds 'attention_kv_heads = 2')
case "$kv2_last" in
  *"|1|stop: decided") eq "kv 2 decided at its last look" "${kv2_last%%|*}" "$kv2_seeds" ;;
  "7|0|stop: 7 seeds, the most") eq "kv 2 undecided: the cap" "$kv2_seeds" 7 ;;
  *) fail "kv 2's last look: $kv2_last ($kv2_seeds seeds)" ;;
esac
# The reference has the seeds of every arm compared with it.
eq "baseline seeds" "$(arm_seeds 'train_lr > 1e-3 AND attention_kv_heads = 4')" \
  "$([ "$kv2_seeds" -gt 6 ] && echo "$kv2_seeds" || echo 6)"
looks=$(q $db "SELECT MAX(look) FROM sequential_looks WHERE sweep = 'ud'")
eq "two rows per look" "$(q $db "SELECT COUNT(*) FROM sequential_looks WHERE sweep = 'ud'")" \
  $((2 * looks))
eq "every job done" "$(q $db "SELECT COUNT(*) FROM jobs WHERE sweep = 'ud' AND status <> 'done'")" 0

###################################################################################################
section "4. a re-run trains nothing and logs nothing; status and report agree"
"$ablate" run ud.yaml --db $db --workdir w > again.txt 2>&1 || fail "re-run: $(cat again.txt)"
grep -q "0 launched" again.txt || fail "a re-run launched jobs: $(cat again.txt)"
eq "no new look" "$(q $db "SELECT MAX(look) FROM sequential_looks WHERE sweep = 'ud'")" "$looks"
"$ablate" status ud --db $db > status.txt 2>&1 || fail "status: $(cat status.txt)"
has status.txt "seeds until decided (look $looks, at most 7 seeds per arm"
grep -qE "lr=1.0e-6.*  6  \[[0-9.e+-]+, [0-9.e+-]+\].*decided \(stop: decided\)" status.txt ||
  fail "status lacks the decided row: $(cat status.txt)"
"$ablate" status ud --db $db --json > status.json
grep -qE '"arm":"[^"]*lr=1.0e-6[^"]*",[^}]*"seeds":6,[^}]*"decided":true' status.json ||
  fail "status --json lacks the decided comparison: $(cat status.json)"
"$ablate" report ud --db $db --metric final_val_loss --baseline train.lr=0.003 kv_heads=4 \
  --sequential --correction bonferroni --format json > report.json 2> report.err ||
  fail "report --sequential: $(cat report.err)"
has report.json '"first_decided_at": 6'
has report.json '"until_decided": {'
# Words: what was done, and the fixed tests' caveat when the report is not sequential.
"$ablate" report ud --db $db --metric final_val_loss --baseline train.lr=0.003 kv_heads=4 \
  --sequential > report.md 2>&1 || fail "report --sequential (md): $(cat report.md)"
has report.md "Seeds were added until each comparison was decided, with an anytime-valid test"
has report.md "at most 7 per arm"
has report.md "the verdicts shown are the anytime-valid ones, which do"
has report.md "| Arm | verdict (anytime-valid) |"
"$ablate" report ud --db $db --metric final_val_loss --baseline train.lr=0.003 kv_heads=4 \
  > fixed.md 2>&1 || fail "report (md): $(cat fixed.md)"
has fixed.md "this sweep added seeds until decided ($looks looks): the fixed-n tests"
has fixed.md "its verdicts are fixed-n too: report with --sequential"

# Without --metric the sweep file's report: question is the report's, anytime-valid for this
# sweep; status says so.
"$ablate" report ud --db $db > question.md 2>&1 || fail "report from the stored question: $(cat question.md)"
has question.md "Ablation report: ud, final\_val\_loss"
has question.md "given in the sweep file's report: block"
has question.md "## Anytime-valid comparisons"
grep -qE ": ([0-9] better, )?[12] worse[^(]*\(anytime-valid: the sweep added seeds until decided\)" question.md ||
  fail "no anytime-valid counts: $(head -3 question.md)"
has status.txt "next: ablate report ud --db $db   (the sweep file's report: question, with the anytime-valid comparisons)"
# A --where that leaves out the file's baseline: the error names the file's baseline, not a
# --baseline nobody typed, and says how to choose another.
"$ablate" report ud --db $db --where train.lr=1e-06 > where.err 2>&1 && fail "a baseline --where left out was reported"
has where.err "ablate report: baseline (given in the sweep file's report: block) train.lr=0.003 kv_heads=4 matches no arm of sweep 'ud' with train.lr=1e-06; arms: "
has where.err "; --baseline KEY=VALUE chooses another"
lacks where.err "--baseline train.lr"

exit $((failures > 0))
