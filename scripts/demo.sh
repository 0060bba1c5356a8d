#!/usr/bin/env bash
# The README's first command: compile the bundled HGQ2 example to Verilog, verify it in Verilator, then run
# the self-checking testbench shipped in the project (Icarus).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build/jsc_example}
python3 examples/make_inputs.py examples/jsc_example.keras build/inputs.npy build/expected.npy
hgqc examples/jsc_example.keras -o "$OUT" --target verilog --latency-cutoff 2 --force
hgqc report "$OUT"
hgqc verify "$OUT" --inputs build/inputs.npy --expect build/expected.npy
# the project's own testbench: the same check with no Python (any Verilog simulator runs it)
sh "$OUT/tb/run_iverilog.sh" | tail -n 1
