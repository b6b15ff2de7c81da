//! Command-line arguments. The doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Declarative bulk email: every recipient gets the message exactly once, in their
/// language, at the declared rate, each in an envelope of their own.
///
/// Campaigns are YAML manifests (`apiVersion: herald/v1`) kept in git. herald checks
/// them before anything is sent and refuses any campaign that could put two recipients
/// in one envelope.
#[derive(Debug, Parser)]
#[command(name = "herald", version, max_term_width = 100)]
#[command(after_help = "\
Examples:
  herald validate                      check ./campaigns
  herald validate campaigns/launch.yaml -o json
  herald plan                          counts, locales and duration for ./campaigns
  herald apply                         send what is due; safe to run again at any time
  herald watch                         apply, then again on every change, until Ctrl-C
  herald status                        who got what, from the state store
  herald status launch --recipients uncertain
  herald preview --campaign launch --out /tmp/preview && open /tmp/preview/index.html
  herald schema > schemas/herald-v1.schema.json

Exit codes: 0 success, 1 a run failed part-way, 2 input refused (nothing was sent).")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// The state store: who was sent what, and when (a sled database folder)
    #[arg(
        long,
        global = true,
        env = "HERALD_STATE",
        default_value = ".herald",
        value_name = "DIR"
    )]
    pub state: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests, their templates, catalogs and audiences; sends nothing
    ///
    /// Every problem in every file is reported, each as `file:line:column: key: message`.
    /// Then every recipient's message is rendered, as in plan, so that a broken template,
    /// catalog or audience row is caught too. Exits 2 when anything is refused, 0 when all
    /// is well.
    Validate {
        /// A manifest file, or a folder whose `*.yaml`/`*.yml` files are manifests
        /// (subfolders are not searched: they hold templates and catalogs)
        #[arg(default_value = "campaigns")]
        path: PathBuf,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Show what apply would do now: counts, locales, provider calls, duration
    ///
    /// Renders every recipient's message first (in their locale, through every fallback),
    /// so a broken template, catalog or audience row is refused here, with exit code 2,
    /// before anything could be sent. The duration is at the declared rate.
    Plan {
        #[arg(default_value = "campaigns")]
        path: PathBuf,
        /// Plan only this campaign
        #[arg(long, value_name = "NAME")]
        campaign: Option<String>,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Send what is due now, record every outcome, and exit; safe to run again at any time
    ///
    /// Plans first (every recipient rendered, changed content refused), then sends the
    /// current stage's recipients who have no outcome yet, in batches of batch.size at the
    /// declared rate. Intent is recorded before each call and the outcome after, so after a
    /// crash the recipients of the call in flight are reported `uncertain`, never re-sent
    /// unless you pass --resend-uncertain. A second apply with nothing new sends nothing.
    /// Ctrl-C or SIGTERM finishes the call in flight, records it and exits.
    ///
    /// Exits 0 when everything due was sent (or the campaign is paused), 1 when something
    /// failed, is uncertain, or the campaign halted, 2 when refused before sending.
    Apply {
        #[arg(default_value = "campaigns")]
        path: PathBuf,
        /// Apply only this campaign
        #[arg(long, value_name = "NAME")]
        campaign: Option<String>,
        /// Send again to recipients whose earlier delivery is uncertain (they may get it twice)
        #[arg(long)]
        resend_uncertain: bool,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Apply, then re-apply on every change under PATH until Ctrl-C
    ///
    /// Follows the manifests, templates, catalogs and audiences under PATH (editors that
    /// save by renaming are fine). A campaign whose files change is re-planned and
    /// reconciled; `paused: true` stops it within a second (the call in flight completes),
    /// an invalid edit halts only that campaign until it is fixed, a removed manifest stops
    /// its campaign (its history stays in the state store). Every --interval, each campaign
    /// is reconciled again anyway, which picks up audiences kept outside PATH.
    /// Ctrl-C or SIGTERM finishes the calls in flight, records them and exits 0.
    Watch {
        #[arg(default_value = "campaigns")]
        path: PathBuf,
        /// Watch only this campaign
        #[arg(long, value_name = "NAME")]
        campaign: Option<String>,
        /// How often every campaign is reconciled even without a change
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
    },
    /// Per-campaign progress from the state store: sent, failed, uncertain, stage, halts
    ///
    /// Reads only the state store (--state), not the manifests. With --recipients, lists
    /// who is failed or uncertain, with the reason and the number of attempts.
    Status {
        /// Show only this campaign
        name: Option<String>,
        /// List the recipients in this state
        #[arg(long, value_enum, value_name = "STATE")]
        recipients: Option<Listed>,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Render one sample message per locale for review: .eml, .html and an index.html
    ///
    /// Open DIR/index.html to see subject, sender, recipient and body of every language at
    /// a glance. Every recipient is rendered, as in plan; only the samples are written.
    Preview {
        #[arg(default_value = "campaigns")]
        path: PathBuf,
        #[arg(long, value_name = "NAME")]
        campaign: String,
        /// Folder to write the samples to (created if missing)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Print the JSON Schema of the manifest format
    ///
    /// Point your editor at it (the yaml-language-server reads a
    /// `# yaml-language-server: $schema=...` comment) to validate manifests as you type.
    Schema,
}

/// How results are printed. JSON goes to stdout; logs and progress always go to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people
    Text,
    /// For programs; the shape is documented in README.md
    Json,
}

/// Recipients `status --recipients` can list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Listed {
    Failed,
    Uncertain,
}
