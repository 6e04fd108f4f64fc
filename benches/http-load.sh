#!/usr/bin/env bash
# The HTTP figure of record: the release `waddlebot serve` as its own process, loaded by `wrk`
# on loopback, rows alternating with a bare hyper server (tests/examples/stand_in.rs) so each
# ratio compares two measurements taken side by side on the same machine.
#
# Shapes (POST /router/events with a collector key, 64 connections):
#   viewers  a custom text command (!hello) from 500 viewers in turn      limits raised
#   new      the same, a viewer never seen before on every request (a raid) limits raised
#   spam     500 viewers with the default limits (most commands refused)
#   remote   a # command answered by a remote module over HTTP on loopback  limits raised
#   chat     plain chat, no command                                          limits raised
# each on SQLite, and on PostgreSQL when one answers (WADDLEBOT_TEST_POSTGRES_URL, else
# postgres://postgres@127.0.0.1:5432/postgres); a fresh database per run.
#
#   benches/http-load.sh                      # 10 s a row
#   SECS=5 SHAPES="viewers new" STORES=sqlite benches/http-load.sh
#   RSS_SETTLE=60 benches/http-load.sh        # also RSS 60 s after the load
#
# Prints req/s, p50 and p99 per row, the ratio to the bare row before it, the time from start
# to ready, and resident memory (idle, after the load, and RSS_SETTLE seconds later).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

secs=${SECS:-10}
connections=${CONNECTIONS:-64}
threads=${THREADS:-2}
shapes=${SHAPES:-viewers new spam remote chat}
stores=${STORES:-sqlite postgres}
settle=${RSS_SETTLE:-0}

log() { printf '\n==> %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
fi
log "building the release binaries"
cargo build -q --release -p waddlebot-cli
cargo build -q --release -p tests --example stand_in
target_dir=${CARGO_TARGET_DIR:-$repo/target}
bot="$target_dir/release/waddlebot"
stand_in="$target_dir/release/examples/stand_in"

work=$(mktemp -d /tmp/waddlebot-load.XXXXXX)
# The bot runs in the temp dir: a PostgreSQL run keeps its generated JWT secret in the working
# directory, and no ./waddlebot.toml of the checkout is read.
cd "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {
    for _ in $(seq 1 500); do
        curl -fs "$1/health" >/dev/null 2>&1 && return 0
        sleep 0.01
    done
    echo "no answer from $1" >&2
    return 1
}
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

bare_port=$(free_port)
"$stand_in" bare "127.0.0.1:$bare_port" >/dev/null &
pids+=($!)
module_port=$(free_port)
"$stand_in" module "127.0.0.1:$module_port" >/dev/null &
pids+=($!)
wait_ready "http://127.0.0.1:$bare_port" 2>/dev/null || true

# The requests: the shape picks the user and the message; each wrk thread counts on its own.
cat >"$work/events.lua" <<'LUA'
local shape = os.getenv("SHAPE") or "viewers"
local key = os.getenv("KEY") or ""
local counter = 0
local threads = 0
function setup(thread)
    thread:set("tid", threads)
    threads = threads + 1
end
request = function()
    counter = counter + 1
    local user
    if shape == "new" then
        user = tid .. "x" .. counter
    else
        user = tostring(counter % 500)
    end
    local message = "!hello"
    if shape == "remote" then
        message = "#weather London"
    elseif shape == "chat" then
        message = "just chatting, nothing to see"
    end
    local body = '{"platform":"twitch","server_id":"pond","channel_id":"pond","user_id":"'
        .. user .. '","username":"viewer' .. user .. '","message":"' .. message .. '"}'
    return wrk.format("POST", "/router/events",
        {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}, body)
end
LUA

# One wrk row: prints "req/s p50_ms p99_ms non2xx".
measure() {
    local url=$1 shape=$2 key=$3 out
    out=$(SHAPE=$shape KEY=$key wrk -t"$threads" -c"$connections" -d"${secs}s" --latency \
        -s "$work/events.lua" "$url")
    local rate p50 p99 bad
    rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    echo "$rate $(to_ms "$p50") $(to_ms "$p99") ${bad:-0}"
}
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n }'
}

pg_base=${WADDLEBOT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
pg_ok() { command -v psql >/dev/null 2>&1 && psql "$pg_base" -tAc 'SELECT 1' >/dev/null 2>&1; }

# Starts `waddlebot serve` on `db` with the environment given; echoes "pid port ready_ms".
start_bot() {
    local db=$1; shift
    local port start ready pid
    port=$(free_port)
    start=$(date +%s%N)
    env -u LOG_LEVEL LOG_LEVEL=warn ROUTER_ALLOWED_TARGETS=127.0.0.1/32 "$@" \
        "$bot" --db "$db" serve --bind "127.0.0.1:$port" >>"$work/serve.log" 2>&1 &
    pid=$!
    wait_ready "http://127.0.0.1:$port"
    ready=$(( ($(date +%s%N) - start) / 1000000 ))
    echo "$pid $port $ready"
}

printf '\n%-34s %11s %9s %9s %8s %7s\n' "row" "req/s" "p50 ms" "p99 ms" "non-2xx" "ratio"
for store in $stores; do
    case $store in
        sqlite) db="sqlite://$work/load.db" ;;
        postgres)
            if ! pg_ok; then
                log "PostgreSQL does not answer at $pg_base: its rows are skipped"
                continue
            fi
            name="wbload_$$_$RANDOM"
            psql "$pg_base" -qc "CREATE DATABASE $name" >/dev/null
            db="${pg_base%/*}/$name"
            ;;
        *) echo "unknown store $store" >&2; exit 2 ;;
    esac
    "$bot" --db "$db" migrate >/dev/null 2>&1
    collector=$("$bot" --db "$db" apikey create --name load --role collector 2>/dev/null)
    admin=$("$bot" --db "$db" apikey create --name setup --role admin 2>/dev/null)
    # Limits raised so every command runs; a second process on the same store keeps the
    # default limits for the spam row.
    read -r raised_pid raised_port ready_ms < <(start_bot "$db" \
        ROUTER_DEFAULT_RATE_LIMIT=4000000000 ROUTER_COMMUNITY_RATE_LIMIT=0)
    pids+=("$raised_pid")
    idle=$(rss_mb "$raised_pid")
    raised="http://127.0.0.1:$raised_port"
    # The community appears with its first event; then the command and the remote module.
    community=$(curl -fs -H "Authorization: Bearer $collector" -H 'Content-Type: application/json' \
        -d '{"platform":"twitch","server_id":"pond","channel_id":"pond","user_id":"0","username":"viewer0","message":"!ping"}' \
        "$raised/router/events" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["community_id"])')
    curl -fs -o /dev/null -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
        -d '{"name":"hello","response":"Hi {user}!"}' "$raised/api/v1/communities/$community/commands"
    curl -fs -o /dev/null -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
        -d "{\"name\":\"weather\",\"url\":\"http://127.0.0.1:$module_port/\",\"commands\":[\"weather\"]}" \
        "$raised/api/v1/communities/$community/remote-modules"
    # Each row must measure what it says: the command and the module answer.
    for check in '!hello:Hi viewer1' '#weather London:London'; do
        message=${check%%:*} expected=${check#*:}
        answer=$(curl -fs -H "Authorization: Bearer $collector" -H 'Content-Type: application/json' \
            -d "{\"platform\":\"twitch\",\"server_id\":\"pond\",\"channel_id\":\"pond\",\"user_id\":\"1\",\"username\":\"viewer1\",\"message\":\"$message\"}" \
            "$raised/router/events")
        if ! grep -q "$expected" <<<"$answer"; then
            echo "$message did not answer as expected: $answer" >&2
            exit 1
        fi
    done
    read -r default_pid default_port _ < <(start_bot "$db")
    pids+=("$default_pid")
    peak=$idle
    for shape in $shapes; do
        url=$raised
        [ "$shape" = spam ] && url="http://127.0.0.1:$default_port"
        read -r b_rate b50 b99 _ < <(measure "http://127.0.0.1:$bare_port" "$shape" "$collector")
        read -r rate p50 p99 bad < <(measure "$url" "$shape" "$collector")
        ratio=$(awk -v a="$rate" -v b="$b_rate" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
        printf '%-34s %11s %9s %9s %8s %7s\n' "bare hyper" "$b_rate" "$b50" "$b99" "-" "-"
        printf '%-34s %11s %9s %9s %8s %7s\n' "$store $shape" "$rate" "$p50" "$p99" "$bad" "$ratio"
        now=$(rss_mb "$raised_pid")
        peak=$(awk -v a="$peak" -v b="$now" 'BEGIN {print (b > a ? b : a)}')
    done
    after=$(rss_mb "$raised_pid")
    if [ "$settle" -gt 0 ]; then
        sleep "$settle"
        settled="$(rss_mb "$raised_pid") MB after ${settle} s"
    else
        settled="(RSS_SETTLE=60 to measure)"
    fi
    printf '%s: ready in %s ms; RSS idle %s MB, peak %s MB, after the load %s MB, %s\n' \
        "$store" "$ready_ms" "$idle" "$peak" "$after" "$settled"
    kill "$raised_pid" "$default_pid" 2>/dev/null || true
    if [ "$store" = postgres ]; then
        wait "$raised_pid" "$default_pid" 2>/dev/null || true
        psql "$pg_base" -qc "DROP DATABASE IF EXISTS $name" >/dev/null 2>&1 || true
    fi
done
