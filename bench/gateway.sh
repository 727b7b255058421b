#!/usr/bin/env bash
# Gateway benchmark: installs Debian's nginx and wrk when missing, then runs bench/gateway.py
# (upstream direct vs nginx proxy_pass vs our gateway vs the original Express gateway when node
# is present and EXPRESS_GATEWAY_DIR names its backend/api-gateway folder, packages installed;
# RSS while uploads stream through ours).
# Usage: [EXPRESS_GATEWAY_DIR=<dir>] [WEB_CONCURRENCY=N] bash bench/gateway.sh [--seconds 8]
#        [--connections 50] [--rounds 3] [--workers N] [--express-dir <dir>] [--no-uploads]
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# nginx from Debian starts a system instance on port 80 on install; the bench runs its own.
exec "${PYTHON:-python3}" bench/gateway.py "$@"
