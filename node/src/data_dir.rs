//! The data directory: where a node keeps everything, and how a new one is made.
//!
//! ```text
//! DIR/config.toml   settings (labnet-config), commented, written by init
//! DIR/node.key      Ed25519 private key, mode 0600
//! DIR/node.crt      self-signed certificate
//! DIR/labnet.db     the SQLite store (plus -wal and -shm while open)
//! DIR/daemon.lock   held (flock) by the running daemon; holds its pid
//! DIR/admin.sock    the daemon's admin socket, mode 0600, while it runs
//! ```
//!
//! The directory itself is created with mode 0700: it holds the node's private key
//! and the city's personal data. `init` makes a node only in a directory that
//! does not exist yet or is empty: a directory that already holds other files
//! is someone else's, and is neither written to nor has its mode changed.
//!
//! `daemon.lock` is the instance lock: whoever holds its flock owns the store.
//! The daemon holds it for its whole life; a command working on a stopped
//! node's store holds it ([`DataDir::lock_offline`]) for as long as it works,
//! so a daemon starting meanwhile refuses to start instead of writing the
//! store at the same time, and the command learns from the lock, not from the
//! admin socket, whether a daemon runs.

use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use labnet_config::{Config, ConfigError, Overrides, Role};
use labnet_protocol::NodeId;

use crate::identity::{Identity, IdentityError, CERT_FILE, KEY_FILE};
use crate::store::{Store, StoreError, DB_FILE};

/// The config file's name.
pub const CONFIG_FILE: &str = "config.toml";
/// The admin socket's name.
pub const ADMIN_SOCKET: &str = "admin.sock";
/// The instance lock's name.
pub const LOCK_FILE: &str = "daemon.lock";

/// Paths inside one node's data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

/// Why a node could not be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// `init` on a directory that already holds a node.
    #[error("{dir} already holds a labnet node ({found} exists); nothing was changed. Use another --data-dir, or remove the directory to start over")]
    AlreadyInitialized {
        /// The data directory.
        dir: PathBuf,
        /// The file that shows a node is there.
        found: &'static str,
    },
    /// `init` on a directory that holds files, but no node.
    #[error("{dir} is not empty and holds no labnet node ({found} is there); nothing was changed. Give --data-dir a new or empty directory")]
    NotEmpty {
        /// The data directory.
        dir: PathBuf,
        /// One of the entries found, to show which directory this is.
        found: String,
    },
    /// `init` on a path that is a file, not a directory.
    #[error(
        "{dir} is not a directory; nothing was changed. Give --data-dir a new or empty directory"
    )]
    NotADirectory {
        /// The path given as the data directory.
        dir: PathBuf,
    },
    /// A daemon holds the instance lock, but the command could not reach it on
    /// its admin socket, so it must not work on the store behind its back.
    #[error("the labnet daemon ({holder}) is running on {dir} but does not answer on its admin socket {socket}; nothing was done. Check that the daemon is healthy (its log, `labnet status`); if the socket file was removed, restart the daemon")]
    DaemonUnreachable {
        /// The data directory.
        dir: PathBuf,
        /// Who holds the lock, e.g. `pid 1234`.
        holder: String,
        /// The admin socket that did not answer.
        socket: PathBuf,
    },
    /// No node in the directory.
    #[error("{dir} holds no labnet node: run `labnet init --name NAME` (or `labnet run`, which creates one)")]
    NotInitialized {
        /// The data directory.
        dir: PathBuf,
    },
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The config file or an override is invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The key or certificate could not be made or read.
    #[error("{0}")]
    Identity(#[from] IdentityError),
    /// The store could not be created or opened.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What `labnet init` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InitReport {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The new node's id.
    pub node_id: NodeId,
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Where it will listen.
    pub listen: String,
}

impl DataDir {
    /// A data directory at `root` (which need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    /// `admin.sock`.
    pub fn admin_socket(&self) -> PathBuf {
        self.root.join(ADMIN_SOCKET)
    }

    /// `daemon.lock`.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    /// Whether a node lives here (its config or key exists).
    pub fn is_initialized(&self) -> bool {
        self.existing_node_file().is_some()
    }

    fn existing_node_file(&self) -> Option<&'static str> {
        [CONFIG_FILE, KEY_FILE, CERT_FILE, DB_FILE]
            .into_iter()
            .find(|f| self.root.join(f).exists())
    }

    /// Creates a node here: config, key pair and certificate, empty store.
    ///
    /// Everything is validated before the first file is written, and if a later
    /// step fails the files this call made are removed again, so a failed init
    /// leaves the directory as it found it.
    pub fn init(
        &self,
        name: &str,
        role: Role,
        listen: &str,
        overrides: &[Overrides],
    ) -> Result<InitReport, DataDirError> {
        if let Some(found) = self.existing_node_file() {
            return Err(DataDirError::AlreadyInitialized {
                dir: self.root.clone(),
                found,
            });
        }
        self.refuse_foreign_dir()?;
        let text = labnet_config::default_file(name, role, listen);
        // Validate what we are about to write, with overrides, before writing it.
        let config = Config::load(CONFIG_FILE, &text, overrides)?;
        let identity = Identity::generate()?;

        let created_dir = !self.root.exists();
        create_private_dir(&self.root)?;
        let result = self.write_node(&text, &identity);
        if let Err(e) = result {
            for f in [
                CONFIG_FILE,
                KEY_FILE,
                CERT_FILE,
                DB_FILE,
                "labnet.db-wal",
                "labnet.db-shm",
            ] {
                let _ = fs::remove_file(self.root.join(f));
            }
            if created_dir {
                let _ = fs::remove_dir(&self.root);
            }
            return Err(e);
        }
        Ok(InitReport {
            data_dir: self.root.clone(),
            node_id: identity.node_id(),
            name: config.name,
            role: config.role,
            listen: config.listen.to_string(),
        })
    }

    /// Refuses a path that exists but is not a directory, or is a directory
    /// with anything in it: `init` on `--data-dir ~/Documents` by mistake must
    /// not put a key there, nor make the directory private.
    fn refuse_foreign_dir(&self) -> Result<(), DataDirError> {
        let io = |source| DataDirError::Io {
            path: self.root.clone(),
            source,
        };
        let meta = match fs::metadata(&self.root) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        };
        if !meta.is_dir() {
            return Err(DataDirError::NotADirectory {
                dir: self.root.clone(),
            });
        }
        match fs::read_dir(&self.root).map_err(io)?.next() {
            None => Ok(()),
            Some(entry) => Err(DataDirError::NotEmpty {
                dir: self.root.clone(),
                found: entry
                    .map_err(io)?
                    .file_name()
                    .to_string_lossy()
                    .into_owned(),
            }),
        }
    }

    /// Takes the instance lock for work on a stopped node's store (see the
    /// module docs); the store is this caller's until the lock is dropped.
    ///
    /// Fails with [`DataDirError::DaemonUnreachable`] when another process
    /// holds the lock: a daemon, whose admin socket the caller could not
    /// reach, or another command working offline, which is done in moments
    /// (the caller may try again).
    pub fn lock_offline(&self) -> Result<OfflineLock, DataDirError> {
        match self.take_lock()? {
            LockAttempt::Taken(file) => Ok(OfflineLock {
                data_dir: self.clone(),
                _file: file,
            }),
            LockAttempt::Held { holder } => Err(DataDirError::DaemonUnreachable {
                dir: self.root.clone(),
                holder,
                socket: self.admin_socket(),
            }),
        }
    }

    /// Tries the instance lock (`daemon.lock`) without waiting, for a daemon
    /// or for offline work. Taken, the file holds our pid, on disk, so that a
    /// process refused meanwhile names who holds the store.
    pub(crate) fn take_lock(&self) -> Result<LockAttempt, DataDirError> {
        if !self.is_initialized() {
            return Err(DataDirError::NotInitialized {
                dir: self.root.clone(),
            });
        }
        let path = self.lock_path();
        let io = |source| DataDirError::Io {
            path: path.clone(),
            source,
        };
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                // The holder's pid is a hint for the message; a lock file
                // that does not read still means the lock is held.
                let _ = (&file).take(LOCK_PID_BYTES_MAX).read_to_string(&mut pid);
                let holder = match pid.trim() {
                    "" => "pid unknown".to_string(),
                    pid => format!("pid {pid}"),
                };
                return Ok(LockAttempt::Held { holder });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(LockAttempt::Taken(file))
    }

    fn write_node(&self, config_text: &str, identity: &Identity) -> Result<(), DataDirError> {
        identity.save(&self.root)?;
        let path = self.config_path();
        write_new(&path, config_text.as_bytes())?;
        let store = Store::open(&self.root)?;
        store.checkpoint()?;
        Ok(())
    }

    /// Reads and validates the config, applying overrides in order.
    pub fn load_config(&self, overrides: &[Overrides]) -> Result<Config, DataDirError> {
        let path = self.config_path();
        let text = fs::read_to_string(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                DataDirError::NotInitialized {
                    dir: self.root.clone(),
                }
            } else {
                DataDirError::Io {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        Ok(Config::load(&path.display().to_string(), &text, overrides)?)
    }

    /// Loads the node's key pair and certificate.
    pub fn load_identity(&self) -> Result<Identity, DataDirError> {
        if !self.root.join(KEY_FILE).exists() {
            return Err(DataDirError::NotInitialized {
                dir: self.root.clone(),
            });
        }
        Ok(Identity::load(&self.root)?)
    }

    /// Opens the store, refusing a directory that holds no node (so a typo in
    /// `--data-dir` does not quietly create an empty store somewhere).
    pub fn open_store(&self) -> Result<Store, DataDirError> {
        if !self.is_initialized() {
            return Err(DataDirError::NotInitialized {
                dir: self.root.clone(),
            });
        }
        let mut store = Store::open(&self.root)?;
        // The node key signs every version of our publications. Publications
        // shared before statements existed get their first one here, once.
        store.set_signer(std::sync::Arc::new(self.load_identity()?));
        let signed = store.sign_missing_statements()?;
        if signed > 0 {
            tracing::info!(signed, "signed a first statement for existing publications");
        }
        Ok(store)
    }
}

/// The most of the lock file read for the holder's pid: a pid is a few digits,
/// and the file is only a hint, so a garbled one cannot make a long message.
const LOCK_PID_BYTES_MAX: u64 = 32;

/// What trying the instance lock came to.
pub(crate) enum LockAttempt {
    /// Ours: the open lock file, which keeps it until dropped.
    Taken(File),
    /// Another process holds it.
    Held {
        /// Who, e.g. `pid 1234`, from the lock file.
        holder: String,
    },
}

/// The instance lock, held for work on a stopped node's store
/// ([`DataDir::lock_offline`]); released when dropped.
#[derive(Debug)]
pub struct OfflineLock {
    data_dir: DataDir,
    /// Held for the flock; never read.
    _file: File,
}

impl OfflineLock {
    /// The data directory whose store this lock holds.
    pub fn data_dir(&self) -> &DataDir {
        &self.data_dir
    }
}

fn create_private_dir(path: &Path) -> Result<(), DataDirError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let io = |source| DataDirError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.exists() {
        // An existing directory keeps its mode if it is already private; a
        // world-readable one is tightened, since it is about to hold a private key.
        let mode = fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io)
}

/// The mode of files the data directory writes besides the key: the owner
/// reads and writes, others read (the directory itself is 0700).
const FILE_MODE: u32 = 0o644;

fn write_new(path: &Path, bytes: &[u8]) -> Result<(), DataDirError> {
    crate::identity::write_new_file(path, bytes, FILE_MODE).map_err(|source| DataDirError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_creates_a_node_and_refuses_a_second_time_unchanged() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path().join("node"));
        let report = dir
            .init("Modena", Role::Partner, "127.0.0.1:0", &[])
            .unwrap();
        assert_eq!(dir.load_identity().unwrap().node_id(), report.node_id);
        assert_eq!(dir.load_config(&[]).unwrap().name, "Modena");
        let config_before = fs::read(dir.config_path()).unwrap();
        let err = dir
            .init("Other", Role::Partner, "127.0.0.1:0", &[])
            .unwrap_err();
        assert!(
            matches!(err, DataDirError::AlreadyInitialized { .. }),
            "{err}"
        );
        assert_eq!(fs::read(dir.config_path()).unwrap(), config_before);
        assert_eq!(dir.load_identity().unwrap().node_id(), report.node_id);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(dir.root()).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn init_with_invalid_settings_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path().join("node"));
        assert!(dir.init("", Role::Partner, "127.0.0.1:0", &[]).is_err());
        assert!(dir
            .init("A", Role::Partner, "127.0.0.1:99999", &[])
            .is_err());
        assert!(!dir.root().exists());
    }

    /// `init --data-dir ~/Documents` by mistake: the directory holds someone
    /// else's files, so nothing is written there and its mode is left alone.
    #[test]
    fn init_refuses_a_non_empty_foreign_directory_and_leaves_it_as_it_was() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("documents");
        fs::create_dir(&root).unwrap();
        fs::write(root.join("notes.txt"), "mine").unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let err = DataDir::new(&root)
            .init("Modena", Role::Partner, "127.0.0.1:0", &[])
            .unwrap_err();
        assert!(matches!(err, DataDirError::NotEmpty { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&root.display().to_string()) && msg.contains("not empty"),
            "{msg}"
        );
        let names: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["notes.txt"]);
        assert_eq!(
            fs::metadata(&root).unwrap().permissions().mode() & 0o777,
            0o755
        );

        // A file is not a directory, and stays what it was.
        let file = tmp.path().join("file");
        fs::write(&file, "x").unwrap();
        let err = DataDir::new(&file)
            .init("Modena", Role::Partner, "127.0.0.1:0", &[])
            .unwrap_err();
        assert!(matches!(err, DataDirError::NotADirectory { .. }), "{err}");
        assert_eq!(fs::read(&file).unwrap(), b"x");

        // An empty directory is a fine place for a node, and is made private.
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        fs::set_permissions(&empty, fs::Permissions::from_mode(0o755)).unwrap();
        DataDir::new(&empty)
            .init("Modena", Role::Partner, "127.0.0.1:0", &[])
            .unwrap();
        assert_eq!(
            fs::metadata(&empty).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    /// Whoever holds the offline lock owns the store: a second taker is told
    /// who holds it, and the lock is free again once dropped.
    #[test]
    fn the_offline_lock_is_exclusive_names_its_holder_and_is_released_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path().join("node"));
        assert!(matches!(
            dir.lock_offline(),
            Err(DataDirError::NotInitialized { .. })
        ));
        dir.init("Modena", Role::Partner, "127.0.0.1:0", &[])
            .unwrap();
        let held = dir.lock_offline().unwrap();
        assert_eq!(
            fs::read_to_string(dir.lock_path()).unwrap(),
            std::process::id().to_string()
        );
        match dir.lock_offline() {
            Err(DataDirError::DaemonUnreachable { holder, socket, .. }) => {
                assert_eq!(holder, format!("pid {}", std::process::id()));
                assert_eq!(socket, dir.admin_socket());
            }
            other => panic!("a second lock was taken: {other:?}"),
        }
        drop(held);
        assert!(dir.lock_offline().is_ok());
    }

    #[test]
    fn open_store_refuses_an_empty_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        assert!(matches!(
            dir.open_store(),
            Err(DataDirError::NotInitialized { .. })
        ));
        assert!(!tmp.path().join(DB_FILE).exists());
    }
}
