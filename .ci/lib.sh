# Sourced by the CI scripts that drive a real server with outside tools.

# A virtualenv under target/ holding the pinned PyPI packages given; prints its directory.
python_env() {
  local name="$1"
  shift
  local venv="$root/target/venv-$name"
  if [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$*" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
    echo "$*" >"$venv/.installed"
  fi
  echo "$venv"
}

# Starts `$binary` on a free port over a fresh SQLite directory, `admin` signing in with the
# password `$1` (further arguments go to `serve`), waits until it is ready, and stops it
# (removing the directory) when the script exits. Sets `base` and `data`.
start_server() {
  local password="$1"
  shift
  data="$(mktemp -d)"
  local port=$((20000 + RANDOM % 20000))
  base="http://127.0.0.1:$port"
  FLOWSTONE_ADMIN_PASSWORD="$password" "$binary" serve --listen "127.0.0.1:$port" --data-dir "$data" "$@" \
    >"$data/server.log" 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$data"' EXIT
  for _ in $(seq 1 60); do curl -sf "$base/health/ready" >/dev/null && break; sleep 0.5; done
  curl -sf "$base/health/ready" >/dev/null || { cat "$data/server.log"; echo "the server did not start"; exit 1; }
}

# Fails when the server panicked.
no_panic() {
  if grep -q "panicked" "$data/server.log"; then
    grep -B2 -A10 "panicked" "$data/server.log"
    echo "the server panicked"
    return 1
  fi
}
