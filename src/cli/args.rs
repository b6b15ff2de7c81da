//! Command-line arguments. The doc comments here are the `--help` text.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `herald --version`: the package version, the commit and the date of the build (see
/// build.rs), so that a running herald can be traced to its source.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("HERALD_BUILD_COMMIT"),
    ", built ",
    env!("HERALD_BUILD_DATE"),
    ")"
);

/// Declarative bulk email: every recipient gets the message exactly once, in their
/// language, at the declared rate, each in an envelope of their own.
///
/// Campaigns are YAML manifests (`apiVersion: herald/v1`) kept in git. herald checks
/// them before anything is sent and refuses any campaign that could put two recipients
/// in one envelope.
#[derive(Debug, Parser)]
#[command(name = "herald", version = VERSION, max_term_width = 100)]
#[command(after_help = "\
Examples:
  herald validate                      check ./campaigns
  herald validate campaigns/launch.yaml -o json
  herald plan                          counts, locales and duration for ./campaigns
  herald plan --against https://herald.internal:9400   against the live store, from CI
  herald diff base/campaigns campaigns -o markdown      what a merge changes, for a review
  herald apply                         send what is due; safe to run again at any time
  herald watch --listen 127.0.0.1:9400 apply on every change; health, metrics, status page
  herald status                        who got what, from the state store
  herald status launch --recipients uncertain
  herald preview --out /tmp/preview && open /tmp/preview/index.html
  herald schema > schemas/herald-v1.schema.json
  herald completions bash > /etc/bash_completion.d/herald
  herald man | man -l -

PATH is a manifest file or a folder whose *.yaml/*.yml files are manifests (./campaigns
unless given, or . when there is no campaigns folder here). The state store is `.herald` in PATH's folder unless --state says otherwise.

Exit codes: 0 success, 1 a run failed part-way, 2 input refused (nothing was sent),
3 a campaign halted on its failure rate (apply; not worth retrying).")]
pub struct Cli {
    /// The state store, for the commands that use one: the same as their own --state,
    /// accepted before the command too (`herald --state DIR apply`), as kubectl takes its
    /// flags anywhere
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

impl Command {
    /// The command's `--state`, for the commands that use a state store.
    pub fn state_mut(&mut self) -> Option<&mut StateArg> {
        match self {
            Self::Plan(args) => Some(&mut args.state),
            Self::Apply(args) => Some(&mut args.state),
            Self::Watch(args) => Some(&mut args.state),
            Self::Status(args) => Some(&mut args.state),
            Self::Init(args) => Some(&mut args.state),
            Self::Suppressions(
                SuppressionsCommand::List { state, .. }
                | SuppressionsCommand::Add { state, .. }
                | SuppressionsCommand::Remove { state, .. }
                | SuppressionsCommand::Export { state },
            ) => Some(state),
            Self::Validate(_)
            | Self::Diff(_)
            | Self::Preview(_)
            | Self::Schema
            | Self::Completions(_)
            | Self::Man(_) => None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Validate(ValidateArgs),
    Plan(PlanArgs),
    Diff(DiffArgs),
    Apply(ApplyArgs),
    Watch(WatchArgs),
    Status(StatusArgs),
    Preview(PreviewArgs),
    Init(InitArgs),
    #[command(subcommand)]
    Suppressions(SuppressionsCommand),
    /// Print the JSON Schema of the manifest format
    ///
    /// Point your editor at it (the yaml-language-server reads a
    /// `# yaml-language-server: $schema=...` comment) to validate manifests as you type.
    Schema,
    Completions(CompletionsArgs),
    Man(ManArgs),
}

/// Where the manifests are.
#[derive(Debug, Clone, Args)]
pub struct PathArg {
    /// A manifest file, or a folder whose `*.yaml`/`*.yml` files are manifests (subfolders
    /// are not searched: they hold templates, catalogs and audiences). Default:
    /// `./campaigns`, or `.` when there is no `campaigns` folder here
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
}

impl PathArg {
    /// PATH as given, else `./campaigns`, else `.` (run inside a folder of manifests).
    pub fn path(&self) -> PathBuf {
        self.path.clone().unwrap_or_else(default_path)
    }
}

/// The manifests' folder when no PATH is given: `campaigns` if there is such a folder
/// here, else this folder.
pub fn default_path() -> PathBuf {
    let campaigns = Path::new("campaigns");
    if campaigns.is_dir() {
        campaigns.to_owned()
    } else {
        PathBuf::from(".")
    }
}

/// Where the state store is.
#[derive(Debug, Clone, Args)]
pub struct StateArg {
    /// The state store (a folder): who was sent what, and when. Default: `.herald` in the
    /// folder of PATH, so the same manifests find the same store from any directory
    #[arg(long, env = "HERALD_STATE", value_name = "DIR")]
    pub state: Option<PathBuf>,
}

impl StateArg {
    /// The store for the manifests at `path`: `--state`, else `.herald` in PATH's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if let Some(state) = &self.state {
            return state.clone();
        }
        let folder = if path.is_file() {
            path.parent().unwrap_or(Path::new(""))
        } else {
            path
        };
        folder.join(".herald")
    }
}

#[derive(Debug, Clone, Args)]
pub struct OutputArg {
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Check manifests, their templates, catalogs and audiences; sends nothing
///
/// Every problem in every file is reported, each as `file:line:column: key: message`.
/// Then every recipient's message is rendered, as in plan, so that a broken template,
/// catalog or audience row is caught too. Exits 2 when anything is refused, 0 when all
/// is well.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub path: PathArg,
    #[command(flatten)]
    pub output: OutputArg,
}

/// Show what apply would do now: counts, locales, provider calls, duration
///
/// Renders every recipient's message first (in their locale, through every fallback),
/// so a broken template, catalog or audience row is refused here, with exit code 2,
/// before anything could be sent. Reads the state store when there is one (it never
/// creates one) and says which it read. Content changed after sending began without a
/// new revision is refused here too, so a check on a pull request fails before the merge.
///
/// With --against, the store is the live one, seen from anywhere: the URL of a `herald
/// watch --listen` (which needs the read token in `HERALD_READ_TOKEN`), or a state folder
/// (read directly, or through the herald process that holds it). It gives counts and
/// content digests, not addresses: the content check is exact, and `to send` an estimate.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub path: PathArg,
    /// Plan only this campaign
    #[arg(long, value_name = "NAME")]
    pub campaign: Option<String>,
    /// Plan against this store instead of the local one: `http(s)://HOST:PORT` of a
    /// `herald watch --listen` (sends `HERALD_READ_TOKEN` as a bearer token), or a state folder
    #[arg(
        long,
        value_name = "URL|DIR",
        conflicts_with_all = ["state", "resend_uncertain", "retry_failed"]
    )]
    pub against: Option<String>,
    /// Plan as if it were this instant (RFC 3339 with an offset): who a schedule makes
    /// due then; nothing is sent, the state store is only read
    #[arg(long, value_name = "RFC3339", value_parser = instant)]
    pub at: Option<jiff::Timestamp>,
    #[command(flatten)]
    pub again: AgainArg,
    #[command(flatten)]
    pub state: StateArg,
    #[command(flatten)]
    pub output: ReviewOutputArg,
}

/// Show what merging `NEW_PATH` over `OLD_PATH` would change, as a reviewer reads it
///
/// Per campaign: the manifest fields that change (rate, stage, transport, batch, ...),
/// audience rows added, removed and changed (counted, with a few addresses masked as
/// `j***@example.com`), suppression list entries added and removed, and for each locale
/// the subject, text and HTML of a sample recipient rendered on both sides as apply
/// renders them, as unified diffs. Campaigns added or removed are said so. Warnings come
/// first: content changed without a new revision, a rate that jumps, a stage that moves
/// to `full`. `OLD_PATH` may be missing (everything is new). Renders only the samples: run
/// plan for the check that renders everyone.
///
/// Exits 0 whether or not anything changed; 2 when either side cannot be loaded or rendered.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The manifests before (in CI: the base branch, checked out beside the pull request's)
    #[arg(value_name = "OLD_PATH")]
    pub old: PathBuf,
    /// The manifests after
    #[arg(value_name = "NEW_PATH")]
    pub new: PathBuf,
    /// Compare only this campaign
    #[arg(long, value_name = "NAME")]
    pub campaign: Option<String>,
    #[command(flatten)]
    pub output: ReviewOutputArg,
}

/// The output of the commands a review reads: plan and diff.
#[derive(Debug, Clone, Args)]
pub struct ReviewOutputArg {
    #[arg(short, long, value_enum, default_value_t = ReviewOutput::Text)]
    pub output: ReviewOutput,
    /// With `-o markdown`: the most bytes printed. Past it, sections are cut and a note
    /// says so. The default stays under GitHub's 65,536-character comment limit with room
    /// for a line of your own; give plan and diff a share each when they share a comment
    #[arg(long, value_name = "BYTES", default_value_t = 65_000)]
    pub limit: usize,
}

/// `--at`: an RFC 3339 instant with its offset.
fn instant(value: &str) -> Result<jiff::Timestamp, String> {
    crate::manifest::instant(value).ok_or_else(|| {
        format!("`{value}` is not a date and time with an offset (RFC 3339), e.g. `2026-12-08T09:00:00+01:00`")
    })
}

/// Send what is due now, record every outcome, and exit; safe to run again at any time
///
/// Plans first (every recipient rendered, changed content refused), then sends the
/// current stage's recipients who have no outcome yet, in provider calls at the declared
/// rate. Intent is recorded before each call and the outcome after, so after a crash the
/// recipients of the calls in flight are reported `uncertain`, never re-sent unless you
/// pass --resend-uncertain. A second apply with nothing new sends nothing. Ctrl-C or
/// SIGTERM finishes the calls in flight, records them and exits.
///
/// Exits 0 when everything due was sent (or the campaign is paused), 1 when something
/// failed or is uncertain, 2 when refused before sending, 3 when a campaign halted on its
/// failure rate (fix the cause before running again).
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub path: PathArg,
    /// Apply only this campaign
    #[arg(long, value_name = "NAME")]
    pub campaign: Option<String>,
    /// Send only shard I (0-based) of campaigns with `spec.shards`; a Kubernetes Indexed
    /// Job sets `JOB_COMPLETION_INDEX`. Without either, every shard in turn
    #[arg(long, value_name = "I", env = "JOB_COMPLETION_INDEX")]
    pub shard: Option<u32>,
    /// Also skip the addresses on another store's suppression list, read before anything
    /// is sent: the URL of a `herald watch --listen` (token in `HERALD_SUPPRESSIONS_TOKEN`),
    /// or a state folder. Shards sending from other machines read the service's list this
    /// way; when it cannot be read, nothing is sent
    #[arg(long, value_name = "URL|DIR", env = "HERALD_SUPPRESSIONS_FROM")]
    pub suppressions_from: Option<String>,
    #[command(flatten)]
    pub again: AgainArg,
    #[command(flatten)]
    pub require: RequireStateArg,
    #[command(flatten)]
    pub state: StateArg,
    #[command(flatten)]
    pub output: OutputArg,
}

/// Who is sent again, though the state store has an outcome for them.
#[derive(Debug, Clone, Args)]
pub struct AgainArg {
    /// Send again to recipients whose earlier delivery is uncertain (they may get it twice)
    #[arg(long)]
    pub resend_uncertain: bool,
    /// Send again to recipients recorded as failed; with MATCH, only those whose recorded
    /// reason contains it (`--retry-failed="Connection refused"`). The way back after a
    /// provider's own problem, and for stores where earlier versions of herald charged an
    /// outage to the recipients. Each is sent once more, not twice
    #[arg(long, value_name = "MATCH", num_args = 0..=1, default_missing_value = "", require_equals = true)]
    pub retry_failed: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RequireStateArg {
    /// Refuse to run without an existing state store instead of creating one: where a
    /// store existed before (CI, a deployment), a missing one means it was lost, and a new
    /// one would send to everyone again. Create the first one with `herald init`
    #[arg(
        long,
        env = "HERALD_REQUIRE_STATE",
        value_parser = clap::builder::BoolishValueParser::new(),
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
    )]
    pub require_state: bool,
}

/// Apply, then re-apply on every change under PATH until Ctrl-C
///
/// Follows the manifests, templates, catalogs, audiences and suppression lists under
/// PATH (editors that save by renaming are fine). Only a change to a campaign's inputs
/// reaches it: reads, metadata changes and saves that leave the bytes as they were do
/// not. A changed campaign is re-planned and reconciled; `paused: true` stops it within a
/// second (the calls in flight complete); an invalid edit halts only that campaign until
/// it is fixed; a removed manifest stops its campaign (its history stays in the state
/// store). Every --interval, inputs are checked again, which picks up audiences kept
/// outside PATH. Ctrl-C or SIGTERM finishes the calls in flight, records them and exits 0.
///
/// While it runs, `herald status` from another shell asks it over a socket in the state
/// folder (the store's owner only).
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub path: PathArg,
    /// Watch only this campaign
    #[arg(long, value_name = "NAME")]
    pub campaign: Option<String>,
    /// How often inputs are checked again even without a file event
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
    /// Serve HTTP on this address (e.g. 127.0.0.1:9400): /livez, /readyz, /metrics,
    /// /status, a status page at /, and /summary for `plan --against` (with the token in
    /// `HERALD_READ_TOKEN`). Nothing is served on TCP without it
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub require: RequireStateArg,
    #[command(flatten)]
    pub state: StateArg,
}

/// Per-campaign progress from the state store: sent, failed, uncertain, stage, halts
///
/// Reads only the state store, not the manifests, and finds it as apply does: `--state`,
/// else `.herald` in the folder of --path, else the store of `./campaigns` (or of `.` when
/// there is no `campaigns` folder here). When there is none it says where it looked (and
/// exits 2 if --path was given). While a watch or an apply holds the store, the answer
/// comes from that process. With --recipients, lists who is failed or uncertain, with the
/// reason and the number of attempts.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Show only this campaign
    pub name: Option<String>,
    /// The manifests whose store to read, as apply's PATH (a flag here: the positional
    /// argument is the campaign)
    #[arg(long, value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// List the recipients in this state
    #[arg(long, value_enum, value_name = "STATE")]
    pub recipients: Option<Listed>,
    #[command(flatten)]
    pub state: StateArg,
    #[command(flatten)]
    pub output: OutputArg,
}

/// The store's own suppression list: who unsubscribed, bounced or complained
///
/// Every campaign sharing the state store skips these addresses, counted as suppressed
/// in plan and apply. The unsubscribe endpoint and provider events of `herald watch
/// --listen` add to it; so can you. While a watch or an apply holds the store, these go
/// through that process.
#[derive(Debug, Subcommand)]
pub enum SuppressionsCommand {
    /// List every suppressed address, with reason, campaign and when
    List {
        #[command(flatten)]
        state: StateArg,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Suppress ADDRESS for every campaign of the store
    Add {
        address: String,
        /// Why, e.g. `requested by phone`
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        state: StateArg,
    },
    /// Take ADDRESS off the list: campaigns may mail it again
    Remove {
        address: String,
        #[command(flatten)]
        state: StateArg,
    },
    /// Print the list as CSV (`email,reason,campaign,at`), e.g. to commit to git and use as
    /// a campaign's `audience.suppress` list
    Export {
        #[command(flatten)]
        state: StateArg,
    },
}

/// Render a sample of every locale and every path through the templates: .eml, .html
/// and an index.html
///
/// One sample per catalog and per way through the templates (each `{% if %}` branch a
/// recipient can take), each labelled with the audience rows it stands for. Open
/// DIR/index.html to see subject, sender, recipient and body of every one at a glance.
/// Every recipient is rendered, as in plan; only the samples are written. --row or
/// --recipient writes the message of one recipient instead.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    #[command(flatten)]
    pub path: PathArg,
    /// The campaign to preview; needed only when PATH holds several
    #[arg(long, value_name = "NAME")]
    pub campaign: Option<String>,
    /// Preview the recipient on this line of the audience file, as an editor numbers it
    /// (the header is line 1)
    #[arg(long, value_name = "N", conflicts_with = "recipient")]
    pub row: Option<u64>,
    /// Preview the recipient with this address (any case)
    #[arg(long, value_name = "ADDRESS")]
    pub recipient: Option<String>,
    /// Folder to write the samples to (created if missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Create the state store for PATH, before the first apply under --require-state
///
/// Refuses when a store exists already. Run it once, by hand, where the store is to
/// live; every later run then finds it, or refuses (with --require-state) when it is lost.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub path: PathArg,
    #[command(flatten)]
    pub state: StateArg,
}

/// Print a shell completion script, generated from this help
///
/// Load it from your shell's startup file, e.g. `source <(herald completions bash)` in
/// ~/.bashrc, or install it where your shell looks: `herald completions bash >
/// /etc/bash_completion.d/herald`, `herald completions zsh > "${fpath[1]}/_herald"`,
/// `herald completions fish > ~/.config/fish/completions/herald.fish`. The Debian
/// package installs bash, zsh and fish completions.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Print the manual page (roff), generated from this help
///
/// `herald man | man -l -` reads it. With --dir, writes herald.1 and one page per
/// subcommand (herald-apply.1, ...) into DIR instead, as the Debian package installs them.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write every page into this folder (it must exist) instead of herald.1 to stdout
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// How results are printed. JSON goes to stdout; logs and progress always go to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people
    Text,
    /// For programs; the shape is documented in docs/output.md
    Json,
}

/// How plan and diff print their results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReviewOutput {
    /// For people
    Text,
    /// For programs; the shape is documented in docs/output.md
    Json,
    /// For a pull request comment: warnings first, a summary table, details folded
    Markdown,
}

/// Recipients `status --recipients` can list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Listed {
    Failed,
    Uncertain,
    /// Not sent by the schedule's `not_after`
    Expired,
    /// Sent, with when
    Sent,
}
