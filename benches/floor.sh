#!/usr/bin/env bash
# The CPU floor and the fraction of it the server achieves, on both stores,
# in one run (BENCHMARKS.md, "The CPU floor"):
#   1. criterion times the parts every signed create of a one-line order
#      must pay: JWT, RSA-2048 verify, parse + validate, and its share of a
#      group commit of 256 orders on each store (PostgreSQL's includes the
#      database's own work and the round trips to it), and SQLite's own work
#      for the same rows without the store;
#   2. loadgen sends the same create request's bytes to /healthz and reads
#      the machine's busy cores: the CPU an HTTP request costs on this machine
#      (server, kernel and load generator) before any work;
#   3. loadgen sends real one-line creates at each concurrency, to a server
#      on SQLite and then to one on PostgreSQL.
# Prints both floors per store, achieved/floor, and PostgreSQL/SQLite; writes
# floor.md next to the results.
# Usage: [CONNECTIONS=32,128,512] [PG_SERVER=postgres://postgres@127.0.0.1:5432]
#        [OUT=benches/results/floor] benches/floor.sh [seconds per step, default 15]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
OUT=${OUT:-benches/results/floor}
export CONNECTIONS=${CONNECTIONS:-32,128,512}
export PG_SERVER=${PG_SERVER:-postgres://postgres@127.0.0.1:5432}
mkdir -p "$OUT"
PARTS=(jwt_verify_hs256 rsa2048_verify order_parse_validate_1_lines)
INSERTS=(sqlite_insert_256_concurrent_orders postgres_insert_256_concurrent_orders)
# SQLite's own work for the same rows without the store: the least a store
# on this schema pays at 256 orders a commit (BENCHMARKS.md, "What SQLite
# itself charges").
ENGINE=sqlite_engine_256_orders
BENCH_PG_SERVER=$PG_SERVER cargo bench --quiet --bench components -- --noplot \
  "^($(IFS='|'; echo "${PARTS[*]}|${INSERTS[*]}|$ENGINE"))\$" | tee "$OUT/components.txt"
cargo build --release --quiet --features loadgen

# One server per store, each on a fresh database, stopped when its subshell ends.
load() {
  local store=$1 scenario=$2 connections=$3
  (
    export STORE=$store
    # shellcheck source=benches/server.sh
    source benches/server.sh
    mkdir -p "$OUT/$scenario-$store"
    LOADGEN_TOKEN=$TOKEN target/release/loadgen --scenario "$scenario" --lines 1 \
      --url "http://127.0.0.1:$PORT" --client-id "$CLIENT_ID" --private-key "$WORK/private.pem" \
      --connections "$connections" --duration "${DURATION}s" --warmup 3s \
      --server-pid "$SERVER" --out "$OUT/$scenario-$store" \
      --label "$scenario, $store, $(nproc) cores, ${DURATION}s per step" >/dev/null
  )
}
load sqlite healthz 128,256,512
load sqlite create "$CONNECTIONS"
load postgres create "$CONNECTIONS"

python3 - "$OUT" "$(nproc)" "$ENGINE" "${PARTS[@]}" -- "${INSERTS[@]}" <<'PY'
import json, sys
out, cores, engine = sys.argv[1], int(sys.argv[2]), sys.argv[3]
split = sys.argv.index("--")
parts, inserts = sys.argv[4:split], sys.argv[split + 1:]
stores = ["sqlite", "postgres"]
names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
def median_us(name):
    with open(f"target/criterion/{name}/new/estimates.json") as f:
        return json.load(f)["median"]["point_estimate"] / 1000
def steps(directory):
    with open(f"{out}/{directory}/results.json") as f:
        return json.load(f)["steps"]
shared = {name: median_us(name) for name in parts}
insert = {store: median_us(name) / 256 for store, name in zip(stores, inserts)}  # 256 orders a group commit
# The cheapest HTTP round trip measured: busy cores / requests per second.
transport_us = min(1e6 * s["machine_busy_cores"] / s["orders_per_second"] for s in steps("healthz-sqlite"))
work = {store: sum(shared.values()) + insert[store] for store in stores}
floor = {store: cores * 1e6 / (work[store] + transport_us) for store in stores}
work_floor = {store: cores * 1e6 / work[store] for store in stores}
lines = ["| part | SQLite µs an order | PostgreSQL µs an order |", "|---|---|---|"]
lines += [f"| {name} | {us:.2f} | {us:.2f} |" for name, us in shared.items()]
lines += [f"| order insert: its share of a 256-order group commit | {insert['sqlite']:.2f} | {insert['postgres']:.2f} |",
          f"| **work only** | **{work['sqlite']:.2f}** | **{work['postgres']:.2f}** |",
          f"| HTTP request on this machine (server + kernel + load generator, from /healthz) | {transport_us:.2f} | {transport_us:.2f} |",
          f"| **work + HTTP** | **{work['sqlite'] + transport_us:.2f}** | **{work['postgres'] + transport_us:.2f}** |", ""]
for store in stores:
    lines.append(f"- {names[store]}: floor {cores} cores / {work[store] + transport_us:.2f} µs = "
                 f"{floor[store]:,.0f} orders/s with HTTP, {work_floor[store]:,.0f} orders/s work only")
lines += [f"- SQLite's order insert / RSA-2048 verify: {insert['sqlite'] / shared['rsa2048_verify']:.2f}",
          f"- SQLite alone, the same rows without the store ({engine}): "
          f"{median_us(engine) / 256:.2f} µs an order, {median_us(engine) / 256 / shared['rsa2048_verify']:.2f} of the RSA-2048 verify", "",
          "| connections | store | creates/s | p99 ms | errors | machine busy | peak RSS | / work + HTTP floor | PostgreSQL / SQLite |",
          "|---|---|---|---|---|---|---|---|---|"]
by_store = {store: {s["connections"]: s for s in steps(f"create-{store}")} for store in stores}
for connections in sorted(by_store["sqlite"]):
    for store in stores:
        s = by_store[store].get(connections)
        if s is None:
            continue
        rate = s["orders_per_second"]
        ratio = ""
        if store == "postgres" and connections in by_store["sqlite"]:
            ratio = f"{rate / by_store['sqlite'][connections]['orders_per_second']:.2f}"
        lines.append(f"| {connections} | {names[store]} | {rate:,.0f} | {s['p99_ms']:.2f} | {s['errors']} | "
                     f"{s['machine_busy_cores']:.2f} cores | {s['server_peak_rss_kb'] / 1024:.0f} MB | "
                     f"{rate / floor[store]:.2f} | {ratio} |")
text = "\n".join(lines) + "\n"
open(f"{out}/floor.md", "w").write(text)
print(text)
PY
