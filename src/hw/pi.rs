//! Real backends: linux-embedded-hal I2C, rppal GPIO. STUB.
