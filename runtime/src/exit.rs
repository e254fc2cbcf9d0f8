//! Exit codes of the r1 binaries (sysexits.h).

/// Invalid configuration or usage.
pub const CONFIG: i32 = 64;

/// Prints one line naming what is wrong with the configuration and exits 64.
pub fn config_error(error: impl std::fmt::Display) -> ! {
    eprintln!("error: {error}");
    std::process::exit(CONFIG)
}
