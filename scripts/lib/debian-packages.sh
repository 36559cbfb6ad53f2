# Sourced by scripts/test.sh and scripts/bench.sh. `ensure_debian_packages PKG...` installs the Debian
# packages that are missing (apt-get, when root; otherwise it names them and fails), then stops the
# system docker-registry and haproxy services the packages may have started (the scripts start their
# own instances).
ensure_debian_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ]; then
      echo "== installing Debian packages: ${missing[*]}"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
      return 1
    fi
  fi
  local svc
  for svc in docker-registry haproxy; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then systemctl stop "$svc" || true; fi
  done
}
