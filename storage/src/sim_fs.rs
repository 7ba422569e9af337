//! A simulated disk for crash tests. Every file keeps what was fsynced apart from what was
//! only written. `crash` throws away unsynced writes (keeping, at random, a prefix of them:
//! a torn last write) and kills every open handle, as a power cut would; the log is then
//! reopened on the same `SimFs`. Directory operations (create, rename, remove) are taken as
//! durable at once: the real log fsyncs its directories, and a simulated directory journal
//! would test the simulator more than the log.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::fs::{DirLock, LockFailure, VFile, Vfs};

#[derive(Default)]
struct Contents {
    durable: Vec<u8>,
    current: Vec<u8>,
}

#[derive(Default)]
struct FileData {
    contents: Mutex<Contents>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct Tree {
    files: BTreeMap<PathBuf, Arc<FileData>>,
    dirs: BTreeSet<PathBuf>,
}

/// An in-memory disk that can crash. Cheap to clone (clones share the disk).
#[derive(Clone, Default)]
pub struct SimFs {
    tree: Arc<Mutex<Tree>>,
    generation: Arc<AtomicU64>,
    /// The life this handle belongs to; after a crash it refuses every operation.
    life: u64,
    syncs: Arc<AtomicU64>,
}

struct SimFile {
    data: Arc<FileData>,
    generation: u64,
    fs_generation: Arc<AtomicU64>,
    syncs: Arc<AtomicU64>,
}

impl SimFile {
    /// Locks the contents, failing if a crash killed this handle. The check happens under
    /// the lock, so no write of a dead handle can land after the crash trimmed the file.
    fn contents(&self) -> io::Result<MutexGuard<'_, Contents>> {
        let c = lock(&self.data.contents);
        if self.fs_generation.load(Ordering::SeqCst) != self.generation {
            return Err(io::Error::other("simulated crash: this handle died"));
        }
        Ok(c)
    }
}

impl VFile for SimFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        let c = self.contents()?;
        let pos = pos as usize;
        if pos >= c.current.len() {
            return Ok(0);
        }
        let n = buf.len().min(c.current.len() - pos);
        buf[..n].copy_from_slice(&c.current[pos..pos + n]);
        Ok(n)
    }
    fn write_at(&self, data: &[u8], pos: u64) -> io::Result<()> {
        let mut c = self.contents()?;
        let pos = pos as usize;
        if c.current.len() < pos + data.len() {
            c.current.resize(pos + data.len(), 0);
        }
        c.current[pos..pos + data.len()].copy_from_slice(data);
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.contents()?.current.len() as u64)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.contents()?.current.resize(len as usize, 0);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        let mut c = self.contents()?;
        c.durable = c.current.clone();
        self.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

struct SimLock;
impl DirLock for SimLock {}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", p.display()),
    )
}

impl SimFs {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many file fsyncs happened so far.
    pub fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    fn alive(&self) -> io::Result<()> {
        if self.generation.load(Ordering::SeqCst) != self.life {
            return Err(io::Error::other(
                "simulated crash: this file system handle died",
            ));
        }
        Ok(())
    }

    /// A power cut: every open file and this `SimFs` handle (with its clones) die, and each
    /// file keeps what was fsynced plus a random-length prefix of what was written after
    /// (chosen from `seed`). Returns the handle for the disk's next life.
    pub fn crash(&self, seed: u64) -> SimFs {
        let life = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let tree = lock(&self.tree);
        let mut rng = seed;
        for data in tree.files.values() {
            let mut c = lock(&data.contents);
            let Contents { durable, current } = &mut *c;
            let appended_only = current.len() > durable.len() && current.starts_with(durable);
            let keep_extra = if appended_only {
                let unsynced = current.len() - durable.len();
                (splitmix(&mut rng) % (unsynced as u64 + 1)) as usize
            } else {
                0
            };
            let kept_len = durable.len() + keep_extra;
            let mut survived = std::mem::take(durable);
            if keep_extra > 0 {
                survived.extend_from_slice(&current[survived.len()..kept_len]);
            }
            *current = survived.clone();
            *durable = survived;
        }
        SimFs {
            tree: self.tree.clone(),
            generation: self.generation.clone(),
            life,
            syncs: self.syncs.clone(),
        }
    }

    fn parent_exists(tree: &Tree, path: &Path) -> bool {
        match path.parent() {
            None => true,
            Some(p) if p.as_os_str().is_empty() => true,
            Some(p) => tree.dirs.contains(p),
        }
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Vfs for SimFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        self.alive()?;
        let mut tree = lock(&self.tree);
        let data = match tree.files.get(path) {
            Some(d) => d.clone(),
            None if create => {
                if !Self::parent_exists(&tree, path) {
                    return Err(not_found(path));
                }
                let d = Arc::new(FileData::default());
                tree.files.insert(path.to_path_buf(), d.clone());
                d
            }
            None => return Err(not_found(path)),
        };
        Ok(Arc::new(SimFile {
            data,
            generation: self.life,
            fs_generation: self.generation.clone(),
            syncs: self.syncs.clone(),
        }))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.alive()?;
        let mut tree = lock(&self.tree);
        for a in path.ancestors() {
            if !a.as_os_str().is_empty() {
                tree.dirs.insert(a.to_path_buf());
            }
        }
        Ok(())
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.alive()?;
        let tree = lock(&self.tree);
        if !tree.dirs.contains(path) {
            return Err(not_found(path));
        }
        let names: BTreeSet<String> = tree
            .files
            .keys()
            .chain(tree.dirs.iter())
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        Ok(names.into_iter().collect())
    }
    fn exists(&self, path: &Path) -> bool {
        let tree = lock(&self.tree);
        tree.files.contains_key(path) || tree.dirs.contains(path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        lock(&self.tree).dirs.contains(path)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.alive()?;
        lock(&self.tree)
            .files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.alive()?;
        let mut tree = lock(&self.tree);
        if !tree.dirs.contains(path) {
            return Err(not_found(path));
        }
        tree.files.retain(|p, _| !p.starts_with(path));
        tree.dirs.retain(|p| !p.starts_with(path));
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.alive()?;
        let mut tree = lock(&self.tree);
        if let Some(d) = tree.files.remove(from) {
            tree.files.insert(to.to_path_buf(), d);
            return Ok(());
        }
        if !tree.dirs.contains(from) {
            return Err(not_found(from));
        }
        let moved_dirs: Vec<PathBuf> = tree
            .dirs
            .iter()
            .filter(|p| p.starts_with(from))
            .cloned()
            .collect();
        for d in moved_dirs {
            tree.dirs.remove(&d);
            let rel = d.strip_prefix(from).unwrap_or(Path::new(""));
            tree.dirs.insert(to.join(rel));
        }
        let moved_files: Vec<PathBuf> = tree
            .files
            .keys()
            .filter(|p| p.starts_with(from))
            .cloned()
            .collect();
        for f in moved_files {
            if let Some(d) = tree.files.remove(&f) {
                let rel = f.strip_prefix(from).unwrap_or(Path::new(""));
                tree.files.insert(to.join(rel), d);
            }
        }
        Ok(())
    }
    fn sync_dir(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }
    fn lock_dir(&self, _dir: &Path) -> Result<Box<dyn DirLock>, LockFailure> {
        Ok(Box::new(SimLock))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_keeps_synced_and_maybe_a_prefix() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        let f = fs.open(Path::new("/d/x"), true).unwrap();
        f.write_at(b"hello", 0).unwrap();
        f.sync().unwrap();
        f.write_at(b" world", 5).unwrap();
        let old = fs.clone();
        let fs = fs.crash(1);
        assert!(f.len().is_err(), "old handles die");
        assert!(old.open(Path::new("/d/x"), false).is_err());
        let g = fs.open(Path::new("/d/x"), false).unwrap();
        let len = g.len().unwrap() as usize;
        assert!((5..=11).contains(&len));
        let mut buf = vec![0; len];
        g.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf[..], &b"hello world"[..len]);
    }
}
