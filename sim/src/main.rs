//! The `shipsim` command: see `shipsim --help` and the README.

// The sweep allocates and frees many small objects per simulated request (headers, bodies,
// trace events); mimalloc measured faster than the system allocator on it (README,
// Performance). The allocator has no say in any simulated outcome.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    shipsim::cli::main()
}
