#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with Node.js 20+:
#   installs the Debian packages the tests drive (when root and missing), the npm packages from the
#   lockfile, starts a throwaway PostgreSQL cluster, runs type checks, the import-rule check and every
#   test (unit, route, database on SQLite and PostgreSQL, end-to-end with real clients), then removes
#   the cluster. Extra arguments are passed to `node --test` (e.g. a single test file).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/debian-packages.sh
ensure_debian_packages postgresql skopeo docker-registry umoci podman containerd docker.io apache2-utils

lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.lock-hash ] || [ "$(cat node_modules/.lock-hash)" != "$lock_hash" ]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.lock-hash
fi

echo "== type check"
npx tsc -p tsconfig.json --noEmit
echo "== import rules"
node scripts/check-imports.mjs

# A throwaway PostgreSQL cluster on a free port, removed on exit.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg_dir=$(mktemp -d /tmp/wharf-pg.XXXXXX)
pg_port=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres: "$pg_dir"; as_pg=(runuser -u postgres --); fi
cleanup() {
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap cleanup EXIT
echo "== starting PostgreSQL on 127.0.0.1:$pg_port"
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 --locale=en_US.UTF-8 >/dev/null 2>&1 ||
  "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
export WHARF_TEST_PG_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"

echo "== tests"
if (($#)); then
  files=("$@")
else
  mapfile -t files < <(find src test -name '*.test.ts' | sort)
fi
node --import tsx --test --test-concurrency=2 --test-reporter=spec "${files[@]}"
