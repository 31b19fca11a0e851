//! Hardware domain traits. Nothing above this layer names a concrete Pi or Linux type.

pub mod bh1750;
pub mod mock;
pub mod pi;

/// One completed light measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measurement {
    /// A valid reading in lux, with the raw 16-bit count it came from (used to detect a stuck sensor).
    Lux { lux: f64, raw: u16 },
    /// Above the sensor's range even at its least sensitive setting; no number is trustworthy.
    Saturated,
}

/// Why a measurement failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SensorError {
    /// The sensor did not acknowledge its address: missing, unplugged, wrong address or no power.
    #[error("no answer from the light sensor at I2C address {address:#04x} (check wiring, power and sensor.address)")]
    NoAck { address: u8 },
    /// Any other bus or device failure.
    #[error("light sensor I2C failure: {0}")]
    Bus(String),
}

/// A lux sensor. Blocking: call it from a blocking thread, never from an async worker.
pub trait LuxSensor: Send {
    /// Take one measurement, choosing range and waiting the conversion time as needed.
    fn measure(&mut self) -> Result<Measurement, SensorError>;
}

/// Why the relay could not be driven or read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RelayError {
    #[error("relay GPIO failure: {0}")]
    Gpio(String),
}

/// The grow-light relay on an output line, with read-back of the actual line level.
/// `on` is the logical lamp state; backends apply `active_low` themselves.
pub trait Relay: Send {
    /// Drive the relay (true = lamp on).
    fn set(&mut self, on: bool) -> Result<(), RelayError>;
    /// Read the line back and translate it into the logical lamp state.
    fn read_back(&mut self) -> Result<bool, RelayError>;
}

impl<T: LuxSensor + ?Sized> LuxSensor for Box<T> {
    fn measure(&mut self) -> Result<Measurement, SensorError> {
        (**self).measure()
    }
}

impl<T: Relay + ?Sized> Relay for Box<T> {
    fn set(&mut self, on: bool) -> Result<(), RelayError> {
        (**self).set(on)
    }
    fn read_back(&mut self) -> Result<bool, RelayError> {
        (**self).read_back()
    }
}
