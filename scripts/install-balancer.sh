#!/usr/bin/env bash
# The multi-node cluster (`make cluster`, tests/cluster) puts Debian's haproxy in front of the web processes;
# install it when missing (needs root, as in CI). Without it the cluster test says so and skips the balancer only.
set -uo pipefail
if command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "haproxy missing and not root: the cluster runs without its load balancer" >&2
  exit 0
fi
echo "installing haproxy for the multi-node cluster" >&2
export DEBIAN_FRONTEND=noninteractive
# The package's own service would start a default proxy on port 80: keep it stopped, we run our own instance.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
(apt-get install -y -qq haproxy >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq haproxy >/dev/null; }) \
  || echo "could not install haproxy: the cluster runs without its load balancer" >&2
exit 0
