//! The recorder's file writer: JSON lines, a header line at the start of each file, rotation
//! by size (`path`, `path.1`, … `path.N`, oldest last, beyond `max_files` deleted), files
//! created readable by their owner only (they hold traffic, even redacted).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::record::{FileHeader, Record};

/// Where and how much to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterConfig {
    /// The current file; rotated files get `.1`, `.2`, … after the name.
    pub path: PathBuf,
    /// A file is rotated once it holds this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept beside the current one.
    pub max_files: u32,
}

/// Writes records to rotating files.
#[derive(Debug)]
pub struct RotatingWriter {
    cfg: WriterConfig,
    header: FileHeader,
    file: Option<BufWriter<File>>,
    written: u64,
}

impl RotatingWriter {
    /// A writer; the file is opened (appended to) at the first record.
    pub fn new(cfg: WriterConfig, header: FileHeader) -> Self {
        Self {
            cfg,
            header,
            file: None,
            written: 0,
        }
    }

    /// Appends one record as one line, rotating first when the file is full.
    pub fn write(&mut self, record: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if self.written > 0 && self.written + line.len() as u64 > self.cfg.max_bytes {
            self.rotate()?;
        }
        if self.file.is_none() {
            self.open()?;
        }
        if let Some(f) = &mut self.file {
            f.write_all(&line)?;
            self.written += line.len() as u64;
        }
        Ok(())
    }

    /// Writes what is buffered to the file.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }

    fn open(&mut self) -> std::io::Result<()> {
        if let Some(dir) = self.cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(&self.cfg.path)?;
        let len = file.metadata()?.len();
        let mut w = BufWriter::with_capacity(64 * 1024, file);
        self.written = len;
        if len == 0 {
            let mut h = serde_json::to_vec(&self.header).map_err(std::io::Error::other)?;
            h.push(b'\n');
            w.write_all(&h)?;
            self.written = h.len() as u64;
        }
        self.file = Some(w);
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if let Some(mut f) = self.file.take() {
            f.flush()?;
        }
        let n = self.cfg.max_files;
        if n == 0 {
            std::fs::remove_file(&self.cfg.path).or_else(ignore_missing)?;
        } else {
            std::fs::remove_file(rotated(&self.cfg.path, n)).or_else(ignore_missing)?;
            for i in (1..n).rev() {
                std::fs::rename(rotated(&self.cfg.path, i), rotated(&self.cfg.path, i + 1))
                    .or_else(ignore_missing)?;
            }
            std::fs::rename(&self.cfg.path, rotated(&self.cfg.path, 1)).or_else(ignore_missing)?;
        }
        self.written = 0;
        self.open()
    }
}

impl Drop for RotatingWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// The `i`th rotated file of `path`.
pub fn rotated(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::{read_file, Format};
    use crate::record::Request;

    fn rec(i: u64) -> Record {
        Record {
            v: 1,
            id: format!("r{i}"),
            ts: crate::format_ts_us(1_800_000_000_000_000 + i),
            req: Request {
                method: "GET".into(),
                path: format!("/items/{i}"),
                ..Request::default()
            },
            ..Record::default()
        }
    }

    #[test]
    fn files_rotate_by_size_and_keep_max_files() {
        let dir =
            std::env::temp_dir().join(format!("rampart-traffic-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("t.jsonl");
        let cfg = WriterConfig {
            path: path.clone(),
            max_bytes: 1_000,
            max_files: 2,
        };
        let header = FileHeader {
            rampart_traffic: 1,
            node: Some("n".into()),
            ..FileHeader::default()
        };
        let mut w = RotatingWriter::new(cfg, header);
        for i in 0..100 {
            w.write(&rec(i)).unwrap();
        }
        w.flush().unwrap();
        assert!(
            !rotated(&path, 3).exists(),
            "no more than max_files rotated files"
        );
        let mut seen = Vec::new();
        for p in [rotated(&path, 2), rotated(&path, 1), path.clone()] {
            assert!(std::fs::metadata(&p).unwrap().len() <= 1_000);
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(
                    std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                    0o600
                );
            }
            let t = read_file(&p, Format::Auto).unwrap();
            assert!(t.skipped.is_empty());
            assert_eq!(
                t.header.unwrap().node.as_deref(),
                Some("n"),
                "each file has its header"
            );
            seen.extend(t.entries.into_iter().map(|e| e.record.id));
        }
        // The newest records, in order, without a gap.
        let first: u64 = seen[0][1..].parse().unwrap();
        let want: Vec<String> = (first..100).map(|i| format!("r{i}")).collect();
        assert_eq!(seen, want);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
