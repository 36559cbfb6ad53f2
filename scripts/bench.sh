#!/usr/bin/env bash
# Benchmark: Wharf vs CNCF Distribution (Debian's docker-registry) on this machine, all on loopback.
#   installs the Debian packages it drives (when root and missing) and the npm packages (only when
#   node_modules/ is missing or broken),
#   compiles Wharf into a throw-away directory (dist/ is left alone), then runs
#     bench/registry-bench.ts  Wharf vs Distribution as registries (blob and manifest GETs),
#     bench/proxy-bench.ts     Wharf's proxy organizations vs Distribution as a pull-through cache,
#   each of which prints a table with ratios and PASS/MISS against the targets. See docs/benchmarks.md.
# Exit status: 0 when the runs completed (a MISS is reported, not failed), non-zero when something broke.
# Knobs (environment): BENCH_SUITE (all | registry | proxy; default all),
#   both: BENCH_BLOB_MIB (256), BENCH_REPEATS (5), BENCH_CONCURRENCY (8), BENCH_WRK_SECONDS (10),
#     BENCH_WRK_THREADS (2), BENCH_QUIET_WAIT_MS (3000), WHARF_BENCH_LOG_LEVEL (warn),
#     WHARF_BENCH_FROM_SRC=1 (run Wharf through tsx instead of compiling);
#   registry: BENCH_WRK_CONNECTIONS (16), BENCH_ONLY (blob|manifest), BENCH_JSON (results file);
#   proxy: BENCH_PROXY_WRK_CONNECTIONS (32), BENCH_PROXY_REVALIDATE_S (30), BENCH_PROXY_MISS_MIB (256),
#     BENCH_PROXY_MISS_REPEATS (5), BENCH_PROXY_CONCURRENT_REPEATS (3), BENCH_PROXY_MISS_CLIENTS (8),
#     BENCH_PROXY_ONLY (hit|manifest|miss), BENCH_PROXY_JSON (results file).
set -euo pipefail
cd "$(dirname "$0")/.."

suite=${BENCH_SUITE:-all}
case "$suite" in all | registry | proxy) ;; *) echo "BENCH_SUITE must be all, registry or proxy (got \"$suite\")" >&2; exit 2 ;; esac

source scripts/lib/debian-packages.sh
ensure_debian_packages docker-registry wrk curl

# npm ci only when the dependencies are missing or do not load: `npm ci` first deletes node_modules/,
# which would pull the floor from under anything else running from this checkout.
if ! node -e "require('better-sqlite3'); require.resolve('fastify'); require.resolve('tsx'); require.resolve('typescript')" >/dev/null 2>&1; then
  echo "== npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  sha256sum package-lock.json | cut -d' ' -f1 > node_modules/.lock-hash
fi

# The compiled output must sit inside the repository so that its imports resolve from node_modules/;
# .tmp/ is git-ignored.
build_dir=""
cleanup() { if [ -n "$build_dir" ]; then rm -rf "$build_dir"; fi; }
trap cleanup EXIT
if [ "${WHARF_BENCH_FROM_SRC:-0}" != 1 ]; then
  mkdir -p .tmp
  build_dir=$(mktemp -d "$PWD/.tmp/bench-dist.XXXXXX")
  echo "== compiling Wharf into ${build_dir#"$PWD"/}"
  npx tsc -p tsconfig.build.json --outDir "$build_dir"
  export WHARF_BENCH_CLI="$build_dir/main/cli.js"
else
  unset WHARF_BENCH_CLI
fi

if [ "$suite" != proxy ]; then
  echo "== registry benchmark (about 3 minutes)"
  node --import tsx bench/registry-bench.ts
fi
if [ "$suite" != registry ]; then
  echo "== proxy-cache benchmark (about 7 minutes)"
  node --import tsx bench/proxy-bench.ts
fi
