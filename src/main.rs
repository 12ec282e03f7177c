//! `roomagent`: parse the command line and configuration, then hand over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use roomagent::config::{self, Purpose};

/// Meeting-room appliance agent: answers calls, runs the camera and microphone, and is managed
/// over MQTT.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the agent (and the development room server when [room_server] enabled = true).
    Run {
        /// Configuration file; every option is documented in config.example.toml.
        #[arg(
            short,
            long,
            default_value = "/etc/roomagent/config.toml",
            env = "ROOMAGENT_CONFIG"
        )]
        config: PathBuf,
    },
    /// Check a configuration file: prints OK, or every problem with its key, line and column.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Show cameras, microphones, speakers, HDMI inputs and encoders, and the board profile
    /// the agent would choose.
    Devices {
        /// Configuration file ([media] settings are honoured); defaults when absent.
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Remove this device from dashboards: clear its retained Home Assistant discovery
    /// configs, state and status on the broker of [mqtt].
    MqttForget {
        /// Configuration file of the device being decommissioned.
        #[arg(short, long)]
        config: PathBuf,
        /// The MQTT client id to connect as (default `<device id>-forget`; a broker may
        /// require at most 23 bytes or a given pattern).
        #[arg(long)]
        client_id: Option<String>,
    },
    /// For a team without a dashboard: the fleet on the broker of the file's [mqtt] section
    /// (a user that may read <prefix>/# and write command topics).
    Fleet {
        /// Configuration file with the [mqtt] section to use.
        #[arg(short, long)]
        config: PathBuf,
        #[command(subcommand)]
        what: FleetCmd,
    },
    /// The privileged helper, run as root by roomagent-privileged.service when the agent
    /// leaves a request (a reboot): takes the requests in the directory and carries them out.
    Privileged {
        /// The directory the agent leaves requests in.
        #[arg(long, default_value = "/var/lib/roomagent/requests")]
        requests: PathBuf,
    },
    /// Run only the development room server (the [room_server] section of the file).
    RoomServer {
        /// Configuration file with a [room_server] section.
        #[arg(short, long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum FleetCmd {
    /// A table of the devices, from their retained status, state, health and inventory.
    Ls,
    /// Sends one command to many devices and says who ran it: "47 ok, 2 refused, 1 offline".
    Cmd {
        /// The verb (as on <prefix>/<id>/cmd/<verb>).
        verb: String,
        /// Its arguments, a JSON object (`{"level": 40}`).
        #[arg(long, default_value = "{}")]
        args: String,
        /// Only this group (its topic <prefix>/group/<g>/cmd/<verb>).
        #[arg(long, conflicts_with_all = ["site", "ids"])]
        group: Option<String>,
        /// Only this site.
        #[arg(long, conflicts_with = "ids")]
        site: Option<String>,
        /// Only these devices (comma-separated ids).
        #[arg(long, value_delimiter = ',')]
        ids: Option<Vec<String>>,
        /// How long to wait for the replies, seconds.
        #[arg(long, default_value_t = 10)]
        wait_s: u64,
    },
}

fn fleet(config: &std::path::Path, what: FleetCmd) -> ExitCode {
    use roomagent::mqtt::fleet::{self, Target};
    let cfg = match config::load(config) {
        Ok(cfg) => cfg,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    let opts = match roomagent::mqtt::Options::from_config(&cfg) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("roomagent fleet: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime().block_on(async move {
        match what {
            FleetCmd::Ls => fleet::directory(&opts).await.map(|d| {
                print!("{}", d.table());
                true
            }),
            FleetCmd::Cmd {
                verb,
                args,
                group,
                site,
                ids,
                wait_s,
            } => {
                let args: serde_json::Value =
                    serde_json::from_str(&args).map_err(|e| format!("--args is not JSON: {e}"))?;
                let target = match (group, site, ids) {
                    (Some(g), _, _) => Target::Group(g),
                    (_, Some(s), _) => Target::Site(s),
                    (_, _, Some(ids)) => Target::Ids(ids),
                    _ => Target::All,
                };
                let wait = std::time::Duration::from_secs(wait_s);
                let o = fleet::command(&opts, &verb, args, &target, wait).await?;
                print!("{}", o.summary());
                Ok(o.refused.is_empty() && o.offline.is_empty() && o.silent.is_empty())
            }
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("roomagent fleet: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    roomagent::memory::limit_arenas();
    let cli = Cli::parse();
    match cli.command {
        Cmd::CheckConfig { file } => match config::load(&file) {
            Ok(cfg) if cfg.not_configured => {
                println!(
                    "{}: OK, but not configured: no [signaling] host or [signaling.rtm], so the \
                     agent runs without signaling until one is set",
                    file.display()
                );
                ExitCode::SUCCESS
            }
            Ok(_) => {
                println!("{}: OK", file.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::from(2)
            }
        },
        Cmd::Run { config } => {
            let cfg = match config::load_running(&config) {
                Ok(cfg) => cfg,
                Err(errors) => {
                    eprintln!("{errors}");
                    return ExitCode::from(2);
                }
            };
            roomagent::logging::init(&cfg.log);
            let rt = runtime();
            let result = rt.block_on(roomagent::systemd::serve(cfg));
            // Blocking helpers (DNS lookups, file reads) must not hold the exit up.
            rt.shutdown_timeout(std::time::Duration::from_millis(200));
            exit(result)
        }
        Cmd::Devices { config } => {
            let cfg = match config {
                Some(path) => match config::load_for(&path, Purpose::RoomServer) {
                    Ok(cfg) => cfg,
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::from(2);
                    }
                },
                None => config::Config::default(),
            };
            match roomagent::media::devices_report(&roomagent::media::MediaOptions::from_config(
                &cfg,
            )) {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("roomagent: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::MqttForget { config, client_id } => {
            let cfg = match config::load(&config) {
                Ok(cfg) => cfg,
                Err(errors) => {
                    eprintln!("{errors}");
                    return ExitCode::from(2);
                }
            };
            exit(runtime().block_on(async move {
                let opts = roomagent::mqtt::Options::from_config(&cfg)?;
                let cleared = roomagent::mqtt::forget(&opts, client_id.as_deref())
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot clear the retained topics: {e}"))?;
                for t in cleared {
                    println!("cleared {t}");
                }
                anyhow::Ok(())
            }))
        }
        Cmd::Fleet { config, what } => fleet(&config, what),
        Cmd::Privileged { requests } => match roomagent::privileged::serve(&requests) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("roomagent privileged: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::RoomServer { config } => {
            let cfg = match config::load_for(&config, Purpose::RoomServer) {
                Ok(cfg) => cfg,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            roomagent::logging::init(&cfg.log);
            exit(runtime().block_on(async move {
                let (handle, fut) = roomagent::room_server::bind(&cfg.room_server).await?;
                let task = tokio::spawn(fut);
                shutdown_signal().await;
                handle.shutdown();
                let _ = task.await;
                anyhow::Ok(())
            }))
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot start the async runtime")
}

fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e)
            if e.downcast_ref::<roomagent::daemon::RestartRequested>()
                .is_some() =>
        {
            eprintln!("roomagent: {e}");
            ExitCode::from(roomagent::daemon::RESTART_EXIT)
        }
        Err(e) => {
            eprintln!("roomagent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("cannot install the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
