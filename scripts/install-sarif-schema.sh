#!/usr/bin/env bash
# The SARIF 2.1.0 JSON schema and a validator for the SARIF tests
# (crates/cli/tests/integration/report.rs), idempotently:
#
# - the schema from the npm package @microsoft/jest-sarif, which ships the
#   OASIS schema as lib/schemas/sarif-2.1.0-rtm.5.json, copied to
#   ${DEFERSCOPE_CACHE:-~/.cache/deferscope}/sarif/sarif-schema-2.1.0.json
#   and checked by its sha256;
# - Python's jsonschema (PyPI), when python3 cannot import it, into
#   ${DEFERSCOPE_CACHE}/pylib (the tests put it on PYTHONPATH).
set -euo pipefail
CACHE=${DEFERSCOPE_CACHE:-$HOME/.cache/deferscope}
DIR=$CACHE/sarif
SCHEMA=$DIR/sarif-schema-2.1.0.json
PKG=@microsoft/jest-sarif@1.0.0-beta.0
SHA=2d99159ae54a3eea97f81781cff48780548657c35949f4b7f25e99a2ba4de4f8

if [ ! -f "$SCHEMA" ] || ! echo "$SHA  $SCHEMA" | sha256sum -c --quiet - 2>/dev/null; then
    mkdir -p "$DIR"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "$PKG" >/dev/null)
    tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/schemas/sarif-2.1.0-rtm.5.json
    echo "$SHA  $tmp/package/lib/schemas/sarif-2.1.0-rtm.5.json" | sha256sum -c --quiet -
    cp "$tmp/package/lib/schemas/sarif-2.1.0-rtm.5.json" "$SCHEMA"
fi
echo "SARIF schema: $SCHEMA"

if ! python3 -c 'import jsonschema' 2>/dev/null; then
    PYTHONPATH=$CACHE/pylib python3 -c 'import jsonschema' 2>/dev/null ||
        python3 -m pip install --quiet --target "$CACHE/pylib" 'jsonschema>=4'
fi
echo "jsonschema: $(PYTHONPATH=$CACHE/pylib python3 -c 'import jsonschema, importlib.metadata as m; print(m.version("jsonschema"))')"
