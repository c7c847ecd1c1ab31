//! `veza-stream`: the command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use veza_stream::{package, Options, Rendition, Stage};

/// jemalloc, chosen by measurement: see the `jemalloc` feature in Cargo.toml.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "veza-stream",
    version,
    about = "Real-time audio streaming server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Package one audio file into a gapless, loudness-normalised HLS ladder.
    Package {
        /// The audio file (MP3, FLAC, WAV, AIFF, CAF, Ogg Vorbis/Opus, WebM/MKV, M4A AAC/ALAC, ...).
        input: PathBuf,
        /// The output directory; built beside it and renamed into place on success.
        outdir: PathBuf,
        /// Comma-separated renditions: opus-<kbps>, aac-<kbps>, flac.
        #[arg(long, default_value = "opus-96,aac-128,flac", value_delimiter = ',')]
        renditions: Vec<Rendition>,
        /// Target segment length in seconds (rounded to 320 ms steps).
        #[arg(long, default_value_t = 6.0)]
        segment_seconds: f64,
        /// Keep the source loudness in the lossy renditions.
        #[arg(long)]
        no_normalize: bool,
        /// Print one JSON summary line instead of a progress bar.
        #[arg(long)]
        json: bool,
    },
    /// Run the server: upload, transcode jobs and HLS delivery. Needs no configuration.
    Serve {
        /// A TOML configuration file (see config/default.toml); VEZA_* variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Development JWTs for the control API.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Print the control API's OpenAPI 3.1 document.
    Openapi,
    /// Apply the metadata store's migrations and exit.
    Migrate {
        /// A TOML configuration file; VEZA_* variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint an HS256 JWT signed with auth.jwt_hs256_secret (or the development secret that
    /// `serve` keeps in data_dir/dev-secrets.toml), with the configured issuer and audience.
    Create {
        /// The subject (`sub`): the user or service the token stands for.
        #[arg(long)]
        sub: String,
        /// admin, artist or listener.
        #[arg(long)]
        role: String,
        /// Lifetime, such as 15m, 1h or 7d.
        #[arg(long, default_value = "1h")]
        ttl: humantime::Duration,
        /// A TOML configuration file; VEZA_* variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<veza_stream::Config> {
    let text = match path {
        Some(p) => {
            Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
        }
        None => None,
    };
    Ok(veza_stream::Config::load(
        text.as_deref(),
        std::env::vars(),
    )?)
}

/// Plain logs for the commands that are not the server (no traces to export).
fn init_logging(log: &veza_stream::config::Log) {
    let filter = tracing_subscriber::EnvFilter::new(&log.level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config } => {
            let config = load_config(config.as_deref())?;
            let rt = runtime()?;
            let telemetry = {
                let _inside = rt.enter();
                veza_stream::telemetry::init(&config.log, &config.telemetry)?
            };
            let served = rt.block_on(async {
                let server = veza_stream::Server::load(config).await?;
                print!("{}", server.banner());
                use std::io::Write;
                std::io::stdout().flush()?;
                server.run().await
            });
            // Spans still batched are sent before the runtime goes.
            rt.block_on(async { tokio::task::spawn_blocking(|| telemetry.shutdown()).await })?;
            // A blocking thread still running (a read of a stalled disk) does not hold the exit.
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
            served
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    sub,
                    role,
                    ttl,
                    config,
                },
        } => {
            let config = load_config(config.as_deref())?;
            let role = veza_stream::auth::Role::parse(&role)
                .with_context(|| format!("--role {role}: use admin, artist or listener"))?;
            anyhow::ensure!(
                !sub.is_empty() && sub.len() <= 255,
                "--sub must be 1 to 255 bytes"
            );
            let secret = if config.auth.jwt_hs256_secret.is_empty() {
                anyhow::ensure!(
                    config.auth.jwt_public_key_file.is_empty()
                        && config.auth.jwt_jwks_file.is_empty()
                        && config.auth.jwt_jwks_url.is_empty(),
                    "this configuration verifies tokens of an external issuer \
                     (auth.jwt_public_key_file or a JWKS) and has no auth.jwt_hs256_secret to sign with"
                );
                veza_stream::auth::DevSecrets::load_existing(&config.server.data_dir)
                    .map_err(anyhow::Error::msg)?
                    .jwt_secret
            } else {
                config.auth.jwt_hs256_secret.clone()
            };
            let token = veza_stream::auth::jwt::mint(
                &secret,
                &sub,
                role,
                ttl.as_secs().max(1),
                &config.auth,
                veza_stream::util::now_secs(),
            )
            .map_err(anyhow::Error::msg)?;
            println!("{token}");
            Ok(())
        }
        Command::Openapi => {
            use std::io::Write;
            let text = veza_stream::http::openapi().to_pretty_json()?;
            writeln!(std::io::stdout(), "{text}").context("writing to stdout")?;
            Ok(())
        }
        Command::Migrate { config } => {
            let config = load_config(config.as_deref())?;
            init_logging(&config.log);
            runtime()?.block_on(async {
                let store =
                    veza_stream::store::open(&config.database.url, config.database.max_connections)
                        .await?;
                store.migrate().await?;
                println!("migrations applied");
                Ok(())
            })
        }
        Command::Package {
            input,
            outdir,
            renditions,
            segment_seconds,
            no_normalize,
            json,
        } => {
            let defaults = Options::default();
            let opts = Options {
                renditions,
                segment_seconds,
                normalize: if no_normalize {
                    None
                } else {
                    defaults.normalize
                },
                ..defaults
            };
            let bar = (!json && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
                let bar = indicatif::ProgressBar::new(1000);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg:>8} [{bar:40}] {percent:>3}% {elapsed}",
                    )
                    .expect("static template is valid")
                    .progress_chars("=> "),
                );
                bar
            });
            let progress = |stage: Stage, fraction: f32| {
                if let Some(bar) = &bar {
                    bar.set_message(stage.name());
                    bar.set_position((stage.overall(fraction) * 1000.0) as u64);
                }
            };
            let summary = package(&input, &outdir, &opts, &progress)
                .with_context(|| format!("packaging {}", input.display()))?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if json {
                println!("{}", serde_json::to_string(&summary.json_line(&outdir))?);
            } else {
                println!(
                    "{} -> {}: {:.3} s, {} renditions, {} segments each, {:.1}x real time",
                    input.display(),
                    outdir.display(),
                    summary.analysis.duration_seconds,
                    summary.analysis.renditions.len(),
                    summary.segments(),
                    summary.realtime_factor()
                );
            }
            Ok(())
        }
    }
}
