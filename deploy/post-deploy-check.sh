#!/usr/bin/env bash
# The post-deployment checklist (docs/deployment.md) as one command, against the public URL:
#   bash deploy/post-deploy-check.sh https://mcplookup.example.com
#   bash deploy/post-deploy-check.sh https://localhost nginx/tls/mcplookup.crt   # compose's development certificate
# Each check asserts the status and the body of the answer. No redirect is followed or accepted: a proxy
# that answers everything with a redirect (HTTP in front of HTTPS, a login page) fails every check.
# Exit status: 0 when every check passed, 1 otherwise; one line per check either way.
set -uo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 BASE_URL [CA_FILE]" >&2
    exit 2
fi
base="${1%/}"
curl_options=(--silent --show-error --max-redirs 0 --max-time 20)
if [[ $# -eq 2 ]]; then
    curl_options+=(--cacert "$2")
fi
body="$(mktemp)"
trap 'rm -f "$body"' EXIT
failures=0

# check NAME STATUS ASSERTION CURL_ARGUMENTS...: ASSERTION is Python given the JSON body as `answer` and
# the base URL as `base`; it prints what it saw, or fails with what is wrong.
check() {
    local name="$1" want="$2" assertion="$3"
    shift 3
    local status said
    if ! status="$(curl "${curl_options[@]}" --output "$body" --write-out '%{http_code} %{redirect_url}' "$@")"; then
        echo "FAIL $name: no answer from $base"
        failures=$((failures + 1))
        return
    fi
    local code="${status%% *}" location="${status#* }"
    if [[ "$code" != "$want" ]]; then
        echo "FAIL $name: answered $code, expected $want${location:+ (a redirect to $location)}"
        failures=$((failures + 1))
        return
    fi
    if ! said="$(python3 -c "import json, sys
answer, base = json.load(open(sys.argv[1])), sys.argv[2]
$assertion" "$body" "$base" 2>&1)"; then
        echo "FAIL $name: ${said##*$'\n'}"
        failures=$((failures + 1))
        return
    fi
    echo "ok   $name: $said"
}

check "liveness" 200 \
    'assert answer.get("status") == "ok", answer; print("status ok, version", answer.get("version"))' \
    "$base/health"
check "readiness" 200 \
    'assert answer.get("status") == "ready", answer; print("database reachable, migrations applied")' \
    "$base/ready"
check "openapi" 200 \
    'urls = [s.get("url") for s in answer.get("servers", [])]; assert urls == [base], f"servers are {urls}, not [{base}]: set MCPLOOKUP_PUBLIC_URL"; print("servers", urls)' \
    "$base/api/v1/openapi.json"
check "mcp initialize" 200 \
    'info = answer["result"]["serverInfo"]; print("server", info["name"], info.get("version"), "protocol", answer["result"]["protocolVersion"])' \
    "$base/mcp" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "post-deploy-check", "version": "1"}}}'
check "discovery" 200 \
    'assert isinstance(answer.get("servers"), list), answer; print(len(answer["servers"]), "servers for email")' \
    "$base/api/v1/discover?q=email&limit=3"
check "metrics not public" 403 \
    'assert answer.get("status") == 403, answer; print("refused by the proxy")' \
    "$base/metrics"

if [[ $failures -gt 0 ]]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "every check passed"
