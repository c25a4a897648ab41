#!/usr/bin/env bash
# Run the cargo-fuzz targets on stable Rust (no sanitizer), each for a time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]
#   FUZZ_RUNS=10000000 scripts/fuzz.sh 0 [TARGET ...]   # a number of executions instead
#
# Targets: object pclntab funcdata buildinfo decode pipeline profile (default: all).
# Seeds come from the committed fixture binaries (sections cut out with
# objcopy), from the synthetic Go image of deferscope_index::synth, and,
# for the profile decoder, from the committed pprof profiles under
# fixtures/profiles (gzipped and inflated).
# Corpora, crashes and logs stay under fuzz/ (git-ignored). A crash is a
# bug: turn its input into a regression test. Needs: cargo install cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
shift || true
TARGETS=${*:-object pclntab funcdata buildinfo decode pipeline profile}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

seed() { mkdir -p "fuzz/corpus/$1"; cp "$2" "fuzz/corpus/$1/$(basename "$2")-$3" 2>/dev/null || true; }
tmp=$(mktemp -d)
cargo run -q -p deferscope-index --example synth_image "$tmp/synth"
for t in pipeline pclntab object buildinfo; do seed "$t" "$tmp/synth" synth; done
i=0
for bin in fixtures/bin/*/bin; do
    i=$((i + 1))
    head -c 65536 "$bin" > "$tmp/head$i"; seed object "$tmp/head$i" $i
    for s in .gopclntab __gopclntab; do
        if objcopy -O binary --only-section=$s "$bin" "$tmp/pcln$i" 2>/dev/null && [ -s "$tmp/pcln$i" ]; then
            head -c 65536 "$tmp/pcln$i" > "$tmp/pclnh$i"; seed pclntab "$tmp/pclnh$i" $i
        fi
    done
    if objcopy -O binary --only-section=.go.buildinfo "$bin" "$tmp/bi$i" 2>/dev/null && [ -s "$tmp/bi$i" ]; then
        seed buildinfo "$tmp/bi$i" $i
    fi
    if objcopy -O binary --only-section=.text "$bin" "$tmp/text$i" 2>/dev/null && [ -s "$tmp/text$i" ]; then
        dd if="$tmp/text$i" of="$tmp/texth$i" bs=4096 skip=16 count=1 status=none; seed decode "$tmp/texth$i" $i
    fi
done
mkdir -p fuzz/corpus/funcdata
printf '\x09\x01\x08' > fuzz/corpus/funcdata/openSimple-B
printf '\x41\x08\x40\x38\x30\x28\x20\x18\x10\x08' > fuzz/corpus/funcdata/eight-B
printf '\x08\x11\x01\x08\x08\x01\x10\x08\x00' > fuzz/corpus/funcdata/openSimple-A
printf '\x51\x18' > fuzz/corpus/funcdata/methodDefers-C
mkdir -p fuzz/corpus/profile
for p in fixtures/profiles/*.pprof; do
    [ -f "$p" ] || continue
    head -c 65536 "$p" > "fuzz/corpus/profile/$(basename "$p")-gz"
    gzip -dc "$p" 2>/dev/null | head -c 65536 > "fuzz/corpus/profile/$(basename "$p")-raw" || true
done
rm -rf "$tmp"

mkdir -p fuzz/logs
for t in $TARGETS; do
    if [ -n "${FUZZ_RUNS:-}" ]; then limit=-runs=$FUZZ_RUNS; else limit=-max_total_time=$SECS; fi
    echo "== $t ($limit)"
    start=$(date +%s)
    (cd fuzz && cargo fuzz run -s none --release "$t" -- \
        "$limit" -max_len=65536 -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
        > "logs/$t.log" 2>&1) || { echo "FAILED: see fuzz/logs/$t.log"; tail -20 "fuzz/logs/$t.log"; exit 1; }
    grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" "fuzz/logs/$t.log" | tr '\n' ' '
    echo "seconds: $(( $(date +%s) - start ))"
done
