#!/usr/bin/env bash
# Install everything hgqc and its tests need on a fresh Debian machine (idempotent, fast when done).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for tool in verilator ghdl iverilog yosys; do
    command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
if ((${#need_apt[@]})); then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q verilator ghdl iverilog yosys
fi

python3 -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
