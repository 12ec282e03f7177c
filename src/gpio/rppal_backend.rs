//! The rppal backend (Raspberry Pi only; build with `--features rppal`): BCM GPIO numbers,
//! interrupt-driven buttons, and LEDs with software-PWM brightness.

use std::collections::BTreeMap;
use std::time::Instant;

use rppal::gpio::{Gpio, InputPin, OutputPin, Trigger};
use tokio::sync::mpsc;

use super::Options;
use super::backend::{Edge, GpioError, Led, Outputs};
use crate::config::LineBias;

struct RppalOutputs {
    leds: BTreeMap<Led, (OutputPin, bool, Option<f64>)>,
    // Buttons stay requested while the backend lives.
    _inputs: Vec<InputPin>,
}

impl Outputs for RppalOutputs {
    fn set(&mut self, led: Led, on: bool) -> Result<(), GpioError> {
        let Some((pin, active_low, brightness)) = self.leds.get_mut(&led) else {
            return Ok(());
        };
        let lit = on != *active_low;
        match brightness {
            Some(b) if on && *b < 1.0 => {
                let duty = if *active_low { 1.0 - *b } else { *b };
                pin.set_pwm_frequency(200.0, duty)
                    .map_err(|e| GpioError::Set {
                        what: led.name(),
                        detail: e.to_string(),
                    })?;
            }
            _ => {
                let _ = pin.clear_pwm();
                if lit {
                    pin.set_high();
                } else {
                    pin.set_low();
                }
            }
        }
        Ok(())
    }
}

fn err(what: &'static str, e: rppal::gpio::Error) -> GpioError {
    GpioError::Unavailable(format!("{what}: {e}"))
}

/// Opens the configured pins.
pub(super) fn open(
    opts: &Options,
) -> Result<(Box<dyn Outputs>, mpsc::UnboundedReceiver<Edge>), GpioError> {
    let gpio = Gpio::new().map_err(|e| err("gpio", e))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let mut inputs = Vec::new();
    for (input, cfg) in &opts.inputs {
        let what = input.name();
        let bcm = cfg.offset.unwrap_or(0) as u8;
        let pin = gpio.get(bcm).map_err(|e| err(what, e))?;
        let mut pin = match cfg.bias {
            LineBias::PullUp => pin.into_input_pullup(),
            LineBias::PullDown => pin.into_input_pulldown(),
            _ => pin.into_input(),
        };
        let (tx, input, active_low) = (tx.clone(), *input, cfg.active_low);
        pin.set_async_interrupt(Trigger::Both, Some(opts.debounce), move |ev| {
            let high = matches!(ev.trigger, Trigger::RisingEdge);
            let _ = tx.send(Edge {
                input,
                active: high != active_low,
                at: Instant::now(),
            });
        })
        .map_err(|e| err(what, e))?;
        inputs.push(pin);
    }
    let mut leds = BTreeMap::new();
    for (led, cfg) in &opts.leds {
        let bcm = cfg.offset.unwrap_or(0) as u8;
        let pin = gpio.get(bcm).map_err(|e| err(led.name(), e))?;
        let pin = if cfg.active_low {
            pin.into_output_high()
        } else {
            pin.into_output_low()
        };
        leds.insert(*led, (pin, cfg.active_low, cfg.brightness));
    }
    Ok((
        Box::new(RppalOutputs {
            leds,
            _inputs: inputs,
        }),
        rx,
    ))
}
