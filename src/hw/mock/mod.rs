//! Simulated hardware. STUB.
