#!/usr/bin/env bash
# Publishes the contract's SDK packages that `make dist VERSION=X.Y.Z` built
# into dist/: the npm package to the npm registry the job configures
# (NPM_CONFIG_REGISTRY, NODE_AUTH_TOKEN) and the wheel to the Python index
# it configures (TWINE_REPOSITORY_URL, TWINE_USERNAME, TWINE_PASSWORD).
# A pre-release version (X.Y.Z-rc.N, or the development version) goes out
# under the npm dist-tag "next", never "latest".
#
#   scripts/publish-api.sh [--dry-run] [DIST]
#
# --dry-run contacts nothing: `npm publish --dry-run --offline` packs and
# reports what would be published, `twine check --strict` rejects what an
# index would. CI runs it on every pull request (test/e2e/sdk and the
# api-dist workflow), so the release's publish step is exercised before a
# tag needs it.
set -euo pipefail
dry_run=false
if [ "${1:-}" = --dry-run ]; then dry_run=true; shift; fi
dist=${1:-dist}
python=/usr/bin/python3 # Debian's, with twine (.ci/apt-packages)

shopt -s nullglob
tgz=("$dist"/npm/*.tgz)
wheels=("$dist"/python/*.whl)
if [ ${#tgz[@]} -ne 1 ] || [ ${#wheels[@]} -ne 1 ]; then
  echo "publish-api: want one npm tarball and one wheel in $dist (run make dist), found ${tgz[*]:-no tarball} ${wheels[*]:-no wheel}" >&2
  exit 1
fi
version=$(tar -xOzf "${tgz[0]}" package/package.json | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).version))')
tag=latest
case $version in *-*) tag=next ;; esac
echo "publish-api: @acme/greeter-api@$version (npm dist-tag $tag), $(basename "${wheels[0]}")$($dry_run && echo ', dry run')"

if $dry_run; then
  npm publish --dry-run --offline --tag "$tag" "${tgz[0]}"
  "$python" -m twine check --strict "${wheels[0]}"
else
  npm publish --tag "$tag" "${tgz[0]}"
  "$python" -m twine upload --non-interactive "${wheels[0]}"
fi
