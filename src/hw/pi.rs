//! Real backends for the Raspberry Pi: the BH1750 over linux-embedded-hal's `I2cdev`, the relay on an rppal
//! output pin.
//!
//! Start-up policy: every [`HwError`] means "hardware unavailable at start" and the daemon exits 69
//! ([`HwError::exit_code`]): the relay GPIO line cannot be opened, or the I2C bus device is missing or not
//! accessible. A sensor that does not answer on an existing bus is NOT an `HwError`: opening the bus sends nothing,
//! and the first NACK arrives as a runtime [`SensorError::NoAck`](super::SensorError::NoAck), re-probed with
//! backoff.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use embedded_hal::i2c::{
    ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation, SevenBitAddress,
};
use linux_embedded_hal::i2cdev::linux::LinuxI2CError;
use linux_embedded_hal::{Delay, I2CError, I2cdev};
use rppal::gpio::{Gpio, OutputPin};

use super::bh1750::AutoRanging;
use super::{LuxSensor, Relay, RelayError};

/// Why the real hardware could not be opened at start. Each message says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum HwError {
    #[error(
        "I2C bus {} does not exist: enable I2C with `sudo raspi-config nonint do_i2c 0` (or dtparam=i2c_arm=on in \
         /boot/firmware/config.txt) and reboot, or correct sensor.i2c_bus",
        path.display()
    )]
    I2cBusMissing { path: PathBuf },
    #[error("permission denied opening I2C bus {}: add the service user to the `i2c` group", path.display())]
    I2cPermission { path: PathBuf },
    #[error("cannot open I2C bus {} (check sensor.i2c_bus)", path.display())]
    I2cOpen {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "this is not a Raspberry Pi (no supported GPIO controller found): run with --mock-hardware"
    )]
    NotARaspberryPi,
    #[error(
        "no GPIO device (/dev/gpiomem) for relay.gpio {gpio}: on a Raspberry Pi make the device available to the \
         service; elsewhere run with --mock-hardware"
    )]
    GpioDeviceMissing { gpio: u8 },
    #[error(
        "permission denied opening {path} for relay.gpio: add the service user to the `gpio` group"
    )]
    GpioPermission { path: String },
    #[error("GPIO {gpio} (relay.gpio) is already in use by another program or driver: free it or pick another line")]
    GpioBusy { gpio: u8 },
    #[error("GPIO {gpio} (relay.gpio) does not exist on this board: use a BCM line number")]
    GpioNotAvailable { gpio: u8 },
    #[error("cannot open GPIO {gpio} (relay.gpio) for the relay")]
    Gpio {
        gpio: u8,
        #[source]
        source: rppal::gpio::Error,
    },
}

impl HwError {
    /// Exit status for a failure at start: always `EX_UNAVAILABLE` (69).
    pub fn exit_code(&self) -> u8 {
        crate::exit::UNAVAILABLE
    }
}

/// `EREMOTEIO`: what the Pi's i2c-bcm2835 driver returns when nothing acknowledges the address (Linux errno).
const EREMOTEIO: i32 = 121;

/// `I2cdev` with the Pi's NACK error translated: linux-embedded-hal maps `ENXIO`/`ENODEV` to `NoAcknowledge`,
/// but the Pi's controller reports a missing device as `EREMOTEIO`, which would otherwise look like a bus fault.
struct PiI2c(I2cdev);

/// An I2C error of [`PiI2c`].
struct PiI2cError(I2CError);

impl PiI2cError {
    fn errno(&self) -> Option<i32> {
        match self.0.inner() {
            LinuxI2CError::Errno(e) => Some(*e),
            LinuxI2CError::Io(e) => e.raw_os_error(),
        }
    }
}

impl fmt::Debug for PiI2cError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl embedded_hal::i2c::Error for PiI2cError {
    fn kind(&self) -> ErrorKind {
        if self.errno() == Some(EREMOTEIO) {
            ErrorKind::NoAcknowledge(NoAcknowledgeSource::Unknown)
        } else {
            embedded_hal::i2c::Error::kind(&self.0)
        }
    }
}

impl ErrorType for PiI2c {
    type Error = PiI2cError;
}

impl I2c for PiI2c {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), PiI2cError> {
        I2c::<SevenBitAddress>::transaction(&mut self.0, address, operations).map_err(PiI2cError)
    }
}

/// Open the BH1750 at `address` on the I2C bus device `bus` (e.g. `/dev/i2c-1`). Nothing is sent yet.
pub fn open_sensor(bus: &Path, address: u8) -> Result<Box<dyn LuxSensor>, HwError> {
    let dev = I2cdev::new(bus).map_err(|e| {
        let path = bus.to_path_buf();
        let e = io::Error::from(e);
        match e.kind() {
            io::ErrorKind::NotFound => HwError::I2cBusMissing { path },
            io::ErrorKind::PermissionDenied => HwError::I2cPermission { path },
            _ => HwError::I2cOpen { path, source: e },
        }
    })?;
    Ok(Box::new(AutoRanging::new(PiI2c(dev), Delay, address)))
}

/// The relay on an rppal output pin.
struct PiRelay {
    pin: OutputPin,
    active_low: bool,
}

impl Relay for PiRelay {
    fn set(&mut self, on: bool) -> Result<(), RelayError> {
        if on != self.active_low {
            self.pin.set_high();
        } else {
            self.pin.set_low();
        }
        Ok(())
    }

    fn read_back(&mut self) -> Result<bool, RelayError> {
        Ok(self.pin.is_set_high() != self.active_low)
    }
}

/// Claim BCM line `gpio` as the relay output, its level set for `initial_on` BEFORE it becomes an output (no
/// glitch). The line keeps its level when the relay is dropped: the daemon restores it itself on stop.
pub fn open_relay(gpio: u8, active_low: bool, initial_on: bool) -> Result<Box<dyn Relay>, HwError> {
    let pin = Gpio::new()
        .and_then(|g| g.get(gpio))
        .map_err(|e| gpio_error(gpio, e))?;
    let mut pin = if initial_on != active_low {
        pin.into_output_high()
    } else {
        pin.into_output_low()
    };
    pin.set_reset_on_drop(false);
    Ok(Box::new(PiRelay { pin, active_low }))
}

fn gpio_error(gpio: u8, e: rppal::gpio::Error) -> HwError {
    use rppal::gpio::Error;
    match e {
        Error::UnknownModel => HwError::NotARaspberryPi,
        Error::PermissionDenied(path) => HwError::GpioPermission { path },
        Error::PinUsed(_) => HwError::GpioBusy { gpio },
        Error::PinNotAvailable(_) => HwError::GpioNotAvailable { gpio },
        Error::Io(ref io) if io.kind() == io::ErrorKind::NotFound => {
            HwError::GpioDeviceMissing { gpio }
        }
        Error::Io(ref io) if io.kind() == io::ErrorKind::PermissionDenied => {
            HwError::GpioPermission {
                path: "/dev/gpiomem".to_owned(),
            }
        }
        source => HwError::Gpio { gpio, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::i2c::Error as _;

    #[test]
    fn missing_bus_says_how_to_enable_i2c() {
        let dir = tempfile::tempdir().unwrap();
        let err = open_sensor(&dir.path().join("i2c-1"), 0x23).err().unwrap();
        assert!(matches!(err, HwError::I2cBusMissing { .. }), "{err:?}");
        assert!(
            err.to_string().contains("raspi-config nonint do_i2c 0"),
            "{err}"
        );
        assert_eq!(err.exit_code(), 69);
    }

    #[test]
    fn a_file_that_is_no_i2c_bus_is_reported_at_open() {
        // The I2C_SLAVE ioctl fails on a regular file (ENOTTY).
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = open_sensor(file.path(), 0x23).err().unwrap();
        assert!(matches!(err, HwError::I2cOpen { .. }), "{err:?}");
        assert!(err.to_string().contains("sensor.i2c_bus"), "{err}");
    }

    #[test]
    fn remote_io_error_is_a_nack() {
        let e = PiI2cError(I2CError::from(LinuxI2CError::Errno(EREMOTEIO)));
        assert!(matches!(e.kind(), ErrorKind::NoAcknowledge(_)));
        let e = PiI2cError(I2CError::from(LinuxI2CError::Io(
            io::Error::from_raw_os_error(EREMOTEIO),
        )));
        assert!(matches!(e.kind(), ErrorKind::NoAcknowledge(_)));
        let e = PiI2cError(I2CError::from(LinuxI2CError::Errno(5)));
        assert_eq!(e.kind(), ErrorKind::Bus);
    }

    #[test]
    fn gpio_errors_say_how_to_fix() {
        let e = gpio_error(17, rppal::gpio::Error::UnknownModel);
        assert!(e.to_string().contains("--mock-hardware"), "{e}");
        let e = gpio_error(
            17,
            rppal::gpio::Error::PermissionDenied("/dev/gpiomem".into()),
        );
        assert!(e.to_string().contains("`gpio` group"), "{e}");
        let e = gpio_error(17, rppal::gpio::Error::PinUsed(17));
        assert!(e.to_string().contains("GPIO 17"), "{e}");
        let e = gpio_error(99, rppal::gpio::Error::PinNotAvailable(99));
        assert!(e.to_string().contains("BCM"), "{e}");
        let e = gpio_error(17, rppal::gpio::Error::Io(io::ErrorKind::NotFound.into()));
        assert!(
            matches!(e, HwError::GpioDeviceMissing { gpio: 17 }),
            "{e:?}"
        );
    }
}
