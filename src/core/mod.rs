//! The pure core (no clock, no I/O). For now only the DLI engine; the `core` helper's sans-I/O `Core` joins it.

pub mod dli;
