//! The embedded rumqttd broker. STUB.
