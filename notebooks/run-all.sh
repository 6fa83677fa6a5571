#!/usr/bin/env bash
# Executes every notebook headless (nbclient) against the release CLI; fails on the first error.
# The committed notebooks stay output-free: executed copies go to $NB_OUT (default: a temp dir).
#
#   python3 -m pip install -r notebooks/requirements.txt
#   notebooks/run-all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PY="${PYTHON:-python3}"
if [ -z "${QUORUMLAB:-}" ]; then
    cargo build --release --quiet --bin quorumlab
    export QUORUMLAB="$ROOT/target/release/quorumlab"
fi
NB_OUT="${NB_OUT:-$(mktemp -d)}"
export QUORUMLAB_NB_OUT="$NB_OUT/runs"
mkdir -p "$NB_OUT"
"$PY" - "$NB_OUT" notebooks/*.ipynb <<'PYEOF'
import sys, time, pathlib
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

out = pathlib.Path(sys.argv[1])
failed = []
for path in map(pathlib.Path, sys.argv[2:]):
    nb = nbformat.read(path, as_version=4)
    t = time.time()
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
        status = "ok"
    except CellExecutionError as e:
        status = "FAILED"
        failed.append(path.name)
        print(str(e)[-3000:], file=sys.stderr)
    nbformat.write(nb, out / path.name)
    print(f"{status:6} {path.name} ({time.time() - t:.0f} s) -> {out / path.name}", flush=True)
print(f"{len(sys.argv) - 2 - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
PYEOF
