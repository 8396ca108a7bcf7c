//! Child processes that never outlive the process that started them.
//!
//! A control plane shared by all tests of a test binary lives in a `static`,
//! so its `Drop` never runs. Three mechanisms cover every way the test process
//! can end:
//!
//! * normal exit (all tests done, or libtest's `exit(101)` after a failure):
//!   an `atexit` guard kills every registered process group and removes the
//!   registered directories (kept when any test panicked, for the logs);
//! * death by signal (Ctrl-C, SIGKILL, abort): each child has
//!   `PR_SET_PDEATHSIG=SIGKILL`. The kernel sends it when the *thread* that
//!   forked the child exits, and every libtest test runs on its own short-lived
//!   thread, so all children are forked from one dedicated thread that lives
//!   as long as the process;
//! * directories left behind by a killed run are swept by the next run
//!   ([`sweep_stale`]).
//!
//! Each child leads its own process group, so a terminal's Ctrl-C reaches only
//! the harness, which then shuts the children down in order.
//!
//! This is the only module with `unsafe`: `pre_exec` (prctl/getppid between
//! fork and exec), `kill` on a process group and `atexit` have no safe std API.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Once, OnceLock, mpsc};
use std::time::Duration;

use crate::error::{Error, Result, io};

type SpawnReply = mpsc::Sender<io::Result<Child>>;

/// Live children by pid. The registry owns the `Child` so the exit guard can
/// reap them without any cooperation from their (possibly leaked) owners.
static LIVE: Mutex<Option<HashMap<u32, Child>>> = Mutex::new(None);
/// Directories to remove at exit: (path, keep when a test panicked).
static EXIT_DIRS: Mutex<Vec<(PathBuf, bool)>> = Mutex::new(Vec::new());
static PANICKED: AtomicBool = AtomicBool::new(false);
static SPAWNER: OnceLock<mpsc::Sender<(Command, SpawnReply)>> = OnceLock::new();
static GUARDS: Once = Once::new();

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// True once any thread of this process has panicked (a failed test).
pub fn any_panic() -> bool {
    PANICKED.load(Ordering::SeqCst)
}

fn install_guards() {
    GUARDS.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            let dirs: Vec<PathBuf> = lock(&EXIT_DIRS)
                .iter()
                .filter(|(_, keep)| *keep)
                .map(|(p, _)| p.clone())
                .collect();
            previous(info);
            for d in dirs {
                eprintln!(
                    "tlsboot-harness: control-plane logs are kept in {}",
                    d.display()
                );
            }
        }));
        #[allow(unsafe_code)]
        // SAFETY: `exit_guard` is an `extern "C" fn()` that never unwinds.
        unsafe {
            libc::atexit(exit_guard);
        }
    });
}

extern "C" fn exit_guard() {
    kill_all();
    let panicked = any_panic();
    let dirs = std::mem::take(&mut *lock(&EXIT_DIRS));
    for (dir, keep_on_panic) in dirs {
        if panicked && keep_on_panic {
            eprintln!("tlsboot-harness: kept {} (a test failed)", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// Kills and reaps every child still registered.
pub(crate) fn kill_all() {
    let children: Vec<Child> = lock(&LIVE)
        .as_mut()
        .map(|m| m.drain().map(|(_, c)| c).collect())
        .unwrap_or_default();
    for mut child in children {
        if !matches!(child.try_wait(), Ok(Some(_))) {
            signal_group(child.id(), libc::SIGKILL);
        }
        let _ = child.wait();
    }
}

/// Registers a directory for removal when the process exits.
pub(crate) fn remove_at_exit(dir: &Path, keep_on_panic: bool) {
    install_guards();
    lock(&EXIT_DIRS).push((dir.to_path_buf(), keep_on_panic));
}

/// Forgets a directory registered with [`remove_at_exit`] (its owner removed it).
pub(crate) fn forget_dir(dir: &Path) {
    lock(&EXIT_DIRS).retain(|(p, _)| p != dir);
}

fn signal_group(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    #[allow(unsafe_code)]
    // SAFETY: kill(2) has no memory-safety preconditions. The pid is a child
    // we have not reaped yet, so its process group id cannot have been reused.
    unsafe {
        libc::kill(-pid, sig);
    }
}

fn spawner() -> &'static mpsc::Sender<(Command, SpawnReply)> {
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<(Command, SpawnReply)>();
        // The sender lives in a static, so this loop (and the thread that
        // PR_SET_PDEATHSIG is tied to) ends only with the process.
        let started = std::thread::Builder::new()
            .name("tlsboot-harness-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(spawn_here(&mut cmd));
                }
            });
        if let Err(e) = started {
            eprintln!("tlsboot-harness: cannot start the spawner thread: {e}");
        }
        tx
    })
}

fn spawn_here(cmd: &mut Command) -> io::Result<Child> {
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
    cmd.process_group(0);
    #[allow(unsafe_code)]
    // SAFETY: the hook runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// A supervised child: its own process group, stdout and stderr appended to a
/// log file, killed with its group on drop, at process exit and (by the
/// kernel) when the process dies. Use it for any child a test starts, e.g.
/// the `tlsboot` daemon under test, so that none can leak.
#[derive(Debug)]
pub struct ChildProcess {
    name: &'static str,
    pid: u32,
    log: PathBuf,
    /// Set once we reaped it ourselves (it then leaves the registry).
    status: Mutex<Option<ExitStatus>>,
    /// Set when [`ChildProcess::stop`] signalled it while it was still running: its exit
    /// was asked for.
    signalled: AtomicBool,
}

impl ChildProcess {
    /// Starts `cmd` (stdin closed, output appended to `log`).
    pub fn spawn(name: &'static str, mut cmd: Command, log: &Path) -> Result<ChildProcess> {
        install_guards();
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io(format!("open {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(io(format!("dup {}", log.display())))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let (tx, rx) = mpsc::channel();
        spawner()
            .send((cmd, tx))
            .map_err(|_| Error::Invalid("the harness spawner thread is gone".into()))?;
        let child = rx
            .recv()
            .map_err(|_| Error::Invalid("the harness spawner thread is gone".into()))?
            .map_err(io(format!("start {name}")))?;
        let pid = child.id();
        lock(&LIVE)
            .get_or_insert_with(HashMap::new)
            .insert(pid, child);
        Ok(ChildProcess {
            name,
            pid,
            log: log.to_path_buf(),
            status: Mutex::new(None),
            signalled: AtomicBool::new(false),
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// SIGKILL to the process group, then reap. Idempotent.
    pub fn kill(&self) {
        self.stop(libc::SIGKILL, Duration::ZERO);
    }

    /// SIGTERM to the process group; SIGKILL after `grace`. Blocks the
    /// calling thread up to `grace`. Idempotent.
    pub fn terminate(&self, grace: Duration) {
        self.stop(libc::SIGTERM, grace);
    }

    /// SIGSTOP to the process group: it keeps its sockets and answers nothing.
    pub fn pause(&self) {
        if lock(&LIVE)
            .as_ref()
            .is_some_and(|m| m.contains_key(&self.pid))
        {
            signal_group(self.pid, libc::SIGSTOP);
        }
    }

    /// SIGCONT to the process group, after [`ChildProcess::pause`].
    pub fn resume(&self) {
        if lock(&LIVE)
            .as_ref()
            .is_some_and(|m| m.contains_key(&self.pid))
        {
            signal_group(self.pid, libc::SIGCONT);
        }
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&self) -> Option<ExitStatus> {
        if let Some(s) = *lock(&self.status) {
            return Some(s);
        }
        let mut live = lock(&LIVE);
        let child = live.as_mut()?.get_mut(&self.pid)?;
        child.try_wait().ok().flatten()
    }

    /// `Some(status)` once the process has exited of its own accord: not because
    /// [`ChildProcess::kill`], [`ChildProcess::terminate`] or the drop signalled it.
    /// An exit that happened before such a signal still counts as its own.
    pub fn exited_unasked(&self) -> Option<ExitStatus> {
        let status = self.exited()?;
        (!self.signalled.load(Ordering::SeqCst)).then_some(status)
    }

    /// Error describing an early exit, with the log's tail.
    pub fn exit_error(&self, status: ExitStatus) -> Error {
        Error::ProcessExited {
            process: self.name,
            status: status.to_string(),
            log: self.log.clone(),
            tail: log_tail(&self.log, 30),
        }
    }

    /// Sends `sig` to the process group, waits up to `grace` for the exit and
    /// then uses SIGKILL. Idempotent. Blocks the calling thread up to `grace`.
    pub(crate) fn stop(&self, sig: libc::c_int, grace: Duration) {
        let child = lock(&LIVE).as_mut().and_then(|m| m.remove(&self.pid));
        let Some(mut child) = child else { return };
        // Once reaped (try_wait reaps), the pid may be reused: never signal it.
        let mut reaped = matches!(child.try_wait(), Ok(Some(_)));
        if !reaped {
            self.signalled.store(true, Ordering::SeqCst);
            signal_group(self.pid, sig);
        }
        if sig != libc::SIGKILL && !reaped {
            let deadline = std::time::Instant::now() + grace;
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    reaped = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if !reaped {
                signal_group(self.pid, libc::SIGKILL);
            }
        }
        if let Ok(s) = child.wait() {
            *lock(&self.status) = Some(s);
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.stop(libc::SIGKILL, Duration::ZERO);
    }
}

/// The last `lines` lines of a log file (best effort).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::from("(no log)");
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    let _ = f.seek(SeekFrom::Start(start));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Removes run directories (`<prefix><pid>-...`) whose process is gone: what a
/// run killed by a signal leaves on tmpfs.
pub(crate) fn sweep_stale(parent: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
