//! The Debian package's pieces, checked without building it (a release build takes
//! longer than the whole suite; `deploy/debian/build.sh` builds the package by hand):
//! every asset in `Cargo.toml` exists or is written by `build.sh`, and the user and
//! folder the package creates, with systemd's own `systemd-sysusers` and
//! `systemd-tmpfiles` run against an empty root, are those the units run with.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::process::Command;

use crate::tools::{self, checkout, printed};

/// `[source, destination, mode]` of every asset in `[package.metadata.deb]`.
fn assets() -> Vec<[String; 3]> {
    let manifest = std::fs::read_to_string(checkout().join("Cargo.toml")).unwrap();
    let section = manifest
        .split_once("[package.metadata.deb]")
        .expect("Cargo.toml has [package.metadata.deb]")
        .1;
    let list = section
        .split_once("assets = [")
        .expect("deb assets")
        .1
        .split_once("\n]")
        .unwrap()
        .0;
    list.lines()
        .map(|l| l.trim().trim_end_matches(','))
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn every_asset_exists_or_is_written_by_build_sh() {
    let build = std::fs::read_to_string(checkout().join("deploy/debian/build.sh")).unwrap();
    let assets = assets();
    assert!(assets.len() >= 8, "{assets:?}");
    for [source, destination, mode] in &assets {
        assert!(mode == "644" || mode == "755", "{source}: mode {mode}");
        if let Some(built) = source.strip_prefix("target/release/") {
            // The binary from cargo; the rest from the binary, by build.sh.
            let written = built == "herald"
                || build.contains(&format!("\"$release/{built}\""))
                || (built == "man/*.1.gz"
                    && build.contains("man --dir \"$release/man\"")
                    && build.contains("gzip -9n \"$release\"/man/*.1"));
            assert!(written, "nothing writes {source}");
        } else {
            assert!(checkout().join(source).is_file(), "{source} is missing");
        }
        assert!(!destination.starts_with('/'), "{destination}");
    }
    let postinst = checkout().join("deploy/debian/postinst");
    assert!(std::fs::metadata(&postinst).unwrap().permissions().mode() & 0o111 != 0);
    let postinst = std::fs::read_to_string(postinst).unwrap();
    for (asset, command) in [
        (
            "usr/lib/sysusers.d/herald.conf",
            "systemd-sysusers herald.conf",
        ),
        (
            "usr/lib/tmpfiles.d/herald.conf",
            "systemd-tmpfiles --create herald.conf",
        ),
    ] {
        assert!(
            assets.iter().any(|a| a[1] == asset),
            "{asset} is not packaged"
        );
        assert!(
            postinst.contains(command),
            "postinst does not run {command}"
        );
    }
    assert!(
        postinst.contains("#DEBHELPER#"),
        "cargo-deb's unit scripts go there"
    );
}

#[test]
fn package_creates_the_user_and_the_0700_folder_the_units_run_with() {
    if tools::systemd_analyze().is_none() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    for file in ["passwd", "group", "shadow", "gshadow"] {
        std::fs::write(etc.join(file), "").unwrap();
    }
    let debian = checkout().join("deploy/debian");
    for (program, args) in [
        ("systemd-sysusers", vec![]),
        ("systemd-tmpfiles", vec!["--create"]),
    ] {
        let file = if program == "systemd-sysusers" {
            "herald.sysusers"
        } else {
            "herald.tmpfiles"
        };
        let ran = Command::new(program)
            .arg(format!("--root={}", root.path().display()))
            .args(args)
            .arg(debian.join(file))
            .output()
            .unwrap();
        assert!(ran.status.success(), "{program}: {}", printed(&ran));
    }
    let passwd = std::fs::read_to_string(etc.join("passwd")).unwrap();
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    assert_eq!(
        [fields[0], fields[5], fields[6]],
        ["herald", "/var/lib/herald", "/usr/sbin/nologin"]
    );
    let state = std::fs::metadata(root.path().join("var/lib/herald")).unwrap();
    assert_eq!(state.permissions().mode() & 0o7777, 0o700);
    assert_eq!(state.uid().to_string(), fields[2], "owned by herald");

    let unit = std::fs::read_to_string(checkout().join("deploy/herald.service")).unwrap();
    for setting in [
        "User=herald",
        "StateDirectory=herald",
        "StateDirectoryMode=0700",
        "Environment=HERALD_STATE=/var/lib/herald/state",
    ] {
        assert!(
            unit.lines().any(|l| l == setting),
            "herald.service: {setting}"
        );
    }
}
