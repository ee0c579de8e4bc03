-- wrk script for bench/discover.py: each connection cycles through prepared requests, one per line of
-- the file given after "--" (a URL path for GET, or a JSON-RPC body to POST to /mcp), and the summary is
-- printed in one line the Python side parses.
--   wrk -t2 -c16 -d20s -s bench/discover.lua http://127.0.0.1:8000 -- rest /tmp/requests.txt

local lines = {}
local kind = "rest"
local next_index = 0

function init(args)
   kind = args[1]
   for line in io.lines(args[2]) do
      lines[#lines + 1] = line
   end
   -- Start each thread at a different request so the threads do not move in step.
   next_index = math.random(0, #lines - 1)
end

function request()
   next_index = next_index + 1
   local line = lines[(next_index % #lines) + 1]
   if kind == "rest" then
      return wrk.format("GET", line)
   end
   local headers = {
      ["Content-Type"] = "application/json",
      ["Accept"] = "application/json, text/event-stream",
   }
   if kind == "mcp" then
      -- The per-request revision: the version, method and tool name ride in headers as well as the body.
      headers["MCP-Protocol-Version"] = "2026-07-28"
      headers["Mcp-Method"] = "tools/call"
      headers["Mcp-Name"] = "discover_servers"
   else
      headers["MCP-Protocol-Version"] = "2025-06-18"
   end
   return wrk.format("POST", "/mcp", headers, line)
end

function done(summary, latency, requests)
   io.write(string.format(
      "RESULT requests=%d duration_us=%d p50_us=%d p95_us=%d p99_us=%d non2xx=%d socket_errors=%d connect=%d read=%d write=%d timeout=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
      latency:percentile(99), summary.errors.status,
      summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
      summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
