//! Backup and restore to and from a file: the logical format of `anxin_store::backup`,
//! gzip-compressed when the file name ends in `.gz` (restore recognises gzip by its magic bytes).
//!
//! A backup holds ciphertexts and wrapped data keys, never the master keys: restoring needs the
//! same master keys in configuration, and is refused (nothing written) without them. The file is
//! written beside its final name and renamed when complete, readable by the owner only, so a
//! half-written backup never carries the final name.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde::Serialize;

use crate::app::App;

#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub compressed: bool,
    pub schema_version: i64,
    pub tables: BTreeMap<String, u64>,
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub schema_version: i64,
    pub tables: BTreeMap<String, u64>,
    pub rows: u64,
    /// The running process still holds the keys it loaded at start-up: open the app anew
    /// (restart the server) before using the restored data.
    pub reopen_required: bool,
}

enum Sink {
    Plain(BufWriter<File>),
    Gz(Box<GzEncoder<BufWriter<File>>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gz(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gz(w) => w.flush(),
        }
    }
}

impl Sink {
    fn finish(self) -> std::io::Result<File> {
        let w = match self {
            Sink::Plain(w) => w,
            Sink::Gz(g) => g.finish()?,
        };
        let f = w
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        f.sync_all()?;
        Ok(f)
    }
}

fn create_private(path: &Path) -> std::io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// Write a consistent backup of the whole database to `out`.
pub async fn backup(app: &App, out: &Path) -> anyhow::Result<BackupReport> {
    let compressed = out.extension().is_some_and(|e| e == "gz");
    let file_name = out
        .file_name()
        .with_context(|| format!("{} is not a file name", out.display()))?
        .to_string_lossy()
        .into_owned();
    let tmp = out.with_file_name(format!(".{file_name}.partial"));
    let tmp2 = tmp.clone();
    let sink = tokio::task::spawn_blocking(move || -> std::io::Result<Sink> {
        let f = BufWriter::new(create_private(&tmp2)?);
        Ok(if compressed {
            Sink::Gz(Box::new(GzEncoder::new(f, flate2::Compression::default())))
        } else {
            Sink::Plain(f)
        })
    })
    .await?
    .with_context(|| format!("creating {}", tmp.display()))?;
    let result = anxin_store::backup::backup(&app.store, sink).await;
    let (sink, counts) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(anyhow::Error::new(e).context("backing up"));
        }
    };
    let (tmp3, out2) = (tmp.clone(), out.to_path_buf());
    let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let f = sink.finish()?;
        let len = f.metadata()?.len();
        drop(f);
        std::fs::rename(&tmp3, &out2)?;
        Ok(len)
    })
    .await?
    .with_context(|| format!("writing {}", out.display()))?;
    tracing::info!(path = %out.display(), bytes, rows = counts.rows, "backup written");
    Ok(BackupReport {
        path: out.to_path_buf(),
        bytes,
        compressed,
        schema_version: counts.schema_version,
        tables: counts.tables,
        rows: counts.rows,
    })
}

fn open_reader(path: &Path) -> std::io::Result<Box<dyn BufRead + Send>> {
    let mut r = BufReader::new(File::open(path)?);
    let gz = r.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(BufReader::new(MultiGzDecoder::new(r)))
    } else {
        Box::new(r)
    })
}

/// Restore a backup into this app's database, which must be empty and at the backup's schema
/// version. All or nothing.
pub async fn restore(app: &App, from: &Path) -> anyhow::Result<RestoreReport> {
    let path = from.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || open_reader(&path))
        .await?
        .with_context(|| format!("opening {}", from.display()))?;
    let counts = anxin_store::backup::restore(&app.store, reader)
        .await
        .with_context(|| format!("restoring {}", from.display()))?;
    tracing::info!(path = %from.display(), rows = counts.rows, "backup restored");
    Ok(RestoreReport {
        schema_version: counts.schema_version,
        tables: counts.tables,
        rows: counts.rows,
        reopen_required: true,
    })
}
