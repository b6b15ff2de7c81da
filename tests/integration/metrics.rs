//! `/metrics` of a real `herald watch --listen`, read by the checkers operators use:
//! `promtool check metrics` on the Prometheus text format 0.0.4, and the OpenMetrics
//! parser of the Prometheus Python client on OpenMetrics (promtool reads only 0.0.4:
//! prometheus/prometheus#8932), each under the `Accept` header that asks for it.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::Test;
use crate::http;
use crate::tools::{self, printed, run_with_input};

/// What Prometheus 2 and 3 send by default: OpenMetrics preferred.
const PROMETHEUS: &str =
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.1";

/// Every family and its type, and whether it has help text, as the OpenMetrics parser
/// reads them.
const FAMILIES: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    print(family.name, family.type, "documented" if family.documentation else "undocumented")
"#;

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metrics_pass_promtool_as_text_and_the_openmetrics_parser_as_openmetrics() {
    let (Some(promtool), Some(python)) = (tools::promtool(), tools::validators_python()) else {
        return;
    };
    let workspace = Test::campaign().workspace();
    let port = http::free_port();
    let _watch = workspace.spawn(["watch", "--listen", &format!("127.0.0.1:{port}")]);
    // Once sent, every family has samples: the call counter and histogram included.
    wait_until("ann is sent", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http::get(port, "/readyz").status == 200
            && http::get(port, "/status").json()["campaigns"][0]["sent"] == 1
    });
    let scrape = |accept: &str| http::request("GET", port, "/metrics", &[("Accept", accept)], "");

    for accept in [
        "text/plain;version=0.0.4",
        "application/openmetrics-text;version=1.0.0;q=0.2,text/plain;version=0.0.4;q=0.3",
    ] {
        let text = scrape(accept);
        assert_eq!(text.status, 200);
        assert_eq!(
            text.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8"),
            "{accept}"
        );
        assert!(
            text.body.contains(
                "# HELP herald_provider_calls_total Provider calls by transport and outcome.\n\
                 # TYPE herald_provider_calls_total counter\n\
                 herald_provider_calls_total{transport=\"outbox\",outcome=\"sent\"} 1\n"
            ),
            "{}",
            text.body
        );
        let checked = run_with_input(
            Command::new(&promtool).args(["check", "metrics"]),
            &text.body,
        );
        assert!(
            checked.status.success() && printed(&checked).is_empty(),
            "promtool check metrics under {accept}: {}\n{}",
            printed(&checked),
            text.body
        );
    }

    let openmetrics = scrape(PROMETHEUS);
    assert_eq!(
        openmetrics.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert_eq!(openmetrics.header("vary"), Some("accept"));
    assert!(
        openmetrics.body.ends_with("# EOF\n"),
        "{}",
        openmetrics.body
    );
    let parsed = run_with_input(
        Command::new(&python).args(["-c", FAMILIES]),
        &openmetrics.body,
    );
    assert_eq!(
        printed(&parsed),
        "herald_recipients gauge documented\n\
         herald_provider_calls counter documented\n\
         herald_provider_call_duration_seconds histogram documented\n\
         herald_campaign_paused gauge documented\n\
         herald_campaign_halted gauge documented\n\
         herald_transport_up gauge documented\n",
        "{}",
        openmetrics.body
    );
}
