#!/usr/bin/env bash
# The TypeScript SDK's npm packages (sdk/typescript/node_modules): `npm ci` from the committed
# package-lock.json, which only reaches the npm registry. It brings protoc-gen-es, which
# `scripts/proto.py generate|check` runs through buf, and what `npm test` needs.
# Skipped when node_modules was installed from the same lock file.
set -euo pipefail
cd "$(dirname "$0")/../../sdk/typescript"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing Node.js and npm (Debian packages)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "the TypeScript SDK needs Node.js 20 or newer and npm" >&2
    exit 1
  fi
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "the TypeScript SDK needs Node.js 20 or newer, not $(node --version)" >&2
  exit 1
fi

stamp=node_modules/.voxbatch-installed
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x node_modules/.bin/protoc-gen-es ]; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
