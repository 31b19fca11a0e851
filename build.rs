//! Link step of the daemon binary: pack its relative relocations (DT_RELR) on x86_64 when the build machine's
//! glibc loads them (≥ 2.36, e.g. Debian 12), so the linker can use them.
//!
//! With OpenSSL linked statically, the binary has ~31 000 relative relocations: as `.rela.dyn` (24 bytes each,
//! 746 KiB) the loader reads every page of them at start, and they stay resident; as `.relr.dyn` they take 10 KiB.
//! Measured: RSS 7.7 → 6.8 MiB together with the static OpenSSL (docs/PERFORMANCE.md). A binary with DT_RELR needs
//! glibc ≥ 2.36 where it runs, which is why only native x86_64 builds on such a glibc get it: the ARM builds keep
//! their glibc floor of 2.31 (Raspberry Pi OS bullseye), and so does a build on an older system.

use std::process::Command;

/// The glibc of the build machine as (major, minor), from `getconf GNU_LIBC_VERSION` ("glibc 2.36").
fn host_glibc() -> Option<(u32, u32)> {
    let out = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let (major, minor) = text.trim().strip_prefix("glibc ")?.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let native = var("TARGET") == var("HOST");
    let x86_64_gnu =
        var("CARGO_CFG_TARGET_ARCH") == "x86_64" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    if native && x86_64_gnu && host_glibc().is_some_and(|v| v >= (2, 36)) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
