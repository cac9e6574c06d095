#!/usr/bin/env bash
# `ablate run --backend slurm` against a real one-node Slurm cluster (scripts/slurm-local: munged,
# slurmctld and slurmd of Debian's slurm-wlm, started here and stopped at the end): a two-stage
# sweep through Slurm job arrays, one task cancelled with scancel mid-run and retried from its
# checkpoint, --detach and a later run that adopts the tasks, and a database that equals the
# local executor's for the same sweep (job ids, statuses, summary metrics).
# If Slurm cannot start, the test fails and says why; ABLATE_SKIP_SLURM_TEST=1 skips it
# explicitly (exit status 77, which CTest reports as skipped).
# Usage: slurm_cli_test.sh PATH_TO_ABLATE
set -u
ablate=$1
. "$(dirname "$0")/cli_test_lib.sh"
here=$(cd "$(dirname "$0")/../.." && pwd)
if [ "${ABLATE_SKIP_SLURM_TEST:-0}" = 1 ]; then
  echo "slurm_cli_test: skipped (ABLATE_SKIP_SLURM_TEST=1)"
  exit 77
fi
tmp=$(mktemp -d)
cluster=$tmp/cluster
cleanup() {
  "$here/scripts/slurm-local" stop "$cluster" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp"

section "start a one-node Slurm cluster"
if ! conf=$("$here/scripts/slurm-local" start "$cluster" 2>start.err); then
  echo "slurm_cli_test: Slurm did not start on this machine (scripts/slurm-local start):" >&2
  cat start.err >&2
  echo "slurm_cli_test: FAILED (set ABLATE_SKIP_SLURM_TEST=1 to skip on purpose)" >&2
  exit 1
fi
eval "$conf"
[ -n "${SLURM_CONF:-}" ] || { echo "slurm-local printed no SLURM_CONF" >&2; exit 1; }

# A two-stage lm sweep: an mha pretrain per seed, then two uptrain arms (gqa, 1 or 2 kv heads)
# from it. Uptrains are long enough (3000 steps, a checkpoint every 100) to be cancelled mid-run.
for i in $(seq 1 400); do echo "the quick brown fox jumps over the lazy dog $i"; done > corpus.txt
cat > pipe.yaml <<YAML
name: pipe
task: lm
base:
  data: {dataset: text, path: $tmp/corpus.txt, seq_len: 16}
  model: {dim: 32, depth: 1, heads: 4}
  train: {steps: 60, batch_size: 4, warmup: 2, eval_every: 100, eval_batches: 2,
          checkpoint_every: 100, device: cpu}
seeds: 2
grid:
  - attention.variant: gqa
    attention.kv_heads: [1, 2]
stages:
  - {name: pretrain, set: {attention.variant: mha}}
  - {name: uptrain, from: pretrain, convert: mean_pool, set: {train.steps: 3000}}
YAML

section "the same sweep with the local executor (the reference)"
"$ablate" run pipe.yaml --db local.db --workdir wl --per-device 2 >local.out 2>&1 ||
  fail "local run: $(cat local.out)"

section "dry run: the first wave's script"
# The two pretrain seeds train together (--seeds-per-process auto): one task with both run dirs.
out=$("$ablate" run pipe.yaml --backend slurm --dry-run --workdir ws --per-device 2 2>&1)
printf '%s' "$out" | grep -q '^#SBATCH --array=0-0%2$' || fail "dry run: no 1-task array: $out"
eq "dry run: run dirs on the task's command line" \
  "$(printf '%s' "$out" | grep '^    set -- ' | grep -o "'--run-dir'" | wc -l)" 2
out=$("$ablate" run pipe.yaml --backend slurm --dry-run --workdir ws --per-device 2 \
  --seeds-per-process 1 2>&1)
printf '%s' "$out" | grep -q '^#SBATCH --array=0-1%2$' || fail "dry run: no 2-task array: $out"
[ -e ws ] && fail "dry run wrote $tmp/ws"

section "errors: an unknown partition is refused with Slurm's message, nothing written"
out=$("$ablate" run pipe.yaml --backend slurm --partition nope --db bad.db --workdir wb 2>&1)
rc=$?
eq "exit status for an unknown partition" "$rc" 2
printf '%s' "$out" | grep -qi "partition" || fail "no partition in the message: $out"
[ -e bad.db ] && fail "bad.db created despite the refused partition"

section "the sweep through Slurm, one running uptrain cancelled with scancel"
"$ablate" run pipe.yaml --backend slurm --db slurm.db --workdir ws --retries 1 \
  --poll-interval 1 --per-device 2 >slurm.out 2>&1 &
coordinator=$!
victim=""
task=""
for _ in $(seq 1 900); do
  # An uptrain task that has written its first checkpoint and still runs.
  while IFS='|' read -r id dir; do
    if [ -d "$dir/checkpoint" ] && grep -q '^slurm:' "$dir/launcher.pid" 2>/dev/null; then
      victim=$id
      task=$(sed -n '1s/^slurm://p' "$dir/launcher.pid")
      break
    fi
  done < <(q slurm.db "SELECT id, run_dir FROM jobs WHERE stage = 'uptrain' AND status = 'running'" 2>/dev/null)
  [ -n "$victim" ] && break
  sleep 0.2
done
if [ -z "$victim" ]; then
  fail "no running uptrain with a checkpoint to cancel: $(cat slurm.out)"
else
  echo "   scancel $task (job $victim)"
  scancel "$task" || fail "scancel $task failed"
fi
wait "$coordinator" || fail "slurm run exited $?: $(cat slurm.out)"
eq "slurm run: statuses" "$(q slurm.db "SELECT status, COUNT(*) FROM jobs GROUP BY status")" "done|6"
if [ -n "$victim" ]; then
  eq "the cancelled job's attempts" "$(q slurm.db "SELECT attempts FROM jobs WHERE id = '$victim'")" 2
  grep -q "resuming from the checkpoint" "ws/pipe/$victim/log.txt" ||
    fail "the cancelled job did not resume from its checkpoint: $(cat "ws/pipe/$victim/log.txt")"
fi

section "the database equals the local executor's"
for db in local slurm; do
  q $db.db "SELECT j.id, j.stage, j.status FROM jobs j ORDER BY j.id" >$db.jobs
  q $db.db "SELECT j.id, s.name, printf('%.12g', s.value) FROM summaries s JOIN jobs j ON j.pk = s.job
    WHERE s.name IN ('final_val_loss', 'best_val_loss', 'parameters', 'step') ORDER BY 1, 2" >$db.sums
  q $db.db "SELECT j.id, m.name, m.step, printf('%.12g', m.value) FROM metrics m
    JOIN jobs j ON j.pk = m.job WHERE m.name LIKE 'eval/%' ORDER BY 1, 2, 3" >$db.evals
done
cmp -s local.jobs slurm.jobs || fail "job ids or statuses differ: $(diff local.jobs slurm.jobs)"
cmp -s local.sums slurm.sums || fail "summaries differ: $(diff local.sums slurm.sums)"
cmp -s local.evals slurm.evals || fail "eval curves differ: $(diff local.evals slurm.evals | head)"
[ "$(wc -l <slurm.sums)" -ge 18 ] || fail "too few summaries compared: $(cat slurm.sums)"

section "--detach submits and returns; a later run adopts the tasks and finishes"
"$ablate" run pipe.yaml --backend slurm --db detach.db --workdir wd --detach --poll-interval 1 \
  >detach.out 2>&1 || fail "detach run: $(cat detach.out)"
grep -q "detached" detach.out || fail "no 'detached' line: $(cat detach.out)"
eq "after --detach: jobs running" "$(q detach.db "SELECT COUNT(*) FROM jobs WHERE status = 'running'")" 2
submitted=$(squeue --noheader --states=all --array --format='%i' | wc -l)
"$ablate" run pipe.yaml --backend slurm --db detach.db --workdir wd --poll-interval 1 \
  >detach2.out 2>&1 || fail "second run after --detach: $(cat detach2.out)"
eq "after the second run: statuses" "$(q detach.db "SELECT status, COUNT(*) FROM jobs GROUP BY status")" "done|6"
eq "after the second run: attempts" "$(q detach.db "SELECT SUM(attempts) FROM jobs")" 6
# The pretrains (one task: their seeds train together) were not submitted twice: 2 more tasks
# after the first submission, one per uptrain arm.
eq "tasks Slurm ran for the detached sweep" \
  "$(( $(squeue --noheader --states=all --array --format='%i' | wc -l) - submitted ))" 2
q detach.db "SELECT j.id, s.name, printf('%.12g', s.value) FROM summaries s JOIN jobs j ON j.pk = s.job
  WHERE s.name IN ('final_val_loss', 'best_val_loss', 'parameters', 'step') ORDER BY 1, 2" >detach.sums
cmp -s local.sums detach.sums || fail "detached sweep: summaries differ from local"

section "seeds until decided through Slurm: the same looks and decisions as the local executor"
# Three arms of a tiny lm; lr 1e-6 is decided at the first look that can decide (6 seeds at
# K = 2); each round is one more wave of Slurm tasks.
cat > ud.yaml <<YAML
name: ud
task: lm
base:
  data: {dataset: text, path: $tmp/corpus.txt, seq_len: 16}
  model: {dim: 32, depth: 1, heads: 4}
  attention: {variant: gqa, kv_heads: 4}
  train: {steps: 30, batch_size: 4, warmup: 2, eval_every: 100, eval_batches: 2, lr: 3.0e-3,
          device: cpu}
seeds: {min: 3, max: 7, until: decided}
grid:
  - {}
  - train.lr: 1.0e-6
  - attention.kv_heads: 2
report: {metric: final_val_loss, baseline: {train.lr: 0.003, kv_heads: 4}}
YAML
"$ablate" run ud.yaml --db ud-local.db --workdir wul --per-device 2 >ud-local.out 2>&1 ||
  fail "until decided, local: $(cat ud-local.out)"
"$ablate" run ud.yaml --backend slurm --db ud-slurm.db --workdir wus --poll-interval 1 \
  >ud-slurm.out 2>&1 || fail "until decided, slurm: $(cat ud-slurm.out)"
looks_of() {
  q "$1" "SELECT look, arm_label, seeds, decided, action FROM sequential_looks ORDER BY look, arm_key"
}
looks_of ud-local.db >ud-local.looks
looks_of ud-slurm.db >ud-slurm.looks
cmp -s ud-local.looks ud-slurm.looks ||
  fail "decision logs differ: $(diff ud-local.looks ud-slurm.looks)"
grep -q "stop: decided" ud-slurm.looks || fail "nothing decided through Slurm: $(cat ud-slurm.looks)"
eq "until decided through Slurm: every job done" \
  "$(q ud-slurm.db "SELECT COUNT(*) FROM jobs WHERE status <> 'done'")" 0

section "calibration on a node: ablate calibrate --backend slurm, and run's --cpus-per-task from it"
cal=$tmp/cal.json
ABLATE_CALIBRATION=$cal expect 0 \
  "best on a node of the Slurm default partition \(.* \| 2 cores.*\): [0-9]+ jobs? at once x [0-9]+ threads?, so --cpus-per-task [0-9]+ \(cached in $cal\)" \
  "$ablate" calibrate pipe.yaml --backend slurm --steps 3 --workdir wc
has "$cal" '"machine": "Slurm default partition"'
has "$cal" '"node": "'
# It ran as a Slurm job (Slurm's own record), its script in WORKDIR/NAME/slurm.
grep -q "Name=ablate-pipe-calibrate JobState=COMPLETED .*ProcCnt=2 " "$cluster/log/jobcomp.txt" ||
  fail "no completed calibration job in jobcomp.txt: $(tail -3 "$cluster/log/jobcomp.txt")"
ls wc/pipe/slurm/calibrate-*.sh >/dev/null 2>&1 || fail "no calibration script in wc/pipe/slurm"
best=$(sed -n '/"best"/,/}/s/.*"threads": \([0-9]*\).*/\1/p' "$cal")
out=$(ABLATE_CALIBRATION=$cal "$ablate" run pipe.yaml --backend slurm --dry-run --workdir ws 2>&1)
printf '%s' "$out" | grep -q "^#SBATCH --cpus-per-task=$best\$" ||
  fail "dry run: not the calibrated --cpus-per-task $best: $out"
# The cache is what run uses: rewritten by hand to 2 threads, the tasks ask for 2 CPUs and train
# with 2 threads.
sed -i '/"best"/,/}/s/"threads": [0-9]*/"threads": 2/' "$cal"
out=$(ABLATE_CALIBRATION=$cal "$ablate" run pipe.yaml --backend slurm --dry-run --workdir ws 2>&1)
printf '%s' "$out" | grep -q '^#SBATCH --cpus-per-task=2$' || fail "dry run: no 2 CPUs: $out"
printf '%s' "$out" | grep -q "'train.threads=2'" || fail "dry run: no train.threads=2: $out"
# A number given chooses; off leaves Slurm's default; neither reads nor says a calibration.
out=$(ABLATE_CALIBRATION=$cal "$ablate" run pipe.yaml --backend slurm --dry-run --workdir ws \
  --cpus-per-task 1 2>&1)
printf '%s' "$out" | grep -q '^#SBATCH --cpus-per-task=1$' || fail "--cpus-per-task 1: $out"
printf '%s' "$out" | grep -q "calibrat" && fail "--cpus-per-task given, yet: $out"
out=$("$ablate" run pipe.yaml --backend slurm --dry-run --workdir ws 2>&1)
printf '%s' "$out" | grep -q "cpus-per-task" && fail "ABLATE_CALIBRATION=off, yet: $out"
# A dry run never submits a calibration; a run without one measures it first, through Slurm.
out=$(ABLATE_CALIBRATION=$tmp/none.json "$ablate" run pipe.yaml --backend slurm --dry-run \
  --workdir ws 2>&1)
printf '%s' "$out" | grep -q "not calibrated yet" || fail "dry run without a cache: $out"
[ -e "$tmp/none.json" ] && fail "a dry run wrote a calibration"
sed 's/^name: pipe/name: calrun/; s/train.steps: 3000/train.steps: 20/' pipe.yaml >calrun.yaml
ABLATE_CALIBRATION=$tmp/new.json "$ablate" run calrun.yaml --backend slurm --db cal.db \
  --workdir wcr --poll-interval 1 >calrun.out 2>&1 || fail "run with a first calibration: $(cat calrun.out)"
has calrun.out "calibrating Slurm default partition once"
has calrun.out "slurm: --cpus-per-task"
has "$tmp/new.json" '"machine": "Slurm default partition"'
eq "calibrated run: every job done" "$(q cal.db "SELECT COUNT(*) FROM jobs WHERE status = 'done'")" 6
# A refused partition is refused before anything is submitted or cached.
ABLATE_CALIBRATION=$tmp/bad.json expect 2 "slurm: .*artition" \
  "$ablate" calibrate pipe.yaml --backend slurm --partition nope --workdir wbad
[ -e "$tmp/bad.json" ] && fail "a refused calibration wrote its cache"
[ -e wbad ] && fail "a refused calibration wrote its script folder"
expect 2 "--partition and --account go with --backend slurm" \
  "$ablate" calibrate pipe.yaml --partition debug

echo "slurm_cli_test: ${SECONDS}s"
[ "$failures" -eq 0 ] && echo "slurm_cli_test: all checks passed"
exit "$failures"
