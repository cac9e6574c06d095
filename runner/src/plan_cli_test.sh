#!/usr/bin/env bash
# What `ablate plan` and `ablate run` refuse before anything is written (exit status 2, every
# problem with its file, line and column, no database, no run dirs), and the defaults that fit a
# run: a vit without a data section reads fashion-mnist, a short run gets a short automatic
# warm-up. No training (seconds). Usage: plan_cli_test.sh PATH_TO_ABLATE
set -u
ablate=$1
. "$(dirname "$0")/cli_test_lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

# A small corpus, so that no check depends on a Debian package.
for i in $(seq 1 200); do echo "line $i of the corpus"; done > corpus.txt
base="  data: {dataset: text, path: $tmp/corpus.txt}
  model: {dim: 32, depth: 1, heads: 4}"

# refused SWEEP PATTERN [ARGS...]: `ablate plan` and `ablate run` both exit 2 with PATTERN, and
# run writes neither its database nor its workdir.
refused() {
  local sweep=$1 pattern=$2
  shift 2
  expect 2 "$pattern" "$ablate" plan "$sweep" "$@"
  expect 2 "$pattern" "$ablate" run "$sweep" "$@" --db r.db --workdir r_runs
  [ -e r.db ] && fail "$sweep: ablate run wrote its database" && rm -f r.db
  [ -e r_runs ] && fail "$sweep: ablate run wrote its workdir" && rm -rf r_runs
}

section "faithful dynamic variants in a causal lm"
cat > leak.yaml <<YAML
name: leak
task: lm
base:
$base
  attention: {faithful: true}
grid:
  - attention.variant: [kdgqa, dgqa, pgqa]
    attention.kv_heads: 2
YAML
refused leak.yaml "leak.yaml:8:25: attention.variant: grid block 1, cell \{attention.variant: kdgqa, attention.kv_heads: 2\}: attention.variant kdgqa with attention.faithful = true is not causal"
refused leak.yaml "leak.yaml:8:32: attention.variant: .*dgqa with attention.faithful = true is not causal"
refused leak.yaml "leak.yaml:8:38: attention.variant: .*pgqa with attention.faithful = true is not causal.*allow_noncausal: true"
expect 0 "3 jobs" "$ablate" plan leak.yaml attention.allow_noncausal=true
# The robust modes are causal.
expect 0 "3 jobs" "$ablate" plan leak.yaml attention.faithful=false

section "a data.path that does not exist or holds nothing to read"
mkdir empty
cat > data.yaml <<YAML
name: data
task: lm
base:
  data: {dataset: text, path: $tmp/nowhere}
  model: {dim: 32, depth: 1, heads: 4}
YAML
refused data.yaml "data.yaml:4:25: data.path: text data: $tmp/nowhere does not exist"
out=$("$ablate" plan data.yaml 2>&1)
printf '%s' "$out" | grep -qiE "apt|install|Debian" && fail "a path the user gave got package advice: $out"
refused data.yaml "data.path: text data: no regular files under $tmp/empty" data.path="$tmp/empty"
refused data.yaml "data.yaml:4:25: data.path: image data: the IDX folder $tmp/nowhere does not exist" \
  task=vit data.dataset=fashion-mnist
out=$("$ablate" plan data.yaml task=vit data.dataset=fashion-mnist 2>&1)
printf '%s' "$out" | grep -qiE "apt|install|Debian" && fail "a path the user gave got package advice: $out"
refused data.yaml "data.path: token shards: the folder $tmp/empty holds no \*.bin shards" \
  data.dataset=bin data.path="$tmp/empty"
expect 0 "1 job" "$ablate" plan data.yaml data.path="$tmp/corpus.txt"

section "a device this machine does not have"
cat > device.yaml <<YAML
name: device
task: lm
base:
$base
  train: {device: cuda:63}
YAML
# A sweep's train.device is replaced by the device ablate run gives each job (--devices): not
# refused by itself; the --devices of run is.
expect 0 "1 job" "$ablate" plan device.yaml
expect 2 "command line: --devices: cuda:63, but this" \
  "$ablate" run device.yaml train.device=cpu --devices cpu,cuda:63 --db r.db --workdir r_runs
[ -e r.db ] || [ -e r_runs ] && fail "ablate run --devices cuda:63 wrote something"
# Device names are checked whole, not by prefix: a typo, an empty name or a repeated device is
# refused before anything is written.
expect 2 "cudaa is neither cpu, cuda nor cuda:N" \
  "$ablate" run device.yaml --devices cudaa --db r.db --workdir r_runs
expect 2 "an empty name is neither cpu" "$ablate" run device.yaml --devices "" --db r.db --workdir r_runs
expect 2 "an empty name is neither cpu" "$ablate" run device.yaml --devices cpu, --db r.db --workdir r_runs
expect 2 "cpu is listed twice" "$ablate" run device.yaml --devices cpu,cpu --db r.db --workdir r_runs
expect 2 "is neither cpu" "$ablate" run device.yaml --devices cuda:x --db r.db --workdir r_runs
[ -e r.db ] || [ -e r_runs ] && fail "ablate run with bad --devices wrote something"
# A symlink that would take run dirs outside --workdir is refused before anything is written.
mkdir -p outside sl_runs && ln -s "$tmp/outside" sl_runs/device
expect 2 "would lie outside --workdir" \
  "$ablate" run device.yaml train.device=cpu --db sl.db --workdir sl_runs
[ -e sl.db ] && fail "a run dir escape wrote sl.db"
[ -n "$(ls outside)" ] && fail "a run dir escape wrote into the symlink's target"
# A --db that names another program's SQLite file, or a folder, is refused (exit 2) and the
# file is left exactly as it was (not switched to WAL).
sqlite3 other.db "CREATE TABLE notes (x); INSERT INTO notes VALUES ('mine');"
cp other.db other.copy
expect 2 "--db: .*not an ablate database" "$ablate" run device.yaml --db other.db --workdir o_runs
cmp -s other.db other.copy || fail "ablate run modified another program's database"
[ -e other.db-wal ] && fail "ablate run left other.db-wal"
expect 2 "--db: .*not an ablate database" "$ablate" status --db other.db
expect 2 "--db: .*a folder, not a database file" "$ablate" run device.yaml --db . --workdir o_runs
rm -rf r.db r_runs

section "a warm-up longer than the run, when it was set"
cat > warm.yaml <<YAML
name: warm
task: lm
base:
$base
  train: {steps: 60, warmup: 100}
YAML
refused warm.yaml "warm.yaml:6:22: train.warmup: train.warmup 100 exceeds train.steps 60; without train.warmup the warm-up is automatic \(6 steps here\)"

section "every problem of a file at once, each distinct one once"
cat > many.yaml <<YAML
name: many
task: lm
base:
  data: {dataset: text, path: $tmp/nowhere}
  model: {dim: 32, depth: 1, heads: 4}
  attention: {faithful: true}
  train: {steps: 60, warmup: 100}
grid:
  - attention.variant: dgqa
    attention.kv_heads: [1, 2, 4]
YAML
out=$("$ablate" plan many.yaml 2>&1)
eq "many.yaml: exit status" "$("$ablate" plan many.yaml >/dev/null 2>&1; echo $?)" 2
eq "many.yaml: error lines" "$(printf '%s\n' "$out" | grep -c '^error: many.yaml:[0-9]*:[0-9]*: ')" 3
printf '%s' "$out" | grep -qF "many.yaml:9:24: attention.variant: every cell of the grid: attention.variant dgqa with attention.faithful = true is not causal" ||
  fail "many.yaml: the causality problem, once for the 3 cells: $out"
printf '%s' "$out" | grep -qF "many.yaml:4:25: data.path: every cell of the grid: text data: $tmp/nowhere does not exist" ||
  fail "many.yaml: the data problem: $out"
printf '%s' "$out" | grep -qF "many.yaml:7:22: train.warmup: every cell of the grid: train.warmup 100 exceeds train.steps 60" ||
  fail "many.yaml: the warm-up problem: $out"
# Typos and bad values in several parts of the file, together.
cat > typos.yaml <<YAML
name: typos
task: lm
base:
$base
  train: {stpes: 10, lr: fast}
grid:
  - attention.kv_head: [1, 2]
YAML
out=$("$ablate" plan typos.yaml 2>&1)
eq "typos.yaml: error lines" "$(printf '%s\n' "$out" | grep -c '^error: typos.yaml:[0-9]*:[0-9]*: ')" 3
printf '%s' "$out" | grep -qF "typos.yaml:6:11: train.stpes: unknown key; did you mean train.steps?" || fail "typos: $out"
printf '%s' "$out" | grep -qF "typos.yaml:6:26: train.lr: expected a number, got fast" || fail "typos: $out"
printf '%s' "$out" | grep -qF "typos.yaml:8:5: attention.kv_head: unknown key; did you mean attention.kv_heads?" || fail "typos: $out"

section "a vit without a data section reads fashion-mnist"
cat > vit.yaml <<YAML
name: vit
task: vit
base:
  model: {dim: 32, depth: 1, heads: 4, patch: 7}
YAML
if [ -d /usr/share/datasets/fashion-mnist ]; then
  expect 0 '"dataset":"fashion-mnist"' "$ablate" plan vit.yaml --json
else
  # Without the Debian package the plan is refused, naming it: fashion-mnist was still chosen.
  expect 2 "/usr/share/datasets/fashion-mnist does not exist; install the Debian package dataset-fashion-mnist" \
    "$ablate" plan vit.yaml
fi
# A dataset that was set stays (the plan lists files without reading them: empty ones will do).
mkdir idx
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte \
  t10k-labels-idx1-ubyte; do : > "idx/$f"; done
expect 0 '"dataset":"mnist"' "$ablate" plan vit.yaml --json data.dataset=mnist data.path="$tmp/idx"
expect 2 "data.dataset fortunes is not a dataset of task vit" "$ablate" plan vit.yaml data.dataset=fortunes
expect 0 "data.dataset +string +fashion-mnist " "$ablate" schema --task vit

section "a short run's automatic warm-up"
cat > short.yaml <<YAML
name: short
task: lm
base:
$base
grid:
  - train.steps: [60, 99, 100, 1000]
YAML
json=$("$ablate" plan short.yaml --json)
eq "short.yaml: warm-ups" "$(printf '%s\n' "$json" | grep -o '"warmup":[-0-9]*' | tr '\n' ' ')" \
  '"warmup":6 "warmup":9 "warmup":100 "warmup":100 '
# The id of a job with the automatic warm-up is that of its warm-up written out.
id_auto=$(printf '%s\n' "$json" | head -1 | grep -o '"id":"[0-9a-f]*"')
id_set=$("$ablate" plan short.yaml train.warmup=6 --json | head -1 | grep -o '"id":"[0-9a-f]*"')
eq "train.steps=60: the automatic warm-up's id" "$id_auto" "$id_set"
expect 0 "1 job" "$ablate" plan warm.yaml train.warmup=-1
expect 0 "linear warm-up steps; -1 = automatic: 100, or train.steps / 10" "$ablate" schema
# With epochs the run's length is known at train time: the plan leaves it automatic.
expect 0 '"warmup":-1' "$ablate" plan short.yaml train.epochs=2 --json

section "a valid plan that cannot show what it means to: warned, not refused"
cat > window.yaml <<YAML
name: window
task: lm
base:
$base
grid:
  - attention.variant: dgqa
    attention.kv_heads: 2
    attention.ema_window: [5, 100]
YAML
"$ablate" plan window.yaml train.steps=40 > window.out 2> window.err ||
  fail "plan window.yaml exited $?: $(cat window.err)"
eq "window.yaml: warnings" "$(grep -c '^warning: ' window.err)" 1
grep -qF "warning: window.yaml: arm attention.variant=dgqa attention.kv_heads=2 attention.ema_window=100: attention.ema_window 100 >= train.steps 40" \
  window.err || fail "window.yaml: no warning for the window of 100: $(cat window.err)"
grep -q "ema_window 5 " window.err && fail "window.yaml: a window of 5 was warned about"
has window.out "total: 2 jobs"

section "a report: question the planned arms cannot answer"
cat > question.yaml <<YAML
name: question
task: lm
base:
$base
grid:
  - attention.variant: gqa
    attention.kv_heads: [1, 2]
report:
  metric: final_val_loss
  baseline: {attention.kv_heads: 4}
YAML
refused question.yaml "question.yaml:9:1: report.baseline: attention.kv_heads=4 matches no arm of sweep 'question'; arms: \\[kv_heads=1\\], \\[kv_heads=2\\]"
sed -i 's/baseline: {attention.kv_heads: 4}/baseline: {attention.kv_heads: 2}/' question.yaml
expect 0 "total: 2 jobs" "$ablate" plan question.yaml
printf '  where: {variant: mqa}\n' >> question.yaml
refused question.yaml "question.yaml:9:1: report.where: attention.variant=mqa keeps no arm of sweep 'question' \\(attention.variant has gqa\\)"

section "plan with a database: where each planned job stands there"
cat > stand.yaml <<YAML
name: stand
task: lm
base:
$base
  train: {steps: 4, batch_size: 2, warmup: 1, eval_every: 4, eval_batches: 1, device: cpu}
grid:
  - attention.variant: gqa
    attention.kv_heads: [1, 2]
YAML
"$ablate" run stand.yaml --db stand.db --workdir stand_runs >stand.out 2>&1 ||
  fail "run stand.yaml: $(cat stand.out)"
expect 0 "in stand.db: 2 done: nothing left for ablate run to train" \
  "$ablate" plan stand.yaml --db stand.db
"$ablate" plan stand.yaml --db stand.db >stand.plan 2>&1
eq "jobs shown done" "$(grep -c '^[0-9a-f]\{16\}  done  ' stand.plan)" 2
# An edit: one arm added, one gone.
sed -i 's/kv_heads: \[1, 2\]/kv_heads: [2, 4]/' stand.yaml
"$ablate" plan stand.yaml --db stand.db >stand.plan 2>&1
has stand.plan "in stand.db: 1 done, 1 new: ablate run trains 1; 1 job of the sweep there is no longer planned"
has stand.plan "processes: 1 for the 1 job not done "
eq "the new job is shown new" "$(grep -c '^[0-9a-f]\{16\}  new   .*kv_heads=4' stand.plan)" 1
eq "plan --json: statuses" "$("$ablate" plan stand.yaml --db stand.db --json | grep -o '"status":"[a-z]*"' | sort | tr '\n' ' ')" '"status":"done" "status":"new" '
# Plan only reads: the database is as it was (the jobs' rows, no stale mark yet).
eq "plan wrote nothing" "$(q stand.db "SELECT COUNT(*) FROM jobs WHERE stale = 1")" 0
# A --db that does not exist yet is said, and not created; the default one only when it exists.
expect 0 "none.db: no such database yet, so every job is new" "$ablate" plan stand.yaml --db none.db
[ -e none.db ] && fail "plan created none.db"
"$ablate" plan stand.yaml >default.plan 2>&1
lacks default.plan "in ablate.db"
lacks default.plan "no such database"
expect 2 "--db: .*not an ablate database" "$ablate" plan stand.yaml --db other.db
cmp -s other.db other.copy || fail "ablate plan modified another program's database"

if [ "$failures" -gt 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "plan_cli_test: all passed"
