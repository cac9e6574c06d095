// The sanitizer settings of a sanitizer build's test and fuzz binaries (ABLATE_SANITIZE): built in,
// so that ctest, gtest's test discovery and a binary run by hand all stop at the first finding
// and print where it came from. ASAN_OPTIONS and UBSAN_OPTIONS in the environment still win.

// Leaks are findings; abort (not exit 1) so a crash handler or core dump sees the report.
extern "C" const char* __asan_default_options() { return "detect_leaks=1:abort_on_error=1"; }

// The build already makes UBSan findings fatal (-fno-sanitize-recover); the stack says where.
extern "C" const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }
