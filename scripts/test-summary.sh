#!/usr/bin/env bash
# One line from the output of `cargo test`: passed/failed per test binary,
# failing ones first, and any binary that stopped without a result (crashed).
# Binaries with no tests are counted, not listed.
#   scripts/test-summary.sh target/test-output.log
set -euo pipefail
awk '
  function close_binary() {
    if (name == "") return
    if (!done) { crashed[++ncrashed] = name }
    name = ""
  }
  /^ +Running / {
    close_binary()
    # "Running tests/x.rs (target/debug/deps/x-hash)" or "Running unittests src/lib.rs (.../plumbline_store-hash)"
    path = $NF; gsub(/[()]/, "", path); sub(/.*\//, "", path); sub(/-[0-9a-f]+$/, "", path)
    sub(/^plumbline_/, "", path)
    # Unit tests: the crate, and which target unless the library.
    if ($2 == "unittests" && $3 != "src/lib.rs") { target = $3; sub(/.*\//, "", target); sub(/\.rs$/, "", target); path = path ":" target }
    name = path; done = 0; binaries++
    next
  }
  /^ +Doc-tests / { close_binary(); name = "doc:" $2; sub(/^doc:plumbline_/, "doc:", name); done = 0; binaries++; next }
  /^test result: / {
    passed = $4 + 0; failed = $6 + 0
    total_passed += passed; total_failed += failed; done = 1
    if (failed > 0) bad[++nbad] = sprintf("%s %d passed %d FAILED", name, passed, failed)
    else if (passed > 0) good[++ngood] = sprintf("%s %d", name, passed)
    else empty++
  }
  END {
    close_binary()
    line = sprintf("%d passed, %d failed in %d test binaries", total_passed, total_failed, binaries)
    for (i = 1; i <= ncrashed; i++) line = line " · " crashed[i] " CRASHED (no result)"
    for (i = 1; i <= nbad; i++) line = line " · " bad[i]
    for (i = 1; i <= ngood; i++) line = line " · " good[i]
    if (empty > 0) line = line sprintf(" · %d without tests", empty)
    print line
  }
' "$1"
