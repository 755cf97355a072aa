#!/usr/bin/env bash
# Proves `shipsim live-receiver` on a webhook receiver that is not Rust, on loopback:
# examples/python-shipping/tracking.py, described by receiver.toml. The correct receiver
# holds every verdict; each planted mistake (an environment variable) fails the run with the
# verdict(s) that should catch it, and nothing else. The five receivers run side by side
# (each its own database and port), so the whole check takes one run's time, a few seconds.
# Everything started here is stopped on exit (trap); nothing is installed: python3
# (standard library) and a built shipsim binary are all it needs.
#
#   examples/python-shipping/check-receiver.sh [PATH/TO/shipsim]
set -euo pipefail
cd "$(dirname "$0")/../.."
SHIPSIM="${1:-${CARGO_TARGET_DIR:-target}/release/shipsim}"
HERE=examples/python-shipping
# Seeds the correct receiver must pass, and seeds each mistake is given to be caught.
SEEDS_CORRECT=0..20
SEEDS_MISTAKE=0..10
# Every live run is cut off after this long (it takes a few seconds).
RUN_TIMEOUT_S=120
WORK="$(mktemp -d "${TMPDIR:-/tmp}/shipsim-python-receiver.XXXXXX")"
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap 'cleanup; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# start LABEL [VAR=1]: a fresh tracking.py (with the planted mistake VAR, if any); waits
# for its "listening on URL" line and writes the URL to $WORK/LABEL.url.
start() {
    local label=$1
    shift
    env "$@" python3 "$HERE/tracking.py" --listen 127.0.0.1:0 --db "$WORK/$label.sqlite" \
        > "$WORK/$label.out" 2> "$WORK/$label.log" &
    PIDS+=($!)
    for _ in $(seq 200); do
        if grep -o -m1 'http://[0-9.]*:[0-9]*' "$WORK/$label.out" > "$WORK/$label.url" 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "tracking.py ($label) did not start listening; its log:" >&2
    cat "$WORK/$label.log" >&2
    exit 1
}

# run LABEL SEEDS: one live run against LABEL's receiver, in the background; its output in
# $WORK/LABEL.txt, its exit status in $WORK/LABEL.status.
run() {
    local label=$1 seeds=$2
    (
        status=0
        timeout "$RUN_TIMEOUT_S" "$SHIPSIM" live-receiver "$HERE/receiver.toml" \
            --target "$(cat "$WORK/$label.url")" --seeds "$seeds" --jobs 20 \
            --out "$WORK/$label-report" > "$WORK/$label.txt" 2>&1 || status=$?
        echo "$status" > "$WORK/$label.status"
    ) &
    PIDS+=($!)
}

MISTAKES=(
    # label                 environment                            verdicts that must break
    "dedupe_after_effect    TRACKING_BUG_DEDUPE_AFTER_EFFECT=1     effect_once"
    "verify_after_acting    TRACKING_BUG_VERIFY_AFTER_ACTING=1     forged_refused,stale_refused,tampered_refused"
    "no_tolerance           TRACKING_BUG_NO_TOLERANCE=1            stale_refused"
    "last_write_wins        TRACKING_BUG_LAST_WRITE_WINS=1         no_regression"
)

start correct
for mistake in "${MISTAKES[@]}"; do
    read -r label variable _ <<< "$mistake"
    start "$label" "$variable"
done
run correct "$SEEDS_CORRECT"
for mistake in "${MISTAKES[@]}"; do
    read -r label _ <<< "$mistake"
    run "$label" "$SEEDS_MISTAKE"
done
for label in correct $(printf '%s\n' "${MISTAKES[@]}" | awk '{print $1}'); do
    for _ in $(seq $((RUN_TIMEOUT_S * 10 + 50))); do
        [ -s "$WORK/$label.status" ] && break
        sleep 0.1
    done
done
cleanup

failures=0
status_of() { cat "$WORK/$1.status" 2>/dev/null || echo "none"; }
# The verdicts a run broke, sorted, comma-separated (from its `BROKEN` table rows).
broken_of() {
    awk '$2 == "BROKEN" && $1 ~ /^[a-z_]+$/ { print $1 }' "$WORK/$1.txt" | sort | paste -sd, -
}

if [ "$(status_of correct)" = "0" ]; then
    echo "ok    correct: $(grep -E '^PASSED' "$WORK/correct.txt")"
    grep -E '^  burst latency' "$WORK/correct.txt" | sed 's/^/    /'
else
    echo "FAIL  correct: expected to pass, exit $(status_of correct)"
    cat "$WORK/correct.txt"
    failures=$((failures + 1))
fi
for mistake in "${MISTAKES[@]}"; do
    read -r label _ expected <<< "$mistake"
    expected="$(tr ',' '\n' <<< "$expected" | sort | paste -sd, -)"
    broken="$(broken_of "$label")"
    if [ "$(status_of "$label")" = "1" ] && [ "$broken" = "$expected" ]; then
        echo "ok    $label: caught by $broken ($(grep -E '^FAILED' "$WORK/$label.txt"))"
        # The first failure, with its evidence and the command that runs it again.
        awk '/^BROKEN / { if (shown) exit; shown = 1 } shown' "$WORK/$label.txt" | sed -n '1,4s/^/      /p'
    else
        echo "FAIL  $label: expected exit 1 with exactly $expected broken, got exit $(status_of "$label") with ${broken:-nothing} broken"
        cat "$WORK/$label.txt"
        failures=$((failures + 1))
    fi
done

if [ "$failures" -gt 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "python-shipping receiver: the correct receiver passed and every planted mistake was caught"
