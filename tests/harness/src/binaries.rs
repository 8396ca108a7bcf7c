//! Locating (and, for people, building) the control-plane binaries.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result, io};

/// Overrides the binary directory (must hold `etcd`, `kube-apiserver`,
/// `kube-controller-manager`).
pub const BIN_DIR_ENV: &str = "TLSBOOT_CONTROLPLANE_BIN";

/// The three executables of a control plane.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub dir: PathBuf,
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
}

impl Binaries {
    fn in_dir(dir: PathBuf) -> Binaries {
        Binaries {
            etcd: dir.join("etcd"),
            kube_apiserver: dir.join("kube-apiserver"),
            kube_controller_manager: dir.join("kube-controller-manager"),
            dir,
        }
    }

    fn missing(&self) -> Vec<String> {
        [
            &self.etcd,
            &self.kube_apiserver,
            &self.kube_controller_manager,
        ]
        .into_iter()
        .filter(|p| !is_executable(p))
        .map(|p| p.display().to_string())
        .collect()
    }
}

pub(crate) fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `controlplane/build.sh` of this checkout.
pub fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../controlplane/build.sh")
}

/// Set (to anything but empty/`false`/`0`) to make a missing control plane a failure even
/// outside CI. `.ci/run` sets it, so the CI entry point cannot skip whatever `CI` says.
pub const REQUIRE_ENV: &str = "TLSBOOT_REQUIRE_CONTROLPLANE";

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether this run is CI (`CI` set to anything but empty/`false`/`0`).
pub fn in_ci() -> bool {
    env_flag("CI")
}

/// Whether a test that cannot run must fail rather than skip: in CI (`CI`) or when
/// `TLSBOOT_REQUIRE_CONTROLPLANE` is set.
pub fn skipping_forbidden() -> bool {
    in_ci() || env_flag(REQUIRE_ENV)
}

/// The programs the end-to-end tests drive besides the control plane, and why.
pub const TOOLS: &[(&str, &str)] = &[
    (
        "kubectl",
        "the tests use the real kubectl as the other side",
    ),
    ("curl", "the daemon tests read /metrics and /readyz with it"),
];

/// `name` as found on `PATH`, if it is an executable there.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn missing_tools() -> Result<()> {
    let missing: Vec<String> = TOOLS
        .iter()
        .filter(|(name, _)| on_path(name).is_none())
        .map(|(name, why)| format!("{name} ({why})"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::ToolsMissing {
            detail: missing.join(", "),
        })
    }
}

/// Finds built binaries without building: `$TLSBOOT_CONTROLPLANE_BIN`, else
/// the cache directory that `controlplane/build.sh --print` names.
pub fn find_binaries() -> Result<Binaries> {
    let dir = match std::env::var_os(BIN_DIR_ENV) {
        Some(d) => PathBuf::from(d),
        None => {
            let script = build_script();
            let out = Command::new("bash")
                .arg(&script)
                .arg("--print")
                .stderr(Stdio::inherit())
                .output()
                .map_err(io(format!("run {} --print", script.display())))?;
            if !out.status.success() {
                return Err(Error::BinariesMissing {
                    detail: format!("{} --print failed: {}", script.display(), out.status),
                });
            }
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
    };
    let bins = Binaries::in_dir(dir);
    let missing = bins.missing();
    if missing.is_empty() {
        Ok(bins)
    } else {
        Err(Error::BinariesMissing {
            detail: format!("not found: {}", missing.join(", ")),
        })
    }
}

/// Runs `controlplane/build.sh` (a no-op when the cache is warm), streaming
/// its progress to our stderr, then returns the binaries. About 20 minutes on
/// 2 cores the first time.
pub fn build_binaries() -> Result<Binaries> {
    if std::env::var_os(BIN_DIR_ENV).is_some() {
        return find_binaries();
    }
    let script = build_script();
    let status = Command::new("bash")
        .arg(&script)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map_err(io(format!("run {}", script.display())))?;
    if !status.success() {
        return Err(Error::BuildFailed { status });
    }
    find_binaries()
}

/// For tests: the binaries, `Ok(None)` (after a loud message) when they or the tools the tests
/// drive ([`TOOLS`]) are missing and skipping is allowed, or the error when it is not
/// ([`skipping_forbidden`]: CI, `TLSBOOT_REQUIRE_CONTROLPLANE`) so that the test fails.
pub fn binaries_for_tests() -> Result<Option<Binaries>> {
    match find_binaries().and_then(|b| missing_tools().map(|()| b)) {
        Ok(b) => Ok(Some(b)),
        Err(e @ (Error::BinariesMissing { .. } | Error::ToolsMissing { .. }))
            if !skipping_forbidden() =>
        {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                use std::io::Write as _;
                // Straight to the fd: libtest captures eprintln! of passing tests.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n==================== SKIPPED: needs a real control plane ====================\n\
                     {e}\n\
                     (with CI=true or {REQUIRE_ENV}=1 these tests fail instead)\n\
                     =============================================================================\n"
                );
            });
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
