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
#     bench/scaleout-bench.ts  1 and 2 Wharf processes on PostgreSQL and S3 behind haproxy vs Distribution on the
#                              same bucket (blob GETs streamed and redirected, manifest GETs, cross-process misses),
#                              with a throw-away PostgreSQL (unless BENCH_SCALEOUT_PG_URL names one) and a throw-away
#                              RADOS Gateway (unless BENCH_SCALEOUT_S3_ENDPOINT names an S3 server),
#     bench/memory-bench.ts    RSS of Wharf and Distribution: idle, and at the peak of 8 parallel 256 MiB pushes,
#     bench/replication-bench.ts  replication between storage locations (filesystem and two prefixes of one S3
#                              bucket) on PostgreSQL: throughput fs → s3 and s3 → s3 against the plain copy of the
#                              same bytes, and the time from commit to "replicated everywhere" under a steady load,
#                              with the same throw-away PostgreSQL and RADOS Gateway as scaleout,
#   each of which prints a table or lines with ratios (PASS/MISS against the targets). See docs/benchmarks.md.
#   With BENCH_SUITE=all (about 20 minutes on a quiet machine, up to about 30 on a busy one) a suite that
#   breaks does not stop the ones after it.
# Exit status: 0 when the runs completed (a MISS is reported, not failed), non-zero when something broke.
# Knobs (environment): BENCH_SUITE (all | registry | proxy | quota | gc | mirror | scaleout | memory | replication; default all),
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
#   scaleout: BENCH_SCALEOUT_BLOB_MIB (64), BENCH_SCALEOUT_CLIENTS (8), BENCH_SCALEOUT_REPEATS (3),
#     BENCH_SCALEOUT_WRK_SECONDS (10), BENCH_SCALEOUT_WRK_CONNECTIONS (32), BENCH_SCALEOUT_WRK_THREADS (2),
#     BENCH_SCALEOUT_MISS_MIB (64), BENCH_SCALEOUT_MISS_CLIENTS (8), BENCH_SCALEOUT_MISS_REPEATS (3),
#     BENCH_SCALEOUT_REDIRECT and BENCH_SCALEOUT_CROSS_FILLS (auto | on | off; auto: when this build supports it),
#     BENCH_SCALEOUT_ONLY (blob|manifest|miss), BENCH_SCALEOUT_JSON (results file),
#     BENCH_SCALEOUT_PG_URL (an admin URL of an existing PostgreSQL; default: a throw-away cluster),
#     BENCH_SCALEOUT_S3_ENDPOINT, _BUCKET, _REGION, _ACCESS_KEY_ID, _SECRET_ACCESS_KEY (an existing S3 server;
#     default: a throw-away RADOS Gateway), BENCH_SCALEOUT_S3_PID_FILE (its daemons' PIDs, for CPU accounting).
#   memory: BENCH_MEMORY_MIB (256), BENCH_MEMORY_PUSHERS (8), BENCH_MEMORY_CHUNK_MIB (16), BENCH_MEMORY_SETTLE_MS (5000),
#     BENCH_MEMORY_PULLS (20), BENCH_MEMORY_S3 (1: also Wharf on the S3 server named by WHARF_TEST_S3_*),
#     BENCH_MEMORY_JSON (results file).
#   replication: BENCH_REPLICATION_SMALL (1000), BENCH_REPLICATION_LARGE (10), BENCH_REPLICATION_LARGE_MIB (64),
#     BENCH_REPLICATION_CONCURRENCY (4), BENCH_REPLICATION_RATE (10 commits/s), BENCH_REPLICATION_LOAD_S (45),
#     BENCH_REPLICATION_POLL_MS (5000), BENCH_REPLICATION_JSON (results file), BENCH_REPLICATION_PG_URL (an admin URL
#     of an existing PostgreSQL; default: a throw-away cluster); the S3 server as for scaleout (BENCH_SCALEOUT_S3_*).
set -euo pipefail
cd "$(dirname "$0")/.."

suite=${BENCH_SUITE:-all}
case "$suite" in all | registry | proxy | quota | gc | mirror | scaleout | memory | replication) ;; *) echo "BENCH_SUITE must be all, registry, proxy, quota, gc, mirror, scaleout, memory or replication (got \"$suite\")" >&2; exit 2 ;; esac
runs() { [ "$suite" = all ] || [ "$suite" = "$1" ]; }
own_pg=0
if runs gc && [ -z "${BENCH_GC_PG_URL:-}" ]; then own_pg=1; fi
if runs scaleout && [ -z "${BENCH_SCALEOUT_PG_URL:-}" ]; then own_pg=1; fi
if runs replication && [ -z "${BENCH_REPLICATION_PG_URL:-}" ]; then own_pg=1; fi
own_s3=0
if { runs scaleout || runs replication; } && [ -z "${BENCH_SCALEOUT_S3_ENDPOINT:-}" ]; then own_s3=1; fi

source scripts/lib/debian-packages.sh
packages=()
if [ "$suite" != gc ]; then packages+=(docker-registry wrk curl); fi
if runs mirror; then packages+=(skopeo); fi
if runs scaleout; then packages+=(haproxy); fi
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
s3_dir=""
cleanup() {
  if [ -n "$build_dir" ]; then rm -rf "$build_dir"; fi
  if [ -n "$pg_dir" ]; then
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
  if [ -n "$s3_dir" ]; then
    bash scripts/s3/stop-s3.sh "$s3_dir" >/dev/null 2>&1 || true
    rm -rf "$s3_dir" "$s3_dir.log"
  fi
}
trap cleanup EXIT
if [ "$suite" != gc ] && [ "$suite" != replication ] && [ "${WHARF_BENCH_FROM_SRC:-0}" != 1 ]; then
  mkdir -p .tmp
  build_dir=$(mktemp -d "$PWD/.tmp/bench-dist.XXXXXX")
  echo "== compiling Wharf into ${build_dir#"$PWD"/}"
  # Its own build info: the one in dist/ describes dist/, and would make tsc skip files here.
  npx tsc -p tsconfig.build.json --outDir "$build_dir" --tsBuildInfoFile "$build_dir/.tsbuildinfo"
  export WHARF_BENCH_CLI="$build_dir/main/wharf.js"
else
  unset WHARF_BENCH_CLI
fi

free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

# A throw-away PostgreSQL cluster on a free port for the gc and scaleout suites (as scripts/test.sh starts
# one), started once and removed on exit. fsync is off, as in the tests: the benchmarks measure the
# database's work, not the disk's. A suite given an admin URL of its own (BENCH_GC_PG_URL,
# BENCH_SCALEOUT_PG_URL) keeps it.
start_pg() {
  if [ -n "$pg_dir" ]; then return; fi
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  pg_dir=$(mktemp -d /tmp/wharf-bench-pg.XXXXXX)
  local port
  port=$(free_port)
  if [ "$(id -u)" = 0 ]; then chown postgres: "$pg_dir"; as_pg=(runuser -u postgres --); fi
  echo "== starting PostgreSQL $(basename "$(dirname "$pg_bin")") on 127.0.0.1:$port"
  "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 --locale=en_US.UTF-8 >/dev/null 2>&1 ||
    "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 >/dev/null
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w -o "-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  local url="postgres://postgres@127.0.0.1:$port/postgres"
  export BENCH_GC_PG_URL="${BENCH_GC_PG_URL:-$url}" BENCH_SCALEOUT_PG_URL="${BENCH_SCALEOUT_PG_URL:-$url}" BENCH_REPLICATION_PG_URL="${BENCH_REPLICATION_PG_URL:-$url}"
}

# A throw-away Ceph RADOS Gateway for the scaleout suite (scripts/s3/, as scripts/test.sh starts one; about
# a minute the first time, which installs its Debian packages), stopped on exit. Its OSD keeps objects in a
# sparse file (bluestore) rather than in memory.
start_s3() {
  if [ -n "$s3_dir" ]; then return; fi
  s3_dir=$(mktemp -d /tmp/wharf-bench-s3.XXXXXX)
  echo "== starting RADOS Gateway (S3) in $s3_dir"
  local s3_env
  s3_env=$(S3_PORT=$(free_port) S3_MON_PORT=$(free_port) S3_OSD_BACKEND=bluestore bash scripts/s3/start-s3.sh "$s3_dir" 2>"$s3_dir.log") || {
    echo "RADOS Gateway did not start; its log:" >&2
    tail -n 30 "$s3_dir.log" >&2
    return 1
  }
  eval "$s3_env"
  export BENCH_SCALEOUT_S3_ENDPOINT="$S3_ENDPOINT" BENCH_SCALEOUT_S3_BUCKET="$S3_BUCKET" BENCH_SCALEOUT_S3_REGION="$S3_REGION" \
    BENCH_SCALEOUT_S3_ACCESS_KEY_ID="$S3_ACCESS_KEY_ID" BENCH_SCALEOUT_S3_SECRET_ACCESS_KEY="$S3_SECRET_ACCESS_KEY" \
    BENCH_SCALEOUT_S3_PID_FILE="$s3_dir/pids" AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
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
if runs scaleout; then
  if ((own_pg)); then start_pg; fi
  if ((own_s3)) && ! start_s3; then
    failed+=(scaleout)
  else
    suite_run scaleout 5 node --import tsx bench/scaleout-bench.ts
  fi
fi
if runs memory; then suite_run memory 3 node --import tsx bench/memory-bench.ts; fi
if runs replication; then
  if ((own_pg)); then start_pg; fi
  if ((own_s3)) && ! start_s3; then
    failed+=(replication)
  else
    suite_run replication 5 node --import tsx bench/replication-bench.ts
  fi
fi
if ((${#failed[@]})); then
  echo "== failed: ${failed[*]}" >&2
  exit 1
fi
