//! `tlsboot controller --clean-expired-tokens`: while leading, expired bootstrap-token
//! Secrets are deleted and live ones kept (KCM tokencleaner semantics). Its own binary so
//! its daemon does not disturb the other suites.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod controller_support;

use std::time::{Duration, Instant};

use controller_support::*;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use tlsboot_harness::{BootstrapToken, BootstrapTokenOptions, token::token_secret};

#[tokio::test(flavor = "multi_thread")]
async fn expired_tokens_are_deleted_live_ones_kept() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let secrets: Api<Secret> = Api::namespaced(cp.admin_client().unwrap(), "kube-system");
    let expired = BootstrapToken::generate().unwrap();
    let mut s = token_secret(&expired, &BootstrapTokenOptions::default());
    s.data.as_mut().unwrap().insert(
        "expiration".into(),
        ByteString(b"2020-01-01T00:00:00Z".to_vec()),
    );
    secrets.create(&PostParams::default(), &s).await.unwrap();
    let live = BootstrapToken::generate().unwrap();
    secrets
        .create(
            &PostParams::default(),
            &token_secret(&live, &BootstrapTokenOptions::default()),
        )
        .await
        .unwrap();
    let forever = BootstrapToken::generate().unwrap();
    let opts = BootstrapTokenOptions {
        ttl: None,
        ..BootstrapTokenOptions::default()
    };
    secrets
        .create(&PostParams::default(), &token_secret(&forever, &opts))
        .await
        .unwrap();

    // The shipped RBAC grants no Secrets access (the option is opt-in); run as admin.
    let d = Daemon::start(
        cp,
        cp.kubeconfig_path(),
        "cleaner",
        &["--clean-expired-tokens", "--leader-elect=false"],
    );
    d.wait_ready(Duration::from_secs(60));
    let start = Instant::now();
    while secrets
        .get_opt(&expired.secret_name())
        .await
        .unwrap()
        .is_some()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "expired token not deleted:\n{}",
            d.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        secrets
            .get_opt(&live.secret_name())
            .await
            .unwrap()
            .is_some(),
        "live token must stay"
    );
    assert!(
        secrets
            .get_opt(&forever.secret_name())
            .await
            .unwrap()
            .is_some(),
        "token without expiration must stay"
    );
    assert!(d.child.exited().is_none(), "daemon still running");
}
