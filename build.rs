//! Rebuilds the server when the web app's built files change: `rust-embed` reads `web/dist` at
//! compile time in release builds, and a derive macro cannot tell cargo what it read.
fn main() {
    println!("cargo:rerun-if-changed=web/dist");
    println!("cargo:rerun-if-changed=build.rs");
}
