//! `herald init`: create the state store once, so that later runs can require it.

use super::args::InitArgs;
use super::{Exit, report, session};
use crate::store::Store;

pub fn run(args: &InitArgs) -> Exit {
    let state = match session::state(&args.state, &args.path.path()) {
        Ok(state) => state,
        Err(exit) => return exit,
    };
    match Store::init(&state) {
        Ok(_) => {
            println!(
                "created the state store {}; keep it where it is not lost (not a CI cache), and run apply with --require-state",
                state.display()
            );
            Exit::Success
        }
        Err(error) => {
            report::error(error);
            Exit::Refused
        }
    }
}
