"""Benchmarks for hgqc (CMVM suite, peer compilers da4ml / alkaid, yosys resource counts)."""
