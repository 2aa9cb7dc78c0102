#!/usr/bin/env bash
# The demo behind `make demo`: start the greeter server on a free loopback
# port, greet through greetctl over every kind of RPC and both contracts, and
# with curl over the HTTP port (Connect JSON, Connect GET), then drain the
# server with SIGTERM as an orchestrator would. Bounded: it gives up
# if the server is not serving within 10 seconds.
set -euo pipefail
bin=${1:-bin}
log=$(mktemp)
"$bin/greeter" --grpc-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT

addr=""
for _ in $(seq 1 100); do
  addr=$(grep -o 'grpc_addr=[^ ]*' "$log" | head -1 | cut -d= -f2 | tr -d '"' || true)
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "demo: the server exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { cat "$log"; echo "demo: the server did not start within 10s" >&2; exit 1; }
http=$(grep -o 'http_addr=[^ ]*' "$log" | head -1 | cut -d= -f2 | tr -d '"')

run() { printf '\n$ greetctl %s\n' "$*"; "$bin/greetctl" --addr "$addr" "$@"; }
echo "greeter serving on $addr"
run health
run hello World
run hello-again World
run --classic hello World
run stream World --count 3 --interval 100ms
printf 'Ada\nGrace\nLinus\n' | { printf '\n$ printf "Ada\\nGrace\\nLinus\\n" | greetctl hello-all\n'; "$bin/greetctl" --addr "$addr" hello-all; }
printf 'Ada\nGrace\n' | { printf '\n$ printf "Ada\\nGrace\\n" | greetctl chat\n'; "$bin/greetctl" --addr "$addr" chat; }
run -o json hello World
printf '\n$ greetctl hello "   "   # rejected: exit code 3\n'
"$bin/greetctl" --addr "$addr" hello "   " || echo "(exit code $?)"

# The HTTP port: what a browser's connect-web or any HTTP client sends.
curl_run() { printf '\n$ curl'; printf ' %q' "$@"; echo; curl --silent --show-error --max-time 5 "$@"; echo; }
curl_run -H 'Content-Type: application/json' -H 'Connect-Protocol-Version: 1' \
  -d '{"name":"World"}' "http://$http/acme.greeter.v1.GreeterService/SayHello"
curl_run --get --data-urlencode 'connect=v1' --data-urlencode 'encoding=json' \
  --data-urlencode 'message={"name":"World"}' "http://$http/acme.greeter.v1.GreeterService/SayHelloAgain"
printf '\n$ curl ... -d %s   # rejected: invalid_argument, HTTP 400\n' "'{\"name\":\"   \"}'"
curl --silent --show-error --max-time 5 -w '\n(HTTP %{http_code})\n' -H 'Content-Type: application/json' -H 'Connect-Protocol-Version: 1' \
  -d '{"name":"   "}' "http://$http/acme.greeter.v1.GreeterService/SayHello"

printf '\nSIGTERM -> drain\n'
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
echo "server log:"
cat "$log"
echo "server exited with status $status"
exit "$status"
