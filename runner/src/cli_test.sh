#!/usr/bin/env bash
# The `ablate` command line as a user meets it: exit statuses (0 ok, 2 bad input), messages that
# say what and where, nothing written on bad input, a tiny real run, resume and refusal.
# Usage: cli_test.sh PATH_TO_ABLATE
set -u
ablate=$1
. "$(dirname "$0")/cli_test_lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

# A corpus and a tiny lm config.
tiny_lm "$tmp"

expect 2 "usage" "$ablate"
expect 2 "unknown command 'frobnicate'" "$ablate" frobnicate

# Help: `ablate --help` lists the commands; for each, `ablate CMD --help`, `-h` and `ablate help CMD`
# print the same usage and options (exit 0, nothing run or written), and a wrong option points there.
"$ablate" --help > help.txt 2>&1 || fail "ablate --help exited $?"
commands=$(sed -n '/^commands:/,$p' help.txt | awk 'NR > 1 && $1 != "help" {print $1}')
for c in schema plan run status report query import train; do
  grep -qx "$c" <<< "$commands" || fail "ablate --help does not list $c: $(cat help.txt)"
done
for c in $commands; do
  "$ablate" "$c" --help > "h_$c.txt" 2>&1 || fail "ablate $c --help exited $?"
  head -1 "h_$c.txt" | grep -q "^usage: ablate $c" || fail "ablate $c --help: $(head -3 "h_$c.txt")"
  "$ablate" help "$c" > "help_$c.txt" 2>&1 || fail "ablate help $c exited $?"
  "$ablate" "$c" -h > "dash_$c.txt" 2>&1 || fail "ablate $c -h exited $?"
  cmp -s "h_$c.txt" "help_$c.txt" || fail "ablate help $c differs from ablate $c --help"
  cmp -s "h_$c.txt" "dash_$c.txt" || fail "ablate $c -h differs from ablate $c --help"
  expect 2 "unrecognised option '--no-such-flag'.*ablate help $c" "$ablate" "$c" --no-such-flag
done
# Every option is listed with its default where it has one.
has h_run.txt "--db arg (=ablate.db)"
has h_run.txt "--workdir arg (=runs)"
has h_run.txt "--per-device arg        jobs at once per device (default: on the CPU the"
has h_run.txt "--partition"
has h_report.txt "--correction arg (=holm)"
has h_report.txt "--min-seeds arg (=3)"
has h_query.txt "--format arg (=table)"
has h_import.txt "--seed-col arg (=seed)"
has h_train.txt "--run-dir"
# --help wins over a missing or bad argument and starts nothing.
expect 0 "usage: ablate run" "$ablate" run no-such.yaml --devices nowhere --help
[ -e ablate.db ] && fail "ablate run --help created a database"
expect 2 "unknown command 'frobnicate'" "$ablate" help frobnicate
expect 0 "attention.kv_heads" "$ablate" schema
expect 0 "model.patch" "$ablate" schema --task vit
expect 2 "expected lm, vit or s2s" "$ablate" schema --task speech

# Two executables: `ablate` never loads LibTorch; `ablate train` hands over to the ablate-train
# beside it (the same pid), and CUDA devices are asked about through it.
ldd "$ablate" > ldd_ablate.txt || fail "ldd $ablate exited $?"
grep -qE "libtorch|libc10" ldd_ablate.txt && fail "ablate links LibTorch: $(grep -E 'torch|c10' ldd_ablate.txt)"
train_binary="$(dirname "$ablate")/ablate-train"
ldd "$train_binary" | grep -q "libtorch" || fail "$train_binary does not link LibTorch"
mkdir alone && cp "$ablate" alone/ablate
expect 1 "ablate train: cannot run $tmp/alone/ablate-train: No such file or directory" \
  alone/ablate train tiny.yaml --run-dir r_alone
[ -e r_alone ] && fail "ablate train without ablate-train wrote a run dir"
printf 'name: alone\nbase:\n' > alone.yaml && sed 's/^/  /' tiny.yaml >> alone.yaml
expect 0 "1 job" alone/ablate plan alone.yaml
expect 2 "--devices: cuda:1, which could not be checked: '$tmp/alone/ablate-train' --device-problems exited with status 127" \
  alone/ablate run alone.yaml --devices cuda:1 --db alone.db --workdir alone_runs
[ -e alone.db ] && fail "ablate run with an unchecked device created a database"
expect 0 "device-problem	cuda:7	cuda:7, but this" "$train_binary" --device-problems cpu cuda:7
# What ablate-train receives: the arguments unchanged, the same pid, OMP_WAIT_POLICY=PASSIVE
# unless the user set it. A script stands in for ablate-train.
mkdir stand_in && cp "$ablate" stand_in/ablate
printf '#!/bin/sh\necho "pid $$"\nfor a in "$@"; do echo "arg [$a]"; done\necho "wait ${OMP_WAIT_POLICY:-unset}"\n' \
  > stand_in/ablate-train
chmod +x stand_in/ablate-train
stand_in/ablate train "a b" --run-dir 'x;y' > stand_in.txt 2>&1 &
pid=$!
wait "$pid" || fail "ablate train with a stand-in exited $?"
has stand_in.txt "pid $pid"
has stand_in.txt "arg [a b]"
has stand_in.txt "arg [x;y]"
has stand_in.txt "wait PASSIVE"
OMP_WAIT_POLICY=ACTIVE stand_in/ablate train > stand_in.txt 2>&1
has stand_in.txt "wait ACTIVE"

# OpenBLAS's kernels: where it would fall back to kernels without AVX2 on a CPU that has AVX2
# (Debian 12's OpenBLAS on an Intel model newer than it picks Prescott), `ablate train` sets
# OPENBLAS_CORETYPE; the run's summary says which kernels did its matrix products, and a value
# the user set wins.
cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
env -u OPENBLAS_CORETYPE "$ablate" train tiny.yaml train.steps=2 train.warmup=1 --run-dir r_blas \
  > blas.txt 2>&1 ||
  fail "ablate train r_blas exited $?: $(cat blas.txt)"
core=$(sed -n 's/.*"openblas_core": *"\([^"]*\)".*/\1/p' r_blas/summary.json)
if [ -n "$core" ] && grep -qw avx2 <<< "$cpu_flags" && grep -qw fma <<< "$cpu_flags"; then
  grep -qiwE "unknown|katmai|coppermine|northwood|prescott|banias|atom|core2|penryn|dunnington|nehalem|athlon|opteron|opteron_sse3|barcelona|nano|sandybridge|bobcat|bulldozer|piledriver" \
    <<< "$core" && fail "a CPU with AVX2 trained with OpenBLAS's $core kernels"
fi
if [ -n "$core" ]; then
  OPENBLAS_CORETYPE=Prescott "$ablate" train tiny.yaml train.steps=2 train.warmup=1 \
    --run-dir r_blas_user > blas.txt 2>&1 || fail "ablate train r_blas_user exited $?: $(cat blas.txt)"
  has r_blas_user/summary.json '"openblas_core": "Prescott"'
fi

# Bad input: located errors, status 2, no run dir.
printf 'task: lm\nattention:\n  kv_head: 2\n' > typo.yaml
expect 2 "typo.yaml:3:3: attention.kv_head: unknown key; did you mean attention.kv_heads\?" \
  "$ablate" train typo.yaml --run-dir r_typo
[ -e r_typo ] && fail "a run dir was written for a bad config"
expect 2 "train.steps.*expected an integer" "$ablate" train tiny.yaml train.steps=2.5 --run-dir r_type
expect 2 "model.dim.*not divisible by model.heads" "$ablate" train tiny.yaml model.dim=30 --run-dir r_dim
expect 2 "no-such.yaml" "$ablate" train no-such.yaml --run-dir r_missing
expect 2 "$tmp/nowhere" "$ablate" train tiny.yaml data.path="$tmp/nowhere" --run-dir r_data
expect 2 "faithful.*allow_noncausal" "$ablate" train tiny.yaml attention.variant=dgqa \
  attention.faithful=true --run-dir r_leak
printf 'task: lm\ntrain:\n  eval_subset: -3\n' > subset.yaml
expect 2 "subset.yaml:3:16: train.eval_subset: -3 is out of range" \
  "$ablate" train subset.yaml --run-dir r_subset
expect 2 "train.eval_subset.*expected an integer" "$ablate" train tiny.yaml train.eval_subset=0.5 \
  --run-dir r_subset_type
expect 2 "train.eval_subset cannot be used with faithful dgqa" "$ablate" train tiny.yaml \
  attention.variant=dgqa attention.faithful=true attention.allow_noncausal=true \
  train.eval_subset=4 --run-dir r_subset_dgqa
for d in r_type r_dim r_missing r_data r_leak r_subset r_subset_type r_subset_dgqa; do
  [ -e "$d" ] && fail "$d was written"
done

# A real run, then running it again: finished runs are not retrained.
expect 0 "status: done at step 6" "$ablate" train tiny.yaml --run-dir run1
[ "$(grep -c '"kind":"eval"' run1/events.jsonl)" -eq 2 ] || fail "run1 should have 2 eval events"
expect 0 "already finished" "$ablate" train --run-dir run1
# Another config on the same run dir is refused.
expect 2 "holds a different config" "$ablate" train tiny.yaml attention.kv_heads=1 --run-dir run1
# The default run dir is runs/<job id>.
expect 0 "run dir: runs/[0-9a-f]{16}" "$ablate" train tiny.yaml train.steps=2

# ablate import: a CSV from elsewhere becomes a sweep that ablate query (and report) read.
cat > paper.csv <<'CSV'
variant,kv_heads,seed,acc
gqa,2,0,0.81
gqa,2,1,0.83
"mqa, shared kv",1,0,0.78
"mqa, shared kv",1,1,NaN
CSV
expect 0 "4 jobs in 2 arms \(1 diverged\)" "$ablate" import --db imp.db --sweep '50%_{x}' \
  --csv paper.csv --params variant,kv_heads
got=$("$ablate" query --db imp.db --format csv \
  "SELECT variant, kv_heads, seed, status, acc FROM results WHERE sweep = '50%_{x}' ORDER BY job")
want='variant,kv_heads,seed,status,acc
gqa,2,0,done,0.81
gqa,2,1,done,0.83
"mqa, shared kv",1,0,done,0.78
"mqa, shared kv",1,1,diverged,'
[ "$got" = "$want" ] || fail "query after import: got '$got', want '$want'"
expect 2 "a sweep named '50%_\{x\}' exists in imp.db.*--sweep" "$ablate" import --db imp.db \
  --sweep '50%_{x}' --csv paper.csv --params variant,kv_heads
expect 2 "no column 'lr' \(the header's columns: variant, kv_heads, seed, acc\)" "$ablate" import \
  --db imp.db --sweep other --csv paper.csv --params variant,lr
# A bad CSV: every problem with its line (the quoted field on line 2 spans two lines), exit 2,
# nothing imported; into a new database, no file either.
printf 'variant,seed,acc\n"two\nlines",0,0.5\nb,0,oops\nb,0,0.6\nc,,0.7\n' > bad.csv
expect 2 "bad.csv: 3 problems; nothing imported" "$ablate" import --db imp.db --sweep bad \
  --csv bad.csv --params variant
out=$("$ablate" import --db imp.db --sweep bad --csv bad.csv --params variant 2>&1)
for p in "line 4, column acc: 'oops' is not a number" "line 5: duplicate of line 4" \
  "line 6, column seed: empty seed"; do
  printf '%s' "$out" | grep -qF -- "$p" || fail "import of bad.csv: output lacks '$p': $out"
done
expect 0 "^0$" "$ablate" query --db imp.db --format csv "SELECT COUNT(*) AS n FROM sweeps WHERE name = 'bad'"
expect 0 "^1$" "$ablate" query --db imp.db --format csv "SELECT COUNT(*) AS n FROM sweeps"
expect 2 "nothing imported" "$ablate" import --db fresh.db --sweep bad --csv bad.csv --params variant
[ -e fresh.db ] && fail "a bad import created fresh.db"
expect 2 "give --params" "$ablate" import --db imp.db --sweep x --csv paper.csv

# Seeds trained together. `ablate train` with several --run-dir trains existing runs in one
# process, each ending as a run of its own would.
mkdir -p e1 e2
cp tiny.yaml e1/config.yaml
{ cat tiny.yaml; echo "seed: 1"; } > e2/config.yaml
expect 2 "no CONFIG.yaml with several --run-dir" "$ablate" train tiny.yaml --run-dir e1 --run-dir e2
expect 2 "--run-dir nowhere has no config.yaml" "$ablate" train --run-dir e1 --run-dir nowhere
mkdir -p e3
sed 's/kv_heads: 2/kv_heads: 1/' tiny.yaml > e3/config.yaml
expect 2 "differ in more than the seed" "$ablate" train --run-dir e1 --run-dir e3
[ -e e1/events.jsonl ] || [ -e e3/events.jsonl ] && fail "a refused ablate train wrote e1 or e3"
out=$("$ablate" train train.threads=1 --run-dir e1 --run-dir e2 2>&1) || fail "train e1 e2 exited $?: $out"
for d in e1 e2; do
  printf '%s' "$out" | grep -qx "run dir: $d" || fail "train e1 e2: no 'run dir: $d': $out"
  grep -q '"status": *"done"' "$d/summary.json" || fail "$d: not done: $(cat "$d/summary.json")"
done
eq "train e1 e2: status lines" "$(printf '%s' "$out" | grep -c '^status: done at step 6$')" 2
grep -q '^seed: 1$' e2/config.yaml || fail "e2 is not seed 1: $(cat e2/config.yaml)"

# `ablate plan` and `ablate run` group the seeds of an arm: 3 seeds x 2 arms.
cat > ens.yaml <<YAML
name: ens
task: lm
base:
  data: {dataset: text, path: $tmp/corpus.txt, seq_len: 16}
  model: {dim: 32, depth: 1, heads: 4}
  train: {steps: 6, batch_size: 4, warmup: 1, eval_every: 3, eval_batches: 2, checkpoint_every: 3}
seeds: 3
seeds_per_process: 1
grid:
  - attention.variant: gqa
    attention.kv_heads: [1, 2]
YAML
expect 0 "^processes: 6 \(one per job\)$" "$ablate" plan ens.yaml
expect 0 "^processes: 2 \(seeds of one arm train together, up to 3 per process\)$" \
  "$ablate" plan ens.yaml --seeds-per-process 3
expect 0 "^processes: 4 on the CPU \(auto: seeds of one arm train together, up to 2 per process" \
  "$ablate" plan ens.yaml --seeds-per-process auto
for bad in 0 -1 many; do
  expect 2 "ablate run: --seeds-per-process: expected a whole number >= 1 or auto, got $bad" \
    "$ablate" run ens.yaml --db bad.db --workdir wbad --seeds-per-process="$bad"
  expect 2 "ablate plan: --seeds-per-process: expected a whole number >= 1 or auto, got $bad" \
    "$ablate" plan ens.yaml --seeds-per-process="$bad"
done
sed 's/^seeds_per_process: 1/seeds_per_process: many/' ens.yaml > ens-bad.yaml
expect 2 "ens-bad.yaml:8:20: seeds_per_process: expected a whole number >= 1 or auto, got many" \
  "$ablate" run ens-bad.yaml --db bad.db --workdir wbad
[ -e bad.db ] || [ -e wbad ] && fail "a refused seeds_per_process wrote bad.db or wbad"
# The command line overrides the file's seeds_per_process: 1: one process per arm.
expect 0 "^sweep ens: 6 jobs, 2 launched, 6 done$" \
  "$ablate" run ens.yaml --db ens.db --workdir wens --seeds-per-process 3
for arm in 1 2; do
  dirs=$(q ens.db "SELECT j.run_dir FROM jobs j JOIN params p ON p.job = j.pk
    AND p.key = 'attention.kv_heads' AND p.value = '$arm' ORDER BY j.seed")
  eq "kv_heads=$arm: run dirs" "$(echo "$dirs" | wc -l)" 3
  eq "kv_heads=$arm: one process (launcher.pid)" "$(for d in $dirs; do cat "$d/launcher.pid"; done |
    sort -u | wc -l)" 1
  eq "kv_heads=$arm: one output.txt, the lead's" "$(for d in $dirs; do ls "$d"; done |
    grep -c '^output.txt$')" 1
  lead=$(echo "$dirs" | head -1)
  eq "kv_heads=$arm: the lead's output names every run dir" \
    "$(grep -c '^run dir: ' "$lead/output.txt")" 3
done
expect 0 "^sweep ens: 6 jobs, 6 done$" "$ablate" status ens --db ens.db
expect 0 "kv_heads=2 +3 +0 +0 +0 " "$ablate" status ens --db ens.db
expect 0 "" "$ablate" report ens --db ens.db --metric final_val_loss --out ens-report \
  --format md,json
grep -q '"n": 3' ens-report/report.json || fail "report: not 3 seeds per arm: $(cat ens-report/report.json)"
# The file's seeds_per_process: 2 without the flag: 2 + 1 seeds per arm.
sed -i 's/^seeds_per_process: 1/seeds_per_process: 2/; s/^name: ens/name: ens2/' ens.yaml
expect 0 "^sweep ens2: 6 jobs, 4 launched, 6 done$" "$ablate" run ens.yaml --db ens.db --workdir wens
# --backend slurm --dry-run shows an ensemble's command line (sbatch is not needed for it).
out=$("$ablate" run ens.yaml --backend slurm --dry-run --workdir wslurm --seeds-per-process 3 2>&1) ||
  fail "slurm dry run exited $?: $out"
printf '%s' "$out" | grep -q '^# first wave: the 6 jobs without a parent in 2 tasks' ||
  fail "slurm dry run: no 2-task first wave: $out"
printf '%s' "$out" | grep -q '^#SBATCH --array=0-1$' || fail "slurm dry run: no 2-task array: $out"
eq "slurm dry run: run dirs per task's command line" \
  "$(printf '%s' "$out" | grep -E "^    set -- .*'train' 'train.device=cpu'" | grep -o "'--run-dir'" | wc -l)" 6
eq "slurm dry run: the members' run dirs" "$(printf '%s' "$out" | grep -c '^    others=(')" 2
[ -e wslurm ] && fail "the slurm dry run wrote wslurm"
# Shell injection through slurm values: a newline in a flag, the file or the workdir would be a
# line of the batch script. Refused (exit 2) before a script is printed or anything is written.
expect 2 "partition .*contains a control character \\(a newline\\)" \
  "$ablate" run ens.yaml --backend slurm --dry-run --workdir winj --partition $'gpu\ntouch pwned'
expect 2 "sbatch line .*starting with '-'" \
  "$ablate" run ens.yaml --backend slurm --dry-run --workdir winj --sbatch 'touch pwned'
expect 2 "script folder .*contains a control character" \
  "$ablate" run ens.yaml --backend slurm --dry-run --workdir $'winj\ntouch pwned'
sed 's/^seeds_per_process: 2/slurm: {account: "me\\ntouch pwned"}/' ens.yaml > inj.yaml
expect 2 "inj.yaml:[0-9]+:[0-9]+: slurm.account: contains a control character" \
  "$ablate" run inj.yaml --backend slurm --dry-run --workdir winj
[ -e winj ] || [ -e $'winj\ntouch pwned' ] || [ -e pwned ] && fail "an injection attempt wrote something"
# Seeds of one process that fail together: status shows their output once.
printf 'abcde' > tiny.txt
sed "s|^name: ens2|name: ensfail|; s|path: [^,]*,|path: $tmp/tiny.txt,|" ens.yaml > ensfail.yaml
"$ablate" run ensfail.yaml --db ens.db --workdir wens --seeds-per-process 3 > /dev/null 2>&1
"$ablate" status ensfail --db ens.db > ensfail.txt
# (Both arms' processes failed on the same data error: one text for all six.)
eq "failed seeds of one process: the output once" "$(grep -c 'held-out split is empty' ensfail.txt)" 1
eq "failed seeds of one process: 'the same output as above'" \
  "$(grep -c '^    | (the same output as above)$' ensfail.txt)" 5
eq "failed seeds: the re-run command once" "$(grep -c 're-run it: ablate run ensfail.yaml' ensfail.txt)" 1

# A workdir whose name has a control character: status shows the re-run command with bash's
# $'...' (one word that runs as it is) and prints nothing raw to the terminal.
sed "s|^name: ensfail|name: ctl|" ensfail.yaml > ctl.yaml
"$ablate" run ctl.yaml --db ctl.db --workdir $'w\x1bx' > /dev/null 2>&1
"$ablate" status ctl --db ctl.db > ctl.txt 2>&1
grep -q $'\x1b' ctl.txt && fail "ablate status printed a raw escape character: $(cat -v ctl.txt)"
grep -qF -- "--workdir \$'$tmp/w\\x1bx'" ctl.txt || fail "status lacks the \$'...' workdir: $(cat -v ctl.txt)"
# A patch size that does not divide the image is bad input (exit 2) found at plan time, with
# its line; nothing is written.
printf 'task: vit\nmodel: {patch: 5}\ntrain: {steps: 2}\n' > p5.yaml
expect 2 "p5.yaml:2:9: model.patch: model.patch 5 does not divide the image side 28" \
  "$ablate" train p5.yaml --run-dir p5run
[ -e p5run ] && fail "a refused config wrote its run dir"

# ablate calibrate, and ablate run's CPU default from its cache (ABLATE_CALIBRATION is off in
# the other tests).
export ABLATE_CALIBRATION="$tmp/cal.json"
expect 2 "give SWEEP.yaml or CONFIG.yaml" "$ablate" calibrate
expect 2 "--steps 1: at least 2" "$ablate" calibrate alone.yaml --steps 1
[ -e cal.json ] && fail "a refused calibrate wrote its cache"
expect 0 "best: [0-9]+ jobs? at once x [0-9]+ threads? \(cached in $tmp/cal.json\)" \
  "$ablate" calibrate alone.yaml --steps 3
has cal.json '"machine": "'
# A single config (not a sweep) is timed as it is; its own errors are its own (file, line, key).
ABLATE_CALIBRATION="$tmp/cal_one.json" expect 0 "calibrating: tiny.yaml, 3 steps per timing job" \
  "$ablate" calibrate tiny.yaml --steps 3
grep -q '"config": "tiny.yaml"' cal_one.json || fail "cal_one.json: $(cat cal_one.json)"
ABLATE_CALIBRATION="$tmp/cal_bad.json" expect 2 "typo.yaml:3:3: attention.kv_head: unknown key" \
  "$ablate" calibrate typo.yaml
[ -e cal_bad.json ] && fail "a refused calibrate wrote its cache"
has cal.json '"unit": "tokens/s"'
has cal.json '"others_cpu_share": '
# Measured while other programs keep both cores busy: said, with the command that measures
# again, when it is measured and whenever ablate run uses it.
busy=()
for _ in 1 2 3; do (while :; do :; done) & busy+=($!); done
ABLATE_CALIBRATION="$tmp/cal_busy.json" "$ablate" calibrate alone.yaml --steps 3 > busy.txt 2>&1
kill "${busy[@]}"
wait "${busy[@]}" 2>/dev/null
has busy.txt "% of the CPU, so another layout may be faster on the idle machine: ablate calibrate alone.yaml measures again"
sed 's/^name: alone/name: busy/' alone.yaml > busy.yaml
ABLATE_CALIBRATION="$tmp/cal_busy.json" expect 0 "  note: measured while other programs used [0-9]+% of the CPU" \
  "$ablate" run busy.yaml --db cal.db --workdir cal_runs
layouts=$(grep -c '"threads"' cal.json)
[ "$layouts" -ge 2 ] || fail "cal.json has $layouts layouts and best: $(cat cal.json)"
for n in 1 2 3; do sed "s/^name: alone/name: cal$n/" alone.yaml > cal$n.yaml; done
expect 0 "cpu: [0-9]+ jobs? at once x [0-9]+ threads? \(calibrated .* on alone.yaml, cached in $tmp/cal.json" \
  "$ablate" run cal1.yaml --db cal.db --workdir cal_runs
# The cached choice is what run uses: rewritten by hand to 1 x 1.
sed -i '/"best"/,/}/{s/"jobs": [0-9]*/"jobs": 1/;s/"threads": [0-9]*/"threads": 1/}' cal.json
expect 0 "cpu: 1 job at once x 1 thread \(calibrated" "$ablate" run cal2.yaml --db cal.db --workdir cal_runs
# A cache measured on another machine is measured again, here.
sed -i 's/"machine": "[^"]*"/"machine": "Another CPU | 64 cores"/' cal.json
expect 0 "calibrating this machine's CPU once" "$ablate" run cal3.yaml --db cal.db --workdir cal_runs
# ... and kept beside the other machine's (a home directory shared by several machines).
has cal.json "Another CPU"
eq "cache entries after a second machine" "$(grep -c '"machine"' cal.json)" 2
# --per-device chooses; off leaves today's default; neither calibrates nor says so.
"$ablate" run cal1.yaml --db cal.db --workdir cal_runs --per-device 1 > pd.txt 2>&1
lacks pd.txt "calibrat"
ABLATE_CALIBRATION=off "$ablate" run cal1.yaml --db cal.db --workdir cal_runs > off.txt 2>&1
lacks off.txt "calibrat"
unset ABLATE_CALIBRATION

[ "$failures" -eq 0 ] && echo "cli_test: all checks passed"
exit "$failures"
