use std::process::ExitCode;

fn main() -> ExitCode {
    let exit = herald::cli::run(std::env::args_os());
    ExitCode::from(exit as u8)
}
