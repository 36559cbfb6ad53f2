#!/usr/bin/env bash
# Benchmark: Wharf vs CNCF Distribution (Debian's docker-registry) on this machine, all on loopback.
#   installs the Debian packages it drives (when root and missing) and the npm packages (only when
#   node_modules/ is missing or broken),
#   compiles Wharf into a throw-away directory (dist/ is left alone), then runs
#     bench/registry-bench.ts  Wharf vs Distribution as registries (blob and manifest GETs),
#     bench/proxy-bench.ts     Wharf's proxy organizations vs Distribution as a pull-through cache,
#     bench/quota-bench.ts     pushes into organizations with and without a quota, and into Distribution,
#     bench/gc-bench.ts        GC and the quota recount over 100k blobs / 1M tag rows, on SQLite and on
#                              PostgreSQL (a throw-away cluster, unless BENCH_GC_PG_URL names one),
#     bench/mirror-bench.ts    repository mirroring vs `skopeo sync` from the same upstream, cold and warm,
#     bench/memory-bench.ts    RSS of Wharf and Distribution: idle, and at the peak of 8 parallel 256 MiB pushes,
#   each of which prints a table or lines with ratios (PASS/MISS against the targets). See docs/benchmarks.md.
#   With BENCH_SUITE=all (about 14 minutes on a quiet machine, up to about 22 on a busy one) a suite that
#   breaks does not stop the ones after it.
# Exit status: 0 when the runs completed (a MISS is reported, not failed), non-zero when something broke.
# Knobs (environment): BENCH_SUITE (all | registry | proxy | quota | gc | mirror | memory; default all),
#   all but gc: BENCH_QUIET_WAIT_MS (3000), WHARF_BENCH_LOG_LEVEL (warn),
#     WHARF_BENCH_FROM_SRC=1 (run Wharf through tsx instead of compiling);
#   registry and proxy: BENCH_BLOB_MIB (256), BENCH_REPEATS (5), BENCH_CONCURRENCY (8), BENCH_WRK_SECONDS (10),
#     BENCH_WRK_THREADS (2);
#   registry: BENCH_WRK_CONNECTIONS (16), BENCH_ONLY (blob|manifest), BENCH_JSON (results file);
#   proxy: BENCH_PROXY_WRK_CONNECTIONS (32), BENCH_PROXY_REVALIDATE_S (30), BENCH_PROXY_MISS_MIB (256),
#     BENCH_PROXY_MISS_REPEATS (5), BENCH_PROXY_CONCURRENT_REPEATS (3), BENCH_PROXY_MISS_CLIENTS (8),
#     BENCH_PROXY_ONLY (hit|manifest|miss), BENCH_PROXY_JSON (results file);
#   quota: BENCH_QUOTA_ROUNDS (12), BENCH_QUOTA_PUSHERS (8), BENCH_QUOTA_IMAGES (4 per pusher and run),
#     BENCH_QUOTA_LAYERS (3), BENCH_QUOTA_LAYER_MIN_MIB / _MAX_MIB (1 / 4), BENCH_QUOTA_CHUNK_KIB (1024),
#     BENCH_QUOTA_LIMIT_GIB (1024), BENCH_QUOTA_JSON (results file);
#   gc: BENCH_GC_BLOBS (100000), BENCH_GC_TAGS (1000000), BENCH_GC_BATCH (500),
#     BENCH_GC_PG_URL (an admin URL of an existing PostgreSQL; default: a throw-away cluster);
#   mirror: BENCH_MIRROR_TAGS (100), BENCH_MIRROR_BASE_LAYERS (3), BENCH_MIRROR_BASE_MIB (32),
#     BENCH_MIRROR_UNIQUE_KIB (2048), BENCH_MIRROR_REPEATS (3), BENCH_MIRROR_WARM_RUNS (3), BENCH_MIRROR_RTT_MS (20),
#     BENCH_MIRROR_RTT_RUNS (1), BENCH_MIRROR_POLL_S (1), BENCH_MIRROR_JSON (results file);
#   memory: BENCH_MEMORY_MIB (256), BENCH_MEMORY_PUSHERS (8), BENCH_MEMORY_CHUNK_MIB (16), BENCH_MEMORY_SETTLE_MS (5000),
#     BENCH_MEMORY_PULLS (20), BENCH_MEMORY_S3 (1: also Wharf on the S3 server named by WHARF_TEST_S3_*),
#     BENCH_MEMORY_JSON (results file).
set -euo pipefail
cd "$(dirname "$0")/.."

suite=${BENCH_SUITE:-all}
case "$suite" in all | registry | proxy | quota | gc | mirror | memory) ;; *) echo "BENCH_SUITE must be all, registry, proxy, quota, gc, mirror or memory (got \"$suite\")" >&2; exit 2 ;; esac
runs() { [ "$suite" = all ] || [ "$suite" = "$1" ]; }
own_pg=0
if runs gc && [ -z "${BENCH_GC_PG_URL:-}" ]; then own_pg=1; fi

source scripts/lib/debian-packages.sh
packages=()
if [ "$suite" != gc ]; then packages+=(docker-registry wrk curl); fi
if runs mirror; then packages+=(skopeo); fi
if ((own_pg)); then packages+=(postgresql); fi
ensure_debian_packages "${packages[@]}"

# npm ci only when the dependencies are missing or do not load: `npm ci` first deletes node_modules/,
# which would pull the floor from under anything else running from this checkout.
if ! node -e "require('better-sqlite3'); require.resolve('fastify'); require.resolve('tsx'); require.resolve('typescript')" >/dev/null 2>&1; then
  echo "== npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  sha256sum package-lock.json | cut -d' ' -f1 > node_modules/.lock-hash
fi

# The compiled output must sit inside the repository so that its imports resolve from node_modules/;
# .tmp/ is git-ignored. The gc suite needs no build: it drives the database code in-process.
build_dir=""
pg_dir=""
pg_bin=""
as_pg=()
cleanup() {
  if [ -n "$build_dir" ]; then rm -rf "$build_dir"; fi
  if [ -n "$pg_dir" ]; then
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
trap cleanup EXIT
if [ "$suite" != gc ] && [ "${WHARF_BENCH_FROM_SRC:-0}" != 1 ]; then
  mkdir -p .tmp
  build_dir=$(mktemp -d "$PWD/.tmp/bench-dist.XXXXXX")
  echo "== compiling Wharf into ${build_dir#"$PWD"/}"
  # Its own build info: the one in dist/ describes dist/, and would make tsc skip files here.
  npx tsc -p tsconfig.build.json --outDir "$build_dir" --tsBuildInfoFile "$build_dir/.tsbuildinfo"
  export WHARF_BENCH_CLI="$build_dir/main/wharf.js"
else
  unset WHARF_BENCH_CLI
fi

# A throw-away PostgreSQL cluster on a free port for the gc suite (as scripts/test.sh starts one),
# removed on exit. fsync is off, as in the tests: the benchmark measures the database's work, not the disk's.
start_pg() {
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  pg_dir=$(mktemp -d /tmp/wharf-bench-pg.XXXXXX)
  local port
  port=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
  if [ "$(id -u)" = 0 ]; then chown postgres: "$pg_dir"; as_pg=(runuser -u postgres --); fi
  echo "== starting PostgreSQL $(basename "$(dirname "$pg_bin")") on 127.0.0.1:$port"
  "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 --locale=en_US.UTF-8 >/dev/null 2>&1 ||
    "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 >/dev/null
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w -o "-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  export BENCH_GC_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

# Each suite in turn; with BENCH_SUITE=all a broken one is reported and the others still run.
failed=()
suite_run() {
  local name=$1 minutes=$2
  shift 2
  echo "== $name benchmark (about $minutes minutes)"
  if ! "$@"; then
    echo "== $name benchmark FAILED" >&2
    failed+=("$name")
  fi
}
if runs registry; then suite_run registry 3 node --import tsx bench/registry-bench.ts; fi
if runs proxy; then suite_run proxy 7 node --import tsx bench/proxy-bench.ts; fi
if runs quota; then suite_run quota 2 node --import tsx bench/quota-bench.ts; fi
if runs gc; then
  if ((own_pg)); then start_pg; fi
  suite_run "gc and quota recount" 1 node --import tsx bench/gc-bench.ts
fi
if runs mirror; then suite_run mirror 4 node --import tsx bench/mirror-bench.ts; fi
if runs memory; then suite_run memory 3 node --import tsx bench/memory-bench.ts; fi
if ((${#failed[@]})); then
  echo "== failed: ${failed[*]}" >&2
  exit 1
fi
