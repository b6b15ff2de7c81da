//! The Kubernetes manifests in `deploy/`, judged by the validators operators run on
//! them, `kubernetes-validate --strict` for every version from 1.30 to the newest it
//! knows and checkov with every skipped check explained in the file, and read for what
//! the issue found missing: herald started only after the first sync, resources, a
//! restrictive security context, a `NetworkPolicy` for the listener's port alone, no
//! service-account token, secrets one key at a time, images pinned, flags herald takes.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::tools::{self, assert_herald_parses, checkout, printed};

const FILES: [&str; 4] = [
    "deploy/kubernetes-state.yaml",
    "deploy/kubernetes-init.yaml",
    "deploy/kubernetes.yaml",
    "deploy/kubernetes-shards.yaml",
];

fn paths() -> Vec<PathBuf> {
    FILES.iter().map(|f| checkout().join(f)).collect()
}

/// Every object in `file`.
fn objects(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(checkout().join(file)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            let yaml = <serde_yaml::Value as serde::Deserialize>::deserialize(document)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            serde_json::to_value(yaml).unwrap()
        })
        .collect()
}

fn object(file: &str, kind: &str) -> Value {
    objects(file)
        .into_iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {file}"))
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[test]
fn manifests_pass_kubernetes_validate_strict_from_1_30_to_the_newest_version() {
    let Some(validate) = tools::kubernetes_validate() else {
        return;
    };
    let known = Command::new(&validate).arg("--version").output().unwrap();
    let known = String::from_utf8(known.stdout).unwrap();
    let newest: u32 = known
        .trim()
        .strip_prefix("1.")
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("kubernetes-validate --version: {known}"));
    assert!(newest >= 30, "{known}");
    let resources = FILES.iter().map(|f| objects(f).len()).sum::<usize>();
    for minor in 30..=newest {
        let version = format!("1.{minor}.0");
        let validated = Command::new(&validate)
            .args(["--strict", "--kubernetes-version", &version])
            .args(paths())
            .output()
            .unwrap();
        let report = printed(&validated);
        assert!(
            validated.status.success()
                && report.matches(" passed for resource ").count() == resources,
            "kubernetes-validate --strict for {version}:\n{report}"
        );
    }
}

#[test]
fn manifests_pass_checkov_with_a_reason_for_every_skipped_check() {
    let Some(checkov) = tools::checkov() else {
        return;
    };
    // --skip-download: checkov asks a vendor's API for guidelines otherwise.
    let checked = Command::new(checkov)
        .current_dir(checkout())
        .args([
            "-d",
            "deploy/",
            "--framework",
            "kubernetes",
            "--skip-download",
        ])
        .args(["--compact", "--output", "json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&checked.stdout)
        .unwrap_or_else(|e| panic!("checkov's JSON ({e}): {}", printed(&checked)));
    let summary = &report["summary"];
    let failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {} ({})", c["check_id"], c["check_name"], c["resource"]))
        .collect();
    assert!(
        summary["failed"] == 0 && summary["parsing_errors"] == 0,
        "checkov: {summary}\n{}",
        failed.join("\n")
    );
    assert!(summary["passed"].as_u64().unwrap() > 100, "{summary}");
    for skipped in report["results"]["skipped_checks"].as_array().unwrap() {
        let reason = skipped["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or_default();
        assert!(
            reason.len() >= 40,
            "{} on {} is skipped without a reason: {reason:?}",
            skipped["check_id"],
            skipped["resource"]
        );
    }
}

#[test]
fn herald_starts_after_the_first_sync_and_git_sync_keeps_running_beside_it() {
    let deployment = object("deploy/kubernetes.yaml", "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let init = pod["initContainers"].as_array().unwrap();
    let names: Vec<&str> = init.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["git-sync-first", "git-sync"]);
    // Init containers run in order, each to the end: herald waits for the first clone.
    assert!(strings(&init[0]["args"]).contains(&"--one-time"));
    assert_eq!(init[0]["restartPolicy"], Value::Null);
    // A native sidecar: started before herald, running for as long as the pod does.
    assert_eq!(init[1]["restartPolicy"], "Always");
    assert!(!strings(&init[1]["args"]).contains(&"--one-time"));
    for sync in init {
        let args = strings(&sync["args"]);
        assert!(args.contains(&"--root=/git") && args.contains(&"--link=campaigns"));
    }
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
}

#[test]
fn every_container_is_limited_restricted_and_pinned() {
    let version = env!("CARGO_PKG_VERSION");
    let deployment = object("deploy/kubernetes.yaml", "Deployment");
    let job = object("deploy/kubernetes-init.yaml", "Job");
    let shards = object("deploy/kubernetes-shards.yaml", "Job");
    for workload in [&deployment, &job, &shards] {
        let pod = &workload["spec"]["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        let containers = pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(pod["initContainers"].as_array().into_iter().flatten());
        for container in containers {
            let name = &container["name"];
            let context = &container["securityContext"];
            assert_eq!(context["runAsNonRoot"], true, "{name}");
            assert!(context["runAsUser"].as_u64().unwrap() >= 10_000, "{name}");
            assert_eq!(context["readOnlyRootFilesystem"], true, "{name}");
            assert_eq!(context["allowPrivilegeEscalation"], false, "{name}");
            assert_eq!(context["capabilities"]["drop"], serde_json::json!(["ALL"]));
            assert_eq!(
                context["seccompProfile"]["type"], "RuntimeDefault",
                "{name}"
            );
            for bound in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    assert!(
                        container["resources"][bound][resource].is_string(),
                        "{name}: no {bound}.{resource}"
                    );
                }
            }
            assert_eq!(
                container["envFrom"],
                Value::Null,
                "{name}: the whole Secret"
            );
            let image = container["image"].as_str().unwrap();
            if let Some(herald) = image.strip_prefix("registry.example.com/herald:") {
                assert_eq!(herald, version, "herald's image is pinned by version");
            } else {
                let (_, digest) = image.split_once("@sha256:").expect("pinned by digest");
                assert_eq!(digest.len(), 64, "{image}");
                assert!(!image.contains(":latest"), "{image}");
            }
        }
    }
}

#[test]
fn herald_takes_its_arguments_and_secrets_one_key_at_a_time() {
    let deployment = object("deploy/kubernetes.yaml", "Deployment");
    let herald = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(herald["name"], "herald");
    let args = strings(&herald["args"]);
    assert_eq!(args[..2], ["watch", "/git/campaigns/campaigns"]);
    assert_herald_parses(&args);
    let env = herald["env"].as_array().unwrap();
    let value = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .clone()
    };
    assert_eq!(value("HERALD_REQUIRE_STATE")["value"], "1");
    assert_eq!(value("HERALD_STATE")["value"], "/var/lib/herald/state");
    for secret in ["SENDGRID_API_KEY", "HERALD_UNSUBSCRIBE_KEY"] {
        assert_eq!(
            value(secret)["valueFrom"]["secretKeyRef"],
            serde_json::json!({"name": "herald-secrets", "key": secret})
        );
    }
    let job = object("deploy/kubernetes-init.yaml", "Job");
    let init = strings(&job["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert_eq!(init, ["init", "--state", "/var/lib/herald/state"]);
    assert_herald_parses(&init);
}

#[test]
fn only_the_listener_s_port_is_admitted() {
    let deployment = object("deploy/kubernetes.yaml", "Deployment");
    let herald = &deployment["spec"]["template"]["spec"]["containers"][0];
    let listen = strings(&herald["args"])
        .into_iter()
        .find_map(|a| a.strip_prefix("--listen="))
        .expect("--listen");
    let port: u64 = listen.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(herald["ports"][0]["containerPort"], port);
    let policy = objects("deploy/kubernetes.yaml")
        .into_iter()
        .find(|o| o["kind"] == "NetworkPolicy")
        .expect("a NetworkPolicy for herald");
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        policy["spec"]["ingress"],
        serde_json::json!([{"ports": [{"port": port, "protocol": "TCP"}]}])
    );
    let deny = object("deploy/kubernetes-state.yaml", "NetworkPolicy");
    assert_eq!(deny["spec"]["podSelector"], serde_json::json!({}));
    assert_eq!(deny["spec"]["ingress"], Value::Null);
}

/// Every shard of the Job reads the service's suppression list (the Service of
/// `kubernetes.yaml`), with a token of its own from the Secret.
fn assert_shards_read_the_services_list(env: &[Value]) {
    let var = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let service = object("deploy/kubernetes.yaml", "Service");
    let port = service["spec"]["ports"][0]["port"].as_u64().unwrap();
    assert_eq!(
        var("HERALD_SUPPRESSIONS_FROM")["value"],
        format!(
            "http://{}.{}.svc:{port}",
            service["metadata"]["name"].as_str().unwrap(),
            service["metadata"]["namespace"].as_str().unwrap()
        )
    );
    assert_eq!(
        var("HERALD_SUPPRESSIONS_TOKEN")["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "herald-secrets", "key": "HERALD_SUPPRESSIONS_TOKEN"})
    );
}

/// The Indexed Job of `kubernetes-shards.yaml` agrees with herald: the arguments parse,
/// the shard comes from `JOB_COMPLETION_INDEX`, the index past the last is refused with
/// the exit code the failure policy fails the Job on (and the last is not), each index is
/// retried on its own, and the state is on a claim every pod can write.
#[test]
fn the_shards_job_agrees_with_herald_s_flags_and_exit_codes() {
    const FILE: &str = "deploy/kubernetes-shards.yaml";
    let job = object(FILE, "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let shards = spec["completions"].as_u64().expect("completions");
    assert_eq!(spec["parallelism"].as_u64(), Some(shards));
    assert!(spec["backoffLimitPerIndex"].as_u64().is_some_and(|n| n > 0));
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let herald = &pod["containers"][0];
    assert_eq!(herald["name"], "herald");
    let args = strings(&herald["args"]);
    assert_eq!(args[..2], ["apply", "/git/campaigns/campaigns"]);
    assert!(
        !args.contains(&"--shard"),
        "the index comes from the Job: {args:?}"
    );
    assert_herald_parses(&args);
    let env = herald["env"].as_array().unwrap();
    assert!(env.iter().all(|e| e["name"] != "JOB_COMPLETION_INDEX"));
    assert!(
        env.iter()
            .any(|e| e["name"] == "HERALD_REQUIRE_STATE" && e["value"] == "1")
    );
    let state = env
        .iter()
        .find(|e| e["name"] == "HERALD_STATE")
        .expect("HERALD_STATE")["value"]
        .as_str()
        .unwrap();

    // The state folder is on the claim, and the claim is ReadWriteMany.
    let mounts = herald["volumeMounts"].as_array().unwrap();
    let state_mount = mounts
        .iter()
        .find(|m| state.starts_with(m["mountPath"].as_str().unwrap()) && m["readOnly"] != true)
        .unwrap_or_else(|| panic!("nothing writable mounted above {state}"));
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == state_mount["name"])
        .expect("the state volume");
    let claim = object(FILE, "PersistentVolumeClaim");
    assert_eq!(
        volume["persistentVolumeClaim"]["claimName"],
        claim["metadata"]["name"]
    );
    assert_eq!(strings(&claim["spec"]["accessModes"]), ["ReadWriteMany"]);

    // The failure policy fails the Job on exactly the exits herald documents as not worth
    // retrying: a refusal (measured: an index past the last) and a halt.
    let rules = spec["podFailurePolicy"]["rules"].as_array().unwrap();
    let fail: Vec<&Value> = rules.iter().filter(|r| r["action"] == "FailJob").collect();
    assert_eq!(fail.len(), 1);
    let on = &fail[0]["onExitCodes"];
    assert_eq!(on["containerName"], "herald");
    assert_eq!(on["operator"], "In");
    let codes: Vec<i32> = on["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| i32::try_from(v.as_i64().unwrap()).unwrap())
        .collect();
    let help = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("--help")
        .output()
        .unwrap();
    let help = printed(&help);
    let documented = help
        .lines()
        .skip_while(|l| !l.starts_with("Exit codes:"))
        .collect::<Vec<_>>()
        .join(" ");
    let code_of = |meaning: &str| -> i32 {
        let at = documented
            .find(meaning)
            .unwrap_or_else(|| panic!("{meaning}: {documented}"));
        let before = documented[..at].trim_end();
        before[before.rfind(' ').unwrap() + 1..].parse().unwrap()
    };
    assert_eq!(
        codes,
        [code_of("input refused"), code_of("a campaign halted")]
    );
    let workspace = crate::harness::Test::campaign()
        .edit(
            "campaigns/welcome.yaml",
            "rate: {per_second: 50}",
            &format!("rate: {{per_second: 50}}\n  shards: {shards}"),
        )
        .workspace();
    let past = shards.to_string();
    let refused = workspace.run_env(["apply", "campaigns"], &[("JOB_COMPLETION_INDEX", &past)]);
    assert_eq!(refused.code, codes[0], "{}", refused.stderr);
    // Evictions and drains are not the shard's fault: ignored, not counted.
    assert!(rules.iter().any(|r| r["action"] == "Ignore"
        && r["onPodConditions"]
            == serde_json::json!([{"type": "DisruptionTarget", "status": "True"}])));
    assert_shards_read_the_services_list(env);
    let last = (shards - 1).to_string();
    workspace
        .run_env(["apply", "campaigns"], &[("JOB_COMPLETION_INDEX", &last)])
        .code(0);
}
