#!/bin/sh
# Remove what build.sh made.
cd "$(dirname "$0")" && rm -rf proto packages manifests
