use std::process::ExitCode;

// Rendering a million messages is allocation-heavy; mimalloc is ~1.5x faster than the
// system allocator on the plan benchmark (benches/plan.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let exit = herald::cli::run(std::env::args_os());
    ExitCode::from(exit as u8)
}
