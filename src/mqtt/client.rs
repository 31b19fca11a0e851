//! The paho-mqtt client task. STUB.
