//! The steps commands share, in one place: load and select the manifests, find and open
//! the state store, start the runtime.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::args::StateArg;
use super::{Exit, report, validate};
use crate::manifest::{Campaign, Manifests};
use crate::store::{IfMissing, Store};
use crate::text::{Count, List};

/// Loads the manifests at `path`, or prints why not.
pub fn load(path: &Path) -> Result<Manifests, Exit> {
    validate::load_or_report(path).ok_or(Exit::Refused)
}

/// The campaigns `--campaign` selects (all without it), or an error naming the known ones.
pub fn select<'a>(manifests: &'a Manifests, only: Option<&str>) -> Result<Vec<&'a Campaign>, Exit> {
    let Some(name) = only else {
        return Ok(manifests.campaigns.iter().collect());
    };
    if let Some(campaign) = manifests.campaigns.iter().find(|c| c.name == name) {
        return Ok(vec![campaign]);
    }
    let known: Vec<&str> = manifests
        .campaigns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    report::error(format_args!(
        "no campaign named `{name}`; defined: {}",
        List::and_ticked(&known)
    ));
    Err(Exit::Refused)
}

/// The state store for the manifests at `path`. When it is the default and does not
/// exist, but `./.herald` (the default of herald before 0.2) does, that store is most
/// likely the one meant: refused, so nobody is sent again from a fresh store.
pub fn state(arg: &StateArg, path: &Path) -> Result<PathBuf, Exit> {
    let state = arg.resolve(path);
    let old = Path::new(".herald");
    // Were they the same folder, both would exist or neither.
    let moved = arg.state.is_none() && !state.exists() && old.is_dir();
    if moved {
        report::error(format_args!(
            "there is no state store at {}, but there is one at ./.herald, where herald kept it before; \
             move it (`mv .herald {}`) or pass `--state .herald`, so that nobody is sent again from a new store",
            state.display(),
            state.display()
        ));
        return Err(Exit::Refused);
    }
    Ok(state)
}

/// Refuses, for the commands that send (apply, watch), a state folder that is one shard's
/// store: sending from it as a whole would reach everyone its shard never had.
pub fn not_a_shard(state: &Path) -> Result<(), Exit> {
    let name = state
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let Some(shard) = crate::store::shards::parse(name) else {
        return Ok(());
    };
    let parent = state
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    report::error(format_args!(
        "`{}` is the store of shard {} of {}: give the state folder that holds it (`--state {}`), \
         in which herald finds each shard's store; nothing was sent",
        state.display(),
        shard.index,
        shard.count,
        parent.display()
    ));
    Err(Exit::Refused)
}

/// The state store of a command whose PATH is optional (status): `--state`, else the
/// store of `path`, else of `./campaigns`, or of `.` when there is no `campaigns` folder.
pub fn state_of(arg: &StateArg, path: Option<&Path>) -> PathBuf {
    match path {
        Some(path) => arg.resolve(path),
        None => arg.resolve(&super::args::default_path()),
    }
}

/// An open store for sending, with the calls a killed run left in flight now uncertain.
pub struct Sending {
    pub store: Store,
    pub recovered: BTreeMap<String, u64>,
}

/// Opens the state store for sending (apply, watch), creating it unless `require`, and
/// turns a killed run's intents into `uncertain`, warning about them.
pub fn open_for_sending(state: &Path, require: bool) -> Result<Sending, Exit> {
    let if_missing = if require {
        IfMissing::Refuse
    } else {
        IfMissing::Create
    };
    let store = Store::open(state, if_missing).map_err(|error| {
        report::error(format_args!("{error}; nothing was sent"));
        Exit::Refused
    })?;
    let recovered = store.recover().map_err(|error| {
        report::error(format_args!("{error}; nothing was sent"));
        Exit::Failed
    })?;
    for (name, count) in &recovered {
        report::warning(format_args!(
            "campaign `{name}`: {} {} in flight when an earlier run stopped; \
             they are now uncertain and are not re-sent (see `herald status {name} --recipients uncertain`)",
            Count("recipient", *count),
            crate::text::was(*count)
        ));
    }
    Ok(Sending { store, recovered })
}

/// `--require-state` for shards: the state folder must hold the store `herald init` made,
/// inside which each shard creates its own.
pub fn require_initialized(state: &Path) -> Result<(), Exit> {
    match crate::store::shards::initialized(state) {
        Ok(true) => Ok(()),
        Ok(false) => {
            report::error(format_args!(
                "{}: no state store, and --require-state is set: create it with `herald init --state {}` \
                 (each shard keeps its own store inside it); nothing was sent",
                state.display(),
                state.display()
            ));
            Err(Exit::Refused)
        }
        Err(error) => {
            report::error(format_args!("{error}; nothing was sent"));
            Err(Exit::Refused)
        }
    }
}

/// Opens the state store if there is one, for reading (plan, status).
pub fn open_existing(state: &Path) -> Result<Option<Store>, Exit> {
    Store::open_existing(state).map_err(|error| {
        report::error(error);
        Exit::Refused
    })
}

/// A multi-threaded runtime: preparing hands its worker over to blocking work.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}
