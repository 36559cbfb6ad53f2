#!/usr/bin/env bash
# A stand-in for docker.io/library/node:20-bookworm-slim, for machines that cannot reach Docker Hub
# (the test of deploy/container/Containerfile): Debian bookworm (minbase, from the Debian archive)
# with this machine's Node.js and npm where the official image keeps them (/usr/local), Node's headers
# for native builds (the official image's node-gyp downloads them), and the `node` user (uid 1000).
# Where this machine trusts extra certificate authorities (NODE_EXTRA_CA_CERTS) the bundle goes in
# too, so that npm inside a build reaches the registry as it does here.
#
# Usage (as root, with debootstrap): stand-in-node-base.sh OUT.tar
# Then: podman import --change 'ENV PATH=…' OUT.tar docker.io/library/node:20-bookworm-slim
set -euo pipefail
out=$1
root=$(mktemp -d /tmp/wharf-node-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/dev/null
node=$(command -v node)
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
headers=$(node -p "require('path').resolve(process.execPath, '../../include/node')")
mkdir -p "$root/usr/local/bin" "$root/usr/local/lib/node_modules" "$root/usr/local/include" "$root/usr/local/share"
install -m 755 "$node" "$root/usr/local/bin/node"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
cp -a "$headers" "$root/usr/local/include/node"
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  cp "$NODE_EXTRA_CA_CERTS" "$root/usr/local/share/extra-ca-certificates.crt"
fi
chroot "$root" groupadd --gid 1000 node
chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -cf "$out" .
