#!/usr/bin/env bash
# What `ablate run` and `ablate status` tell while a sweep runs, with real tiny `ablate train` jobs
# on CPU: a line per job start and end on stderr while the run goes on (output to a file, as
# under nohup or Slurm), resume counts, the terminal's line, the per-arm table, a failure's whole
# reason and what to run next. Takes about a minute on two cores.
# Usage: progress_cli_test.sh PATH_TO_ABLATE
set -u
ablate=$(readlink -f "$1")
. "$(dirname "$0")/cli_test_lib.sh"
tmp=$(mktemp -d)
bg=()
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
alive() { kill -0 "$1" 2>/dev/null; }
# count FILE REGEX: lines of FILE matching the extended REGEX.
count() { grep -cE -- "$2" "$1"; }

for i in $(seq 1 400); do echo "the quick brown fox jumps over the lazy dog $i"; done > corpus.txt
# sweep FILE NAME SEEDS DATA_PATH: three arms (kv_heads 1, 2, 4) of a tiny lm.
sweep() {
  cat > "$1" <<YAML
name: $2
task: lm
base:
  data: {dataset: text, path: $4, seq_len: 16}
  model: {dim: 32, depth: 1, heads: 4}
  train: {steps: 600, batch_size: 4, warmup: 2, eval_every: 300, eval_batches: 2,
          checkpoint_every: 150, device: cpu}
seeds: $3
grid:
  - attention.variant: gqa
    attention.kv_heads: [1, 2, 4]
YAML
}
time_re='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'

###################################################################################################
section "1. without a terminal: a line per job start and end while the run goes on"
sweep prog.yaml prog 1 "$tmp/corpus.txt"
"$ablate" run prog.yaml --db prog.db --workdir w > run1.out 2> run1.err &
c=$!
bg+=("$c")
first_end() { grep -qE "^$time_re  done " run1.err; }
if wait_until 90 first_end; then
  # The first job's end is in the file while the coordinator still runs the other two.
  alive "$c" || fail "the first job's end line appeared only once the run had ended: $(cat run1.err)"
  grep -q launched run1.out && fail "the run's summary was out before the first end line was seen"
  # The coordinator writes the next job's start line just after the end line: wait for it
  # rather than race it. One job at a time, so it is the second start and not a third.
  two_starts() { [ "$(count run1.err "^$time_re  start ")" -ge 2 ]; }
  wait_until 10 two_starts || fail "no second start line within 10 s of the first end: $(cat run1.err)"
  eq "start lines once the first job ended" "$(count run1.err "^$time_re  start ")" 2
else
  fail "no job end line in 90 s: $(cat run1.err)"
fi
wait "$c"
eq "ablate run's exit status" "$?" 0
cat run1.err
eq "header line" "$(head -1 run1.err | sed -E "s/^$time_re  //")" "sweep prog: 3 jobs, 3 to run"
eq "start lines" "$(count run1.err "^$time_re  start      kv_heads=[124]  seed 0  on cpu  \(job [0-9a-f]{16}\)$")" 3
eq "done lines" "$(count run1.err \
  "^$time_re  done       kv_heads=[124]  seed 0  final_val_loss [0-9.]+  [0-9]+ s  \[[1-3]/3 done, ETA [^]]+\]$")" 3
eq "last done line" "$(count run1.err "  \[3/3 done, ETA 0 s\]$")" 1
for k in 1 2 4; do  # each arm starts before it ends
  s=$(grep -nE "  start      kv_heads=$k  " run1.err | cut -d: -f1)
  e=$(grep -nE "  done       kv_heads=$k  " run1.err | cut -d: -f1)
  [ -n "$s" ] && [ -n "$e" ] && [ "$s" -lt "$e" ] || fail "kv_heads=$k: start line $s, end line $e"
done
grep -q $'\r' run1.err && fail "terminal control characters in a log file: $(cat -v run1.err)"
eq "stdout: the registration and the result, no job lines" "$(cat run1.out)" \
  "sweep prog: 3 jobs
sweep prog: 3 jobs, 3 launched, 3 done"

###################################################################################################
section "2. Ctrl-C, ablate status with jobs left, resume: earlier runs' jobs are not this run's"
sweep prog.yaml prog 2 "$tmp/corpus.txt"  # seed 1 joins: 3 new jobs
"$ablate" run prog.yaml --db prog.db --workdir w > run2.out 2> run2.err &
c=$!
bg+=("$c")
wait_until 60 grep -qE "  start " run2.err || fail "no job started in 60 s: $(cat run2.err)"
# While a coordinator runs the sweep, status names it and suggests no second one.
"$ablate" status --db prog.db prog > status_running.txt
grep -qxE "next: the coordinator with pid $c runs the sweep \([01] running\); see again: ablate status prog --db prog.db" \
  status_running.txt || fail "status while running: $(cat status_running.txt)"
eq "status while running: next lines" "$(grep -c '^next:' status_running.txt)" 1
kill -INT "$c"
wait "$c"
eq "header after seeds: 3" "$(head -1 run2.err | sed -E "s/^$time_re  //")" \
  "sweep prog: 6 jobs, 3 done before this run, 3 to run"
grep -qE "^$time_re  interrupted  kv_heads=[124]  seed 1  stopped by the coordinator" run2.err ||
  fail "no interrupted line after Ctrl-C: $(cat run2.err)"
"$ablate" status --db prog.db prog > status2.txt
cat status2.txt
left=$(q prog.db "SELECT COUNT(*) FROM jobs WHERE status IN ('pending', 'interrupted')")
[ "$left" -ge 1 ] || fail "no job left after Ctrl-C"
grep -qE "^next: ablate run prog.yaml --db prog.db --workdir $tmp/w   \(runs the $left jobs? left\)$" \
  status2.txt || fail "status does not say how to resume: $(cat status2.txt)"
grep -q "^next: ablate report" status2.txt && fail "a report suggested with jobs left"
# Pending (and interrupted) jobs per arm: seed 1 of each arm, unless it ended before the Ctrl-C.
eq "pending by arm, as the table shows them" \
  "$(awk '/^kv_heads=/ {print $1, $4}' status2.txt | sort | tr '\n' ' ')" \
  "$(q prog.db "SELECT 'kv_heads=' || p.value, SUM(j.status IN ('pending', 'interrupted'))
     FROM jobs j JOIN params p ON p.job = j.pk AND p.key = 'attention.kv_heads'
     GROUP BY p.value ORDER BY 1" | tr '|' ' ' | tr '\n' ' ')"
before=$(q prog.db "SELECT COUNT(*) FROM jobs WHERE status = 'done'")
todo=$((6 - before))
"$ablate" run prog.yaml --db prog.db --workdir w > run3.out 2> run3.err
eq "resume: exit status" "$?" 0
eq "resume: header" "$(head -1 run3.err | sed -E "s/^$time_re  //")" \
  "sweep prog: 6 jobs, $before done before this run, $todo to run"
eq "resume: done lines" "$(count run3.err "  done       kv_heads")" "$todo"
eq "resume: the last done line counts this run's jobs only" \
  "$(count run3.err "  \[$todo/$todo done, ETA 0 s\]$")" 1

###################################################################################################
section "3. ablate status: the per-arm table and what next"
"$ablate" status --db prog.db prog > status3.txt
cat status3.txt
eq "status: first line" "$(head -1 status3.txt)" "sweep prog: 6 jobs, 6 done"
grep -qE "^arm +done +running +pending +failed +mean final_val_loss +time$" status3.txt ||
  fail "status: no table header: $(cat status3.txt)"
for k in 1 2 4; do
  mean=$(q prog.db "SELECT printf('%.4g', AVG(s.value)) FROM summaries s JOIN jobs j ON j.pk = s.job
    JOIN params p ON p.job = j.pk AND p.key = 'attention.kv_heads' AND p.value = '$k'
    WHERE s.name = 'final_val_loss'")
  grep -qE "^kv_heads=$k +2 +0 +0 +0 +$mean +[0-9]+ (s|min [0-9]+ s)$" status3.txt ||
    fail "status: no row 'kv_heads=$k 2 0 0 0 $mean TIME': $(cat status3.txt)"
done
# Two seeds per arm: the report it suggests lowers --min-seeds so its baseline qualifies, and
# reads the loss as lower-is-better by itself. The suggested command runs as written.
eq "status: next" "$(grep '^next:' status3.txt)" \
  "next: ablate report prog --db prog.db --metric final_val_loss --min-seeds 2"
suggested=$(grep '^next:' status3.txt | sed 's/^next: ablate //')
# shellcheck disable=SC2086  # the suggestion is words, as a user pastes it
"$ablate" $suggested > suggested.md 2> suggested.err || fail "the suggested report fails: $(cat suggested.err)"
has suggested.md "lower is better, inferred from the name (loss)"
"$ablate" status --db prog.db prog --json > status3.json
eq "status --json: arms, done per arm, metric, next" "$(sqlite3 :memory: "SELECT
  json_array_length(readfile('status3.json'), '\$[0].arms') || ' ' ||
  (SELECT group_concat(json_extract(value, '\$.arm') || ':' || json_extract(value, '\$.done'), ',')
   FROM json_each(readfile('status3.json'), '\$[0].arms')) || ' ' ||
  json_extract(readfile('status3.json'), '\$[0].metric') || ' ' ||
  json_extract(readfile('status3.json'), '\$[0].counts.done') || ' ' ||
  json_extract(readfile('status3.json'), '\$[0].total')")" \
  "3 kv_heads=1:2,kv_heads=2:2,kv_heads=4:2 final_val_loss 6 6"

###################################################################################################
section "4. a failure's whole reason, on a terminal too"
# A data file that exists (the plan checks that) but is too short, under a path long enough that
# the job's message is far longer than a line of a terminal.
long=$tmp/$(printf 'd%.0s' $(seq 1 200))/$(printf 'e%.0s' $(seq 1 200))
mkdir -p "$long"
printf 'abcde' > "$long/tiny.txt"
cat > bad.yaml <<YAML
name: bad
task: lm
base:
  data: {dataset: text, path: $long/tiny.txt, seq_len: 16}
  model: {dim: 32, depth: 1, heads: 4}
  train: {steps: 60, batch_size: 4, warmup: 2, device: cpu}
YAML
# On a terminal (script gives the run one): the job's end above the line, the line with counts.
script -qec "'$ablate' run bad.yaml --db bad.db --workdir w" /dev/null > tty.out < /dev/null
tr '\r' '\n' < tty.out > tty.txt
grep -qE "^(.\[K)?$time_re  failed     \(base\)  seed 0  exit status 2  " tty.txt ||
  fail "terminal: no failed line: $(cat -v tty.out)"
grep -qF "0/1 done, 0 running, 1 failed" tty.txt || fail "terminal: no counts line: $(cat -v tty.out)"
grep -qF "sweep bad: 1 job, 1 launched, 1 failed" tty.txt ||
  fail "terminal: the result says '1 jobs'?: $(cat -v tty.out)"
reason="$long/tiny.txt holds one document of 5 bytes, too short to hold out val_fraction 0.1 of it: the held-out split is empty"
"$ablate" status --db bad.db bad > status4.txt
cat status4.txt
eq "status: first line" "$(head -1 status4.txt)" "sweep bad: 1 job, 1 failed"
grep -qE '^\(base\) +0 +0 +0 +1 +[0-9]+ s$' status4.txt ||
  fail "status: no row '(base) 0 0 0 1 TIME': $(cat status4.txt)"
grep -qE '^  \(base\) seed 0 \(job [0-9a-f]{16}\) failed: exit status 2$' status4.txt ||
  fail "status: the failure's first line: $(cat status4.txt)"
grep -qxF "    | data error: text data: $reason" status4.txt ||
  fail "status: the job's message is not there whole: $(cat status4.txt)"
grep -qF '...' status4.txt && fail "status: something was cut: $(cat status4.txt)"
grep -qE "^next: ablate run bad.yaml --db bad.db --workdir $tmp/w --retry-failed   \(runs the 1 failed job again, from its checkpoint\)$" \
  status4.txt || fail "status: no --retry-failed next: $(cat status4.txt)"
"$ablate" status --db bad.db bad --json > status4.json
eq "status --json: the failure's error holds the whole message" "$(sqlite3 :memory: "SELECT
  instr(json_extract(readfile('status4.json'), '\$[0].failures[0].error'), '$reason') > 0,
  json_extract(readfile('status4.json'), '\$[0].arms[0].failed')")" "1|1"

[ "$failures" -eq 0 ] || { echo "$failures check(s) failed" >&2; exit 1; }
echo "all progress and status checks passed (${SECONDS}s)"
