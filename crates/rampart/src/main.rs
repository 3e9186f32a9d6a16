//! `rampart`: the API security gateway binary.

mod bans;
mod demo;
mod demo_auth;
mod ftw;
mod replay;
mod rules_test;

/// mimalloc: faster than the system allocator for the many small, short-lived allocations of a
/// proxy (measured with the loopback benchmark; see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rampart_proxy::Gateway;

/// Rampart: an API security gateway in one binary.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, about)]
struct Cli {
    /// Log filter (also from RAMPART_LOG), such as `info` or `rampart_proxy=debug`.
    #[arg(long, global = true)]
    log: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    /// Worker threads serving requests (default: one per core; 1 runs everything on one thread).
    #[arg(long, global = true)]
    workers: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve with a configuration file.
    Run {
        /// The configuration file.
        #[arg(short, long, default_value = "rampart.yaml")]
        config: PathBuf,
        /// How often the file is checked for changes, in milliseconds (0: only SIGHUP and the
        /// admin API reload).
        #[arg(long, default_value_t = 1000)]
        watch_interval_ms: u64,
    },
    /// Compile a configuration and print every problem. Exit 0 valid, 1 invalid, 2 could not run.
    Check {
        /// The configuration file.
        #[arg(short, long, default_value = "rampart.yaml")]
        config: PathBuf,
    },
    /// Run go-ftw regression tests (the OWASP CRS's) through the gateway on loopback, with
    /// the CRS in `waf.crs` and a test backend; prints pass/fail per rule file and a total.
    Ftw(ftw::Args),
    /// Start a built-in demo API with the gateway in front of it, every feature on.
    Demo {
        /// The gateway's port on 127.0.0.1.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// The admin port on 127.0.0.1.
        #[arg(long, default_value_t = 9901)]
        admin_port: u16,
        /// The TLS (mutual TLS) listener's port on 127.0.0.1.
        #[arg(long, default_value_t = 8443)]
        tls_port: u16,
        /// Exit after this many seconds (for scripted checks); runs until Ctrl-C by default.
        #[arg(long)]
        exit_after_secs: Option<u64>,
    },
    /// Hash a password for a `basic` credential (read from standard input, first line).
    HashPassword {
        /// bcrypt (`$2b$`) instead of argon2id.
        #[arg(long)]
        bcrypt: bool,
        /// bcrypt's cost (4 to 31).
        #[arg(long, default_value_t = 12)]
        cost: u32,
    },
    /// The DDoS guard's bans in the shared store (Redis) of a configuration. Exit 0 done, 1
    /// nothing to do (no such ban), 2 could not run.
    Bans {
        /// The configuration file (its `state` names the store).
        #[arg(short, long, default_value = "rampart.yaml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        command: BansCommand,
    },
    /// Run recorded traffic (Rampart JSON lines or HAR) through a configuration offline and
    /// report what it would do. Exit 0 done, 1 a --fail-on condition met, 2 could not run.
    Replay(replay::Args),
    /// Work with the rules of a configuration.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
}

#[derive(Debug, Subcommand)]
enum BansCommand {
    /// The bans in force, with the seconds left.
    List,
    /// Bans an address (`203.0.113.7`) or a network (`203.0.113.0/24`) on every node.
    Add {
        /// The address or network.
        target: String,
        /// For how long.
        #[arg(long, default_value_t = 3600)]
        secs: u64,
    },
    /// Lifts a ban on every node.
    Remove {
        /// The address or network, as listed.
        target: String,
    },
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Run sample requests through a configuration's rules and compare each outcome with the
    /// expected one. Exit 0 all passed, 1 a test failed, 2 could not run.
    Test {
        /// The test file (YAML).
        file: PathBuf,
        /// The configuration (default: the test file's `config`, else rampart.yaml beside it).
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.as_deref(), cli.log_json);
    let workers = cli.workers;
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Run {
            config,
            watch_interval_ms,
        } => runtime(workers).map_or(ExitCode::from(2), |rt| {
            rt.block_on(run(config, watch_interval_ms))
        }),
        Command::Demo {
            port,
            admin_port,
            tls_port,
            exit_after_secs,
        } => runtime(workers).map_or(ExitCode::from(2), |rt| {
            rt.block_on(demo::run(port, tls_port, admin_port, exit_after_secs))
        }),
        Command::Rules {
            command: RulesCommand::Test { file, config },
        } => rules_test::run(&file, config.as_deref()),
        Command::Ftw(args) => ftw::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::HashPassword { bcrypt, cost } => hash_password(bcrypt, cost),
        Command::Bans { config, command } => runtime(Some(1)).map_or(ExitCode::from(2), |rt| {
            rt.block_on(bans::run(&config, command))
        }),
    }
}

fn runtime(workers: Option<usize>) -> Option<tokio::runtime::Runtime> {
    // One worker: the current-thread scheduler, which skips the work-stealing machinery (like
    // one nginx worker process). More: the multi-thread scheduler.
    let mut builder = match workers {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    if let Some(n) = workers.filter(|n| *n > 1) {
        builder.worker_threads(n);
    }
    match builder.enable_all().build() {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            None
        }
    }
}

fn init_logging(filter: Option<&str>, json: bool) {
    let filter = filter
        .map(str::to_owned)
        .or_else(|| std::env::var("RAMPART_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn check(config: &Path) -> ExitCode {
    if !config.is_file() {
        eprintln!("error: cannot read {}: no such file", config.display());
        return ExitCode::from(2);
    }
    match rampart_config::load_file(config) {
        Ok(s) => {
            print_out(&format!(
                "ok: {} ({} listener{}, {} API{}, {} upstream{})",
                config.display(),
                s.listeners.len(),
                plural(s.listeners.len()),
                s.apis.len(),
                plural(s.apis.len()),
                s.upstreams.len(),
                plural(s.upstreams.len())
            ));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{}", e.render());
            ExitCode::from(1)
        }
    }
}

/// `rampart hash-password`: the hash of the first line of standard input.
fn hash_password(bcrypt: bool, cost: u32) -> ExitCode {
    use std::io::BufRead;
    let mut line = String::new();
    if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
        eprintln!("error: cannot read the password: {e}");
        return ExitCode::from(2);
    }
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        eprintln!("error: the password is empty (give it on standard input: printf %s \"$PASSWORD\" | rampart hash-password)");
        return ExitCode::from(1);
    }
    let hashed = if bcrypt {
        if !(4..=31).contains(&cost) {
            eprintln!("error: --cost must be between 4 and 31");
            return ExitCode::from(1);
        }
        rampart_stages::authn::password::hash_bcrypt(password.as_bytes(), cost)
    } else {
        rampart_stages::authn::password::hash_argon2id(password.as_bytes())
    };
    match hashed {
        Ok(h) => {
            print_out(&h);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Prints a command's output on standard output (logs go to standard error).
#[allow(clippy::print_stdout)]
pub(crate) fn print_out(text: &str) {
    println!("{text}");
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

async fn run(config: PathBuf, watch_interval_ms: u64) -> ExitCode {
    let snapshot = match rampart_config::load_file(&config) {
        Ok(s) => s,
        Err(e) => {
            eprint!("{}", e.render());
            return ExitCode::from(1);
        }
    };
    let gateway = match Gateway::start(snapshot, Some(config)).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let _admin = match start_admin(&gateway).await {
        Ok(a) => a,
        Err(code) => {
            gateway.shutdown().await;
            return code;
        }
    };
    let _watch = rampart_proxy::spawn_reload_watchers(
        gateway.shared().clone(),
        Duration::from_millis(watch_interval_ms),
    );
    wait_for_signal().await;
    tracing::info!("Shutting down: draining in-flight requests.");
    gateway.shutdown().await;
    ExitCode::SUCCESS
}

/// Starts the admin listener, when the configuration has one; a token generated at this start
/// is printed once (only its hash is kept).
pub(crate) async fn start_admin(
    gateway: &Gateway,
) -> Result<Option<rampart_admin::AdminServer>, ExitCode> {
    match rampart_admin::start(gateway).await {
        Ok(Some(a)) => {
            if let Some(t) = a.generated_token() {
                let file = gateway
                    .snapshot()
                    .admin
                    .as_ref()
                    .map(|c| c.token_hash_file.display().to_string())
                    .unwrap_or_default();
                eprintln!(
                    "The admin token, generated at this first start (shown once; only its SHA-256 is kept in {file}):\n\n    {t}\n\nThe dashboard: {}/ui/",
                    a.url()
                );
            }
            Ok(Some(a))
        }
        Ok(None) => Ok(None),
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// Waits for Ctrl-C or SIGTERM.
pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
