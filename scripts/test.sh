#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with Node.js 20+:
#   installs the Debian packages the tests drive (when root and missing), the npm packages from the
#   lockfile, starts a throwaway PostgreSQL cluster, runs type checks, the import-rule check and every
#   test (unit, route, database on SQLite and PostgreSQL, end-to-end with real clients), then removes
#   the cluster (and a throwaway RADOS Gateway when S3 tests run, see scripts/s3/). Extra arguments are passed to `node --test` (e.g. a single test file).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/debian-packages.sh
ensure_debian_packages postgresql skopeo docker-registry umoci podman containerd docker.io apache2-utils haproxy systemd debootstrap

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
s3_dir=
cleanup() {
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
  if [ -n "$s3_dir" ]; then
    bash scripts/s3/stop-s3.sh "$s3_dir" 2>/dev/null || true
    rm -rf "$s3_dir" "$s3_dir.log"
  fi
}
trap cleanup EXIT
echo "== starting PostgreSQL on 127.0.0.1:$pg_port"
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 --locale=en_US.UTF-8 >/dev/null 2>&1 ||
  "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
export WHARF_TEST_PG_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"

if (($#)); then
  files=("$@")
else
  mapfile -t files < <(find src test -name '*.test.ts' | sort)
fi

# A throwaway Ceph RADOS Gateway when any S3 test runs (about a minute the first time, which installs
# its Debian packages), stopped on exit. Its OSD keeps objects in a sparse 20 GiB file rather than in
# memory: a memstore OSD that fills up makes every write hang. WHARF_TEST_S3_ENDPOINT already set means
# "use that server".
s3_dir=
if [ -z "${WHARF_TEST_S3_ENDPOINT:-}" ] && grep -lqs 'helpers/s3\.js' -- "${files[@]}" 2>/dev/null; then
  s3_dir=$(mktemp -d /tmp/wharf-s3.XXXXXX)
  free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
  echo "== starting RADOS Gateway (S3) in $s3_dir"
  s3_env=$(S3_PORT=$(free_port) S3_MON_PORT=$(free_port) S3_OSD_BACKEND=bluestore bash scripts/s3/start-s3.sh "$s3_dir" 2>"$s3_dir.log") || {
    echo "RADOS Gateway did not start (S3 tests cannot run); its log:" >&2
    tail -n 30 "$s3_dir.log" >&2
    exit 1
  }
  eval "$s3_env"
  export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
  export WHARF_TEST_S3_ENDPOINT="$S3_ENDPOINT" WHARF_TEST_S3_BUCKET="$S3_BUCKET" WHARF_TEST_S3_REGION="$S3_REGION" \
    WHARF_TEST_S3_ACCESS_KEY_ID="$S3_ACCESS_KEY_ID" WHARF_TEST_S3_SECRET_ACCESS_KEY="$S3_SECRET_ACCESS_KEY"
fi

echo "== tests"
node --import tsx --test --test-concurrency=2 --test-reporter=spec "${files[@]}"
