#!/usr/bin/env bash
# Makes sure `promtool` is on PATH, so tests/tests/metrics_lint.rs can check the server's
# /metrics text with `promtool check metrics`. Debian ships promtool in the `prometheus`
# package (the server comes with it; it is not started here).
#
# Run it (`.ci/promtool.sh`) or source it (`. .ci/promtool.sh`) before `cargo test`, then
# `export WADDLEBOT_PROMTOOL=required` so the lint test fails instead of skipping when promtool
# is missing. Needs root (apt) only when promtool is not installed yet.

ensure_promtool() {
    if ! command -v promtool >/dev/null 2>&1; then
        printf '\n==> %s\n' "installing promtool (Debian package prometheus)"
        if [ -z "${APT_UPDATED:-}" ]; then
            apt-get update -qq || return 1
            APT_UPDATED=1
        fi
        # Without recommends: promtool needs none of them, and prometheus recommends the node
        # exporter and other daemons.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
            || return 1
    fi
    if ! command -v promtool >/dev/null 2>&1; then
        echo "promtool.sh: the prometheus package is installed but promtool is not on PATH" >&2
        return 1
    fi
    promtool --version 2>&1 | head -n1
}

# Run as a script it fails on any error; sourced, it leaves the caller's shell options alone
# (and a caller with `set -e` stops on its failure).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
fi
ensure_promtool
