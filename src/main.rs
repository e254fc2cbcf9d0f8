//! The `r1` command.

/// Training allocates and frees large tensors at every operation; mimalloc
/// reuses that memory instead of returning it to the kernel.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    r1::cli::main()
}
