# Sourced by the HTTP benchmarks: starts `custody serve --quickstart` ($BIN, $SERVER_THREADS
# worker threads) on a free loopback port in a fresh temporary data directory, and sets
# WORK (removed on exit, with the server stopped), SERVER (its pid), TOKEN (the admin token) and
# URL. Fd 3 stays open on the server's output for the caller to read or drain.
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkfifo "$WORK/out"
"$BIN" serve --quickstart --listen 127.0.0.1:0 --data-dir "$WORK/data" --threads "$SERVER_THREADS" \
  --log-level warn >"$WORK/out" &
SERVER=$!
exec 3<"$WORK/out"
TOKEN=""
URL=""
while read -r line <&3; do
  case "$line" in
    *'"event":"admin_token"'*) TOKEN=$(sed -E 's/.*"token":"([^"]+)".*/\1/' <<<"$line") ;;
    *'"event":"listening"'*) URL=$(sed -E 's/.*"url":"([^"]+)".*/\1/' <<<"$line"); break ;;
  esac
done
