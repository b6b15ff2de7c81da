//! The checkers the operations tests run, as `tests/servers/install.sh` installs them:
//! promtool (Debian's `prometheus`, unpacked into `.tools/prometheus`), and
//! kubernetes-validate, checkov, the OpenMetrics parser of `prometheus-client` and
//! check-jsonschema (from the Python package index, in the venv `.tools/validators`);
//! shellcheck (Debian's, system-wide); `systemd-analyze` comes with the machine's systemd.
//! Without one, a test is skipped with a note, except under `CI=true`, where it fails
//! (`servers::unavailable`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::servers::unavailable;

pub fn checkout() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `relative` in the checkout, if install.sh put it there.
fn installed(relative: &str, what: &str) -> Option<PathBuf> {
    let path = checkout().join(relative);
    if path.exists() {
        Some(path)
    } else {
        unavailable(what)
    }
}

pub fn promtool() -> Option<PathBuf> {
    installed(".tools/prometheus/usr/bin/promtool", "promtool")
}

/// The venv's python, with `prometheus_client` (its OpenMetrics parser) importable.
pub fn validators_python() -> Option<PathBuf> {
    installed(".tools/validators/bin/python", "the validators venv")
}

pub fn kubernetes_validate() -> Option<PathBuf> {
    installed(
        ".tools/validators/bin/kubernetes-validate",
        "kubernetes-validate",
    )
}

/// check-jsonschema, which carries the GitHub workflow schema of the `SchemaStore`.
pub fn check_jsonschema() -> Option<PathBuf> {
    installed(".tools/validators/bin/check-jsonschema", "check-jsonschema")
}

pub fn shellcheck() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/shellcheck");
    if path.exists() {
        Some(path)
    } else {
        unavailable("shellcheck (Debian's shellcheck)")
    }
}

pub fn checkov() -> Option<PathBuf> {
    installed(".tools/validators/bin/checkov", "checkov")
}

pub fn systemd_analyze() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/systemd-analyze");
    if path.exists() {
        Some(path)
    } else {
        unavailable("systemd-analyze (Debian's systemd)")
    }
}

/// Runs `command` with `input` on its stdin and returns what it did.
pub fn run_with_input(command: &mut Command, input: &str) -> Output {
    use std::io::Write as _;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} starts: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// stdout and stderr of `output`, for assertions and failure messages.
pub fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts that herald parses `args` (a unit's `ExecStart`, a container's entrypoint and
/// arguments) as a command line: the same words with `--help` appended print the help,
/// where an unknown flag, a missing value or a bad address is a usage error.
pub fn assert_herald_parses(args: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .arg("--help")
        .output()
        .expect("herald runs");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "herald does not take {args:?}: {}",
        printed(&output)
    );
}
