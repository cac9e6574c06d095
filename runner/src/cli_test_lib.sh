# Helpers the command-line tests share; each test sources this file (bash) before it starts.
# A check that does not hold is counted in $failures and reported, and the test goes on, so one
# run shows every broken check.
failures=0
# `ablate run --devices cpu` without --per-device would calibrate the machine first and use what
# it measured (runner/calibration.h): the tests want today's fixed default, 1 job at once with
# every core, unless a test sets ABLATE_CALIBRATION itself.
export ABLATE_CALIBRATION=off
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
section() { echo "== $* (at ${SECONDS}s)"; }

# expect STATUS PATTERN CMD...: exit status and a pattern in stderr+stdout.
expect() {
  local want=$1 pattern=$2
  shift 2
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  [ "$rc" -eq "$want" ] || fail "$* exited $rc, expected $want: $out"
  printf '%s' "$out" | grep -qE -- "$pattern" || fail "$*: output lacks /$pattern/: $out"
}
# q DB SQL: one value (or rows as a|b) from the database, read-only.
q() { sqlite3 -batch -readonly "$1" "$2"; }
# eq LABEL GOT WANT
eq() { [ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"; }
# has FILE TEXT / lacks FILE TEXT: a fixed string is (not) in the file.
has() { grep -qF -- "$2" "$1" || fail "$1 lacks '$2'"; }
lacks() { ! grep -qF -- "$2" "$1" || fail "$1 has '$2'"; }

# tiny_lm DIR: DIR/corpus.txt (400 short lines) and DIR/tiny.yaml, a 6-step lm config on it that
# evaluates and checkpoints at steps 3 and 6 (a few seconds to train).
tiny_lm() {
  for i in $(seq 1 400); do echo "the quick brown fox jumps over the lazy dog $i"; done > "$1/corpus.txt"
  cat > "$1/tiny.yaml" <<YAML
task: lm
data: {dataset: text, path: $1/corpus.txt, seq_len: 16}
model: {dim: 32, depth: 1, heads: 4}
attention: {variant: gqa, kv_heads: 2}
train: {steps: 6, batch_size: 4, warmup: 1, eval_every: 3, eval_batches: 2, checkpoint_every: 3,
        device: cpu}
YAML
}
