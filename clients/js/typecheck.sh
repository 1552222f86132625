#!/usr/bin/env bash
# Type-checks the package as its users get it: packs clients/js (npm pack), installs the tarball into a scratch
# project and compiles examples/*.ts there with tsc (--strict, examples/tsconfig.json). examples/typed-usage.ts must
# compile; each mistake in examples/type-errors.ts must be a type error.
# TypeScript is installed through npm once, pinned, into a cache (TRADEROOM_TOOLS_CACHE, default ~/.cache/traderoom),
# so later runs do not install it again.
#   bash clients/js/typecheck.sh           install TypeScript when missing, then check
#   bash clients/js/typecheck.sh install   only install TypeScript (.ci/run does this before the tests)
# Run by tests/TradeRoom.Tests/Integration/JsTypesTests.cs, so `dotnet test` covers it.
set -euo pipefail

TYPESCRIPT_VERSION=5.9.3
here="$(cd "$(dirname "$0")" && pwd)"
cache="${TRADEROOM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/traderoom}/typescript-$TYPESCRIPT_VERSION"
tsc="$cache/node_modules/typescript/bin/tsc"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "typecheck.sh: needs node and npm on the PATH (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi

if [ ! -f "$tsc" ]; then
  echo "typecheck.sh: installing typescript@$TYPESCRIPT_VERSION into $cache (once)" >&2
  mkdir -p "$(dirname "$cache")"
  # Into a folder of its own, moved into place only when complete: an interrupted install is not taken for one.
  partial="$(mktemp -d "$cache.partial.XXXXXX")"
  npm install --prefix "$partial" --no-save --no-audit --no-fund --loglevel=error "typescript@$TYPESCRIPT_VERSION" >&2
  rm -rf "$cache"
  mv "$partial" "$cache"
fi
if [ "${1:-}" = "install" ]; then
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tarball="$(cd "$here" && npm pack --silent --pack-destination "$work" | tail -n 1)"
echo "typecheck.sh: packed $tarball: $(tar -tzf "$work/$tarball" | sort | tr '\n' ' ')"

app="$work/app"
mkdir "$app"
cp "$here"/examples/*.ts "$here/examples/tsconfig.json" "$app/"
printf '{ "name": "typed-usage", "private": true, "type": "module" }\n' > "$app/package.json"
# The package has no dependencies: installing its tarball needs no registry.
(cd "$app" && npm install --offline --no-audit --no-fund --loglevel=error "$work/$tarball" >&2)

echo "typecheck.sh: TypeScript $(node "$tsc" --version | awk '{print $2}'), tsc -p examples/tsconfig.json (strict) against the installed package"
node "$tsc" -p "$app/tsconfig.json"
echo "typecheck.sh: ok"
