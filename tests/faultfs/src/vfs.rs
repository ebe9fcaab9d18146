//! The fault-injecting SQLite VFS: the one module of this crate with `unsafe`.
//!
//! SQLite reaches files only through a VFS, a table of C function pointers.
//! [`FaultFs::register`] adds one that wraps SQLite's default (unix) VFS and
//! models what a disk with a volatile write cache does:
//!
//! - every file named by a path keeps its *volatile* contents in memory (what
//!   the page cache holds); reads and writes go there, and the real file is
//!   not touched;
//! - `xSync` of a file writes its volatile contents into the real file: the
//!   real files hold exactly what was synced, which is what survives a power
//!   cut;
//! - the power cut comes at a chosen I/O operation (the N+1th write, truncate,
//!   sync or delete, counted over every file): the volatile contents of every
//!   file (database, `-wal`, `-journal`) are dropped, that operation fails,
//!   and so does every later read, write, sync, lock or open, as they would
//!   on a machine without power.
//!
//! Reopening the store afterwards with the normal (unix) VFS reads the real
//! files, that is, only what was synced before the cut.
//!
//! What is not modelled, and why that is sound for these tests:
//! - the `-shm` file is mapped memory the unix VFS opens itself; it holds no
//!   durable data (SQLite rebuilds it from the WAL when the first connection
//!   opens a database), so it passes through, and the tests delete it after
//!   a cut, as a reboot would leave it unreliable;
//! - creating and deleting a file count as durable at once (the unix VFS
//!   syncs the directory where SQLite asks it to);
//! - a flush writes the synced data into the real file without an fsync of
//!   the real file: the power that is cut is simulated, the test machine's
//!   is not, and 200 seeds of real fsyncs would only make the tests slow;
//! - files without a name or deleted on close (SQLite's temporary files)
//!   pass straight through: nothing durable lives in them.
//!
//! [`SyncMode::Ignored`] turns `xSync` into a no-op that succeeds: a store on
//! a disk that lies about syncing, or one running with `synchronous = OFF`
//! (which never calls `xSync`). The power-loss test uses it to show its
//! checker catches lost acknowledged writes.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ops::Range;
use std::ptr;
use std::sync::{Mutex, MutexGuard};

use rusqlite::ffi;

/// What `xSync` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Makes the file's writes durable, as a sync on an honest disk does.
    Honest,
    /// Succeeds and does nothing: the writes stay volatile until the cut.
    Ignored,
}

/// Why the VFS could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// SQLite has no default VFS to wrap.
    #[error("SQLite has no default VFS to wrap")]
    NoDefaultVfs,
    /// The name is taken, or holds a NUL byte.
    #[error("VFS name {0:?} is taken or not a C string")]
    BadName(String),
    /// `sqlite3_vfs_register` failed.
    #[error("sqlite3_vfs_register failed with code {0}")]
    Sqlite(c_int),
}

/// A registered fault-injecting VFS and the switch that cuts its power.
///
/// Registered VFSs live until the process ends (SQLite holds a pointer to
/// them), so [`FaultFs::register`] leaks one of these per name; a test
/// registers one and re-arms it between runs with [`FaultFs::arm`].
#[derive(Debug)]
pub struct FaultFs {
    /// The name connections open it by.
    name: String,
    /// The wrapped VFS.
    inner: InnerVfs,
    /// The cache model and the cut; SQLite may call from any thread.
    state: Mutex<State>,
}

/// The default VFS, which SQLite owns and never frees.
#[derive(Debug)]
struct InnerVfs(*mut ffi::sqlite3_vfs);

// SAFETY: the unix VFS object is a static inside SQLite that SQLite itself
// calls from every thread (the library is built threadsafe); we only read it.
unsafe impl Send for InnerVfs {}
// SAFETY: as above.
unsafe impl Sync for InnerVfs {}

#[derive(Debug)]
struct State {
    /// What `xSync` does.
    mode: SyncMode,
    /// The power is cut at the operation after this many; `None`: never.
    cut_after: Option<u64>,
    /// Writes, truncates, syncs and deletes so far.
    ops: u64,
    /// The power is off.
    cut: bool,
    /// Volatile contents of every file opened since the last arm, by path.
    files: HashMap<String, Volatile>,
}

/// One file as the page cache holds it.
#[derive(Debug)]
struct Volatile {
    /// The contents reads see.
    data: Vec<u8>,
    /// The real file's length after the last flush.
    durable_len: usize,
    /// The shortest the volatile file has been since the last flush: the
    /// real file must be cut to it before the writes are replayed, or bytes a
    /// truncate removed would come back between them.
    min_len: usize,
    /// Byte ranges written since the last flush, merged when adjacent.
    dirty: Vec<Range<usize>>,
}

impl Volatile {
    /// Copies what lies at `offset` into `out`; a short read, with the rest
    /// zeroed as SQLite requires, when the file ends first.
    fn read(&self, offset: usize, out: &mut [u8]) -> c_int {
        let have = self
            .data
            .get(offset..)
            .map(|rest| &rest[..rest.len().min(out.len())])
            .unwrap_or(&[]);
        out[..have.len()].copy_from_slice(have);
        if have.len() < out.len() {
            out[have.len()..].fill(0);
            return ffi::SQLITE_IOERR_SHORT_READ;
        }
        ffi::SQLITE_OK
    }

    fn write(&mut self, offset: usize, bytes: &[u8]) {
        let end = offset + bytes.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[offset..end].copy_from_slice(bytes);
        match self.dirty.last_mut() {
            Some(last) if last.start <= offset && offset <= last.end => {
                last.end = last.end.max(end);
            }
            _ => self.dirty.push(offset..end),
        }
    }

    fn truncate(&mut self, len: usize) {
        self.data.resize(len, 0);
        self.min_len = self.min_len.min(len);
    }
}

impl FaultFs {
    /// Registers a fault-injecting VFS under `name` (not as the default), in
    /// [`SyncMode::Honest`] and never cutting until [`FaultFs::arm`]ed.
    pub fn register(name: &str) -> Result<&'static FaultFs, RegisterError> {
        let c_name = CString::new(name).map_err(|_| RegisterError::BadName(name.to_string()))?;
        // SAFETY: sqlite3_vfs_find takes a NUL-terminated name or NULL (the
        // default) and returns a VFS SQLite owns for the process's lifetime.
        let inner = unsafe { ffi::sqlite3_vfs_find(ptr::null()) };
        if inner.is_null() {
            return Err(RegisterError::NoDefaultVfs);
        }
        // SAFETY: as above, with a valid C string.
        if !unsafe { ffi::sqlite3_vfs_find(c_name.as_ptr()) }.is_null() {
            return Err(RegisterError::BadName(name.to_string()));
        }
        let fs: &'static FaultFs = Box::leak(Box::new(FaultFs {
            name: name.to_string(),
            inner: InnerVfs(inner),
            state: Mutex::new(State {
                mode: SyncMode::Honest,
                cut_after: None,
                ops: 0,
                cut: false,
                files: HashMap::new(),
            }),
        }));
        // SAFETY: `inner` is a valid VFS (checked non-null above); copying it
        // keeps its dynamic-library methods, which the unix VFS implements
        // without looking at their VFS argument. Every method that does (or
        // might) is replaced by one that calls the inner VFS with its own
        // pointer.
        let mut vfs: ffi::sqlite3_vfs = unsafe { *inner };
        let real_size = vfs.szOsFile;
        vfs.iVersion = 2;
        vfs.szOsFile = REAL_OFFSET as c_int + real_size;
        vfs.pNext = ptr::null_mut();
        vfs.zName = c_name.into_raw();
        vfs.pAppData = fs as *const FaultFs as *mut c_void;
        vfs.xOpen = Some(x_open);
        vfs.xDelete = Some(x_delete);
        vfs.xAccess = Some(x_access);
        vfs.xFullPathname = Some(x_full_pathname);
        vfs.xRandomness = Some(x_randomness);
        vfs.xSleep = Some(x_sleep);
        vfs.xCurrentTime = Some(x_current_time);
        vfs.xGetLastError = Some(x_get_last_error);
        vfs.xCurrentTimeInt64 = Some(x_current_time_int64);
        vfs.xSetSystemCall = None;
        vfs.xGetSystemCall = None;
        vfs.xNextSystemCall = None;
        let vfs = Box::leak(Box::new(vfs));
        // SAFETY: the VFS object and its name are leaked, so they outlive
        // every connection, as SQLite requires; 0 = not the default.
        let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 0) };
        if rc != ffi::SQLITE_OK {
            return Err(RegisterError::Sqlite(rc));
        }
        Ok(fs)
    }

    /// The name to open connections with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Restores power and forgets every file, then arms the next cut: after
    /// `cut_after` operations (writes, truncates, syncs, deletes), or never.
    /// Call it only when no connection has a file of this VFS open.
    pub fn arm(&self, mode: SyncMode, cut_after: Option<u64>) {
        let mut state = self.lock();
        state.mode = mode;
        state.cut_after = cut_after;
        state.ops = 0;
        state.cut = false;
        state.files.clear();
    }

    /// Operations counted since the last arm.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Whether the power has been cut.
    pub fn is_cut(&self) -> bool {
        self.lock().cut
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves the model as it was
        // at the panic, which is still what the disk holds.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state while the power is on; `None` once it is cut.
    fn powered(&self) -> Option<MutexGuard<'_, State>> {
        let state = self.lock();
        (!state.cut).then_some(state)
    }

    /// The state, with one durable-affecting operation counted; `None` when
    /// the power is off ([`State::step`]).
    fn stepped(&self) -> Option<MutexGuard<'_, State>> {
        let mut state = self.lock();
        state.step().then_some(state)
    }

    /// `look` at the volatile contents of `key`; `err` without power or
    /// without the file.
    fn read_on(&self, key: &str, err: c_int, look: impl FnOnce(&Volatile) -> c_int) -> c_int {
        match self.powered() {
            Some(state) => state.files.get(key).map_or(err, look),
            None => err,
        }
    }

    /// Counts one durable-affecting operation and applies `change` to the
    /// volatile contents of `key`; `err` without power or without the file.
    fn step_on(&self, key: &str, err: c_int, change: impl FnOnce(&mut Volatile)) -> c_int {
        let Some(mut state) = self.stepped() else {
            return err;
        };
        match state.files.get_mut(key) {
            Some(volatile) => {
                change(volatile);
                ffi::SQLITE_OK
            }
            None => err,
        }
    }
}

impl State {
    /// Counts one durable-affecting operation; `false` when the power is off,
    /// having been cut by this one or before.
    fn step(&mut self) -> bool {
        if self.cut {
            return false;
        }
        self.ops += 1;
        if self.cut_after.is_some_and(|n| self.ops > n) {
            self.cut = true;
            self.files.clear();
            return false;
        }
        true
    }
}

/// Our file object: SQLite's base struct first (it reads `pMethods` from
/// there), then what we need, then the inner VFS's file at [`REAL_OFFSET`] of
/// the same allocation, which SQLite sizes from our `szOsFile`.
#[repr(C)]
struct FaultFile {
    base: ffi::sqlite3_file,
    fs: *const FaultFs,
    /// The path the volatile contents are kept under; `None` for files that
    /// pass through. Owned: freed by `x_close`.
    key: *mut Option<String>,
    real: *mut ffi::sqlite3_file,
}

/// Where the inner VFS's file object starts, aligned for any C struct.
const REAL_OFFSET: usize = (std::mem::size_of::<FaultFile>() + 15) & !15;

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // 2: the shared-memory methods WAL needs, but no xFetch/xUnfetch, so
    // SQLite never memory-maps (and so never reads behind the model's back).
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

/// Calls an optional C method, or answers `$missing` when it is absent.
macro_rules! call {
    ($method:expr, $missing:expr $(, $arg:expr)*) => {
        match $method {
            Some(f) => f($($arg),*),
            None => $missing,
        }
    };
}

/// A file method for a file that passes through: the inner one, or `$err`
/// once the power is cut.
macro_rules! pass_through {
    ($fs:expr, $err:expr, $method:expr $(, $arg:expr)*) => {
        if $fs.is_cut() {
            $err
        } else {
            call!($method, $err $(, $arg)*)
        }
    };
}

/// VFS methods that only forward to the inner VFS, with its own pointer:
/// `name(arguments) => its method, the answer when the inner VFS lacks it`.
macro_rules! forward_vfs {
    ($($name:ident($($arg:ident: $ty:ty),*) => $method:ident, $missing:expr;)*) => {$(
        unsafe extern "C" fn $name(vfs: *mut ffi::sqlite3_vfs, $($arg: $ty),*) -> c_int {
            // SAFETY: forwarded as SQLite gave them, with the inner VFS's own
            // pointer.
            unsafe {
                let inner = fs_of(vfs).inner.0;
                call!((*inner).$method, $missing, inner $(, $arg)*)
            }
        }
    )*};
}

/// File methods that only forward to the inner file, with or without power:
/// `name(arguments) -> answer => its method, the answer when it lacks it`.
macro_rules! forward_file {
    ($($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty => $method:ident, $missing:expr;)*) => {$(
        $(#[$doc])*
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> $ret {
            // SAFETY: an open file and the arguments SQLite gave, forwarded.
            unsafe {
                let (_, _, real, methods) = parts(file);
                call!(methods.$method, $missing, real $(, $arg)*)
            }
        }
    )*};
}

/// A read or write's length and offset as indices; `None` when negative.
fn span(amount: c_int, offset: ffi::sqlite3_int64) -> Option<(usize, usize)> {
    Some((usize::try_from(amount).ok()?, usize::try_from(offset).ok()?))
}

/// Our VFS state from a VFS pointer SQLite hands back.
///
/// # Safety
/// `vfs` must be one [`FaultFs::register`] registered.
unsafe fn fs_of<'a>(vfs: *mut ffi::sqlite3_vfs) -> &'a FaultFs {
    // SAFETY: pAppData was set to a leaked, never-freed FaultFs.
    unsafe { &*((*vfs).pAppData as *const FaultFs) }
}

/// The parts of an open file.
///
/// # Safety
/// `file` must be a file `x_open` opened and `x_close` has not closed.
unsafe fn parts<'a>(
    file: *mut ffi::sqlite3_file,
) -> (
    &'a FaultFs,
    Option<&'a str>,
    *mut ffi::sqlite3_file,
    &'a ffi::sqlite3_io_methods,
) {
    // SAFETY: x_open wrote a FaultFile here, with a leaked FaultFs, an owned
    // key and the inner file it opened (so its pMethods is set and static).
    unsafe {
        let ff = file as *mut FaultFile;
        let real = (*ff).real;
        (
            &*(*ff).fs,
            (*(*ff).key).as_deref(),
            real,
            &*(*real).pMethods,
        )
    }
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite calls this with our VFS, a name that is NULL or a C
    // string, and `file` pointing to szOsFile bytes it allocated.
    unsafe {
        let fs = fs_of(vfs);
        (*file).pMethods = ptr::null();
        if fs.is_cut() {
            return ffi::SQLITE_CANTOPEN;
        }
        let inner = fs.inner.0;
        let real = (file as *mut u8).add(REAL_OFFSET) as *mut ffi::sqlite3_file;
        let rc = call!(
            (*inner).xOpen,
            ffi::SQLITE_CANTOPEN,
            inner,
            name,
            real,
            flags,
            out_flags
        );
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        let modelled = !name.is_null() && flags & ffi::SQLITE_OPEN_DELETEONCLOSE == 0;
        let key = modelled.then(|| CStr::from_ptr(name).to_string_lossy().into_owned());
        if let Some(key) = &key {
            let mut state = fs.lock();
            if !state.files.contains_key(key) {
                match read_whole(real) {
                    Some(data) => {
                        let len = data.len();
                        state.files.insert(
                            key.clone(),
                            Volatile {
                                data,
                                durable_len: len,
                                min_len: len,
                                dirty: Vec::new(),
                            },
                        );
                    }
                    None => {
                        drop(state);
                        call!((*(*real).pMethods).xClose, ffi::SQLITE_OK, real);
                        return ffi::SQLITE_CANTOPEN;
                    }
                }
            }
        }
        ptr::write(
            file as *mut FaultFile,
            FaultFile {
                base: ffi::sqlite3_file { pMethods: &METHODS },
                fs,
                key: Box::into_raw(Box::new(key)),
                real,
            },
        );
        ffi::SQLITE_OK
    }
}

/// The whole of a real file, read through the inner VFS.
///
/// # Safety
/// `real` must be an open file of the inner VFS.
unsafe fn read_whole(real: *mut ffi::sqlite3_file) -> Option<Vec<u8>> {
    // SAFETY: `real` is open, so its methods are set; the buffer is as long
    // as the length we pass.
    unsafe {
        let methods = &*(*real).pMethods;
        let mut size: i64 = 0;
        if call!(methods.xFileSize, ffi::SQLITE_IOERR, real, &mut size) != ffi::SQLITE_OK {
            return None;
        }
        let len = usize::try_from(size).ok()?;
        let mut data = vec![0u8; len];
        if len > 0 {
            let amount = c_int::try_from(len).ok()?;
            let rc = call!(
                methods.xRead,
                ffi::SQLITE_IOERR,
                real,
                data.as_mut_ptr() as *mut c_void,
                amount,
                0
            );
            if rc != ffi::SQLITE_OK {
                return None;
            }
        }
        Some(data)
    }
}

unsafe extern "C" fn x_delete(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    // SAFETY: our VFS and a C string, from SQLite.
    unsafe {
        let fs = fs_of(vfs);
        {
            let Some(mut state) = fs.stepped() else {
                return ffi::SQLITE_IOERR_DELETE;
            };
            let key = CStr::from_ptr(name).to_string_lossy();
            state.files.remove(key.as_ref());
        }
        let inner = fs.inner.0;
        call!(
            (*inner).xDelete,
            ffi::SQLITE_IOERR_DELETE,
            inner,
            name,
            sync_dir
        )
    }
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    // SAFETY: our VFS, a C string and an out pointer, from SQLite.
    unsafe {
        let fs = fs_of(vfs);
        {
            let Some(state) = fs.powered() else {
                return ffi::SQLITE_IOERR_ACCESS;
            };
            let key = CStr::from_ptr(name).to_string_lossy();
            // The unix VFS's meaning of "exists": there, and not empty.
            if flags == ffi::SQLITE_ACCESS_EXISTS {
                if let Some(file) = state.files.get(key.as_ref()) {
                    *out = c_int::from(!file.data.is_empty());
                    return ffi::SQLITE_OK;
                }
            }
        }
        let inner = fs.inner.0;
        call!(
            (*inner).xAccess,
            ffi::SQLITE_IOERR_ACCESS,
            inner,
            name,
            flags,
            out
        )
    }
}

forward_vfs! {
    x_full_pathname(name: *const c_char, n_out: c_int, out: *mut c_char) => xFullPathname, ffi::SQLITE_ERROR;
    x_randomness(n: c_int, out: *mut c_char) => xRandomness, 0;
    x_sleep(micros: c_int) => xSleep, 0;
    x_current_time(out: *mut f64) => xCurrentTime, ffi::SQLITE_ERROR;
    x_get_last_error(n: c_int, out: *mut c_char) => xGetLastError, 0;
    x_current_time_int64(out: *mut ffi::sqlite3_int64) => xCurrentTimeInt64, ffi::SQLITE_ERROR;
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes each file x_open opened once; the key box is
    // ours and freed here only.
    unsafe {
        let ff = file as *mut FaultFile;
        drop(Box::from_raw((*ff).key));
        (*ff).key = ptr::null_mut();
        let real = (*ff).real;
        let rc = call!((*(*real).pMethods).xClose, ffi::SQLITE_OK, real);
        (*file).pMethods = ptr::null();
        rc
    }
}

/// `xRead` and `xWrite`, which differ only in what they do with a modelled
/// file's volatile contents: a file that passes through is answered by the
/// inner method, a negative length or offset by the error, and a modelled
/// file by the body, given the length and offset as indices.
macro_rules! read_write {
    ($($name:ident($buf:ident: $buf_ty:ty) => $method:ident, $err:expr,
        |$fs:ident, $key:ident, $amount:ident, $offset:ident| $model:block)*) => {$(
        unsafe extern "C" fn $name(
            file: *mut ffi::sqlite3_file,
            $buf: $buf_ty,
            amount: c_int,
            offset: ffi::sqlite3_int64,
        ) -> c_int {
            // SAFETY: an open file, and a buffer of `amount` bytes, from SQLite.
            unsafe {
                let ($fs, key, real, methods) = parts(file);
                let Some($key) = key else {
                    return pass_through!($fs, $err, methods.$method, real, $buf, amount, offset);
                };
                let Some(($amount, $offset)) = span(amount, offset) else {
                    return $err;
                };
                $model
            }
        }
    )*};
}

read_write! {
    x_read(buf: *mut c_void) => xRead, ffi::SQLITE_IOERR_READ, |fs, key, amount, offset| {
        let out = std::slice::from_raw_parts_mut(buf as *mut u8, amount);
        fs.read_on(key, ffi::SQLITE_IOERR_READ, |volatile| volatile.read(offset, out))
    }
    x_write(buf: *const c_void) => xWrite, ffi::SQLITE_IOERR_WRITE, |fs, key, amount, offset| {
        let bytes = std::slice::from_raw_parts(buf as *const u8, amount);
        fs.step_on(key, ffi::SQLITE_IOERR_WRITE, |volatile| volatile.write(offset, bytes))
    }
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: an open file, from SQLite.
    unsafe {
        let (fs, key, real, methods) = parts(file);
        let err = ffi::SQLITE_IOERR_TRUNCATE;
        let Some(key) = key else {
            return pass_through!(fs, err, methods.xTruncate, real, size);
        };
        let Ok(size) = usize::try_from(size) else {
            return err;
        };
        fs.step_on(key, err, |volatile| volatile.truncate(size))
    }
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: an open file, from SQLite.
    unsafe {
        let (fs, key, real, methods) = parts(file);
        let err = ffi::SQLITE_IOERR_FSYNC;
        let Some(key) = key else {
            return pass_through!(fs, err, methods.xSync, real, flags);
        };
        let Some(mut state) = fs.stepped() else {
            return err;
        };
        if state.mode == SyncMode::Ignored {
            return ffi::SQLITE_OK;
        }
        let Some(volatile) = state.files.get_mut(key) else {
            return err;
        };
        flush(volatile, real, methods)
    }
}

/// The most one flush hands the inner VFS in one `xWrite`: SQLite never
/// writes more than a page (64 KiB at most) at once, and the unix VFS relies
/// on it, masking every write to 17 bits (a 128 KiB write there writes
/// nothing and reports a full disk). Merged ranges are split back to this.
const FLUSH_WRITE_MAX: usize = 64 * 1024;

/// Makes a file's volatile contents its real contents.
///
/// # Safety
/// `real` must be an open file of the inner VFS with `methods` its methods.
unsafe fn flush(
    volatile: &mut Volatile,
    real: *mut ffi::sqlite3_file,
    methods: &ffi::sqlite3_io_methods,
) -> c_int {
    // SAFETY: `real` is open; every buffer passed lies inside `volatile.data`.
    unsafe {
        if volatile.min_len < volatile.durable_len {
            let rc = call!(
                methods.xTruncate,
                ffi::SQLITE_IOERR_FSYNC,
                real,
                volatile.min_len as i64
            );
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        for range in &volatile.dirty {
            let end = range.end.min(volatile.data.len());
            let Some(bytes) = volatile.data.get(range.start..end) else {
                continue;
            };
            for (i, piece) in bytes.chunks(FLUSH_WRITE_MAX).enumerate() {
                let offset = range.start + i * FLUSH_WRITE_MAX;
                let rc = call!(
                    methods.xWrite,
                    ffi::SQLITE_IOERR_FSYNC,
                    real,
                    piece.as_ptr() as *const c_void,
                    piece.len() as c_int,
                    offset as i64
                );
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
            }
        }
        let len = volatile.data.len();
        let rc = call!(methods.xTruncate, ffi::SQLITE_IOERR_FSYNC, real, len as i64);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        volatile.durable_len = len;
        volatile.min_len = len;
        volatile.dirty.clear();
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_file_size(
    file: *mut ffi::sqlite3_file,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: an open file and an out pointer, from SQLite.
    unsafe {
        let (fs, key, real, methods) = parts(file);
        let err = ffi::SQLITE_IOERR_FSTAT;
        let Some(key) = key else {
            return pass_through!(fs, err, methods.xFileSize, real, out);
        };
        fs.read_on(key, err, |volatile| {
            *out = volatile.data.len() as i64;
            ffi::SQLITE_OK
        })
    }
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: an open file, from SQLite.
    unsafe {
        let (fs, _, real, methods) = parts(file);
        pass_through!(fs, ffi::SQLITE_IOERR_LOCK, methods.xLock, real, level)
    }
}

forward_file! {
    /// Unlocking works without power: it releases what this process holds,
    /// so a reopen is not blocked by it.
    x_unlock(level: c_int) -> c_int => xUnlock, ffi::SQLITE_IOERR_UNLOCK;
    x_check_reserved_lock(out: *mut c_int) -> c_int => xCheckReservedLock, ffi::SQLITE_IOERR_CHECKRESERVEDLOCK;
    x_sector_size() -> c_int => xSectorSize, 4096;
}

unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    match op {
        // Hints that make the unix VFS grow or round the real file behind
        // the model's back: honoured as hints are, by being free to ignore.
        ffi::SQLITE_FCNTL_SIZE_HINT | ffi::SQLITE_FCNTL_CHUNK_SIZE => ffi::SQLITE_OK,
        // No memory map: it would read the real file, not the volatile one.
        ffi::SQLITE_FCNTL_MMAP_SIZE => ffi::SQLITE_NOTFOUND,
        // SAFETY: an open file and the argument SQLite gave, forwarded.
        _ => unsafe {
            let (_, _, real, methods) = parts(file);
            call!(methods.xFileControl, ffi::SQLITE_NOTFOUND, real, op, arg)
        },
    }
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: an open file, from SQLite.
    unsafe {
        let (_, _, real, methods) = parts(file);
        // Only "power-safe overwrite" holds in the model (a lost write takes
        // no neighbouring bytes with it); any claim that would let SQLite
        // skip a sync (atomic or sequential writes) is not ours to make.
        call!(methods.xDeviceCharacteristics, 0, real) & ffi::SQLITE_IOCAP_POWERSAFE_OVERWRITE
    }
}

forward_file! {
    /// Shared memory passes through: see the module doc on `-shm`.
    x_shm_map(region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) -> c_int => xShmMap, ffi::SQLITE_IOERR_SHMMAP;
    x_shm_lock(offset: c_int, n: c_int, flags: c_int) -> c_int => xShmLock, ffi::SQLITE_IOERR_SHMLOCK;
    x_shm_barrier() -> () => xShmBarrier, ();
    x_shm_unmap(delete: c_int) -> c_int => xShmUnmap, ffi::SQLITE_OK;
}
