#!/usr/bin/env bash
# README's test command: installs what is missing, builds, then runs every suite with node's
# test runner (TAP output). Unit tests are pure and fast; integration and cluster tests run
# the real etcd, Icecast, liquidsoap and clients; the package suite builds the .debs and
# installs them into a fresh Debian 13 root. `npm test -- unit` runs one suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npx tsc -p tsconfig.json
npx tsc -p tsconfig.test.json

suites=("$@")
[ "${#suites[@]}" -gt 0 ] || suites=(unit integration cluster package)
files=()
for suite in "${suites[@]}"; do
  while IFS= read -r f; do files+=("$f"); done < <(find "test/$suite" -name '*.test.ts' | sort)
done
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
exec node --import tsx --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
