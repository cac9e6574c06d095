#!/usr/bin/env bash
# The configure-time checks of cmake/torch.cmake, against the LibTorch this build uses: a C++ ABI
# that differs from the compiler's, and a library of another LibTorch, must stop CMake with a
# message that says so. Run by CTest (torch_checks):
#   torch_checks_test.sh SOURCE_DIR TORCH_DIR [OTHER_LIBC10]
# TORCH_DIR is the folder of the TorchConfig.cmake this build uses; OTHER_LIBC10 a libc10.so of
# another LibTorch (Debian's, when this build uses a wheel's); without it that check is skipped.
set -u
src="$1" torch_dir="$2" other="${3:-}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# configure DIR ARGS...: prints CMake's output with its line wrapping undone, returns its status.
configure() {
  local dir="$1" rc=0
  shift
  cmake -S "$src" -B "$tmp/$dir" -G Ninja -DABLATE_BUILD_TESTS=OFF -DABLATE_BUILD_BENCH=OFF \
    -DTorch_DIR="$torch_dir" "$@" > "$tmp/$dir.log" 2>&1 || rc=$?
  tr -s ' \n' ' ' < "$tmp/$dir.log"
  return "$rc"
}

# Our code compiled with the old std::string ABI cannot link against a C++11-ABI c10: the same
# mismatch a pre-C++11-ABI LibTorch would create with Debian's libraries.
if out=$(configure abi -DCMAKE_CXX_FLAGS=-D_GLIBCXX_USE_CXX11_ABI=0); then
  fail "a build with a mismatched C++ ABI configured"
fi
grep -q "does not use the C++11 ABI" <<< "$out" || fail "no ABI message in: ${out: -1500}"

if [ -n "$other" ] && [ -e "$other" ]; then
  if out=$(configure foreign -Dc10_LIBRARY="$other"); then
    fail "a build linking $other configured"
  fi
  grep -q "belongs to another" <<< "$out" || fail "no foreign-library message in: ${out: -1500}"
  grep -q -- "-DTorch_ROOT=" <<< "$out" || fail "the foreign-library message names no way out"
else
  echo "skipped the foreign-library check: no other LibTorch's libc10.so given"
fi

# And the plain configuration passes.
out=$(configure plain) || fail "the plain configuration failed: ${out: -1500}"
[ "$failures" -eq 0 ] && echo "torch_checks: passed"
exit $((failures > 0))
