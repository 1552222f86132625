#!/usr/bin/env bash
# Installs the browser the dashboard's browser test drives: Debian's `chromium` package (Playwright cannot download
# its own build here). A no-op when it is already there. Called by .ci/run before the tests and by the browser test's
# fixture when the browser is missing, so a plain `dotnet test` on a fresh machine works too.
# The test looks for /usr/bin/chromium, or the path in TRADEROOM_CHROMIUM.
set -euo pipefail

browser="${TRADEROOM_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$browser" ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo -n)
else
  echo "install-browser.sh: $browser is missing and installing it needs root (or sudo): apt-get install chromium" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-browser.sh: installing Debian's chromium package (once)" >&2
"${as_root[@]}" apt-get update -qq >&2
"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium >&2

if [ ! -x "$browser" ]; then
  echo "install-browser.sh: apt-get installed chromium, but $browser is still missing" >&2
  exit 1
fi
