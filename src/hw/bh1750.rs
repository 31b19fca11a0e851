//! Auto-ranging BH1750 over the `bh1750` driver. STUB.
