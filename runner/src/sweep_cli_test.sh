#!/usr/bin/env bash
# `ablate plan`, `ablate run` and `ablate status` end to end, with real tiny `ablate train` jobs on
# CPU: plans and their errors, a two-stage sweep, resume after `kill -9` of the coordinator at
# random moments (and while a job starts), Ctrl-C, the lock against a second coordinator,
# timeouts, failures, skipped dependants, retries, and `ablate status --json`. The database is
# inspected with the sqlite3 shell. Takes about 90 s on two cores.
# Usage: sweep_cli_test.sh PATH_TO_ABLATE
set -u
ablate=$(readlink -f "$1")
. "$(dirname "$0")/cli_test_lib.sh"
tmp=$(mktemp -d)
bg=()  # coordinators started in the background, for the clean-up
cleanup() {
  local p
  for p in "${bg[@]}"; do kill -9 "$p" 2>/dev/null; done
  for p in $(train_procs "$tmp"); do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 1

# Pids of `ablate train` processes whose command line mentions $1 (a run dir or workdir).
train_procs() {
  local f pid args
  for f in $(grep -lsaF -- "$1" /proc/[0-9]*/cmdline); do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    { mapfile -d '' -t args < "$f"; } 2> /dev/null || continue
    [ "${#args[@]}" -ge 2 ] && [ "${args[0]##*/}" = ablate ] && [ "${args[1]}" = train ] &&
      echo "$pid"
  done
}
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
alive() { kill -0 "$1" 2>/dev/null; }
# running PID: alive and not a zombie (an orphan's reaper may take seconds to collect it).
running() {
  local state
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}
# wait_exit PID SECONDS: waits for a background coordinator; its status in $rc, 124 when it did
# not end in time (it is then killed).
wait_exit() {
  if wait_until "$2" eval '! alive '"$1"; then
    wait "$1"
    rc=$?
  else
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    rc=124
  fi
}
# Job ids of a plan, by stage and seed: plan_ids SWEEP.yaml STAGE SEED.
plan_ids() {
  "$ablate" plan "$1" --json | grep "\"stage\":\"$2\"" | grep "\"seed\":$3[,}]" |
    sed 's/^{"id":"\([0-9a-f]*\)".*/\1/'
}

# check_metrics DB LABEL: each done job's metric rows are exactly a fresh ingest of its run dir's
# events.jsonl (every number of every event, named kind/field, at its step), events.jsonl has no
# event twice (no two writers), and the results view's final_val_loss is summary.json's.
check_metrics() {
  local db=$1 label=$2 pk id dir r jobs=0
  while IFS='|' read -r pk id dir; do
    jobs=$((jobs + 1))
    if [ ! -s "$dir/events.jsonl" ]; then
      fail "$label: job $id has no events.jsonl"
      continue
    fi
    sed '1s/^/[/; $!s/$/,/; $s/$/]/' "$dir/events.jsonl" > "$tmp/events.json"
    r=$(sqlite3 -batch -readonly "$db" <<SQL
WITH ev AS (SELECT value AS e FROM json_each(readfile('$tmp/events.json'))),
exp AS (
  SELECT CASE json_extract(ev.e, '\$.kind') WHEN 'attention'
           THEN 'attn' || json_extract(ev.e, '\$.layer') ELSE json_extract(ev.e, '\$.kind') END
         || '/' || t.key AS name,
         json_extract(ev.e, '\$.step') AS step, t.value AS value
  FROM ev, json_each(ev.e) t
  WHERE t.key NOT IN ('step', 'kind')
    AND NOT (json_extract(ev.e, '\$.kind') = 'attention' AND t.key = 'layer')
    AND t.type IN ('integer', 'real', 'true', 'false')),
got AS (SELECT name, step, value FROM metrics WHERE job = $pk)
SELECT (SELECT COUNT(*) FROM exp) || ' ' || (SELECT COUNT(*) FROM got) || ' ' ||
  (SELECT COUNT(*) FROM exp e WHERE NOT EXISTS (SELECT 1 FROM got g WHERE g.name = e.name
     AND g.step = e.step AND abs(g.value - e.value) <= 1e-9 * max(1.0, abs(e.value)))) || ' ' ||
  (SELECT COUNT(*) FROM got g WHERE NOT EXISTS (SELECT 1 FROM exp e WHERE g.name = e.name
     AND g.step = e.step AND abs(g.value - e.value) <= 1e-9 * max(1.0, abs(e.value)))) || ' ' ||
  (SELECT COUNT(*) - COUNT(DISTINCT json_extract(e, '\$.kind') || '@' ||
     json_extract(e, '\$.step') || '@' || ifnull(json_extract(e, '\$.layer'), '')) FROM ev);
SQL
    )
    local want got missing extra dups
    read -r want got missing extra dups <<< "$r"
    if [ -z "$want" ] || [ "$want" -eq 0 ]; then
      fail "$label: job $id: no metrics in events.jsonl ($r)"
    elif [ "$want" != "$got" ] || [ "$missing" != 0 ] || [ "$extra" != 0 ]; then
      fail "$label: job $id: metrics differ from a fresh ingest of events.jsonl: $want expected" \
        "rows, $got stored, $missing missing or different, $extra extra"
    fi
    [ "${dups:-1}" = 0 ] || fail "$label: job $id: events.jsonl holds $dups repeated events" \
      "(two processes trained it at once?)"
  done < <(q "$db" "SELECT pk, id, run_dir FROM jobs WHERE status = 'done'")
  [ "$jobs" -gt 0 ] || fail "$label: no done job to check"
  r=$(q "$db" "SELECT COUNT(*) FROM results WHERE status = 'done' AND (final_val_loss IS NULL
        OR abs(final_val_loss - json_extract(readfile(run_dir || '/summary.json'),
                                             '\$.final.val_loss')) > 1e-9)")
  eq "$label: done jobs whose results.final_val_loss is not summary.json's" "$r" 0
}
# check_logs DB LABEL: a done job ran to its end once: one "done:" line in its log, never asked
# to run again ("run already finished"), and no more starts than attempts.
check_logs() {
  local db=$1 label=$2 id dir attempts starts
  while IFS='|' read -r id dir attempts; do
    [ "$(grep -c '^done: step' "$dir/log.txt")" -eq 1 ] ||
      fail "$label: job $id: $(grep -c '^done: step' "$dir/log.txt") 'done:' lines in log.txt" \
        "(trained to the end more than once): $(cat "$dir/log.txt")"
    grep -q 'run already finished' "$dir/log.txt" &&
      fail "$label: job $id was launched again after it was done"
    starts=$(grep -cE '^(training|resuming from the checkpoint)' "$dir/log.txt")
    [ "$starts" -le "$attempts" ] ||
      fail "$label: job $id: $starts starts in log.txt but $attempts attempts in the database"
  done < <(q "$db" "SELECT id, run_dir, attempts FROM jobs WHERE status = 'done'")
}
# no_orphans DIR LABEL: no `ablate train` runs under DIR.
no_orphans() {
  local left
  left=$(train_procs "$1" | tr '\n' ' ')
  if [ -n "$left" ]; then
    fail "$2: ablate train processes still running: $left"
    local p
    for p in $left; do kill -9 "$p" 2>/dev/null; done
  fi
}
integrity() {
  eq "$2: PRAGMA integrity_check" "$(q "$1" 'PRAGMA integrity_check')" ok
  eq "$2: PRAGMA foreign_key_check" "$(q "$1" 'PRAGMA foreign_key_check')" ""
}

# A corpus and a sweep file: sweep FILE NAME STEPS CHECKPOINT_EVERY SEEDS GRID [STAGES].
for i in $(seq 1 400); do echo "the quick brown fox jumps over the lazy dog $i"; done > corpus.txt
sweep() {
  cat > "$1" <<YAML
name: $2
task: lm
base:
  data: {dataset: text, path: ${DATA:-$tmp/corpus.txt}, seq_len: 16}
  model: {dim: 32, depth: 1, heads: 4}
  train: {steps: $3, batch_size: 4, warmup: 2, eval_every: 100, eval_batches: 2,
          checkpoint_every: $4, device: cpu}
seeds: $5
grid:
$6
${7:-}
YAML
}
arms='  - attention.variant: gqa
    attention.kv_heads: [1, 2]'
pipeline='stages:
  - {name: pretrain, set: {attention.variant: mha}}
  - {name: uptrain, from: pretrain, convert: mean_pool, set: {train.steps: 40}}'

###################################################################################################
section "1. plan: text, --json, overrides, invalid sweeps"
sweep pipe.yaml pipe 60 20 2 "$arms" "$pipeline"
expect 0 "total: 6 jobs \(8 before deduplication; 2 shared\)" "$ablate" plan pipe.yaml
"$ablate" plan pipe.yaml > plan.txt
grep -E '^[0-9a-f]{16} ' plan.txt | cut -d' ' -f1 | sort > plan_text_ids
eq "plan: job lines" "$(wc -l < plan_text_ids)" 6
eq "plan: pretrain lines" "$(grep -cE '^[0-9a-f]{16} +pretrain ' plan.txt)" 2
eq "plan: uptrain lines with after=" "$(grep -cE '^[0-9a-f]{16} +uptrain .*after=[0-9a-f]{16}' plan.txt)" 4
"$ablate" plan pipe.yaml --json > plan.jsonl 2> plan.err
eq "plan --json: lines on stdout" "$(wc -l < plan.jsonl)" 6
eq "plan --json: stderr" "$(cat plan.err)" ""
n=0
while IFS= read -r line; do
  ok=$(sqlite3 :memory: "SELECT json_valid('${line//\'/\'\'}') AND json_type('${line//\'/\'\'}') = 'object'")
  [ "$ok" = 1 ] || fail "plan --json: not a JSON object: $line"
  n=$((n + 1))
done < plan.jsonl
[ "$n" -eq 6 ] || fail "plan --json: $n objects, expected 6"
sed 's/^{"id":"\([0-9a-f]*\)".*/\1/' plan.jsonl | sort > plan_json_ids
cmp -s plan_text_ids plan_json_ids || fail "plan --json ids differ from the text plan's"
eq "plan --json: uptrain jobs depending on a pretrain job" \
  "$(grep '"stage":"uptrain"' plan.jsonl | grep -cE '"depends_on":\["[0-9a-f]{16}"\]')" 4
# An override of the base changes every job (its config), not the count.
"$ablate" plan pipe.yaml train.lr=0.002 --json | sed 's/^{"id":"\([0-9a-f]*\)".*/\1/' |
  sort > plan_lr_ids
eq "plan train.lr=0.002: jobs" "$(wc -l < plan_lr_ids)" 6
eq "plan train.lr=0.002: ids shared with the plan without it" \
  "$(comm -12 plan_text_ids plan_lr_ids | wc -l)" 0
expect 2 "command line: trian.steps: unknown key; did you mean train.steps\?" \
  "$ablate" plan pipe.yaml trian.steps=5

# Invalid sweeps: status 2, a located message, and neither database nor workdir written.
sweep typo.yaml typo 60 20 1 '  - attention.variant: gqa
    attention.kv_head: [1, 2]'
sweep zip.yaml zipped 60 20 1 '  - attention.variant: gqa
    zip: {attention.kv_heads: [1, 2], train.lr: [1.0e-3, 2.0e-3, 3.0e-3]}'
sweep dotdot.yaml '../x' 60 20 1 '  - attention.variant: gqa'
sweep dots.yaml '..' 60 20 1 '  - attention.variant: gqa'
sweep from.yaml from 60 20 1 '  - attention.variant: gqa' 'stages:
  - {name: a, set: {attention.variant: mha}}
  - {name: b, from: nosuch, convert: mean_pool}'
while IFS='|' read -r file pattern; do
  expect 2 "$pattern" "$ablate" plan "$file"
  expect 2 "$pattern" "$ablate" run "$file" --db "bad_${file%.yaml}.db" --workdir "bad_${file%.yaml}"
  [ -e "bad_${file%.yaml}.db" ] && fail "ablate run $file wrote the database"
  [ -e "bad_${file%.yaml}" ] && fail "ablate run $file wrote the workdir"
done <<'CASES'
typo.yaml|typo.yaml:11:5: attention.kv_head: unknown key; did you mean attention.kv_heads\?
zip.yaml|zip.yaml:11:[0-9]+: .*zip lists have unequal lengths
dotdot.yaml|dotdot.yaml:1:[0-9]+: name: sweep name \.\./x contains '/'
dots.yaml|dots.yaml:1:[0-9]+: name: sweep name \.\. contains "\.\."
from.yaml|from.yaml:[0-9]+:[0-9]+: from: no earlier stage named nosuch
CASES
compgen -G './*.db' > /dev/null && fail "a database was created by an invalid sweep: $(ls ./*.db)"

###################################################################################################
section "2. a two-stage sweep: 2 arms x 2 seeds, pretrain shared per seed, --per-device 2"
db=pipe.db
# Three processes: the seeds of each stage and arm train together (--seeds-per-process auto).
expect 0 "sweep pipe: 6 jobs, 3 launched, 6 done" \
  "$ablate" run pipe.yaml --db $db --workdir w2 --per-device 2
expect 0 "^sweep pipe: 6 jobs, 6 done$" "$ablate" status --db $db pipe
q $db "SELECT id FROM jobs ORDER BY id" > db_ids
cmp -s plan_text_ids db_ids || fail "the database's job ids are not the plan's"
eq "jobs per stage" "$(q $db "SELECT stage || ':' || COUNT(*) FROM jobs GROUP BY stage ORDER BY stage" |
  tr '\n' ' ')" "pretrain:2 uptrain:4 "
eq "jobs not done" "$(q $db "SELECT COUNT(*) FROM jobs WHERE status != 'done'")" 0
eq "attempts other than 1" "$(q $db "SELECT COUNT(*) FROM jobs WHERE attempts != 1")" 0
# Each pretrain is shared by both conversion arms of its seed.
eq "pretrain jobs with two uptrain children of their seed" "$(q $db "SELECT COUNT(*) FROM jobs p
  WHERE p.stage = 'pretrain' AND (SELECT COUNT(*) FROM jobs c WHERE c.parent_id = p.id
  AND c.stage = 'uptrain' AND c.seed = p.seed) = 2")" 2
# Dependencies: every uptrain started after its parent ended (ISO-8601 text sorts as time).
eq "uptrain jobs with a parent" "$(q $db "SELECT COUNT(*) FROM jobs c JOIN jobs p
  ON p.id = c.parent_id AND p.sweep = c.sweep WHERE c.stage = 'uptrain'")" 4
eq "uptrain jobs started before their parent ended" "$(q $db "SELECT COUNT(*) FROM jobs c
  JOIN jobs p ON p.id = c.parent_id AND p.sweep = c.sweep
  WHERE c.started IS NULL OR p.ended IS NULL OR c.started < p.ended")" 0
# The two pretrains overlapped (trained together in one process).
eq "overlapping pretrain pairs" "$(q $db "SELECT COUNT(*) FROM jobs a JOIN jobs b
  ON a.stage = 'pretrain' AND b.stage = 'pretrain' AND a.pk < b.pk
  WHERE a.started < b.ended AND b.started < a.ended")" 1
# Each uptrain started from its parent's run dir, converted (the step-0 eval of the converted model).
while IFS='|' read -r id dir parent_dir; do
  grep -qF "from: $parent_dir" "$dir/config.yaml" ||
    fail "uptrain $id: config.yaml does not start from its parent's run dir $parent_dir"
  grep -q '^eval step 0 ' "$dir/log.txt" || fail "uptrain $id: no step-0 eval of the converted model"
done < <(q $db "SELECT c.id, c.run_dir, p.run_dir FROM jobs c JOIN jobs p ON p.id = c.parent_id
  AND p.sweep = c.sweep WHERE c.stage = 'uptrain'")
# Run dirs under --workdir/<sweep>/<job id>.
eq "run dirs not at w2/pipe/<id>" "$(q $db "SELECT COUNT(*) FROM jobs
  WHERE run_dir != '$tmp/w2/pipe/' || id")" 0
eq "results rows with final_val_loss" \
  "$(q $db "SELECT COUNT(*) FROM results WHERE final_val_loss IS NOT NULL")" 6
eq "runs with attention_variant = 'gqa'" \
  "$(q $db "SELECT COUNT(*) FROM runs WHERE attention_variant = 'gqa'")" 4
eq "runs with attention_variant = 'mha'" \
  "$(q $db "SELECT COUNT(*) FROM runs WHERE attention_variant = 'mha'")" 2
eq "runs with attention_variant = 'gqa' and attention_kv_heads = 2" \
  "$(q $db "SELECT COUNT(*) FROM runs WHERE attention_variant = 'gqa' AND attention_kv_heads = 2")" 2
eq "uptrain results with final_val_loss below ln(256) (they learned)" \
  "$(q $db "SELECT COUNT(*) FROM results WHERE stage = 'uptrain' AND final_val_loss < 5.5")" 4
check_metrics $db "two-stage sweep"
check_logs $db "two-stage sweep"
# Running it again runs nothing.
expect 0 "sweep pipe: 6 jobs, 0 launched, 6 done" \
  "$ablate" run pipe.yaml --db $db --workdir w2 --per-device 2
eq "attempts after a second ablate run" "$(q $db "SELECT SUM(attempts) FROM jobs")" 6
integrity $db "two-stage sweep"

###################################################################################################
section "3a. resume after kill -9 of the coordinator at random moments"
db=kill.db
sweep kill.yaml kill 600 50 3 "$arms"
declare -A done_attempts=()
snapshot_done() {  # remembers the attempts of done jobs; they must never change afterwards
  local id a
  while IFS='|' read -r id a; do
    if [ -n "${done_attempts[$id]:-}" ] && [ "${done_attempts[$id]}" != "$a" ]; then
      fail "kill -9: job $id was done with ${done_attempts[$id]} attempts, now $a (run again)"
    fi
    done_attempts[$id]=$a
  done < <(q $db "SELECT id, attempts FROM jobs WHERE status = 'done'")
}
for round in 1 2 3; do
  delay=$(printf '%d.%03d' $((RANDOM % 3)) $((RANDOM % 1000)))
  "$ablate" run kill.yaml --db $db --workdir w3 --per-device 2 > "kill$round.out" 2>&1 &
  c=$!
  bg+=("$c")
  sleep "$delay"
  kill -9 "$c" 2>/dev/null
  wait "$c" 2>/dev/null
  echo "   round $round: killed after ${delay}s; $(q $db "SELECT status || ' ' || COUNT(*) FROM jobs
    GROUP BY status" 2>/dev/null | tr '\n' ' ')"
  [ -f $db ] && snapshot_done
done
expect 0 "sweep kill: 6 jobs, [0-9]+ launched, 6 done" \
  "$ablate" run kill.yaml --db $db --workdir w3 --per-device 2
no_orphans "$tmp/w3" "after the last coordinator of kill.yaml finished"
snapshot_done
eq "kill -9: jobs done" "$(q $db "SELECT COUNT(*) FROM jobs WHERE status = 'done'")" 6
check_logs $db "kill -9"
check_metrics $db "kill -9"
integrity $db "kill -9"

###################################################################################################
section "3b. kill -9 of the coordinator while a job starts up (its ablate train is slow to start)"
# A job's process takes seconds to start training (loading LibTorch, the data, the causality
# check; more with CUDA). The coordinator is killed right after a launch and the orphan is held
# (SIGSTOP) until the next coordinator has recovered the job: that coordinator must stop the
# orphan (found through launcher.pid), not train the job a second time beside it.
db=startup.db
sweep startup.yaml startup 600 50 1 "$arms"
"$ablate" run startup.yaml --db $db --workdir w3b --per-device 2 > startup1.out 2>&1 &
c=$!
bg+=("$c")
wait_until 30 eval 'ls w3b/startup/*/output.txt > /dev/null 2>&1' ||
  fail "startup: no job launched in 30 s"
kill -9 "$c"
wait "$c" 2>/dev/null
held=()
for p in $(train_procs "$tmp/w3b"); do
  kill -STOP "$p"
  dir=$(tr '\0' '\n' < "/proc/$p/cmdline" | grep -A1 -- '--run-dir' | tail -1)
  held+=("$p|$dir")
done
echo "   orphans held: ${#held[@]}"
"$ablate" run startup.yaml --db $db --workdir w3b --per-device 2 > startup2.out 2>&1 &
c=$!
bg+=("$c")
relaunched() {  # the next coordinator recovered and relaunched (or finished) the held jobs
  local h
  for h in "${held[@]}"; do
    [ "$(q $db "SELECT attempts >= 2 OR status != 'running' FROM jobs
      WHERE run_dir = '${h#*|}'" 2>/dev/null)" = 1 ] || return 1
  done
}
wait_until 30 relaunched || fail "startup: the held jobs were not relaunched in 30 s"
for h in "${held[@]}"; do kill -CONT "${h%%|*}" 2>/dev/null; done
wait_exit "$c" 120
[ "$rc" -eq 0 ] || fail "startup: the coordinator after the kill exited $rc:" \
  "$(cat startup2.out; "$ablate" status --db $db)"
for h in "${held[@]}"; do
  if running "${h%%|*}"; then
    fail "startup: the orphaned ablate train ${h%%|*} of ${h#*|} still runs after the next" \
      "coordinator finished (it was never stopped)"
  fi
done
no_orphans "$tmp/w3b" "startup"
sleep 0.5  # let killed orphans' last writes land before the logs are read
eq "startup: jobs done" "$(q $db "SELECT COUNT(*) FROM jobs WHERE status = 'done'")" 2
check_logs $db "startup"
check_metrics $db "startup"

###################################################################################################
section "4. Ctrl-C: SIGINT to a running coordinator, then resume"
db=int.db
sweep int.yaml int 1200 50 2 "$arms"
"$ablate" run int.yaml --db $db --workdir w4 --per-device 2 > int1.out 2>&1 &
c=$!
bg+=("$c")
# Wait for a running job with a checkpoint.
has_checkpoint() {
  [ -f $db ] && [ -n "$(q $db "SELECT run_dir FROM jobs WHERE status = 'running'" 2>/dev/null |
    while read -r d; do [ -f "$d/checkpoint/state.json" ] && echo "$d"; done)" ]
}
wait_until 60 has_checkpoint || fail "Ctrl-C: no running job wrote a checkpoint in 60 s"
q $db "SELECT id FROM jobs WHERE status = 'running'" | sort > int_running
t0=$SECONDS
kill -INT "$c"
wait_exit "$c" 15
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] ||
  fail "Ctrl-C: the coordinator exited $rc (124: not within 15 s), expected non-zero"
echo "   stopped in $((SECONDS - t0)) s with status $rc"
grep -q 'interrupted: run the same command again to resume' int1.out ||
  fail "Ctrl-C: no 'interrupted' message: $(cat int1.out)"
[ -s int_running ] || fail "Ctrl-C: no job was running at the SIGINT"
eq "Ctrl-C: jobs still running in the database" \
  "$(q $db "SELECT COUNT(*) FROM jobs WHERE status = 'running'")" 0
while read -r id; do
  s=$(q $db "SELECT status FROM jobs WHERE id = '$id'")
  [ "$s" = interrupted ] || [ "$s" = 'done' ] ||
    fail "Ctrl-C: job $id was running at the SIGINT and is now $s"
done < int_running
eq "Ctrl-C: jobs neither pending, interrupted nor done" "$(q $db "SELECT COUNT(*) FROM jobs
  WHERE status NOT IN ('pending', 'interrupted', 'done')")" 0
no_orphans "$tmp/w4" "Ctrl-C"
# The checkpoint each interrupted job will resume from.
q $db "SELECT id, run_dir FROM jobs WHERE status = 'interrupted'" > int_interrupted
resumable=0
while IFS='|' read -r id dir; do
  if [ -f "$dir/checkpoint/state.json" ]; then
    step=$(sqlite3 :memory: "SELECT json_extract(readfile('$dir/checkpoint/state.json'), '\$.step')")
    echo "$id|$dir|$step" >> int_resume
    resumable=$((resumable + 1))
  fi
done < int_interrupted
[ "$resumable" -ge 1 ] || fail "Ctrl-C: no interrupted job with a checkpoint to resume from"
expect 0 "sweep int: 4 jobs, [0-9]+ launched, 4 done" \
  "$ablate" run int.yaml --db $db --workdir w4 --per-device 2
while IFS='|' read -r id dir step; do
  grep -q "^resuming from the checkpoint of step $step\$" "$dir/log.txt" ||
    fail "Ctrl-C: job $id did not resume from its checkpoint of step $step: $(cat "$dir/log.txt")"
done < <(cat int_resume 2>/dev/null)
check_logs $db "Ctrl-C"
check_metrics $db "Ctrl-C"
integrity $db "Ctrl-C"

###################################################################################################
section "5. the lock: a second coordinator on the same sweep and workdir"
db=lock.db
sweep lock.yaml lock 600 50 2 "$arms"
"$ablate" run lock.yaml --db $db --workdir w5 --per-device 2 > lock1.out 2>&1 &
c=$!
bg+=("$c")
some_running() {
  [ -f $db ] && [ "$(q $db "SELECT COUNT(*) FROM jobs WHERE status = 'running'" 2>/dev/null)" -ge 1 ]
}
wait_until 30 some_running || fail "lock: the first coordinator started no job in 30 s"
t0=$SECONDS
out=$("$ablate" run lock.yaml --db $db --workdir w5 --per-device 2 2>&1)
rc=$?
[ "$rc" -ne 0 ] || fail "lock: a second coordinator exited 0: $out"
[ $((SECONDS - t0)) -le 5 ] || fail "lock: the second coordinator took $((SECONDS - t0)) s to give up"
printf '%s' "$out" | grep -qE "sweep lock is being run by another coordinator \(pid $c\)" ||
  fail "lock: the second coordinator's message does not name the first (pid $c): $out"
# Another database, same workdir: the run dirs are shared, so refused too.
out=$("$ablate" run lock.yaml --db lock2.db --workdir w5 2>&1)
rc=$?
[ "$rc" -ne 0 ] && printf '%s' "$out" | grep -q "another coordinator" ||
  fail "lock: a coordinator with another database on the same workdir was not refused ($rc): $out"
alive "$c" || fail "lock: the first coordinator ended before the check (make the jobs longer)"
wait_exit "$c" 120
eq "lock: the first coordinator's exit status" "$rc" 0
grep -q "sweep lock: 4 jobs, 2 launched, 4 done" lock1.out ||
  fail "lock: the first coordinator did not finish its sweep: $(cat lock1.out)"
eq "lock: jobs run more than once" "$(q $db "SELECT COUNT(*) FROM jobs WHERE attempts != 1")" 0
integrity $db "lock"
check_metrics $db "lock"

# 5b. The same sweep in the same database from another --workdir is the same sweep too: a second
# coordinator there must refuse as well (else both run, and record, the same jobs).
db=lockdb.db
sweep lockdb.yaml lockdb 600 50 2 "$arms"
"$ablate" run lockdb.yaml --db $db --workdir w5a --per-device 2 > lockdb1.out 2>&1 &
c=$!
bg+=("$c")
wait_until 30 some_running || fail "lock (database): the first coordinator started no job in 30 s"
"$ablate" run lockdb.yaml --db $db --workdir w5b --per-device 2 > lockdb2.out 2>&1 &
c2=$!
bg+=("$c2")
wait_exit "$c2" 5
if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || ! grep -q "another coordinator" lockdb2.out; then
  fail "lock (database): a second coordinator of sweep lockdb in $db with another --workdir was" \
    "not refused (status $rc; 124: still running after 5 s): $(cat lockdb2.out)"
fi
kill -9 "$c" 2>/dev/null
wait "$c" 2>/dev/null
for p in $(train_procs "$tmp/w5a") $(train_procs "$tmp/w5b"); do kill -9 "$p" 2>/dev/null; done

###################################################################################################
section "6. timeouts, failures, skipped dependants, retries"
db=fail.db
# 6a. --timeout 1: jobs that need longer are timed_out, with the reason.
sweep timeout.yaml timeout 3000 50 1 "$arms"
t0=$SECONDS
expect 1 "sweep timeout: 2 jobs, 2 launched, 2 timed_out" \
  "$ablate" run timeout.yaml --db $db --workdir w6 --per-device 2 --timeout 1
[ $((SECONDS - t0)) -le 15 ] || fail "timeout: --timeout 1 took $((SECONDS - t0)) s"
expect 0 "sweep timeout: 2 jobs, 2 timed_out" "$ablate" status --db $db timeout
eq "timeout: status lines with the reason" \
  "$("$ablate" status --db $db timeout | grep -cE '\(job [0-9a-f]{16}\) timed_out: timed out after 1')" 2
no_orphans "$tmp/w6/timeout" "timeout"

# 6b. Bad input in a job (its data turned binary after the plan: run checks that the file is
# there, the job reads it): failed with exit status 2 and the message, and not retried even with
# --retries 1.
cp corpus.txt vanishing.txt
DATA=$tmp/vanishing.txt sweep badinput.yaml badinput 60 20 1 '  - attention.variant: gqa'
expect 0 "total: 1 job " "$ablate" plan badinput.yaml
printf 'text\000binary' > vanishing.txt
expect 1 "sweep badinput: 1 job, 1 launched, 1 failed" \
  "$ablate" run badinput.yaml --db $db --workdir w6 --retries 1
"$ablate" status --db $db badinput > badinput.status
grep -qE "^  .* \(job [0-9a-f]{16}\) failed: exit status 2$" badinput.status ||
  fail "badinput: ablate status lacks the exit status: $(cat badinput.status)"
grep -qF "$tmp/vanishing.txt is not UTF-8 text" badinput.status ||
  fail "badinput: ablate status lacks the job's last log lines: $(cat badinput.status)"
eq "badinput: attempts (exit status 2 is not retried)" \
  "$(q $db "SELECT attempts || ' ' || exit_code FROM jobs WHERE sweep = 'badinput'")" "1 2"

# 6c. A job killed by SIGKILL mid-run (as the OOM killer would): failed with the signal and its
# last log lines, its dependant skipped naming it, the other seed's jobs done. One process per
# job, so that the kill hits one job (the seeds of an ensemble share their process's fate).
sweep oom.yaml oom 1000 50 2 '  - attention.variant: gqa
    attention.kv_heads: 2' "$pipeline"
victim=$(plan_ids oom.yaml pretrain 0)
dependant=$(plan_ids oom.yaml uptrain 0)
[ -n "$victim" ] && [ -n "$dependant" ] || fail "oom: no pretrain/uptrain job of seed 0 in the plan"
# kill_when_checkpointed DIR: SIGKILL the job's ablate train once it has a checkpoint.
kill_when_checkpointed() {
  local dir=$1 pid
  wait_until 60 test -f "$dir/checkpoint/state.json" || {
    fail "no checkpoint in $dir in 60 s"
    return
  }
  pid=$(cat "$dir/launcher.pid")
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir" ||
    fail "the pid file of $dir names no running job ($pid)"
  kill -9 "$pid"
}
"$ablate" run oom.yaml --db $db --workdir w6 --per-device 2 --seeds-per-process 1 > oom.out 2>&1 &
c=$!
bg+=("$c")
kill_when_checkpointed "$tmp/w6/oom/$victim"
wait_exit "$c" 120
eq "oom: the coordinator's exit status" "$rc" 1
grep -q "sweep oom: 4 jobs, 3 launched, 2 done, 1 failed, 1 skipped" oom.out ||
  fail "oom: unexpected summary: $(cat oom.out)"
"$ablate" status --db $db oom > oom.status
grep -qE "^sweep oom: 4 jobs, 2 done, 1 failed, 1 skipped$" oom.status ||
  fail "oom: ablate status counts: $(cat oom.status)"
grep -qE "^  .* \(job $victim\) failed: killed by signal 9" oom.status ||
  fail "oom: ablate status lacks the killed job's reason: $(cat oom.status)"
last=$(tail -1 "w6/oom/$victim/output.txt")
[ -n "$last" ] && grep -qF -- "$last" oom.status ||
  fail "oom: ablate status lacks the killed job's last log line '$last': $(cat oom.status)"
grep -qE "^  .* \(job $dependant\) skipped: parent $victim failed" oom.status ||
  fail "oom: ablate status does not say the dependant was skipped for its parent: $(cat oom.status)"
eq "oom: jobs of seed 1 done" "$(q $db "SELECT COUNT(*) FROM jobs j JOIN sweeps s ON s.pk = j.sweep_pk
  WHERE s.name = 'oom' AND j.seed = 1 AND j.status = 'done'")" 2
eq "oom: the skipped dependant never started" "$(q $db "SELECT attempts FROM jobs WHERE id = '$dependant'")" 0

# 6d. --retries 1 within one run: a job killed once resumes from its checkpoint and ends done.
sweep retry.yaml retry 1000 50 1 '  - attention.variant: gqa
    attention.kv_heads: 2' "$pipeline"
victim=$(plan_ids retry.yaml pretrain 0)
"$ablate" run retry.yaml --db $db --workdir w6 --per-device 2 --retries 1 > retry.out 2>&1 &
c=$!
bg+=("$c")
kill_when_checkpointed "$tmp/w6/retry/$victim"
wait_exit "$c" 120
eq "retry: the coordinator's exit status" "$rc" 0
eq "retry: statuses and attempts" "$(q $db "SELECT j.stage || ':' || j.status || ':' || j.attempts
  FROM jobs j JOIN sweeps s ON s.pk = j.sweep_pk WHERE s.name = 'retry' ORDER BY j.stage" |
  tr '\n' ' ')" "pretrain:done:2 uptrain:done:1 "
grep -qE "^resuming from the checkpoint of step [1-9][0-9]*$" "w6/retry/$victim/log.txt" ||
  fail "retry: the retried job did not resume from its checkpoint: $(cat "w6/retry/$victim/log.txt")"
no_orphans "$tmp/w6" "failures"

###################################################################################################
section "7. ablate status --json against the jobs table"
"$ablate" status --db $db --json > status.json 2> status.err
eq "status --json: exit status" "$?" 0
eq "status --json: stderr" "$(cat status.err)" ""
eq "status --json: one valid JSON document" \
  "$(sqlite3 :memory: "SELECT json_valid(readfile('$tmp/status.json'))")" 1
# Counts by (sweep, status) both ways, and the totals.
diff_counts=$(sqlite3 -batch -readonly $db <<SQL
WITH js AS (SELECT json_extract(s.value, '\$.sweep') AS sweep, c.key AS status, c.value AS n
            FROM json_each(readfile('$tmp/status.json')) s, json_each(s.value, '\$.counts') c),
     db AS (SELECT w.name AS sweep, j.status AS status, COUNT(*) AS n
            FROM jobs j JOIN sweeps w ON w.pk = j.sweep_pk GROUP BY 1, 2)
SELECT ((SELECT COUNT(*) FROM (SELECT * FROM js WHERE n > 0 EXCEPT SELECT * FROM db)) +
        (SELECT COUNT(*) FROM (SELECT * FROM db EXCEPT SELECT * FROM js)) +
        (SELECT COUNT(*) FROM json_each(readfile('$tmp/status.json')) s
         WHERE json_extract(s.value, '\$.total') != (SELECT COUNT(*) FROM jobs j JOIN sweeps w
           ON w.pk = j.sweep_pk WHERE w.name = json_extract(s.value, '\$.sweep')))) ||
       ' ' || (SELECT COUNT(*) FROM json_each(readfile('$tmp/status.json'))) ||
       ' ' || (SELECT COUNT(*) FROM js WHERE n > 0);
SQL
)
eq "status --json: mismatches with SELECT status, COUNT(*) FROM jobs, sweeps, (sweep, status) pairs" \
  "$diff_counts" "0 4 6"
eq "status --json: failures listed" "$(sqlite3 :memory: "SELECT SUM(json_array_length(value, '\$.failures'))
  FROM json_each(readfile('$tmp/status.json'))")" \
  "$(q $db "SELECT COUNT(*) FROM jobs WHERE status IN ('failed', 'timed_out', 'skipped', 'diverged')")"
"$ablate" status --db $db oom --json > status_oom.json
eq "status oom --json" "$(sqlite3 :memory: "SELECT json_array_length(readfile('$tmp/status_oom.json'))
  || ' ' || json_extract(readfile('$tmp/status_oom.json'), '\$[0].sweep')
  || ' ' || json_extract(readfile('$tmp/status_oom.json'), '\$[0].counts.skipped')")" "1 oom 1"
expect 2 "no sweep 'nosuch'" "$ablate" status --db $db nosuch
expect 2 "no database" "$ablate" status --db nowhere.db

# A failed job and its skipped dependant run again under --retries 1, from the checkpoint.
victim=$(plan_ids oom.yaml pretrain 0)
expect 0 "sweep oom: 4 jobs, 2 launched, 4 done" \
  "$ablate" run oom.yaml --db $db --workdir w6 --per-device 2 --retries 1
grep -qE "^resuming from the checkpoint of step [1-9][0-9]*$" "w6/oom/$victim/log.txt" ||
  fail "oom rerun: the failed job did not resume from its checkpoint"
integrity $db "failures"

###################################################################################################
section "8. ablate query: read-only SQL as a table, CSV and JSON"
eq "query csv" "$("$ablate" query --db $db --format csv \
  "SELECT COUNT(*) AS n FROM jobs WHERE sweep = 'oom'")" \
  "$(printf 'n\n%s' "$(q $db "SELECT COUNT(*) FROM jobs j JOIN sweeps s ON s.pk = j.sweep_pk
    WHERE s.name = 'oom'")")"
before=$(q $db "SELECT COUNT(*) FROM jobs")
expect 2 "read-only" "$ablate" query --db $db "DELETE FROM jobs"
expect 2 "SQL error" "$ablate" query --db $db "SELEC 1"
expect 2 "expected table, csv or json" "$ablate" query --db $db --format xml "SELECT 1"
eq "query: nothing deleted" "$(q $db "SELECT COUNT(*) FROM jobs")" "$before"
expect 0 "\(1 row\)" "$ablate" query --db $db "SELECT 1 AS one"
eq "query json" "$("$ablate" query --db $db --format json "SELECT 1 AS one, 'a\"b' AS t")" \
  '[{"one":1,"t":"a\"b"}]'

###################################################################################################
section "9. ablate report on the two-stage sweep: real curves, stages as arms, figures"
rm -rf rep9
expect 0 "report.json" "$ablate" report --db pipe.db pipe --metric final_val_loss --lower-is-better \
  --min-seeds 2 --format md,json --out rep9
for f in report.md report.json figures/learning_curves.png figures/learning_curves.svg; do
  [ -s "rep9/$f" ] || fail "report: rep9/$f missing or empty"
done
grep -qF "final value of eval/val\_loss" rep9/report.md || fail "report: metric kind not stated"
grep -qF "(attention.variant=mha)" rep9/report.md || fail "report: the mha pretrain is not the baseline"
json_length() { sqlite3 :memory: "SELECT json_array_length(readfile('$1'), '\$.$2')"; }
eq "report: arms (pretrain + 2 uptrain)" "$(json_length rep9/report.json arms)" 3
eq "report: comparisons with the baseline" "$(json_length rep9/report.json comparisons)" 2
grep -q '"test": "paired-t"' rep9/report.json || fail "report: shared seeds not paired"
grep -q '"n": 2' rep9/report.json || fail "report: n per arm is not 2 seeds"
grep -q 'stage=uptrain' rep9/report.md || fail "report: stage missing from arm labels"

echo "sweep_cli_test: ${SECONDS}s"
[ "$failures" -eq 0 ] && echo "sweep_cli_test: all checks passed"
exit "$failures"
