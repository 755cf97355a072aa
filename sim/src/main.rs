//! The `shipsim` command: see `shipsim --help` and the README.

fn main() -> std::process::ExitCode {
    shipsim::cli::main()
}
