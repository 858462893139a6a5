#!/bin/sh
# The install steps of the container image, in one place: the Dockerfile runs this
# script, and so does tests/test_container.py (into a temporary prefix, then it starts
# the result), so what the image installs is tested where no container can run.
#
# usage: scripts/container-install.sh SOURCE_DIR PREFIX
#   SOURCE_DIR  pyproject.toml, README.md and src/ (what the Dockerfile copies)
#   PREFIX      the virtual environment to create (/opt/tokenledger in the image)
# pip reads its usual PIP_* variables (the image sets PIP_NO_CACHE_DIR=1).
set -eu

if [ "$#" -ne 2 ]; then
  echo "usage: $0 SOURCE_DIR PREFIX" >&2
  exit 2
fi
source_dir=$1
prefix=$2

python3 -m venv "$prefix"
"$prefix/bin/python" -m pip install --quiet --disable-pip-version-check "$source_dir"
# The command must start: a missing module or a broken entry point fails the build here.
"$prefix/bin/tokenledger" --help >/dev/null
echo "TokenLedger installed in $prefix"
