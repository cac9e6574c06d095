// Benchmarks come later in this file.
