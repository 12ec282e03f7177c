//! The GPIO adapter: a mute button (a long press hangs up), an optional answer button and
//! privacy switch, a status LED and a mute LED.
//!
//! Buttons become core commands through the [`AgentHandle`], like any other local control.
//! LEDs are driven only from the agent's reported state (see [`pattern`]), so a remote mute
//! from the host or from MQTT lights the mute LED exactly like the button does.

pub mod backend;
pub mod debounce;
pub mod pattern;
#[cfg(feature = "rppal")]
mod rppal_backend;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{Config, GpioBackend, LineConfig};
use crate::core::{AgentState, Command};
use crate::handle::AgentHandle;
use backend::{Edge, Outputs};
pub use backend::{GpioError, Input, Led, SimBoard};
use debounce::{ButtonEvent, Debouncer};
use pattern::{Pattern, Patterns};

/// Everything the adapter needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Backend.
    pub backend: GpioBackend,
    /// Configured inputs.
    pub inputs: Vec<(Input, LineConfig)>,
    /// Configured LEDs.
    pub leds: Vec<(Led, LineConfig)>,
    /// Debounce.
    pub debounce: Duration,
    /// Long press.
    pub long_press: Duration,
    /// Status LED patterns.
    pub patterns: Patterns,
    /// `sim`: the control socket.
    pub control_socket: Option<PathBuf>,
}

impl Options {
    /// From a validated configuration.
    pub fn from_config(c: &Config) -> Options {
        let g = &c.gpio;
        let inputs = [
            (Input::Mute, &g.mute_button),
            (Input::Answer, &g.answer_button),
            (Input::Privacy, &g.privacy_switch),
        ]
        .into_iter()
        .filter_map(|(i, l)| l.clone().map(|l| (i, l)))
        .collect();
        let leds = [(Led::Status, &g.status_led), (Led::Mute, &g.mute_led)]
            .into_iter()
            .filter_map(|(i, l)| l.clone().map(|l| (i, l)))
            .collect();
        Options {
            backend: g.backend,
            inputs,
            leds,
            debounce: Duration::from_millis(g.debounce_ms),
            long_press: Duration::from_millis(g.long_press_ms),
            patterns: Patterns::from_table(&g.patterns).unwrap_or_else(|_| {
                Patterns::from_table(&Default::default()).expect("default patterns")
            }),
            control_socket: g.control_socket.clone(),
        }
    }
}

/// Opens the lines and returns the adapter future (and, for `sim`, the simulated board).
pub fn start(
    opts: Options,
    agent: AgentHandle,
    shutdown: CancellationToken,
) -> Result<(Option<SimBoard>, impl Future<Output = ()> + Send + 'static), GpioError> {
    let (outputs, edges, board) = match opts.backend {
        GpioBackend::Sim => {
            let (out, board, edges) = backend::sim();
            if let Some(path) = &opts.control_socket {
                let listener = bind_control(path)?;
                tokio::spawn(control(
                    listener,
                    board.clone(),
                    opts.long_press,
                    shutdown.clone(),
                ));
                info!(socket = %path.display(), "simulated GPIO: send `press mute`, `hold mute 2000`, `leds` to the socket");
            }
            (out, edges, Some(board))
        }
        GpioBackend::Gpiocdev => {
            let inputs: Vec<(Input, &LineConfig)> =
                opts.inputs.iter().map(|(i, l)| (*i, l)).collect();
            let leds: Vec<(Led, &LineConfig)> = opts.leds.iter().map(|(i, l)| (*i, l)).collect();
            let (out, edges) = backend::gpiocdev(&inputs, &leds, opts.debounce)?;
            (out, edges, None)
        }
        GpioBackend::Rppal => {
            #[cfg(feature = "rppal")]
            {
                let (out, edges) = rppal_backend::open(&opts)?;
                (out, edges, None)
            }
            #[cfg(not(feature = "rppal"))]
            {
                return Err(GpioError::Unavailable(
                    "gpio.backend = \"rppal\" needs a build with `--features rppal`; gpiocdev works on every Pi".into(),
                ));
            }
        }
    };
    let state = agent.state();
    let (cmd_tx, mut cmd_rx) = tokio::sync::mpsc::unbounded_channel::<Command>();
    let fut = async move {
        // Button commands reach the core like any local control.
        let forward = async move {
            while let Some(cmd) = cmd_rx.recv().await {
                if let Err(e) = agent.command(cmd.clone()).await {
                    info!(?cmd, reason = %e, "button had nothing to do");
                }
            }
        };
        tokio::join!(run(opts, outputs, edges, state, cmd_tx, shutdown), forward);
    };
    Ok((board, fut))
}

fn bind_control(path: &std::path::Path) -> Result<tokio::net::UnixListener, GpioError> {
    let _ = std::fs::remove_file(path);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    tokio::net::UnixListener::bind(path).map_err(|source| GpioError::Socket {
        path: path.display().to_string(),
        source,
    })
}

/// The sim backend's control socket: one command per line.
async fn control(
    listener: tokio::net::UnixListener,
    board: SimBoard,
    long_press: Duration,
    shutdown: CancellationToken,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            s = listener.accept() => match s { Ok((s, _)) => s, Err(_) => continue },
        };
        let board = board.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let words: Vec<&str> = line.split_whitespace().collect();
                let input = |name: &str| match name {
                    "mute" => Some(Input::Mute),
                    "answer" => Some(Input::Answer),
                    "privacy" => Some(Input::Privacy),
                    _ => None,
                };
                let reply = match words[..] {
                    ["press", name] => match input(name) {
                        Some(i) => {
                            board.press(i, Duration::from_millis(100)).await;
                            "ok".to_string()
                        }
                        None => format!("unknown input {name:?} (mute, answer, privacy)"),
                    },
                    ["hold", name, ms] => match (input(name), ms.parse::<u64>()) {
                        (Some(i), Ok(ms)) => {
                            board.press(i, Duration::from_millis(ms)).await;
                            "ok".to_string()
                        }
                        _ => "usage: hold mute|answer|privacy MILLISECONDS".to_string(),
                    },
                    ["long", name] => match input(name) {
                        Some(i) => {
                            board.press(i, long_press + Duration::from_millis(200)).await;
                            "ok".to_string()
                        }
                        None => format!("unknown input {name:?}"),
                    },
                    ["on", name] | ["off", name] => match input(name) {
                        Some(i) => {
                            board.edge(i, words[0] == "on");
                            "ok".to_string()
                        }
                        None => format!("unknown input {name:?}"),
                    },
                    ["leds"] => board.describe(),
                    _ => "commands: press NAME | hold NAME MS | long NAME | on NAME | off NAME | leds".to_string(),
                };
                if w.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// What the LEDs should show.
fn desired(state: &AgentState, patterns: &Patterns) -> [(Led, Pattern); 2] {
    [
        (
            Led::Status,
            patterns.for_situation(pattern::situation(state)),
        ),
        (
            Led::Mute,
            // A lost microphone is as silent as a muted one: the person in the room sees it.
            if state.mic_muted || state.devices.microphone == crate::core::Attached::Lost {
                Pattern::On
            } else {
                Pattern::Off
            },
        ),
    ]
}

/// The adapter's loop: edges in, commands out; state in, LED levels out.
async fn run(
    opts: Options,
    mut outputs: Box<dyn Outputs>,
    mut edges: tokio::sync::mpsc::UnboundedReceiver<Edge>,
    mut state: tokio::sync::watch::Receiver<AgentState>,
    commands: tokio::sync::mpsc::UnboundedSender<Command>,
    shutdown: CancellationToken,
) {
    let now = || tokio::time::Instant::now().into_std();
    let mut buttons: BTreeMap<Input, Debouncer> = opts
        .inputs
        .iter()
        .map(|(i, _)| (*i, Debouncer::new(opts.debounce, opts.long_press)))
        .collect();
    // Each LED: its pattern and when that pattern started.
    let mut showing: BTreeMap<Led, (Pattern, Instant)> = BTreeMap::new();
    let mut warned = false;
    loop {
        // LEDs: the pattern follows the state; the level follows the pattern's clock.
        let t = now();
        let current = state.borrow().clone();
        let mut next_led: Option<Instant> = None;
        for (led, p) in desired(&current, &opts.patterns) {
            let entry = showing.entry(led).or_insert((p, t));
            if entry.0 != p {
                *entry = (p, t);
            }
            let (on, change_in) = p.level_at(t.saturating_duration_since(entry.1));
            if let Err(e) = outputs.set(led, on)
                && !warned
            {
                warn!(error = %e, "LED update failed");
                warned = true;
            }
            if let Some(d) = change_in {
                let at = t + d;
                next_led = Some(next_led.map_or(at, |n: Instant| n.min(at)));
            }
        }
        let next_button = buttons.values().filter_map(Debouncer::next_deadline).min();
        tokio::select! {
            _ = shutdown.cancelled() => {
                for led in [Led::Status, Led::Mute] {
                    let _ = outputs.set(led, false);
                }
                return;
            }
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            edge = edges.recv() => match edge {
                Some(e) => {
                    if let Some(d) = buttons.get_mut(&e.input) {
                        d.edge(e.active, e.at);
                    }
                }
                None => return,
            },
            _ = crate::wait::sleep_until(next_button.map(tokio::time::Instant::from_std)) => {}
            _ = crate::wait::sleep_until(next_led.map(tokio::time::Instant::from_std)) => {}
        }
        let t = now();
        let mut actions = Vec::new();
        for (input, d) in buttons.iter_mut() {
            for ev in d.poll(t) {
                actions.push((*input, ev));
            }
        }
        for (input, ev) in actions {
            let cmd = match (input, ev) {
                (Input::Mute, ButtonEvent::ShortPress) => Some(if state.borrow().mic_muted {
                    Command::Unmute
                } else {
                    Command::Mute
                }),
                (Input::Mute, ButtonEvent::LongPress) => Some(Command::Hangup),
                (Input::Answer, ButtonEvent::ShortPress | ButtonEvent::LongPress) => {
                    Some(Command::Answer)
                }
                (Input::Privacy, ButtonEvent::Pressed) => Some(Command::CameraOff),
                (Input::Privacy, ButtonEvent::Released) => Some(Command::CameraOn),
                _ => None,
            };
            if let Some(cmd) = cmd {
                info!(input = input.name(), ?ev, ?cmd, "button");
                if commands.send(cmd).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::CallPhase;
    use crate::core::UserId;

    fn state(call: CallPhase, registered: bool) -> AgentState {
        AgentState {
            backend: "rtcpeer",
            audio_forbidden: false,
            video_forbidden: false,
            registered,
            signaling_error: None,
            user_id: Some(UserId(1)),
            call,
            peer: None,
            room_id: None,
            members: vec![],
            mic_muted: false,
            muted_by_host: false,
            camera_on: true,
            sharing: false,
            volume: 80,
            devices: Default::default(),
        }
    }

    fn opts() -> Options {
        Options {
            backend: GpioBackend::Sim,
            inputs: vec![(Input::Mute, LineConfig::default())],
            leds: vec![],
            debounce: Duration::from_millis(30),
            long_press: Duration::from_millis(1500),
            patterns: Patterns::from_table(&Default::default()).unwrap(),
            control_socket: None,
        }
    }

    /// Ringing blinks the status LED at 2 Hz: on 250 ms, off 250 ms, on virtual time.
    #[tokio::test(start_paused = true)]
    async fn ringing_blinks_at_2hz() {
        let (out, board, edges) = backend::sim();
        let (tx, rx) = tokio::sync::watch::channel(state(CallPhase::Idle, true));
        let (cmd_tx, _cmd_rx) = tokio::sync::mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(opts(), out, edges, rx, cmd_tx, stop.clone()));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!board.led(Led::Status));
        let t0 = tokio::time::Instant::now().into_std();
        tx.send_replace(state(CallPhase::Ringing, true));
        tokio::time::sleep(Duration::from_millis(2010)).await;
        let changes: Vec<(u128, bool)> = board
            .history(Led::Status)
            .into_iter()
            .filter(|(t, _)| *t >= t0)
            .map(|(t, on)| (t.duration_since(t0).as_millis(), on))
            .collect();
        assert_eq!(
            changes,
            vec![
                (0, true),
                (250, false),
                (500, true),
                (750, false),
                (1000, true),
                (1250, false),
                (1500, true),
                (1750, false),
                (2000, true)
            ]
        );
        stop.cancel();
        task.await.unwrap();
    }

    /// A press toggles the mute, a hold hangs up; bouncing edges count once.
    #[tokio::test(start_paused = true)]
    async fn presses_become_commands() {
        let (out, board, edges) = backend::sim();
        let (tx, rx) = tokio::sync::watch::channel(state(CallPhase::InCall, true));
        let (cmd_tx, mut cmd_rx) = tokio::sync::mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(opts(), out, edges, rx, cmd_tx, stop.clone()));
        for i in 0..10 {
            board.edge(Input::Mute, i % 2 == 0);
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        board.edge(Input::Mute, true);
        tokio::time::sleep(Duration::from_millis(200)).await;
        board.edge(Input::Mute, false);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(cmd_rx.try_recv().ok(), Some(Command::Mute));
        assert!(cmd_rx.try_recv().is_err(), "one press, one command");
        let mut muted = state(CallPhase::InCall, true);
        muted.mic_muted = true;
        tx.send_replace(muted);
        board.press(Input::Mute, Duration::from_millis(100)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(cmd_rx.try_recv().ok(), Some(Command::Unmute));
        board.press(Input::Mute, Duration::from_millis(2000)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(cmd_rx.try_recv().ok(), Some(Command::Hangup));
        assert!(
            cmd_rx.try_recv().is_err(),
            "a long press is not also a short one"
        );
        stop.cancel();
        task.await.unwrap();
    }

    #[test]
    fn leds_show_the_state() {
        let p = Patterns::from_table(&Default::default()).unwrap();
        assert_eq!(
            desired(&state(CallPhase::Idle, true), &p)[0].1,
            Pattern::Off
        );
        assert_eq!(
            desired(&state(CallPhase::Ringing, true), &p)[0].1,
            Pattern::BLINK_2HZ
        );
        assert_eq!(
            desired(&state(CallPhase::InCall, true), &p)[0].1,
            Pattern::On
        );
        assert_eq!(
            desired(&state(CallPhase::Idle, false), &p)[0].1,
            Pattern::SLOW
        );
        let mut err = state(CallPhase::Idle, false);
        err.signaling_error = Some("refused".into());
        assert_eq!(desired(&err, &p)[0].1, Pattern::FAST);
        let mut muted = state(CallPhase::InCall, true);
        muted.mic_muted = true;
        assert_eq!(desired(&muted, &p)[1].1, Pattern::On);
        // The microphone unplugged mid-call lights the mute LED; back, it goes out.
        let mut unplugged = state(CallPhase::InCall, true);
        unplugged.devices.microphone = crate::core::Attached::Lost;
        assert_eq!(desired(&unplugged, &p)[1].1, Pattern::On);
        unplugged.devices.microphone = crate::core::Attached::Present;
        assert_eq!(desired(&unplugged, &p)[1].1, Pattern::Off);
    }
}
