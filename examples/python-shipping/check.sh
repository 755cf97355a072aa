#!/usr/bin/env bash
# Proves `shipsim live` on a service that is not Rust, on loopback: examples/python-shipping/
# shop.py, its carrier served by `shipsim downstream`. The correct service passes; each
# planted mistake (an environment variable) fails the run with the oracle that should catch
# it, and the evidence is printed. The five runs go side by side (each its own carrier, shop,
# database and ports), so the whole check takes about one run's time. Everything started
# here is stopped on exit (trap), each run is bounded in time, and nothing is installed: python3 (standard library) and a built
# shipsim binary are all it needs.
#
#   examples/python-shipping/check.sh [PATH/TO/shipsim]
set -euo pipefail
cd "$(dirname "$0")/../.."
SHIPSIM="${1:-${CARGO_TARGET_DIR:-target}/release/shipsim}"
HERE=examples/python-shipping
# Every live run is cut off after this long (it takes a few seconds).
RUN_TIMEOUT_S=180
WORK="$(mktemp -d "${TMPDIR:-/tmp}/shipsim-python-shipping.XXXXXX")"
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

# start NAME COMMAND...: runs COMMAND in the background, waits for its "listening on URL"
# line, and sets URL.
start() {
    local name=$1
    shift
    "$@" > "$WORK/$name.out" 2> "$WORK/$name.log" &
    PIDS+=($!)
    URL=""
    for _ in $(seq 200); do
        URL="$(grep -o -m1 'http://[0-9.]*:[0-9]*' "$WORK/$name.out" 2>/dev/null || true)"
        if [ -n "$URL" ]; then
            return 0
        fi
        sleep 0.05
    done
    echo "$name did not start listening; its log:" >&2
    cat "$WORK/$name.log" >&2
    exit 1
}

# launch LABEL [VAR=1]: a fresh carrier and a fresh shop (with the planted mistake VAR, if
# any), and one live run against them in the background: its output in $WORK/LABEL.txt, its
# exit status in $WORK/LABEL.status.
launch() {
    local label=$1
    shift
    start "carrier-$label" "$SHIPSIM" downstream --spec "$HERE/carrier.toml" --listen 127.0.0.1:0
    local carrier=$URL
    start "shop-$label" env "$@" python3 "$HERE/shop.py" --listen 127.0.0.1:0 \
        --db "$WORK/$label.sqlite" --carrier-url "$carrier"
    local shop=$URL
    (
        status=0
        timeout "$RUN_TIMEOUT_S" "$SHIPSIM" live --api "$HERE/target.toml" --target "$shop" \
            --downstream "carrier=$carrier" --proxy "$HERE/chaos.toml" > "$WORK/$label.txt" 2>&1 || status=$?
        echo "$status" > "$WORK/$label.status"
    ) &
    PIDS+=($!)
}

failures=0

# verify LABEL ORACLE: once LABEL's run has ended, with ORACLE `-` it must have passed, else
# failed with that oracle.
verify() {
    local label=$1 oracle=$2
    local status
    status="$(cat "$WORK/$label.status" 2>/dev/null || echo "none")"
    local verdict
    verdict="$(grep -E '^(PASSED|FAILED)' "$WORK/$label.txt" || echo "no verdict (exit $status)")"
    if [ "$oracle" = "-" ]; then
        if [ "$status" = "0" ]; then
            echo "ok    $label: $verdict"
        else
            echo "FAIL  $label: expected to pass, exit $status"
            cat "$WORK/$label.txt"
            failures=$((failures + 1))
        fi
        grep -E '^  [0-9]+ operations|^  final state' "$WORK/$label.txt" | sed 's/^/      /'
        return
    fi
    if [ "$status" = "1" ] && grep -q "^VIOLATION \[$oracle\]" "$WORK/$label.txt"; then
        echo "ok    $label: caught by $oracle ($verdict)"
        # The first violation of that oracle, with its evidence: its first 8 lines. Not
        # `| head`: under pipefail, awk's SIGPIPE when head stops reading ended the script
        # with status 141 whenever the evidence ran long.
        awk -v oracle="[$oracle]" '
            /^VIOLATION / { shown = shown || index($0, oracle) > 0; printing = index($0, oracle) > 0 && !done; if (printing) { print; count++ } else if (count) { done = 1 } next }
            /^    / && printing { print; next }
            { if (count) done = 1; printing = 0 }
        ' "$WORK/$label.txt" | sed -n '1,8s/^/      /p'
    else
        echo "FAIL  $label: expected exit 1 with a $oracle violation, got exit $status"
        cat "$WORK/$label.txt"
        failures=$((failures + 1))
    fi
}

RUNS=(
    # label                 oracle that must catch it   environment
    "correct                -"
    "carrier_without_key    exactly_once                SHOP_BUG_CARRIER_WITHOUT_KEY=1"
    "check_then_insert      stable_replays              SHOP_BUG_CHECK_THEN_INSERT=1"
    "unscoped_keys          stable_replays              SHOP_BUG_UNSCOPED_KEYS=1"
    "label_not_committed    acknowledged_writes         SHOP_BUG_LABEL_NOT_COMMITTED=1"
)

"$SHIPSIM" check --api "$HERE/target.toml" "$HERE/chaos.toml"
for entry in "${RUNS[@]}"; do
    read -r label _ variable <<< "$entry"
    # shellcheck disable=SC2086 # no variable (the correct run) is no argument
    launch "$label" $variable
done
# Each run ends within RUN_TIMEOUT_S (timeout kills it); wait a little longer for its status.
for entry in "${RUNS[@]}"; do
    read -r label _ <<< "$entry"
    for _ in $(seq $((RUN_TIMEOUT_S * 10 + 50))); do
        [ -s "$WORK/$label.status" ] && break
        sleep 0.1
    done
done
cleanup
for entry in "${RUNS[@]}"; do
    read -r label oracle _ <<< "$entry"
    verify "$label" "$oracle"
done

if [ "$failures" -gt 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "python-shipping: the correct service passed and every planted mistake was caught"
