//! Helpers shared by the token / rbac / doctor end-to-end tests: run the real `tlsboot`
//! binary against the real control plane and look at what it printed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../controller_support/shared.rs"]
mod shared;
// Not every test binary uses each of them.
#[allow(unused_imports)]
pub use shared::{Run, control_plane};

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tlsboot_harness::{BootstrapToken, ControlPlane, Error, whoami};

/// `tlsboot --kubeconfig <kubeconfig> <args…>`.
pub fn tlsboot_with(kubeconfig: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsboot"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        // Tests must not inherit a developer's context or log settings.
        .env_remove("TLSBOOT_CONTEXT")
        .env_remove("RUST_LOG")
        .output()
        .expect("run tlsboot");
    Run::from(out)
}

/// `tlsboot` as the cluster admin.
pub fn tlsboot(cp: &ControlPlane, args: &[&str]) -> Run {
    tlsboot_with(cp.kubeconfig_path(), args)
}

/// A fresh random token from `tlsboot token generate` (no cluster involved).
pub fn generated_token() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsboot"))
        .args(["token", "generate"])
        .output()
        .expect("run tlsboot");
    assert!(out.status.success());
    let s = String::from_utf8(out.stdout).unwrap();
    s.strip_suffix('\n').unwrap().to_string()
}

pub fn is_token(s: &str) -> bool {
    BootstrapToken::parse(s).is_ok()
}

/// The token Secret's data as strings.
pub async fn token_data(
    cp: &ControlPlane,
    id: &str,
) -> Option<std::collections::BTreeMap<String, String>> {
    let api = Api::<Secret>::namespaced(cp.admin_client().unwrap(), "kube-system");
    let s = api
        .get_opt(&format!("bootstrap-token-{id}"))
        .await
        .unwrap()?;
    Some(
        s.data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
            .collect(),
    )
}

/// A client presenting `token` as bearer token, trusting the cluster CA.
pub fn token_client(cp: &ControlPlane, token: &str) -> kube::Client {
    let mut config = cp.admin().config();
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.to_string().into()),
        ..kube::config::AuthInfo::default()
    };
    kube::Client::try_from(config).unwrap()
}

/// Who the API server says `client` is; `Err(code)` for an HTTP error (401 = refused).
pub async fn authenticate(client: &kube::Client) -> Result<String, u16> {
    match whoami(client).await {
        Ok((user, _)) => Ok(user),
        Err(Error::Kube(kube::Error::Api(s))) => Err(s.code),
        Err(e) => panic!("whoami: {e}"),
    }
}

/// Polls until `f` returns `Some`, or panics after `timeout` describing `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
