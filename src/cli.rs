//! The `anxin` command line: one binary, one subcommand per job.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::app::{App, OpenOptions};
use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "anxin",
    version,
    about = "安心 Anxin: community resilience and emergency management"
)]
pub struct Cli {
    /// Configuration file (TOML); `ANXIN_*` environment variables override it.
    #[arg(long, global = true, env = "ANXIN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL, overriding the configuration: sqlite://path or postgres://…
    #[arg(long, global = true)]
    pub database: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Import data.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Build the demo data set (idempotent: does nothing when it is already there).
    Demo(DemoArgs),
    /// Administration.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many people to generate, spread over 锦江区 as the default 100,000 are (benchmarks).
    #[arg(long, default_value_t = crate::demo::DEFAULT_PEOPLE)]
    pub people: usize,
    /// Instead of building: replay a scenario into a running server — `rainstorm` through the
    /// demo's gauges, in real time (about a minute and a half); `flood`, a scripted incident from
    /// a red warning through the plan's activation, volunteers and welfare checks to the review.
    #[arg(long, value_parser = ["rainstorm", "flood"])]
    pub replay: Option<String>,
    /// The running server for `--replay`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub base: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, overriding the configuration.
    #[arg(long)]
    pub listen: Option<String>,
    /// Build the demo data set first when the database is empty.
    #[arg(long)]
    pub demo: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// The statistical division list of a city (areas-/streets-/villages-CCCC.csv).
    Divisions {
        /// The folder holding the three files.
        #[arg(long, default_value = "fixtures/divisions/chengdu")]
        dir: PathBuf,
        /// The city's name, when its code is not one Anxin knows.
        #[arg(long)]
        city_name: Option<String>,
        /// Where the codes come from, recorded with each code.
        #[arg(long, default_value = "nbs-2023")]
        source: String,
    },
    /// People with households (one row per person), CSV or XLSX.
    People(ListImportArgs),
    /// Buildings, CSV or XLSX.
    Buildings(ListImportArgs),
    /// Dwellings, CSV or XLSX.
    Dwellings(ListImportArgs),
    /// Vulnerable people (by document number or person id), CSV or XLSX.
    Vulnerable(ListImportArgs),
    /// Facilities, CSV or XLSX.
    Facilities(ListImportArgs),
}

/// Arguments of a list import.
#[derive(Debug, Args)]
pub struct ListImportArgs {
    /// The file: .csv (UTF-8, with or without BOM) or .xlsx (first sheet).
    #[arg(long)]
    pub file: PathBuf,
    /// The community's 12-digit statistical code.
    #[arg(long)]
    pub community: String,
    /// Import the valid rows even when others are wrong (by default any error writes nothing).
    #[arg(long)]
    pub valid_only: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a staff account with one grant (bootstraps the first administrators). The
    /// password is read from ANXIN_NEW_PASSWORD or, when unset, from the first line of stdin.
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        display_name: String,
        /// A role: system_admin, security_admin, audit_admin, district_officer, street_officer,
        /// community_worker, grid_worker, provider, volunteer, inspector.
        #[arg(long)]
        role: String,
        /// Where the grant applies: a division code (e.g. 510104017001) or `grid:<id>`.
        #[arg(long)]
        scope: String,
    },
    /// Re-wrap every data key under the current master key. With a key file (no keys in the
    /// configuration), first generate a new master key and make it current.
    RotateKey {
        /// Afterwards remove the old master keys from the key file.
        #[arg(long)]
        drop_old: bool,
    },
    /// Print a new master key line (id:algorithm:base64) for the configuration.
    NewMasterKey {
        #[arg(long)]
        id: String,
        #[arg(long, default_value = "aes-256-gcm")]
        algorithm: String,
    },
    /// Write a logical backup (ciphertexts stay encrypted; master keys are not included).
    Backup {
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a logical backup into an empty database.
    Restore {
        #[arg(long)]
        from: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the documented example configuration.
    Example,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("错误 error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut c = Config::load(cli.config.as_deref()).context("reading configuration")?;
    if let Some(db) = &cli.database {
        c.database.url.clone_from(db);
    }
    Ok(c)
}

fn init_logs(c: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&c.log.filter));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if c.log.format == "json" {
        b.json().try_init()
    } else {
        b.try_init()
    };
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Config(ConfigCommand::Example) = &cli.command {
        print!("{}", crate::config::example());
        return Ok(());
    }
    if let Command::Admin(AdminCommand::NewMasterKey { id, algorithm }) = &cli.command {
        let alg = algorithm
            .parse()
            .map_err(|_| anyhow::anyhow!("unknown algorithm {algorithm}"))?;
        let (_, line) = anxin_crypto::KeyRing::generate_master_key(id, alg)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!("{}", line.expose());
        return Ok(());
    }
    let mut config = load_config(&cli)?;
    init_logs(&config);
    if let Command::Admin(AdminCommand::RotateKey { drop_old }) = &cli.command {
        return rotate_key(&mut config, *drop_old);
    }
    let demo_first = matches!(&cli.command, Command::Serve(ServeArgs { demo: true, .. }));
    if let Command::Demo(DemoArgs {
        replay: Some(scenario),
        base,
        ..
    }) = &cli.command
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        if scenario == "flood" {
            return rt.block_on(crate::demo_ops::replay_flood(base));
        }
        return rt.block_on(crate::demo_monitor::replay(
            base,
            90,
            std::time::Duration::from_secs(1),
        ));
    }
    if let Command::Demo(DemoArgs { people, .. }) = &cli.command {
        println!("{}", crate::demo::build_seeded_with(&config, *people)?);
        return Ok(());
    }
    if demo_first {
        let summary = crate::demo::build_seeded(&config)?;
        println!("{summary}");
    }
    // Opening may use the blocking PostgreSQL client, which must not run inside the runtime.
    let app = App::open(config, OpenOptions::default())?;
    let rt = runtime()?;
    rt.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve(app, args).await,
            Command::Migrate => {
                let v = app.store.read(|c, _| anxin_store::migrate::current_version(c)).await?;
                println!("schema version {v}");
                Ok(())
            }
            Command::Import(ImportCommand::Divisions { dir, city_name, source }) => {
                match crate::divisions::import(&app, &dir, city_name.as_deref(), &source).await {
                    Ok(rep) => {
                        for l in &rep.lines {
                            println!("{l}");
                        }
                        println!(
                            "added {} renamed {} recoded {} moved {} merged {} split {} retired {} unchanged {}",
                            rep.added, rep.renamed, rep.recoded, rep.moved, rep.merged, rep.split, rep.retired, rep.unchanged
                        );
                        Ok(())
                    }
                    Err(crate::divisions::ImportError::Rows(errs)) => {
                        for e in &errs {
                            eprintln!("{e}");
                        }
                        anyhow::bail!("{} invalid rows; nothing was imported", errs.len())
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Command::Import(ImportCommand::People(a)) => {
                import_list(&app, crate::io::Kind::People, a).await
            }
            Command::Import(ImportCommand::Buildings(a)) => {
                import_list(&app, crate::io::Kind::Buildings, a).await
            }
            Command::Import(ImportCommand::Dwellings(a)) => {
                import_list(&app, crate::io::Kind::Dwellings, a).await
            }
            Command::Import(ImportCommand::Vulnerable(a)) => {
                import_list(&app, crate::io::Kind::Vulnerable, a).await
            }
            Command::Import(ImportCommand::Facilities(a)) => {
                import_list(&app, crate::io::Kind::Facilities, a).await
            }
            Command::Demo(_) => Ok(()),
            Command::Admin(AdminCommand::CreateUser { username, display_name, role, scope }) => {
                let role: anxin_domain::Role = role.parse().map_err(|e| anyhow::anyhow!("--role: {e}"))?;
                let scope = resolve_scope(&app, &scope).await?;
                let password = match std::env::var("ANXIN_NEW_PASSWORD") {
                    Ok(p) => p,
                    Err(_) => {
                        let mut line = String::new();
                        std::io::stdin().read_line(&mut line)?;
                        line.trim_end_matches(['\r', '\n']).to_owned()
                    }
                };
                let id = crate::http::admin::create_staff_user(&app, &username, &display_name, &password, vec![(role, scope)]).await?;
                println!("created user {username} ({id})");
                Ok(())
            }
            Command::Admin(AdminCommand::Backup { out }) => {
                let r = crate::platform::backup::backup(&app, &out).await?;
                println!("{r:?}");
                Ok(())
            }
            Command::Admin(AdminCommand::Restore { from }) => {
                let r = crate::platform::backup::restore(&app, &from).await?;
                println!("{r:?}");
                println!("restart the server before use: it loads keys at start-up");
                Ok(())
            }
            Command::Admin(AdminCommand::RotateKey { .. } | AdminCommand::NewMasterKey { .. })
            | Command::Config(_) => Ok(()),
        }
    })
}

/// A scope given on the command line: a division code or `grid:<id>`.
pub async fn resolve_scope(app: &App, raw: &str) -> anyhow::Result<anxin_domain::Scope> {
    use anxin_store::tree::TreeStore;
    if let Some(id) = raw.strip_prefix("grid:") {
        return Ok(anxin_domain::Scope::Grid(id.parse().context("grid id")?));
    }
    let code = raw.to_owned();
    let node = app
        .store
        .read(move |c, _| c.find_by_code(&anxin_store::scope::Caller::system(), &code))
        .await
        .with_context(|| format!("no division with code {raw}"))?;
    Ok(anxin_domain::Scope::Node(node.id))
}

/// `anxin import people|buildings|dwellings|vulnerable|facilities …`: read the file, import with a progress bar on stderr (hidden when
/// stderr is not a terminal), print the report.
async fn import_list(app: &App, kind: crate::io::Kind, a: ListImportArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    use std::sync::atomic::Ordering;
    let format = crate::io::Format::from_path(&a.file)
        .ok_or_else(|| anyhow::anyhow!("--file: use a .csv or .xlsx file"))?;
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let scope = resolve_scope(app, &a.community).await?;
    let anxin_domain::Scope::Node(community) = scope else {
        anyhow::bail!("--community: give a community's statistical code");
    };
    let started = std::time::Instant::now();
    let sheet =
        tokio::task::spawn_blocking(move || crate::io::sheet::read(&bytes, format)).await??;
    let progress = std::sync::Arc::new(crate::io::Progress::default());
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr())
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let watch = {
        let (bar, p) = (bar.clone(), progress.clone());
        tokio::spawn(async move {
            loop {
                let total = p.total.load(Ordering::Relaxed);
                let v = p.validated.load(Ordering::Relaxed);
                let w = p.written.load(Ordering::Relaxed);
                bar.set_length(total);
                if v < total || w == 0 {
                    bar.set_message("校验 validating");
                    bar.set_position(v);
                } else {
                    bar.set_message("写入 writing");
                    bar.set_position(w);
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        })
    };
    let opts = crate::io::people::Options::new(community, a.valid_only);
    let res = crate::io::lists::import_kind(
        kind,
        &app.store,
        anxin_store::WriteCtx::system("cli-import"),
        &anxin_store::scope::Caller::system(),
        sheet,
        &opts,
        progress,
    )
    .await;
    watch.abort();
    bar.finish_and_clear();
    let report = res?;
    let secs = started.elapsed().as_secs_f64();
    let entry = anxin_store::audit::AuditEntry::new("import")
        .target("node", community)
        .detail(serde_json::json!({
            "kind": kind.as_str(), "rows": report.rows, "imported": report.imported,
            "errors": report.errors.len(), "valid_only": a.valid_only, "via": "cli",
        }));
    app.store
        .write(anxin_store::WriteCtx::system("cli-import"), move |tx| {
            anxin_store::audit::record(tx, entry).map(|_| ())
        })
        .await?;
    for e in &report.errors {
        println!("第 {} 行 [{}] {} ({})", e.row, e.column, e.message, e.code);
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = report.imported as f64 / secs.max(1e-9);
    println!(
        "rows {} valid {} imported {} households_created {} errors {} seconds {secs:.3} rows_per_sec {rate:.0}",
        report.rows,
        report.valid,
        report.imported,
        report.households_created,
        report.errors.len(),
    );
    if !report.errors.is_empty() && !report.written {
        anyhow::bail!("{} errors; nothing was imported", report.errors.len());
    }
    Ok(())
}

async fn serve(app: App, args: ServeArgs) -> anyhow::Result<()> {
    let listen = args
        .listen
        .unwrap_or_else(|| app.config.server.listen.clone());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let services = crate::platform::start(&app);
    let monitor = crate::monitor::start(&app);
    tracing::info!(address = %listen, backend = app.store.dialect().name(), "anxin serving");
    println!("安心 Anxin: http://{listen}/");
    axum::serve(
        listener,
        crate::http::router(app).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    monitor.stop().await;
    services.stop().await;
    Ok(())
}

/// Rotate the master key: re-wrap data keys under the current one (generating it first when
/// keys live in the key file).
fn rotate_key(config: &mut Config, drop_old: bool) -> anyhow::Result<()> {
    let file_mode = config.crypto.master_keys.is_empty();
    let path = config.crypto.master_key_file.clone();
    let mut lines = Vec::new();
    if file_mode {
        lines = crate::app::read_key_file(&path)?;
        let next = format!("k{}", lines.len() + 1);
        let alg = anxin_crypto::Algorithm::Aes256Gcm;
        let (_, line) = anxin_crypto::KeyRing::generate_master_key(&next, alg)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        lines.push(line.expose().clone());
        crate::app::write_key_file(&path, &lines)?;
        config.crypto.current = Some(next);
    } else if drop_old {
        anyhow::bail!("--drop-old works on the key file; with configured keys, remove the old key from the configuration");
    }
    let app = App::open(config.clone(), OpenOptions::default())?;
    let current = app.store.env().keys.ring().current().id().to_owned();
    let n = app.store.rotate_keys_blocking()?;
    println!("re-wrapped {n} keys under master key {current}");
    if file_mode && drop_old {
        let keep: Vec<String> = lines
            .into_iter()
            .filter(|l| l.starts_with(&format!("{current}:")))
            .collect();
        crate::app::write_key_file(&path, &keep)?;
        println!("removed old master keys from {}", path.display());
    }
    Ok(())
}
