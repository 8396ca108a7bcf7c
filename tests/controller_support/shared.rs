//! Shared by the support modules of every end-to-end suite (`controller_support`,
//! `review_support`, `token_support`): the shared control plane, and what one run of a
//! binary did.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tlsboot_harness::ControlPlane;

/// The shared control plane of this test binary, or `None` (skip, loudly) when the
/// binaries are missing outside CI.
pub async fn control_plane() -> Option<&'static ControlPlane> {
    ControlPlane::shared()
        .await
        .expect("the real control plane must start")
}

/// What one run of a binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with everything printed unless the run succeeded.
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "command failed:\n{self:#?}");
        self
    }

    /// Panics with everything printed unless the run failed.
    pub fn failed(self) -> Run {
        assert_ne!(self.code, 0, "expected a failure:\n{self:#?}");
        self
    }

    /// The `error: …` line `tlsboot`'s `main` prints, without the prefix; the run must
    /// have failed.
    pub fn error(&self) -> &str {
        assert_ne!(self.code, 0, "expected a failure:\n{self:#?}");
        self.stderr
            .lines()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or_else(|| panic!("no `error:` line:\n{self:#?}"))
    }
}
