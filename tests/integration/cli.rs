//! The command line keeps its word: flags where scripts have always put them.

use crate::harness::Test;

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
