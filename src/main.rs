//! The `r1` command.

/// Training allocates and frees large tensors at every operation; mimalloc
/// reuses that memory instead of returning it to the kernel.
#[global_allocator]
static ALLOCATOR: r1_runtime::allocator::MiMalloc = r1_runtime::allocator::MiMalloc;

fn main() -> std::process::ExitCode {
    r1_runtime::allocator::keep_freed_memory();
    r1::cli::main()
}
