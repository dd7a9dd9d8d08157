#!/usr/bin/env bash
# The CPU floor and the fraction of it the server achieves, in one run
# (BENCHMARKS.md, "The CPU floor"):
#   1. criterion times the four parts every signed create of a one-line order
#      must pay: JWT, RSA-2048 verify, parse + validate, its share of a group
#      commit;
#   2. loadgen sends the same create request's bytes to /healthz and reads
#      the machine's busy cores: the CPU an HTTP request costs on this machine
#      (server, kernel and load generator) before any work;
#   3. loadgen sends real one-line creates at each concurrency.
# Prints both floors and achieved/floor; writes floor.md next to the results.
# Usage: [CONNECTIONS=128,256,512] [OUT=benches/results/floor] benches/floor.sh [seconds per step, default 15]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
OUT=${OUT:-benches/results/floor}
CONNECTIONS=${CONNECTIONS:-128,256,512}
mkdir -p "$OUT/healthz" "$OUT/create"
PARTS=(jwt_verify_hs256 rsa2048_verify order_parse_validate_1_lines sqlite_insert_256_concurrent_orders)
cargo bench --quiet --bench components -- --noplot "^($(IFS='|'; echo "${PARTS[*]}"))\$" | tee "$OUT/components.txt"
cargo build --release --quiet --features loadgen
source benches/server.sh
for scenario in healthz create; do
  LOADGEN_TOKEN=$TOKEN target/release/loadgen --scenario "$scenario" --lines 1 \
    --url "http://127.0.0.1:$PORT" --client-id "$CLIENT_ID" --private-key "$WORK/private.pem" \
    --connections "$CONNECTIONS" --duration "${DURATION}s" --warmup 3s \
    --server-pid "$SERVER" --out "$OUT/$scenario" --label "$scenario, $(nproc) cores, ${DURATION}s per step"
done
python3 - "$OUT" "$(nproc)" "${PARTS[@]}" <<'PY'
import json, sys
out, cores, parts = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def median_us(name):
    with open(f"target/criterion/{name}/new/estimates.json") as f:
        return json.load(f)["median"]["point_estimate"] / 1000
def steps(scenario):
    with open(f"{out}/{scenario}/results.json") as f:
        return json.load(f)["steps"]
costs = {name: median_us(name) for name in parts}
costs[parts[-1]] /= 256  # 256 orders in one group commit
# The cheapest HTTP round trip measured: busy cores / requests per second.
transport_us = min(1e6 * s["machine_busy_cores"] / s["orders_per_second"] for s in steps("healthz"))
work_us = sum(costs.values())
floors = {"work only": work_us, "work + HTTP": work_us + transport_us}
rates = {name: cores * 1e6 / us for name, us in floors.items()}
lines = ["| part | µs an order |", "|---|---|"]
lines += [f"| {name} | {us:.2f} |" for name, us in costs.items()]
lines += [f"| **work only** | **{work_us:.2f}** |",
          f"| HTTP request on this machine (server + kernel + load generator, from /healthz) | {transport_us:.2f} |",
          f"| **work + HTTP** | **{work_us + transport_us:.2f}** |", ""]
lines += [f"- floor, {name}: {cores} cores / {floors[name]:.2f} µs = {rates[name]:,.0f} orders/s" for name in floors]
lines += [f"- the single SQLite writer alone allows {1e6 / costs[parts[-1]]:,.0f} orders/s", "",
          "| connections | creates/s | p99 ms | errors | machine busy | / work-only floor | / work + HTTP floor |",
          "|---|---|---|---|---|---|---|"]
for s in steps("create"):
    rate = s["orders_per_second"]
    lines.append(f"| {s['connections']} | {rate:,.0f} | {s['p99_ms']:.2f} | {s['errors']} | "
                 f"{s['machine_busy_cores']:.2f} cores | {rate / rates['work only']:.2f} | "
                 f"{rate / rates['work + HTTP']:.2f} |")
text = "\n".join(lines) + "\n"
open(f"{out}/floor.md", "w").write(text)
print(text)
PY
