//! The file-system layer every byte of the log goes through. `RealFs` is the operating
//! system; `SimFs` (in `sim_fs.rs`) is a disk that can crash, so tests can check what
//! survives when unsynced writes are lost. Only what the log needs is here: positional
//! reads/writes, truncation, fsync, and directory operations.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An open file.
pub trait VFile: Send + Sync {
    /// Reads up to `buf.len()` bytes at `pos`; returns how many were read (0 at the end).
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;
    fn write_at(&self, data: &[u8], pos: u64) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes every write so far durable (fdatasync).
    fn sync(&self) -> io::Result<()>;
    /// Bytes `pos..pos + len` of the file memory-mapped read-only, where the file system
    /// can (`None` where it cannot: reads then copy): the map and where `pos` is in it
    /// (maps start on a page). Only for bytes below the file's length that nobody changes
    /// or truncates while the map lives: a segment's, which only ever grows at its end.
    fn map_range(&self, _pos: u64, _len: usize) -> Option<(memmap2::Mmap, usize)> {
        None
    }

    /// Reads exactly `buf.len()` bytes at `pos`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut pos: u64) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.read_at(buf, pos)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short read"));
            }
            buf = &mut buf[n..];
            pos += n as u64;
        }
        Ok(())
    }
}

/// A held lock on a data directory; dropping it releases the lock.
pub trait DirLock: Send + Sync {}

/// Why a data directory could not be locked.
pub enum LockFailure {
    /// Another process holds it; the text names the holder (its pid, when known).
    Held(String),
    Io(io::Error),
}

/// File-system operations used by the log.
pub trait Vfs: Send + Sync + 'static {
    /// Opens a file for reading and writing, creating it if `create` is set.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>>;
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The names of a directory's entries.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    fn exists(&self, path: &Path) -> bool;
    fn is_dir(&self, path: &Path) -> bool;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Atomically renames, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes a directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Takes the exclusive lock of a data directory for this process.
    fn lock_dir(&self, dir: &Path) -> Result<Box<dyn DirLock>, LockFailure>;
}

/// Reads a whole file.
pub fn read_file(vfs: &dyn Vfs, path: &Path) -> io::Result<Vec<u8>> {
    let f = vfs.open(path, false)?;
    let len = f.len()? as usize;
    let mut buf = vec![0; len];
    f.read_exact_at(&mut buf, 0)?;
    Ok(buf)
}

/// Replaces a file's contents atomically and durably: write a temporary file, fsync it,
/// rename it over the target, fsync the directory.
pub fn write_file_atomic(vfs: &dyn Vfs, path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = vfs.remove_file(&tmp);
    let f = vfs.open(&tmp, true)?;
    f.set_len(0)?;
    f.write_at(data, 0)?;
    f.sync()?;
    drop(f);
    vfs.rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        vfs.sync_dir(parent)?;
    }
    Ok(())
}

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl VFile for File {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, pos)
    }
    fn write_at(&self, data: &[u8], pos: u64) -> io::Result<()> {
        FileExt::write_all_at(self, data, pos)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
    fn sync(&self) -> io::Result<()> {
        self.sync_data()
    }
    fn map_range(&self, pos: u64, len: usize) -> Option<(memmap2::Mmap, usize)> {
        // Where pages are larger, an offset on a 4 KiB boundary is refused: the read copies.
        const PAGE: u64 = 4096;
        let start = pos / PAGE * PAGE;
        let lead = (pos - start) as usize;
        // SAFETY: a map is UB if the mapped bytes change under it. Only segments are
        // mapped, and a segment's bytes below its length never change: appends write past
        // the end (a failed one is cut back to where it began, never below), recovery
        // truncates before anything is mapped, and compaction and retention replace or
        // unlink whole files, which leaves an existing map's pages as they were.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(start)
                .len(lead + len)
                .map(self)
        }
        .ok()?;
        Some((map, lead))
    }
}

struct RealLock {
    _file: File,
}
impl DirLock for RealLock {}

impl Vfs for RealFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Arc::new(f))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(path)? {
            out.push(e?.file_name().to_string_lossy().into_owned());
        }
        out.sort();
        Ok(out)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
    fn lock_dir(&self, dir: &Path) -> Result<Box<dyn DirLock>, LockFailure> {
        let path: PathBuf = dir.join(".lock");
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(LockFailure::Io)?;
        match f.try_lock() {
            Ok(()) => {
                f.set_len(0).map_err(LockFailure::Io)?;
                write!(f, "{}", std::process::id()).map_err(LockFailure::Io)?;
                Ok(Box::new(RealLock { _file: f }))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = f.read_to_string(&mut holder);
                let holder = holder.trim();
                Err(LockFailure::Held(if holder.is_empty() {
                    "unknown".into()
                } else {
                    holder.to_string()
                }))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(LockFailure::Io(e)),
        }
    }
}
