//! `herald watch`: apply, then follow the manifests until Ctrl-C or SIGTERM.

use std::sync::Arc;

use super::args::WatchArgs;
use super::{Exit, apply, report, session, validate};
use crate::live::Live;
use crate::metrics::Metrics;
use crate::reconcile::Stop;
use crate::serve::directory::Directory;
use crate::serve::events::{Certificates, TestTrust};
use crate::serve::summary::READ_TOKEN_ENV;
use crate::serve::suppressions::SUPPRESSIONS_TOKEN_ENV;
use crate::serve::{Service, socket};
use crate::watch::{self, Event, Options};

pub fn run(args: &WatchArgs) -> Exit {
    match watch(args) {
        Ok(exit) | Err(exit) => exit,
    }
}

fn watch(args: &WatchArgs) -> Result<Exit, Exit> {
    let path = &args.path.path();
    let manifests = session::load(path)?;
    let campaigns = session::select(&manifests, args.campaign.as_deref())?;
    let campaigns = unsharded(campaigns, args)?;
    let state = session::state(&args.state, path)?;
    session::not_a_shard(&state)?;
    // Those that began with shards here are theirs too (the controller says so); /readyz
    // does not wait for them.
    let selected: Vec<String> = campaigns
        .iter()
        .filter(|c| matches!(crate::store::claims::sharded_in(&state, &c.name), Ok(None)))
        .map(|c| c.name.clone())
        .collect();
    if watch::state_in_published_folder(path, &state) {
        report::error(format_args!(
            "{} reaches its manifests through a symlink, as git-sync publishes them, and the state store {} is \
             inside them: the next sync would leave it behind; keep the store on storage of its own with \
             --state (and --require-state); nothing was sent",
            path.display(),
            state.display()
        ));
        return Err(Exit::Refused);
    }
    // An address that cannot be had, or a token too short, is refused before anything is sent.
    let listener = args.listen.map(bind).transpose()?;
    let read_token = listener
        .as_ref()
        .map(|_| token(READ_TOKEN_ENV))
        .transpose()?;
    let suppressions_token = listener
        .as_ref()
        .map(|_| token(SUPPRESSIONS_TOKEN_ENV))
        .transpose()?;
    let trust = test_trust()?;
    let sending = session::open_for_sending(&state, args.require.require_state)?;
    let runtime = session::runtime();
    let (handle, stop) = Stop::new();
    let live = Live::default();
    // Known before anything is served, so that /readyz waits for every one of them.
    for name in &selected {
        live.update(name, |campaign| campaign.prepared = false);
    }
    let metrics = Arc::new(Metrics::default());
    // Known before anything is served; watch tells of every later load.
    let directory = Arc::new(Directory::default());
    directory.update(&manifests);
    let service = Service {
        store: sending.store.clone(),
        live: live.clone(),
        metrics: Arc::clone(&metrics),
        directory: Arc::clone(&directory),
        certificates: Arc::new(Certificates::new(trust)),
        read_token: read_token.flatten(),
        suppressions_token: suppressions_token.flatten(),
    };
    let options = Options {
        path: path.to_owned(),
        state,
        only: args.campaign.clone(),
        interval: args.interval,
        store: sending.store,
        recovered: sending.recovered,
        stop: stop.clone(),
        live,
        metrics,
    };
    report::note(format_args!("watching {} (Ctrl-C to stop)", path.display()));
    let result = runtime.block_on(async {
        tokio::spawn(apply::stop_on_signal(handle));
        let _socket = socket::serve(service.store.clone());
        if let Some(listener) = listener {
            let listener =
                tokio::net::TcpListener::from_std(listener).expect("a listener on the runtime");
            let address = listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            report::note(format_args!("serving http://{address}/"));
            let mut stop = stop.clone();
            let shutdown = async move { stop.wait().await };
            tokio::spawn(async move {
                if let Err(error) = crate::serve::http(listener, service, shutdown).await {
                    report::error(format_args!("the HTTP server stopped: {error}"));
                }
            });
        }
        // The feedback endpoints learn of every load of the manifests.
        watch::watch(manifests, options, move |event| {
            if let Event::Loaded(manifests) = event {
                directory.update(manifests);
            } else {
                print(event);
            }
        })
        .await
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(watch::Ended::Stopped) => Ok(Exit::Success),
        Ok(watch::Ended::StoreUnusable) => Ok(Exit::Failed),
        Err(error) => {
            report::error(format_args!("cannot watch {}: {error}", path.display()));
            Ok(Exit::Failed)
        }
    }
}

/// The campaigns watch sends: a sharded one is its shards' (one process each, a store
/// each), refused when named on its own with `--campaign`, else left out (the controller
/// says so), its feedback still taken here.
fn unsharded<'a>(
    campaigns: Vec<&'a crate::manifest::Campaign>,
    args: &WatchArgs,
) -> Result<Vec<&'a crate::manifest::Campaign>, Exit> {
    if let Some(sharded) = campaigns
        .iter()
        .find(|c| c.shards.get() > 1 && args.campaign.is_some())
    {
        report::refused(
            &sharded.name,
            format_args!(
                "it has {}, and watch sends from one process; run `herald apply --shard I` for each \
                 (a Kubernetes Indexed Job, see docs/operations.md)",
                crate::text::Count("shard", u64::from(sharded.shards.get()))
            ),
        );
        return Err(Exit::Refused);
    }
    Ok(campaigns
        .into_iter()
        .filter(|c| c.shards.get() == 1)
        .collect())
}

/// A listener on `address`, for the runtime to take over.
fn bind(address: std::net::SocketAddr) -> Result<std::net::TcpListener, Exit> {
    std::net::TcpListener::bind(address)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|error| {
            report::error(format_args!(
                "cannot listen on {address}: {error}; nothing was sent"
            ));
            Exit::Refused
        })
}

/// The token an endpoint asks for (`GET /summary`: `HERALD_READ_TOKEN`, `GET
/// /suppressions`: `HERALD_SUPPRESSIONS_TOKEN`), when `env` is set; one too short to be
/// kept out of what herald prints is refused.
fn token(env: &str) -> Result<Option<Arc<crate::secret::Secret>>, Exit> {
    let Some(token) = crate::secret::from_env(env) else {
        return Ok(None);
    };
    if token.is_short() {
        report::error(format_args!(
            "{env} is shorter than {} characters, too short to keep out of what herald prints; \
             make it long and random (`openssl rand -hex 32`); nothing was sent",
            crate::secret::SHORTEST
        ));
        return Err(Exit::Refused);
    }
    Ok(Some(Arc::new(token)))
}

/// The test-only SNS trust the environment asks for; refused before anything is sent
/// when it would reach past this machine, and warned about when set.
fn test_trust() -> Result<Option<TestTrust>, Exit> {
    let trust = TestTrust::from_env().map_err(|reason| {
        report::error(format_args!("{reason}; nothing was sent"));
        Exit::Refused
    })?;
    if let Some(trust) = &trust {
        report::warning(format_args!(
            "SNS certificates are also taken from https://{}/ (`{}`): for tests only, never set it in production",
            trust.authority(),
            crate::serve::events::certificates::TEST_HOST_ENV
        ));
    }
    Ok(trust)
}

fn print(event: Event<'_>) {
    match event {
        Event::Loaded(_) => {}
        Event::Reconciled(report) => print!("{}", apply::text(&report)),
        Event::Failed {
            campaign,
            message,
            next,
        } => report::error(format_args!("campaign `{campaign}`: {message}; {next}")),
        Event::Invalid { error, halted } => {
            validate::print_load_error(&error);
            if !halted.is_empty() {
                report::error(format_args!(
                    "halted until fixed: {}; other campaigns keep running",
                    crate::text::List::and_ticked(&halted)
                ));
            }
        }
        Event::Sharded { campaign, shards } => println!(
            "{campaign}: {shards} shards send it (`herald apply --shard I`, see docs/operations.md); \
             watch does not, and takes its unsubscribes and events"
        ),
        Event::Removed { campaign } => println!(
            "{campaign}: manifest removed; sends nothing more (its history stays in the state store)"
        ),
    }
}
