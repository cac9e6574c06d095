#!/usr/bin/env bash
# A full disk, end to end: `ablate train`, `ablate run` (its trainers and its ingest into the
# database), `ablate import` and `ablate report`, each with writes failing with ENOSPC under the
# run dir, the database or the report folder. The disk is filled by testing/src/fail_writes.cpp
# (LD_PRELOAD: writes to matching files fail once a byte budget is spent, or while a flag file
# exists), and, where this machine lets the test mount one, by a real 512 KiB tmpfs. Each case
# must end with exit status 1 and a message that names the path, the reason and the free space;
# nothing half-written (no .tmp file, the previous checkpoint and report as they were, the
# database passing integrity_check with what it held); and a re-run once there is space again
# must finish with the results an undisturbed run gives. About 40 s on two cores.
# Usage: disk_cli_test.sh PATH_TO_ABLATE PATH_TO_LIBABLATE_FAIL_WRITES
set -u
ablate=$(readlink -f "$1")
failer=$(readlink -f "$2")
. "$(dirname "$0")/cli_test_lib.sh"
tmp=$(mktemp -d)
mounted=""
cleanup() {
  [ -n "$mounted" ] && umount "$mounted" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 1

# full MATCH AFTER CMD...: CMD with writes to paths containing MATCH failing after AFTER bytes.
full() {
  local match=$1 after=$2
  shift 2
  LD_PRELOAD="$failer" ABLATE_FAIL_WRITES_MATCH="$match" ABLATE_FAIL_WRITES_AFTER="$after" "$@"
}
# no_temporaries DIR: no temporary file or folder of ablate's anywhere under DIR.
no_temporaries() {
  local left
  left=$(find "$1" \( -name '*.tmp' -o -name 'checkpoint.old' \) 2>/dev/null)
  [ -z "$left" ] || fail "temporaries left under $1: $left"
}
# whole_lines FILE: every line of a JSON-lines file is one whole object.
whole_lines() {
  [ ! -s "$1" ] || [ "$(tail -c 1 "$1" | od -An -c | tr -d ' ')" = '\n' ] ||
    fail "$1 ends inside a line"
  while IFS= read -r line; do
    [ "$(sqlite3 :memory: "SELECT json_valid('$(printf '%s' "$line" | sed "s/'/''/g")')")" = 1 ] ||
      fail "$1: not a whole JSON line: $line"
  done < "$1"
}
evals() { grep '"kind":"eval"' "$1"; }
integrity() { eq "$1: PRAGMA integrity_check" "$(q "$2" 'PRAGMA integrity_check')" ok; }

tiny_lm "$tmp"
"$ablate" train tiny.yaml --run-dir clean > /dev/null 2>&1 || fail "the undisturbed run failed"
checkpoint_bytes=$(du -sb clean/checkpoint | cut -f1)

###################################################################################################
section "1. train: the disk fills while the second checkpoint is written"
# The first checkpoint fits, the second stops a third of the way in.
budget=$((checkpoint_bytes + checkpoint_bytes / 3))
expect 1 "checkpoint of step 6 not saved: cannot write $tmp/r1/checkpoint.tmp/[a-z]+\.pt: No space left on device \([0-9.]+ [KMGT]?i?B free on the file system of .*\); the previous checkpoint is kept in $tmp/r1/checkpoint" \
  full /r1/checkpoint.tmp/ "$budget" "$ablate" train tiny.yaml --run-dir "$tmp/r1"
eq "the previous checkpoint: step 3, whole" \
  "$(sqlite3 :memory: "SELECT json_extract(readfile('r1/checkpoint/state.json'), '\$.step')")" 3
for f in model.pt optimizer.pt; do
  [ -s "r1/checkpoint/$f" ] || fail "r1/checkpoint/$f missing or empty"
done
no_temporaries r1
whole_lines r1/events.jsonl
expect 0 "resuming from the checkpoint of step 3" "$ablate" train tiny.yaml --run-dir "$tmp/r1"
eq "resumed after the disk had space again: the evaluations of an undisturbed run" \
  "$(evals r1/events.jsonl)" "$(evals clean/events.jsonl)"
eq "resumed: the final metrics" \
  "$(sqlite3 :memory: "SELECT json_extract(readfile('r1/summary.json'), '\$.final')")" \
  "$(sqlite3 :memory: "SELECT json_extract(readfile('clean/summary.json'), '\$.final')")"

###################################################################################################
section "2. train: events.jsonl, summary.json and a run dir with no room at all"
expect 1 "cannot append to $tmp/r2/events.jsonl: No space left on device \(.* free on" \
  full /r2/events.jsonl 150 "$ablate" train tiny.yaml --run-dir "$tmp/r2"
whole_lines r2/events.jsonl
[ "$(wc -l < r2/events.jsonl)" -ge 1 ] || fail "the event that fitted was lost"
expect 0 "resuming from the checkpoint of step 3" "$ablate" train tiny.yaml --run-dir "$tmp/r2"
eq "events: resumed to the undisturbed run's evaluations" "$(evals r2/events.jsonl)" \
  "$(evals clean/events.jsonl)"

expect 1 "cannot write $tmp/r3/\.summary\.json\.tmp: No space left on device .*; $tmp/r3/summary\.json keeps its previous content" \
  full /r3/.summary.json.tmp 0 "$ablate" train tiny.yaml --run-dir "$tmp/r3"
no_temporaries r3
expect 1 "cannot write $tmp/r4/\.config\.yaml\.tmp: No space left on device" \
  full /r4/ 0 "$ablate" train tiny.yaml --run-dir "$tmp/r4"
no_temporaries r4

###################################################################################################
section "3. run: a trainer's disk fills; the job fails with the reason, --retry-failed resumes it"
# The workdir's name is Latin-1, not UTF-8: the reasons that name it still print and parse.
w=$'w\xe9'
cat > s.yaml <<YAML
name: full
task: lm
base:
  data: {dataset: text, path: $tmp/corpus.txt, seq_len: 16}
  model: {dim: 32, depth: 1, heads: 4}
  train: {steps: 6, batch_size: 4, warmup: 1, eval_every: 3, eval_batches: 2,
          checkpoint_every: 3, device: cpu}
seeds: 2
grid:
  - attention.variant: gqa
    attention.kv_heads: [1, 2]
YAML
"$ablate" run s.yaml --db clean.db --workdir wclean --seeds-per-process 1 > /dev/null 2>&1 ||
  fail "the undisturbed sweep failed"
# Every trainer's second checkpoint meets a full disk (the budget is per process).
expect 1 "sweep full: 4 jobs, 4 launched, 4 failed" \
  full /checkpoint.tmp/ "$budget" "$ablate" run s.yaml --db s.db --workdir "$w" --seeds-per-process 1
"$ablate" status --db s.db full --json > status.json 2>&1 || fail "status --json: $(cat status.json)"
eq "status --json with a Latin-1 path in every failure: valid JSON" \
  "$(sqlite3 :memory: "SELECT json_valid(readfile('status.json'))")" 1
grep -qF "$tmp/w"$'\xef\xbf\xbd'"/full/" status.json ||
  fail "status --json: the Latin-1 byte of the path is not replaced by U+FFFD"
"$ablate" status --db s.db full > status.txt 2>&1
grep -qF -- "--workdir \$'$tmp/w\\xe9' --retry-failed" status.txt ||
  fail "status: the re-run hint does not quote the Latin-1 workdir so that it runs: $(cat status.txt)"
eq "status --json: each failure says the disk was full and what is kept" "$(sqlite3 :memory: "
  SELECT COUNT(*) FROM json_each(readfile('status.json'), '\$[0].failures')
  WHERE json_extract(value, '\$.error') LIKE '%No space left on device%'
    AND json_extract(value, '\$.error') LIKE '%the previous checkpoint is kept%'")" 4
no_temporaries "$w"
integrity "after the failed jobs" s.db
expect 0 "4 failed or timed-out jobs to run again" \
  "$ablate" run s.yaml --db s.db --workdir "$w" --seeds-per-process 1 --retry-failed
for d in "$w"/full/*/; do
  has "$d/log.txt" "resuming from the checkpoint of step 3"
done
eq "resumed sweep: the results of the undisturbed one" \
  "$(q s.db "SELECT id, final_val_loss FROM results ORDER BY 1")" \
  "$(q clean.db "SELECT id, final_val_loss FROM results ORDER BY 1")"

###################################################################################################
section "4. run: the database's disk fills while a job trains; a re-run ingests it"
sed -e 's/name: full/name: dbfull/' -e 's/kv_heads: \[1, 2\]/kv_heads: 2/' -e 's/steps: 6/steps: 60/' \
  s.yaml > d.yaml
# The flag appears once the jobs are registered and the first trains: its ingest meets a full disk.
LD_PRELOAD="$failer" ABLATE_FAIL_WRITES_MATCH="$tmp/d.db" ABLATE_FAIL_WRITES_WHILE="$tmp/flag" \
  "$ablate" run d.yaml --db d.db --workdir wd --seeds-per-process 1 > d1.out 2>&1 &
pid=$!
end=$((SECONDS + 60))
until [ "$(q d.db "SELECT COUNT(*) FROM jobs WHERE status = 'running'" 2>/dev/null)" = 1 ] ||
  [ $SECONDS -ge $end ]; do sleep 0.05; done
touch flag
wait $pid
eq "run with the database's disk full: exit status" "$?" 1
grep -qE "store .*d\.db: .*(database or disk is full|disk I/O error) \(.* free on the file system of .*; nothing of this change was committed" d1.out ||
  fail "the database's full disk is not said clearly: $(cat d1.out)"
rm flag
integrity "after a full disk under the database" d.db
expect 0 "sweep dbfull: 2 jobs" "$ablate" run d.yaml --db d.db --workdir wd --seeds-per-process 1
eq "both jobs done and ingested" \
  "$(q d.db "SELECT COUNT(*) FROM results WHERE sweep = 'dbfull' AND final_val_loss IS NOT NULL")" 2

###################################################################################################
section "5. import and report"
cat > p.csv <<'CSV'
attention.variant,attention.kv_heads,seed,acc
mha,4,0,0.80
mha,4,1,0.82
mha,4,2,0.79
gqa,2,0,0.815
gqa,2,1,0.833
gqa,2,2,0.806
CSV
expect 0 "imported" "$ablate" import --db i.db --sweep one --csv p.csv \
  --params attention.variant,attention.kv_heads
cp i.db i-before.db
expect 1 "store .*i\.db: .*(database or disk is full|disk I/O error) \(.* free on the file system" \
  full "$tmp/i.db" 0 "$ablate" import --db i.db --sweep two --csv p.csv \
  --params attention.variant,attention.kv_heads
integrity "import on a full disk" i.db
eq "import on a full disk: the sweeps before it" "$(q i.db 'SELECT name FROM sweeps')" one
expect 0 "imported" "$ablate" import --db i.db --sweep two --csv p.csv \
  --params attention.variant,attention.kv_heads

expect 0 "report.md" "$ablate" report one --db i.db --metric acc --format md,json --out rep
cp rep/report.md report-one.md
cp rep/report.json report-one.json
sed -i 's/0.833/0.9/' p.csv
expect 0 "imported" "$ablate" import --db i.db --sweep three --csv p.csv \
  --params attention.variant,attention.kv_heads
# The figures fit; the first report file does not.
expect 1 "cannot write $tmp/rep/\.report\.md\.tmp: No space left on device .*; the report files already in $tmp/rep are kept as they were" \
  full "$tmp/rep/.report" 0 "$ablate" report three --db i.db --metric acc --format md,json \
  --out "$tmp/rep"
cmp -s rep/report.md report-one.md || fail "report.md changed on a full disk"
cmp -s rep/report.json report-one.json || fail "report.json changed on a full disk"
no_temporaries rep
ls rep/.*.tmp > /dev/null 2>&1 && fail "temporary report files left"

###################################################################################################
section "6. a real full file system (a 512 KiB tmpfs), where this machine allows mounting one"
mkdir small
if mount -t tmpfs -o size=512k tmpfs small 2> /dev/null; then
  mounted="$tmp/small"
  # config, events and the first checkpoint fit; the second checkpoint does not.
  expect 1 "No space left on device \(.* free on the file system of $tmp/small" \
    "$ablate" train tiny.yaml --run-dir "$tmp/small/r"
  no_temporaries small
  step=$(sqlite3 :memory: "SELECT json_extract(readfile('small/r/checkpoint/state.json'), '\$.step')")
  eq "tmpfs: the checkpoint that fitted" "$step" 3
  whole_lines small/r/events.jsonl
  # Space again: the same run dir, resumed on a larger mount.
  mkdir big && cp -a small/r big/r
  expect 0 "resuming from the checkpoint of step 3" "$ablate" train tiny.yaml --run-dir "$tmp/big/r"
  eq "tmpfs: resumed to the undisturbed run's evaluations" "$(evals big/r/events.jsonl)" \
    "$(evals clean/events.jsonl)"
  # The database: imports until the file system is full.
  rm -rf small/r
  { echo "attention.variant,seed,acc"; for s in $(seq 0 2999); do echo "gqa,$s,0.$s"; done; } \
    > big.csv
  n=0
  rc=0
  while [ $rc -eq 0 ] && [ $n -lt 200 ]; do
    n=$((n + 1))
    "$ablate" import --db small/t.db --sweep "s$n" --csv big.csv --params attention.variant \
      > imp.out 2>&1
    rc=$?
  done
  eq "tmpfs database: the import that did not fit exits 1" "$rc" 1
  grep -qE "database or disk is full|disk I/O error" imp.out || fail "tmpfs import: $(cat imp.out)"
  integrity "tmpfs database" small/t.db
  eq "tmpfs database: every import before it" "$(q small/t.db 'SELECT COUNT(*) FROM sweeps')" \
    $((n - 1))
else
  echo "(skipped: this machine does not let the test mount a tmpfs; the LD_PRELOAD cases ran)"
fi

[ "$failures" -eq 0 ] || { echo "$failures check(s) failed" >&2; exit 1; }
echo "disk_cli: all checks passed"
