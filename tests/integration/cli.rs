//! The command line as a tool keeps it: `--version` naming its build, shell completions
//! and manual pages generated from the same clap definitions as `--help` (so none can
//! miss a subcommand), and flags where scripts have always put them.

use std::process::Command;

use crate::harness::Test;

const SUBCOMMANDS: [&str; 12] = [
    "validate",
    "plan",
    "diff",
    "apply",
    "watch",
    "status",
    "preview",
    "init",
    "suppressions",
    "schema",
    "completions",
    "man",
];

/// The commit `build.rs` names: this checkout's, or `unknown` without git.
fn checkout_commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned())
    };
    let top = git(&["rev-parse", "--show-toplevel"]).and_then(|t| std::fs::canonicalize(t).ok());
    if top == std::fs::canonicalize(dir).ok() {
        git(&["rev-parse", "--short=12", "HEAD"]).expect("a commit")
    } else {
        "unknown".to_owned()
    }
}

#[test]
fn version_names_the_commit_and_the_build_date() {
    let run = Test::new().args(["--version"]).run().code(0);
    let prefix = format!("herald 0.1.0 (commit {}, built ", checkout_commit());
    let date = run
        .stdout
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("expected `{prefix}YYYY-MM-DD)`, got {:?}", run.stdout));
    let parts: Vec<u32> = date.split('-').map(|p| p.parse().unwrap()).collect();
    assert!(
        date.len() == 10 && parts[0] >= 2025 && (1..=12).contains(&parts[1]),
        "{date}"
    );
    assert!((1..=31).contains(&parts[2]), "{date}");
}

#[test]
fn bash_completion_loads_and_completes_every_subcommand() {
    let run = Test::new().args(["completions", "bash"]).run().code(0);
    for name in SUBCOMMANDS {
        assert!(
            run.stdout.contains(name),
            "{name} missing from\n{}",
            run.stdout
        );
    }
    // What a user's shell does with it: source it, then press TAB after `herald ap` and
    // after `herald watch --li`.
    let script = std::env::temp_dir().join(format!("herald-completion-{}", std::process::id()));
    std::fs::write(&script, &run.stdout).unwrap();
    let shell = Command::new("bash")
        .arg("-c")
        .arg(
            r#"source "$1"
complete_at() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _herald herald "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"; printf '%s\n' "${COMPREPLY[@]}"; }
complete_at herald ap; complete_at herald watch --li"#,
        )
        .arg("bash")
        .arg(&script)
        .output()
        .expect("bash runs");
    std::fs::remove_file(&script).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&shell.stdout),
        "apply\n--listen\n",
        "stderr: {}",
        String::from_utf8_lossy(&shell.stderr)
    );
}

#[test]
fn completions_for_zsh_fish_and_powershell_name_every_subcommand() {
    for (shell, marker) in [
        ("zsh", "#compdef herald"),
        ("fish", "complete -c herald"),
        (
            "powershell",
            "Register-ArgumentCompleter -Native -CommandName 'herald'",
        ),
    ] {
        let run = Test::new().args(["completions", shell]).run().code(0);
        assert!(run.stdout.contains(marker), "{shell}: {}", run.stdout);
        for name in SUBCOMMANDS {
            assert!(run.stdout.contains(name), "{shell}: {name} missing");
        }
    }
}

#[test]
fn completions_for_an_unknown_shell_are_refused() {
    let run = Test::new().args(["completions", "tcsh"]).run().code(2);
    assert!(
        run.stderr.starts_with(
            "error: invalid value 'tcsh' for '<SHELL>'\n  [possible values: bash, elvish, fish, powershell, zsh]"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn man_page_names_every_subcommand_and_the_version() {
    let run = Test::new().args(["man"]).run().code(0);
    assert!(
        run.stdout.contains(".TH herald 1 "),
        "not a roff page:\n{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("herald 0.1.0 (commit {}", checkout_commit()))
    );
    for name in SUBCOMMANDS {
        assert!(
            run.stdout.contains(&format!("herald\\-{name}(1)")),
            "herald-{name}(1) missing from\n{}",
            run.stdout
        );
    }
}

#[test]
fn man_dir_writes_one_page_per_subcommand_with_its_options() {
    let run = Test::new().args(["man", "--dir", "."]).run().code(0);
    assert_eq!(run.stdout, "");
    let mut pages: Vec<String> = std::fs::read_dir(&run.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    let mut expected: Vec<String> = SUBCOMMANDS
        .iter()
        .map(|s| format!("herald-{s}.1"))
        .chain(
            ["add", "export", "list", "remove"]
                .iter()
                .map(|s| format!("herald-suppressions-{s}.1")),
        )
        .chain(["herald.1".to_owned()])
        .collect();
    expected.sort();
    assert_eq!(pages, expected);
    let watch = std::fs::read_to_string(run.dir.join("herald-watch.1")).unwrap();
    assert!(watch.contains("\\-\\-listen"), "{watch}");
    assert!(watch.contains("HERALD_REQUIRE_STATE"), "{watch}");
}

#[test]
fn man_dir_that_does_not_exist_is_an_error() {
    let run = Test::new().args(["man", "--dir", "missing"]).run().code(1);
    assert!(
        run.stderr
            .starts_with("error: cannot write missing/herald-validate.1: "),
        "{}",
        run.stderr
    );
}

fn three() -> Test {
    Test::campaign()
        .file(
            "campaigns/audiences/customers.csv",
            "email,name,locale\nann@example.com,Ann,en\nbob@example.com,Bob,en\ncat@example.com,Cat,en\n",
        )
        .file("campaigns/audiences/unsubscribed.csv", "email\n")
}

/// `herald --state DIR apply` worked before --state moved onto each command; scripts
/// written then must keep working, and find the same store as `apply --state DIR`.
#[test]
fn state_is_taken_before_the_command_as_after_it() {
    let workspace = three().workspace();
    let first = workspace
        .run(["--state", "kept", "apply", "-o", "json"])
        .code(0);
    assert_eq!(first.json()["campaigns"][0]["sent"], 3);
    assert!(workspace.path().join("kept/herald-state.json").is_file());
    assert!(!workspace.path().join("campaigns/.herald").exists());
    workspace
        .run(["apply", "--state", "kept"])
        .code(0)
        .stdout("welcome: nothing to send\n  earlier runs: 3 already sent\n");
    let status = workspace
        .run(["--state", "kept", "status", "-o", "json"])
        .code(0);
    assert_eq!(status.json()["campaigns"][0]["sent"], 3);
    workspace
        .run([
            "--state",
            "kept",
            "suppressions",
            "add",
            "ann@example.com",
            "--reason",
            "asked",
        ])
        .code(0);
    let listed = workspace
        .run(["suppressions", "list", "--state", "kept", "-o", "json"])
        .code(0);
    assert_eq!(
        listed.json()["suppressions"][0]["address"],
        "ann@example.com"
    );
}

/// An explicit flag before the command beats `HERALD_STATE`, as the same flag after it does.
#[test]
fn state_before_the_command_beats_the_environment() {
    let workspace = three().workspace();
    workspace
        .run_env(
            ["--state", "kept", "apply"],
            &[("HERALD_STATE", "from-env")],
        )
        .code(0);
    assert!(workspace.path().join("kept/herald-state.json").is_file());
    assert!(!workspace.path().join("from-env").exists());
}

#[test]
fn state_given_twice_or_where_no_store_is_used_is_refused() {
    let workspace = three().workspace();
    workspace
        .run(["--state", "a", "apply", "--state", "b"])
        .code(2)
        .stderr("error: `--state` is given twice, as `a` and `b`; give it once\n");
    workspace.run(["--state", "a", "validate"]).code(2).stderr(
        "error: `--state` is for the commands that use a state store; `herald validate` does not\n",
    );
    assert!(workspace.outbox("welcome").is_empty(), "nothing was sent");
    // The same folder twice is no contradiction.
    workspace
        .run(["--state", "a", "plan", "--state", "a"])
        .code(0);
}
