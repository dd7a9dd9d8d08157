-- wrk script: signed POST /api/v1/sales-orders. Headers come from the environment
-- (set by create-order.sh); a v1 signature is valid for the whole timestamp window.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.headers["X-CLIENT-ID"] = os.getenv("CLIENT_ID")
wrk.headers["X-TIMESTAMP"] = os.getenv("TS")
wrk.headers["X-SIGNATURE"] = os.getenv("SIG")
-- No purchase_order_no, so every request creates a new order.
wrk.body = [[{"customer_code":"CUST-001","site_code":"SITE-001","sales_name":"John Doe",
"address":"Jl. Sudirman No. 1, Jakarta","products":[{"product_code":"PRD-001","quantity":2,"uom":"PCS","unit_price":150000.5},
{"product_code":"PRD-002","quantity":"0.5","unit_price":"10"}]}]]

done = function(summary, latency, requests)
  io.write(string.format("requests=%d non_2xx_or_socket_errors=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f rps=%.0f\n",
    summary.requests, summary.errors.timeout + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests / (summary.duration / 1e6)))
end
