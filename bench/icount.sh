#!/usr/bin/env bash
# Instructions per packet of pktloop cases under callgrind: a count that does not depend on
# the machine's noise, for comparing two builds of the datapath.
#
#   bench/icount.sh [--bin PATH] [--packets N] [CASE ...]
#
# PATH defaults to target/release/pktloop (build it with
# `cargo build --release -p opte-bench --bin pktloop`); with no CASE, a standard set of
# fast-path, slow-path, hairpin and whole-host cases is counted.
set -euo pipefail
bin=target/release/pktloop
packets=20000
while [[ $# -gt 0 ]]; do
    case $1 in
        --bin) bin=$2; shift 2 ;;
        --packets) packets=$2; shift 2 ;;
        *) break ;;
    esac
done
cases=("$@")
if [[ ${#cases[@]} -eq 0 ]]; then
    cases=(
        ULP-FastPath/V4-Tcp-OUT-0B ULP-FastPath/V4-Tcp-IN-0B
        ULP-FastPath/V4-Udp-OUT-0B ULP-FastPath/V4-Udp-IN-1400B
        ULP-FastPath/V6-Tcp-OUT-0B ULP-FastPath/V6-Udp-IN-0B
        ULP-SlowPath/V4-Tcp-OUT-0B ULP-SlowPath/V4-Tcp-IN-0B
        Hairpin-DHCPv4/Discover Hairpin-ICMPv4/EchoRequest
        XDE-FastPath/V4-Tcp-OUT-0B XDE-FastPath/V4-Tcp-IN-0B XDE-Batch/V4-Tcp-OUT-0B
    )
fi
command -v valgrind >/dev/null || { echo "icount: valgrind is not installed" >&2; exit 1; }
printf '%-32s %12s\n' case instr/pkt
for c in "${cases[@]}"; do
    toggle='*vpc::process*'
    [[ $c == XDE-* ]] && toggle='*host::process*'
    out=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect="$toggle" \
        "$bin" --case "$c" --packets "$packets" 2>&1 >/dev/null) || {
        echo "icount: $c failed:" >&2
        echo "$out" >&2
        exit 1
    }
    total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' <<<"$out")
    printf '%-32s %12.1f\n' "$c" "$(bc -l <<<"$total / $packets")"
done
