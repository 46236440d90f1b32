#!/usr/bin/env bash
# Installs voxbatch if needed, then starts the gRPC server on the embedded default voice and the
# web UI in front of it. Ctrl-C or SIGTERM stops both; so does either of them stopping.
#
# Extra arguments go to `voxbatch serve` (see `voxbatch serve --help`). The web UI takes its
# settings from VOXBATCH_WEBUI_* variables (see `voxbatch webui --help`): VOXBATCH_WEBUI_PORT
# (default 8080) and VOXBATCH_WEBUI_SERVER (default: this server on 127.0.0.1). Set
# VOXBATCH_SKIP_SETUP=1 to skip the install step when everything is installed already.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${VOXBATCH_SKIP_SETUP:-0}" != 1 ]; then
  scripts/setup.sh
fi

# The port the server listens on: --port among the arguments, else VOXBATCH_PORT, else 50051.
port="${VOXBATCH_PORT:-50051}"
previous=""
for arg in "$@"; do
  if [ "$previous" = "--port" ]; then port="$arg"; fi
  case "$arg" in --port=*) port="${arg#--port=}" ;; esac
  previous="$arg"
done
export VOXBATCH_WEBUI_SERVER="${VOXBATCH_WEBUI_SERVER:-127.0.0.1:$port}"
ui_port="${VOXBATCH_WEBUI_PORT:-8080}"

server_pid=""
ui_pid=""
stop() {
  trap - INT TERM EXIT
  for pid in $ui_pid $server_pid; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

# The server runs in the background; the UI copes with it still starting (it shows that it is
# waiting and retries). The script waits on the UI like a foreground command, but stays free to
# act on signals at once (bash runs traps only between commands, never during one).
.venv/bin/voxbatch serve "$@" &
server_pid=$!
.venv/bin/voxbatch webui &
ui_pid=$!
echo "voxbatch: web UI at http://localhost:$ui_port, gRPC server on port $port (Ctrl-C stops both)"
status=0
wait -n "$server_pid" "$ui_pid" || status=$?
stop
exit "$status"
