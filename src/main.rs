//! The `r1` command.

fn main() -> std::process::ExitCode {
    r1::cli::main()
}
