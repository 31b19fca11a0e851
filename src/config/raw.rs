//! Raw serde structs. STUB.
