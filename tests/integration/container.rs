//! The `Containerfile`, read as a builder would: no container engine or base-image
//! registry can be reached here or in CI, so the image is built by whoever deploys it.
//! What can go wrong without building it is checked instead: a build stage that builds
//! this package's binary in release, a runtime stage that copies exactly that binary,
//! runs it as a numeric non-root user, needs no shell (no `RUN`, exec-form entrypoint),
//! carries the OCI labels from build arguments, and starts herald with flags it takes; the
//! Kubernetes files run the version it is tagged with; and the docs say how to build it.

use std::collections::BTreeMap;

use crate::tools::{assert_herald_parses, checkout};

/// One instruction: its keyword, upper-case, and the rest of it, continuations joined.
struct Instruction {
    keyword: String,
    rest: String,
}

struct Stage {
    base: String,
    name: String,
    instructions: Vec<Instruction>,
}

fn stages() -> Vec<Stage> {
    let text = std::fs::read_to_string(checkout().join("Containerfile")).unwrap();
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            current.push_str(continued.trim_end());
            current.push(' ');
        } else {
            current.push_str(line);
            logical.push(std::mem::take(&mut current));
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical.iter().filter(|l| !l.is_empty()) {
        let (keyword, rest) = line.split_once(' ').unwrap_or((line, ""));
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            let words: Vec<&str> = rest.split_whitespace().collect();
            assert!(
                words.len() == 3 && words[1].eq_ignore_ascii_case("AS"),
                "every stage is named: FROM {rest}"
            );
            stages.push(Stage {
                base: words[0].to_owned(),
                name: words[2].to_owned(),
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(Instruction {
                keyword,
                rest: rest.trim().to_owned(),
            });
        } else {
            assert_eq!(keyword, "ARG", "only ARG comes before the first FROM");
        }
    }
    stages
}

fn all<'a>(stage: &'a Stage, keyword: &str) -> Vec<&'a str> {
    stage
        .instructions
        .iter()
        .filter(|i| i.keyword == keyword)
        .map(|i| i.rest.as_str())
        .collect()
}

fn one<'a>(stage: &'a Stage, keyword: &str) -> &'a str {
    let found = all(stage, keyword);
    assert_eq!(found.len(), 1, "one {keyword} in stage {}", stage.name);
    found[0]
}

/// An exec-form (JSON) list, as `ENTRYPOINT` and `CMD` must be to run without a shell.
fn exec_form(instruction: &str) -> Vec<String> {
    serde_json::from_str(instruction)
        .unwrap_or_else(|e| panic!("not exec form (a shell would run it): {instruction}: {e}"))
}

#[test]
fn build_stage_builds_this_package_s_binary_in_release() {
    let stages = stages();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    let build = &stages[0];
    assert!(build.base.contains("/rust:"), "{}", build.base);
    let run = one(build, "RUN");
    assert!(
        run.contains("cargo build --release --locked --bin herald"),
        "{run}"
    );
    // `herald --version` names the commit the REVISION argument gives, and the date of
    // SOURCE_DATE_EPOCH, which build.rs reads.
    assert!(run.contains("HERALD_BUILD_COMMIT=\"${REVISION}\""), "{run}");
    let args = all(build, "ARG");
    assert!(args.contains(&"REVISION=unknown") && args.contains(&"SOURCE_DATE_EPOCH"));
    assert!(
        run.contains("install -D -m 0755 target/release/herald /out/herald"),
        "{run}"
    );
}

#[test]
fn runtime_stage_runs_that_binary_as_a_numeric_user_without_a_shell() {
    let stages = stages();
    let (build, runtime) = (&stages[0], &stages[1]);
    assert!(
        runtime.base.starts_with("gcr.io/distroless/cc-debian12"),
        "{}",
        runtime.base
    );
    // The same Debian release on both sides, so the binary finds the glibc it was built for.
    assert!(build.base.ends_with("-bookworm"), "{}", build.base);
    assert_eq!(
        all(runtime, "RUN"),
        Vec::<&str>::new(),
        "no shell at run time"
    );
    assert_eq!(
        one(runtime, "COPY"),
        format!("--from={} /out/herald /usr/bin/herald", build.name)
    );
    let user = one(runtime, "USER");
    let (uid, gid) = user.split_once(':').expect("USER uid:gid");
    let (uid, gid): (u32, u32) = (uid.parse().unwrap(), gid.parse().unwrap());
    assert!(uid >= 10_000 && gid >= 10_000, "{user}");
    let entrypoint = exec_form(one(runtime, "ENTRYPOINT"));
    assert_eq!(entrypoint, ["/usr/bin/herald"]);
    assert_eq!(
        Some(env!("CARGO_BIN_EXE_herald").rsplit('/').next().unwrap()),
        entrypoint[0].rsplit('/').next(),
        "the entrypoint is the binary this package builds"
    );
    let command = exec_form(one(runtime, "CMD"));
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    assert_herald_parses(&command);
    let listen = command[command.iter().position(|a| *a == "--listen").unwrap() + 1];
    assert_eq!(
        format!(":{}", one(runtime, "EXPOSE")),
        listen[listen.rfind(':').unwrap()..]
    );
}

#[test]
fn runtime_stage_is_labelled_with_source_revision_and_this_version() {
    let stages = stages();
    let runtime = &stages[1];
    let label = one(runtime, "LABEL");
    let mut labels = BTreeMap::new();
    for pair in label.split("\" ") {
        let (key, value) = pair.split_once('=').unwrap();
        labels.insert(key.trim(), value.trim().trim_matches('"'));
    }
    assert_eq!(labels["org.opencontainers.image.source"], "${SOURCE}");
    assert_eq!(labels["org.opencontainers.image.revision"], "${REVISION}");
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    let args = all(runtime, "ARG");
    assert!(args.iter().any(|a| a.starts_with("SOURCE=")), "{args:?}");
    assert!(args.contains(&"REVISION=unknown"), "{args:?}");
}

#[test]
fn kubernetes_runs_the_image_tagged_with_this_version_and_the_docs_say_how_to_build_it() {
    let tag = format!("registry.example.com/herald:{}", env!("CARGO_PKG_VERSION"));
    for file in ["deploy/kubernetes.yaml", "deploy/kubernetes-init.yaml"] {
        let text = std::fs::read_to_string(checkout().join(file)).unwrap();
        assert!(text.contains(&format!("image: {tag}")), "{file} runs {tag}");
    }
    let docs = std::fs::read_to_string(checkout().join("docs/operations.md")).unwrap();
    for needed in [
        "docker build -f Containerfile",
        "--build-arg REVISION=",
        "--build-arg SOURCE_DATE_EPOCH=",
        &format!("-t {tag} ."),
        "podman build -f Containerfile",
    ] {
        assert!(docs.contains(needed), "docs/operations.md lacks {needed:?}");
    }
}
