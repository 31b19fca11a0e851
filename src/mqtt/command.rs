//! Parser for `P/light/set` payloads. STUB.
