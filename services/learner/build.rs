//! Links the system's OpenBLAS (the projections' matrix products, see
//! `src/model/blas.rs`), found with pkg-config.
fn main() {
    if let Err(error) = pkg_config::Config::new().probe("openblas") {
        panic!(
            "r1-learner needs the system OpenBLAS and pkg-config \
             (Debian: apt-get install libopenblas-dev pkg-config): {error}"
        );
    }
}
