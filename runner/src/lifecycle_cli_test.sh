#!/usr/bin/env bash
# A sweep's life after its first run, end to end with real tiny `ablate train` jobs on CPU:
# a job that fails on bad data runs again after the file is fixed (`run --retry-failed`, its
# config.yaml rewritten from the current plan), a killed job resumes from its checkpoint under
# --retry-failed, a diverged job stays unless --retry-diverged, `ablate reset` re-trains chosen
# jobs (old run dirs kept aside, their numbers gone from the database), an edited sweep file
# leaves stale jobs (run says so, reports leave them out and say so, a reverted file brings them
# back), and `ablate prune` lists, then deletes them. The database is inspected with sqlite3.
# About a minute on two cores.
# Usage: lifecycle_cli_test.sh PATH_TO_ABLATE
set -u
ablate=$(readlink -f "$1")
. "$(dirname "$0")/cli_test_lib.sh"
tmp=$(mktemp -d)
bg=()  # background processes, for the clean-up
cleanup() {
  local p
  for p in "${bg[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 1

# wait_until SECONDS CMD...: polls CMD every 50 ms; false when it never held.
wait_until() {
  local limit=$1
  shift
  local end=$((SECONDS + limit))
  until "$@"; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.05
  done
}
# jobs_of SWEEP [WHERE]: id|status|attempts|stale|exit_code of the sweep's jobs, by id.
jobs_of() {
  q "$db" "SELECT j.id || '|' || j.status || '|' || j.attempts || '|' || j.stale || '|' ||
    ifnull(j.exit_code, '') FROM jobs j JOIN sweeps s ON s.pk = j.sweep_pk
    WHERE s.name = '$1' ${2:+AND $2} ORDER BY j.id"
}
count_of() { q "$db" "SELECT COUNT(*) FROM jobs j JOIN sweeps s ON s.pk = j.sweep_pk
  WHERE s.name = '$1' AND $2"; }
# rows JOB_ID: the job's rows in metrics, summaries and environment, as "m s e".
rows() {
  q "$db" "SELECT (SELECT COUNT(*) FROM metrics WHERE job = j.pk) || ' ' ||
    (SELECT COUNT(*) FROM summaries WHERE job = j.pk) || ' ' ||
    (SELECT COUNT(*) FROM environment WHERE job = j.pk) FROM jobs j WHERE j.id = '$1'"
}
integrity() {
  eq "$1: PRAGMA integrity_check" "$(q "$db" 'PRAGMA integrity_check')" ok
  eq "$1: PRAGMA foreign_key_check" "$(q "$db" 'PRAGMA foreign_key_check')" ""
}

for i in $(seq 1 400); do echo "the quick brown fox jumps over the lazy dog $i"; done > corpus.txt
printf 'abc\n' > tiny.txt  # exists (the plan accepts it) but is too short to train on: exit 2
# sweep FILE NAME DATA STEPS KV_HEADS: 2 seeds of gqa at the given kv_heads.
sweep() {
  cat > "$1" <<YAML
name: $2
task: lm
base:
  data: {dataset: text, path: $3, seq_len: 16}
  model: {dim: 32, depth: 1, heads: 4}
  train: {steps: $4, batch_size: 4, warmup: 2, eval_every: 100, eval_batches: 2,
          checkpoint_every: 20, device: cpu}
seeds: 2
grid:
  - attention.variant: gqa
    attention.kv_heads: $5
YAML
}
db=life.db

###################################################################################################
section "1. bad data fails; fixed in the file, --retry-failed finishes"
sweep lc.yaml lc "$tmp/tiny.txt" 30 '[1, 2]'
# Two processes: the two seeds of each arm train together (--seeds-per-process auto).
expect 1 "sweep lc: 4 jobs, 2 launched, 4 failed" \
  "$ablate" run lc.yaml --db $db --workdir w --per-device 2
eq "bad data: failed with exit status 2, once" "$(jobs_of lc | cut -d'|' -f2,3,5 | sort -u)" \
  "failed|1|2"
"$ablate" run lc.yaml --db first.db --workdir wf --per-device 2 > first.out 2> /dev/null
grep -q "^sweep lc: 4 jobs$" first.out ||
  fail "a first run does not say its job count alone ('sweep lc: 4 jobs'): $(cat first.out)"
"$ablate" run lc.yaml --db $db --workdir w > again.out 2> /dev/null
grep -q "^sweep lc: no new jobs$" again.out || fail "a second run: $(cat again.out)"
grep -q "sweep lc: 4 jobs, 0 launched, 4 failed" again.out ||
  fail "a failure ran again without --retry-failed: $(cat again.out)"
grep -qE "^not every job finished: ablate status lc --db $db says why; after a fix, ablate run lc.yaml --db $db --workdir $tmp/w --retry-failed runs them again" again.out ||
  fail "ablate run with failed jobs does not say what next: $(cat again.out)"
"$ablate" status --db $db lc > status1.txt 2>&1
grep -qE "ablate run lc.yaml --db $db --workdir $tmp/w --retry-failed" status1.txt ||
  fail "ablate status does not say which command re-runs the failed jobs: $(cat status1.txt)"
sed -i "s#$tmp/tiny.txt#$tmp/corpus.txt#" lc.yaml
expect 0 "--retry-failed: 4 failed or timed-out jobs to run again" \
  "$ablate" run lc.yaml --db $db --workdir w --per-device 2 --retry-failed
eq "fixed: every job done on its second attempt" "$(jobs_of lc | cut -d'|' -f2,3 | sort -u)" "done|2"
for d in w/lc/*/; do
  grep -qF "path: $tmp/corpus.txt" "$d/config.yaml" ||
    fail "$d/config.yaml still names the old data.path: $(grep path "$d/config.yaml")"
  lacks "$d/config.yaml" tiny.txt
done
eq "params data.path from the fixed file" "$(q $db "SELECT COUNT(*) FROM params p JOIN jobs j
  ON j.pk = p.job WHERE p.key = 'data.path' AND p.value = '$tmp/corpus.txt'")" 4
eq "results with final_val_loss" "$(q $db "SELECT COUNT(*) FROM results WHERE sweep = 'lc'
  AND final_val_loss IS NOT NULL")" 4
integrity "retry-failed"

###################################################################################################
section "2. a killed job resumes from its checkpoint under --retry-failed (no --retries)"
sweep long.yaml long "$tmp/corpus.txt" 400 '[2]'
sed -i 's/^seeds: 2/seeds: 1/' long.yaml
"$ablate" run long.yaml --db $db --workdir w > long1.out 2>&1 &
c=$!
bg+=("$c")
dir=$(wait_until 30 eval 'ls -d w/long/*/ > /dev/null 2>&1' && ls -d "$tmp"/w/long/*/ | head -1)
dir=${dir%/}
wait_until 60 test -f "$dir/checkpoint/state.json" || fail "long: no checkpoint in 60 s"
kill -9 "$(cat "$dir/launcher.pid")"
wait "$c"
eq "killed: status" "$(jobs_of long | cut -d'|' -f2)" failed
step=$(sqlite3 :memory: "SELECT json_extract(readfile('$dir/checkpoint/state.json'), '\$.step')")
expect 0 "sweep long: 1 job, 1 launched, 1 done" \
  "$ablate" run long.yaml --db $db --workdir w --retry-failed
grep -q "^resuming from the checkpoint of step $step\$" "$dir/log.txt" ||
  fail "--retry-failed did not resume from the checkpoint of step $step: $(cat "$dir/log.txt")"
# One seed per arm: no report can test it, so status does not suggest one that would refuse.
expect 0 "next: a report needs 2 or more seeds per arm \\(the arms have 1\\)" \
  "$ablate" status long --db $db

###################################################################################################
section "3. a diverged job stays unless --retry-diverged (then from scratch, old dir kept aside)"
# A diverged outcome as training records it: the job's status, its checkpoint and summary.
victim=$(jobs_of lc "j.seed = 0" | head -1 | cut -d'|' -f1)
vdir=$tmp/w/lc/$victim
q_write() { sqlite3 -batch "$db" "$1"; }
q_write "UPDATE jobs SET status = 'diverged' WHERE id = '$victim'"
for f in "$vdir/checkpoint/state.json" "$vdir/summary.json"; do
  sed -i 's/"status": *"done"/"status": "diverged"/' "$f"
done
expect 0 "sweep lc: 4 jobs, 0 launched, 1 diverged, 3 done" \
  "$ablate" run lc.yaml --db $db --workdir w --retry-failed
expect 0 "--retry-diverged: 1 diverged job to train again from scratch" \
  "$ablate" run lc.yaml --db $db --workdir w --retry-diverged
eq "retry-diverged: the job" "$(jobs_of lc "j.id = '$victim'" | cut -d'|' -f2,3)" "done|1"
aside=$(ls -d "$vdir".reset-* 2>/dev/null)
[ "$(echo "$aside" | wc -w)" = 1 ] || fail "retry-diverged: expected one run dir aside: '$aside'"
has "$aside/summary.json" diverged
grep -q "run already finished" "$vdir/log.txt" && fail "retry-diverged: the old run dir was reused"
grep -q "^training lm" "$vdir/log.txt" || fail "retry-diverged: not trained from scratch"

###################################################################################################
section "4. ablate reset"
expect 2 "say which jobs of lc: --job ID, --status STATUS, or --all" "$ablate" reset lc --db $db
expect 2 "sweep lc has no job 0000000000000000 \(its jobs: [0-9a-f]{16}, " \
  "$ablate" reset lc --db $db --job 0000000000000000
expect 2 "--status finished: not a job status \(valid: done, diverged, failed" \
  "$ablate" reset lc --db $db --status finished
expect 2 "no sweep 'nosuch' in $db \(sweeps: " "$ablate" reset nosuch --db $db --all
# Refused while a coordinator holds the sweep (its lock file), with nothing changed.
exec {lock}> "$db.lc.lock"  # this shell holds the sweep's lock, as a coordinator would
flock -n "$lock" || fail "cannot take the lock $db.lc.lock"
expect 1 "sweep lc is being run by another coordinator.*nothing was reset" \
  "$ablate" reset lc --db $db --all
exec {lock}>&-
eq "a refused reset changed nothing" "$(count_of lc "status = 'done'")" 4

target=$(jobs_of lc "j.seed = 1" | head -1 | cut -d'|' -f1)
tdir=$tmp/w/lc/$target
[ "$(rows "$target" | cut -d' ' -f1)" -gt 0 ] || fail "reset: the job has no metrics to remove"
# The flags narrow: a done job is not reset by --job with --status failed, and --status done
# with --job resets that job only.
expect 0 "nothing to reset: no chosen job of sweep lc is failed" \
  "$ablate" reset lc --db $db --job "$target" --status failed
eq "a narrowed reset changed nothing" "$(count_of lc "status = 'done'")" 4
expect 0 "^reset 1 job of sweep lc to pending \(1 done\)" \
  "$ablate" reset lc --db $db --job "$target" --status done
eq "reset: status, attempts, exit code" "$(jobs_of lc "j.id = '$target'" | cut -d'|' -f2,3,5)" \
  "pending|0|"
eq "reset: metrics, summaries, environment rows" "$(rows "$target")" "0 0 0"
[ -e "$tdir" ] && fail "reset: the run dir is still in place"
taside=$(ls -d "$tdir".reset-* 2>/dev/null)
[ -f "$taside/summary.json" ] || fail "reset: the old run dir was not kept aside: '$taside'"
eq "the other jobs keep their results" "$(count_of lc "status = 'done'")" 3
expect 0 "sweep lc: 4 jobs, 1 launched, 4 done" "$ablate" run lc.yaml --db $db --workdir w
grep -q "^training lm" "$tdir/log.txt" || fail "reset: the job was not trained again"
grep -q "resuming" "$tdir/log.txt" && fail "reset: the job resumed instead of starting over"
eq "reset and run: attempts" "$(jobs_of lc "j.id = '$target'" | cut -d'|' -f3)" 1
expect 0 "nothing to reset: no job of sweep lc is failed" "$ablate" reset lc --db $db --status failed

###################################################################################################
section "5. an edited sweep file: stale jobs, left out of reports, back when reverted"
cp lc.yaml lc-full.yaml
sed -i 's/kv_heads: \[1, 2\]/kv_heads: [2, 4]/' lc.yaml
expect 0 "sweep lc: 2 new jobs, 2 stale: no longer in lc.yaml" \
  "$ablate" run lc.yaml --db $db --workdir w --per-device 2
eq "stale jobs" "$(count_of lc "stale = 1")" 2
eq "stale jobs are the kv_heads 1 ones" "$(q $db "SELECT COUNT(*) FROM runs WHERE sweep = 'lc'
  AND stale = 1 AND attention_kv_heads = 1")" 2
eq "stale jobs keep their results" "$(q $db "SELECT COUNT(*) FROM results WHERE sweep = 'lc'
  AND stale = 1 AND final_val_loss IS NOT NULL")" 2
# ablate status lists them apart: the table has the active arms only, then the stale ones.
"$ablate" status lc --db $db > status_stale.txt
eq "status: the table's arms" "$(awk '/^arm /,/^$/' status_stale.txt | awk 'NR > 1 && NF {print $1}' |
  tr '\n' ' ')" "kv_heads=2 kv_heads=4 "
grep -qF "stale: 2 jobs no longer in lc.yaml" status_stale.txt ||
  fail "status: no stale section: $(cat status_stale.txt)"
grep -qE "^  kv_heads=1  2 jobs \(2 done\)$" status_stale.txt ||
  fail "status: the stale arm is not listed: $(cat status_stale.txt)"
grep -qF "next: ablate prune lc --db $db" status_stale.txt ||
  fail "status: no prune hint: $(cat status_stale.txt)"
"$ablate" report lc --db $db --metric final_val_loss --min-seeds 2 --format json \
  > report.json 2> report.err
eq "report: stale count" "$(sqlite3 :memory: "SELECT json_extract(readfile('report.json'),
  '\$.stale') || ' ' || json_array_length(readfile('report.json'), '\$.arms')")" "2 2"
grep -qF "2 stale jobs (no longer in the sweep file) left out" report.err ||
  fail "report: no line about the stale jobs: $(cat report.err)"
"$ablate" report lc --db $db --metric final_val_loss --min-seeds 2 > report.md 2> /dev/null
has report.md "2 stale jobs (no longer in the sweep file) left out"

# Reverted: they count again, with their results, and nothing is retrained.
expect 0 "sweep lc: no new jobs, 2 stale: no longer in lc-full.yaml.*, 2 back in lc-full.yaml" \
  "$ablate" run lc-full.yaml --db $db --workdir w
eq "reverted: stale jobs are the kv_heads 4 ones" "$(q $db "SELECT COUNT(*) FROM runs
  WHERE sweep = 'lc' AND stale = 1 AND attention_kv_heads = 4")" 2
"$ablate" report lc --db $db --metric final_val_loss --min-seeds 2 --format json \
  > report2.json 2> /dev/null
eq "reverted report: arms" "$(sqlite3 :memory: "SELECT json_array_length(readfile('report2.json'),
  '\$.arms')")" 2
eq "reverted report: kv_heads 1 samples" "$(sqlite3 :memory: "SELECT json_extract(a.value, '\$.n')
  FROM json_each(readfile('report2.json'), '\$.arms') a
  WHERE json_extract(a.value, '\$.arm.\"attention.kv_heads\"') = 1")" 2

###################################################################################################
section "6. ablate prune: lists, then with --yes deletes"
mapfile -t stale_ids < <(jobs_of lc "j.stale = 1" | cut -d'|' -f1)
[ "${#stale_ids[@]}" -eq 2 ] || fail "prune: expected 2 stale jobs, got ${#stale_ids[@]}"
before=$(q $db "SELECT (SELECT COUNT(*) FROM jobs) || ' ' || (SELECT COUNT(*) FROM metrics)")
expect 0 "sweep lc: 2 stale jobs \(no longer in lc-full.yaml\):" "$ablate" prune lc --db $db
"$ablate" prune lc --db $db > prune.txt 2>&1
for id in "${stale_ids[@]}"; do
  has prune.txt "$id"
  [ -d "w/lc/$id" ] || fail "prune without --yes removed the run dir of $id"
done
has prune.txt "nothing deleted"
eq "prune without --yes changed nothing" \
  "$(q $db "SELECT (SELECT COUNT(*) FROM jobs) || ' ' || (SELECT COUNT(*) FROM metrics)")" "$before"
exec {lock}> "$db.lc.lock"  # this shell holds the sweep's lock, as a coordinator would
flock -n "$lock" || fail "cannot take the lock $db.lc.lock"
expect 1 "being run by another coordinator.*nothing was deleted" "$ablate" prune lc --db $db --yes
exec {lock}>&-
expect 0 "deleted 2 stale jobs of sweep lc from $db and 2 run dirs" \
  "$ablate" prune lc --db $db --yes
for id in "${stale_ids[@]}"; do
  [ -e "w/lc/$id" ] && fail "prune --yes left the run dir of $id"
  eq "prune: rows of $id" "$(q $db "SELECT COUNT(*) FROM jobs WHERE id = '$id'")" 0
done
eq "prune: orphan rows" "$(q $db "SELECT (SELECT COUNT(*) FROM params WHERE job NOT IN
  (SELECT pk FROM jobs)) + (SELECT COUNT(*) FROM metrics WHERE job NOT IN (SELECT pk FROM jobs))
  + (SELECT COUNT(*) FROM summaries WHERE job NOT IN (SELECT pk FROM jobs))
  + (SELECT COUNT(*) FROM environment WHERE job IS NOT NULL AND job NOT IN
  (SELECT pk FROM jobs))")" 0
eq "prune: the planned jobs stay done" "$(count_of lc "status = 'done'")" 4
expect 0 "sweep lc has no stale jobs: nothing to prune" "$ablate" prune lc --db $db
expect 0 "sweep lc: no new jobs$" "$ablate" run lc-full.yaml --db $db --workdir w
integrity "prune"

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all lifecycle checks passed (${SECONDS}s)"
