//! GPIO backends: the Linux GPIO character device (gpiocdev, any board), a simulated one for
//! development and tests, and rppal behind a build feature.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::mpsc;

use crate::config::{LineBias, LineConfig};

/// An input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Input {
    /// Mute button.
    Mute,
    /// Answer button.
    Answer,
    /// Privacy switch.
    Privacy,
}

impl Input {
    /// Its configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Input::Mute => "mute_button",
            Input::Answer => "answer_button",
            Input::Privacy => "privacy_switch",
        }
    }
}

/// An output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Led {
    /// Status LED.
    Status,
    /// Mute LED.
    Mute,
}

impl Led {
    /// Its configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Led::Status => "status_led",
            Led::Mute => "mute_led",
        }
    }
}

/// A raw level change of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Which input.
    pub input: Input,
    /// Active now.
    pub active: bool,
    /// When (the adapter's clock).
    pub at: Instant,
}

/// GPIO problems; messages name the chip, line or socket.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GpioError {
    /// The chip does not exist or cannot be opened.
    #[error(
        "{what}: GPIO chip {chip} cannot be opened ({source}); check that it exists (ls /dev/gpiochip*) and the agent may use it (group gpio)"
    )]
    Chip {
        /// Which configured line.
        what: &'static str,
        /// The chip path.
        chip: String,
        /// Why.
        source: std::io::Error,
    },
    /// No line has that name.
    #[error("{what}: no GPIO line is named {line:?} on any chip (gpioinfo lists them)")]
    NoSuchLine {
        /// Which configured line.
        what: &'static str,
        /// The name.
        line: String,
    },
    /// The kernel refused the line request.
    #[error("{what}: cannot request line {offset} of {chip}: {detail}")]
    Request {
        /// Which configured line.
        what: &'static str,
        /// The chip.
        chip: String,
        /// The offset.
        offset: u32,
        /// What the kernel said.
        detail: String,
    },
    /// Setting an output failed.
    #[error("{what}: cannot set the LED: {detail}")]
    Set {
        /// Which LED.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// The sim control socket could not be opened.
    #[error("gpio.control_socket {path}: {source}")]
    Socket {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The backend is not built in.
    #[error("{0}")]
    Unavailable(String),
}

/// Drives the LEDs.
pub trait Outputs: Send {
    /// Lights (or darkens) an LED; LEDs that are not configured are ignored.
    fn set(&mut self, led: Led, on: bool) -> Result<(), GpioError>;
}

// ---------------------------------------------------------------------------- sim

#[derive(Debug, Default)]
struct SimState {
    leds: BTreeMap<&'static str, bool>,
    history: Vec<(Instant, &'static str, bool)>,
}

/// The simulated board: what the LEDs show, and a way to press buttons. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SimBoard {
    state: Arc<Mutex<SimState>>,
    edges: mpsc::UnboundedSender<Edge>,
}

impl SimBoard {
    /// A raw edge on an input, now.
    pub fn edge(&self, input: Input, active: bool) {
        let _ = self.edges.send(Edge {
            input,
            active,
            at: tokio::time::Instant::now().into_std(),
        });
    }

    /// Presses and releases an input, holding it for `hold`.
    pub async fn press(&self, input: Input, hold: Duration) {
        self.edge(input, true);
        tokio::time::sleep(hold).await;
        self.edge(input, false);
    }

    /// Whether an LED is lit.
    pub fn led(&self, led: Led) -> bool {
        self.state
            .lock()
            .map(|s| s.leds.get(led.name()).copied().unwrap_or(false))
            .unwrap_or(false)
    }

    /// Every change of an LED so far: when and to what.
    pub fn history(&self, led: Led) -> Vec<(Instant, bool)> {
        self.state
            .lock()
            .map(|s| {
                s.history
                    .iter()
                    .filter(|(_, n, _)| *n == led.name())
                    .map(|(t, _, v)| (*t, *v))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `status_led=on mute_led=off`.
    pub fn describe(&self) -> String {
        self.state
            .lock()
            .map(|s| {
                s.leds
                    .iter()
                    .map(|(k, v)| format!("{k}={}", if *v { "on" } else { "off" }))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    }
}

struct SimOutputs {
    state: Arc<Mutex<SimState>>,
}

impl Outputs for SimOutputs {
    fn set(&mut self, led: Led, on: bool) -> Result<(), GpioError> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.leds.get(led.name()) != Some(&on) {
            tracing::info!(led = led.name(), on, "sim LED");
            s.leds.insert(led.name(), on);
            s.history
                .push((tokio::time::Instant::now().into_std(), led.name(), on));
        }
        Ok(())
    }
}

/// A simulated board: outputs, the board handle, and its edge stream.
pub fn sim() -> (Box<dyn Outputs>, SimBoard, mpsc::UnboundedReceiver<Edge>) {
    let state: Arc<Mutex<SimState>> = Arc::default();
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Box::new(SimOutputs {
            state: state.clone(),
        }),
        SimBoard { state, edges: tx },
        rx,
    )
}

// ---------------------------------------------------------------------------- gpiocdev

/// How one configured line will be requested: the chip and offset resolved, and the line
/// configuration gpiocdev gets.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePlan {
    /// Which configured line.
    pub what: &'static str,
    /// Chip path.
    pub chip: PathBuf,
    /// Offset on the chip.
    pub offset: u32,
    /// The request configuration.
    pub config: gpiocdev::request::Config,
}

/// Finds lines by name (the real one scans `/dev/gpiochip*`; tests use a table).
pub trait LineFinder {
    /// `(chip path, offset)` of the line called `name`.
    fn find(&self, name: &str) -> Option<(PathBuf, u32)>;
}

/// The system's GPIO chips.
pub struct SystemLines;

impl LineFinder for SystemLines {
    fn find(&self, name: &str) -> Option<(PathBuf, u32)> {
        gpiocdev::find_named_line(name).map(|l| (l.chip, l.info.offset))
    }
}

fn chip_path(chip: &str) -> PathBuf {
    if chip.starts_with('/') {
        PathBuf::from(chip)
    } else {
        PathBuf::from("/dev").join(chip)
    }
}

/// Builds the request for a line: inputs with both edges, bias, active level and kernel
/// debounce; outputs starting inactive.
pub fn plan(
    what: &'static str,
    line: &LineConfig,
    input: bool,
    debounce: Duration,
    finder: &dyn LineFinder,
) -> Result<LinePlan, GpioError> {
    let (chip, offset) = match (&line.line, &line.chip, line.offset) {
        (Some(name), _, _) => finder.find(name).ok_or_else(|| GpioError::NoSuchLine {
            what,
            line: name.clone(),
        })?,
        (None, Some(chip), Some(offset)) => (chip_path(chip), offset),
        _ => {
            return Err(GpioError::Unavailable(format!(
                "{what}: needs chip + offset or a line name"
            )));
        }
    };
    let mut config = gpiocdev::request::Config::default();
    config.on_chip(chip.clone()).with_line(offset);
    if line.active_low {
        config.as_active_low();
    }
    if input {
        config
            .as_input()
            .with_edge_detection(gpiocdev::line::EdgeDetection::BothEdges)
            .with_debounce_period(debounce);
        let bias = match line.bias {
            LineBias::AsIs => None,
            LineBias::PullUp => Some(gpiocdev::line::Bias::PullUp),
            LineBias::PullDown => Some(gpiocdev::line::Bias::PullDown),
            LineBias::Disabled => Some(gpiocdev::line::Bias::Disabled),
        };
        config.with_bias(bias);
    } else {
        config.as_output(gpiocdev::line::Value::Inactive);
    }
    Ok(LinePlan {
        what,
        chip,
        offset,
        config,
    })
}

fn request(plan: &LinePlan) -> Result<gpiocdev::Request, GpioError> {
    if let Err(source) = std::fs::metadata(&plan.chip) {
        return Err(GpioError::Chip {
            what: plan.what,
            chip: plan.chip.display().to_string(),
            source,
        });
    }
    gpiocdev::Request::builder()
        .with_config(plan.config.clone())
        .with_consumer("roomagent")
        .request()
        .map_err(|e| GpioError::Request {
            what: plan.what,
            chip: plan.chip.display().to_string(),
            offset: plan.offset,
            detail: e.to_string(),
        })
}

struct CdevOutputs {
    leds: BTreeMap<Led, (gpiocdev::Request, u32, &'static str)>,
}

impl Outputs for CdevOutputs {
    fn set(&mut self, led: Led, on: bool) -> Result<(), GpioError> {
        let Some((req, offset, what)) = self.leds.get(&led) else {
            return Ok(());
        };
        let v = if on {
            gpiocdev::line::Value::Active
        } else {
            gpiocdev::line::Value::Inactive
        };
        req.set_value(*offset, v).map_err(|e| GpioError::Set {
            what,
            detail: e.to_string(),
        })
    }
}

/// Opens the configured lines on the GPIO character device. Button events are read by a
/// thread per input (the kernel queues edges; reads block).
pub fn gpiocdev(
    inputs: &[(Input, &LineConfig)],
    leds: &[(Led, &LineConfig)],
    debounce: Duration,
) -> Result<(Box<dyn Outputs>, mpsc::UnboundedReceiver<Edge>), GpioError> {
    let (tx, rx) = mpsc::unbounded_channel();
    for (input, cfg) in inputs {
        let p = plan(input.name(), cfg, true, debounce, &SystemLines)?;
        let req = request(&p)?;
        let tx = tx.clone();
        let input = *input;
        std::thread::Builder::new()
            .name(format!("gpio-{}", input.name()))
            .spawn(move || {
                while let Ok(ev) = req.read_edge_event() {
                    let edge = Edge {
                        input,
                        active: ev.kind == gpiocdev::line::EdgeKind::Rising,
                        at: Instant::now(),
                    };
                    if tx.send(edge).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| GpioError::Unavailable(format!("cannot start the GPIO reader: {e}")))?;
    }
    let mut out = CdevOutputs {
        leds: BTreeMap::new(),
    };
    for (led, cfg) in leds {
        let p = plan(led.name(), cfg, false, debounce, &SystemLines)?;
        let req = request(&p)?;
        out.leds.insert(*led, (req, p.offset, led.name()));
    }
    Ok((Box::new(out), rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Table(Vec<(&'static str, &'static str, u32)>);

    impl LineFinder for Table {
        fn find(&self, name: &str) -> Option<(PathBuf, u32)> {
            self.0
                .iter()
                .find(|(n, _, _)| *n == name)
                .map(|(_, c, o)| (PathBuf::from(c), *o))
        }
    }

    fn none() -> Table {
        Table(vec![])
    }

    #[test]
    fn a_pi_button_by_chip_and_offset_is_an_active_low_pulled_up_input_with_debounce() {
        let cfg = LineConfig {
            chip: Some("gpiochip0".into()),
            offset: Some(17),
            active_low: true,
            bias: LineBias::PullUp,
            ..LineConfig::default()
        };
        let p = plan(
            "mute_button",
            &cfg,
            true,
            Duration::from_millis(30),
            &none(),
        )
        .unwrap();
        assert_eq!(p.chip, PathBuf::from("/dev/gpiochip0"));
        assert_eq!(p.offset, 17);
        let lc = p.config.line_config(17).unwrap();
        assert!(lc.active_low);
        assert_eq!(lc.direction, Some(gpiocdev::line::Direction::Input));
        assert_eq!(lc.bias, Some(gpiocdev::line::Bias::PullUp));
        assert_eq!(
            lc.edge_detection,
            Some(gpiocdev::line::EdgeDetection::BothEdges)
        );
        assert_eq!(lc.debounce_period, Some(Duration::from_millis(30)));
    }

    #[test]
    fn a_jetson_led_by_line_name_is_found_and_starts_dark() {
        let cfg = LineConfig {
            line: Some("PH.00".into()),
            ..LineConfig::default()
        };
        let finder = Table(vec![("PH.00", "/dev/gpiochip0", 43)]);
        let p = plan("status_led", &cfg, false, Duration::ZERO, &finder).unwrap();
        assert_eq!(
            (p.chip.clone(), p.offset),
            (PathBuf::from("/dev/gpiochip0"), 43)
        );
        let lc = p.config.line_config(43).unwrap();
        assert_eq!(lc.direction, Some(gpiocdev::line::Direction::Output));
        assert_eq!(lc.value, Some(gpiocdev::line::Value::Inactive));
        assert!(!lc.active_low);
    }

    #[test]
    fn unknown_line_names_and_missing_chips_are_named() {
        let cfg = LineConfig {
            line: Some("GPIO99".into()),
            ..LineConfig::default()
        };
        let e = plan("mute_button", &cfg, true, Duration::ZERO, &none()).unwrap_err();
        assert!(e.to_string().contains("\"GPIO99\""), "{e}");
        let cfg = LineConfig {
            chip: Some("gpiochip9".into()),
            offset: Some(3),
            ..LineConfig::default()
        };
        let p = plan("mute_led", &cfg, false, Duration::ZERO, &none()).unwrap();
        let e = request(&p).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("/dev/gpiochip9") && text.contains("mute_led"),
            "{text}"
        );
    }
}
