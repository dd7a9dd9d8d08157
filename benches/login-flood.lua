-- wrk script: logins with a wrong secret, as an attacker guessing would send.
-- Used by create-order.sh with FLOOD=N to load the server while orders flow.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"client_id":"' .. os.getenv("CLIENT_ID") .. '","client_secret":"not-the-secret"}'

done = function(summary, latency, requests)
  io.write(string.format("login flood: requests=%d rps=%.0f p50_ms=%.2f\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000))
end
