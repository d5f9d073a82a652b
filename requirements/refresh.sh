#!/usr/bin/env bash
# Refresh the locks from pyproject.toml's ranges: `bash requirements/refresh.sh` (needs uv).
#
# One resolution of `.[dev,gguf]` with torch pinned by torch.in, every package at an exact
# version with its hashes, split in two: torch-cpu.txt holds torch 2.13.0's CPU build and
# lock.txt everything else, so that a GPU machine can install its own CUDA build of the same
# torch beside the same lock.txt. torch's CPU build is found with --find-links (these
# machines keep it in /opt/wheels; set TORCH_WHEELS to a folder holding it elsewhere), so no
# CUDA package enters the lock. Made for what CI runs: Python 3.11 on x86-64 Linux.
set -euo pipefail
cd "$(dirname "$0")/.."
full=$(mktemp)
trap 'rm -f "$full"' EXIT
# uv keeps the versions already in its output file unless told to upgrade: seeding it with the
# current locks means a new dependency adds packages without moving existing pins. To move
# them all to the newest allowed versions, run with UPGRADE=1.
if [ "${UPGRADE:-0}" != 1 ]; then
    cat requirements/torch-cpu.txt requirements/lock.txt > "$full"
fi
"${UV:-uv}" pip compile pyproject.toml --extra dev --extra gguf -c requirements/torch.in \
    --generate-hashes --find-links "${TORCH_WHEELS:-/opt/wheels}" --python-version 3.11 \
    --python-platform x86_64-manylinux_2_28 --no-header --quiet -o "$full"
# A package's entry is its `name==version \` line and the indented lines under it.
awk -v torch=requirements/torch-cpu.txt -v rest=requirements/lock.txt '
    /^--find-links/ { next }
    /^[^ #]/ { out = ($0 ~ /^torch==/) ? torch : rest }
    out { print > out }' "$full"
grep -q '^torch==2.13.0' requirements/torch-cpu.txt
echo "refreshed requirements/lock.txt and requirements/torch-cpu.txt: run the tests, then commit both"
