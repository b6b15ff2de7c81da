#!/usr/bin/env bash
# Builds herald's Debian package into target/debian/ (or $CARGO_TARGET_DIR/debian/):
# the release binary, the manual pages and shell completions it generates, the systemd
# units of deploy/, and docs/operations.md. Needs cargo-deb: `cargo install cargo-deb --locked`.
#
# The package's files carry the date of the last commit (SOURCE_DATE_EPOCH), so that two
# builds of one commit give the same package.
set -euo pipefail
cd "$(dirname "$0")/../.."

SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH
release="${CARGO_TARGET_DIR:-target}/release"

cargo build --release --locked --bin herald
# Generated from the binary's own clap definitions; Cargo.toml's deb assets take them here.
rm -rf "$release/man" "$release/completions"
mkdir -p "$release/man" "$release/completions"
"$release/herald" man --dir "$release/man"
# Compressed as Debian wants them (cargo-deb leaves files under target/ as they are);
# -n keeps names and times out, so the same pages give the same bytes.
gzip -9n "$release"/man/*.1
"$release/herald" completions bash > "$release/completions/herald.bash"
"$release/herald" completions zsh > "$release/completions/_herald"
"$release/herald" completions fish > "$release/completions/herald.fish"
cargo deb --no-build --locked "$@"
