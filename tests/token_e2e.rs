//! `tlsboot token` against the real control plane: tokens it creates authenticate a
//! simulated kubelet through kube-apiserver's bootstrap-token authenticator, using the
//! `--print-kubeconfig` output as-is; expired and deleted tokens are refused; list,
//! delete and the error messages are kubeadm's; the cleaner deletes what expired.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod token_support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use tlsboot_harness::{BootstrapToken, KubeletOptions, SimKubelet, Stage};
use token_support::*;

const DEFAULT_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

fn rfc3339(s: &str) -> jiff::Timestamp {
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"))
}

async fn wait_authenticates(cp: &tlsboot_harness::ControlPlane, token: &str) {
    let t = BootstrapToken::parse(token).unwrap();
    // The authenticator reads Secrets through an informer: a brand-new token can be
    // refused for a moment.
    tlsboot_harness::token::wait_authenticates(
        &token_client(cp, token),
        &t,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn created_token_and_kubeconfig_bootstrap_a_kubelet() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bootstrap-kubelet.conf");
    let run = tlsboot(
        cp,
        &[
            "token",
            "create",
            "--description",
            "e2e kubelet",
            "--print-kubeconfig",
            path.to_str().unwrap(),
        ],
    )
    .ok();
    // stdout is the token alone; the secret half appears nowhere else.
    let token = run.stdout.strip_suffix('\n').unwrap().to_string();
    assert!(is_token(&token), "{:?}", run.stdout);
    let (id, secret) = token.split_once('.').unwrap();
    assert!(
        !run.stderr.contains(secret),
        "secret in stderr: {}",
        run.stderr
    );

    // The Secret is what kubeadm's BootstrapTokenToSecret writes.
    let data = token_data(cp, id).await.expect("token Secret");
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "auth-extra-groups",
            "description",
            "expiration",
            "token-id",
            "token-secret",
            "usage-bootstrap-authentication",
            "usage-bootstrap-signing"
        ]
    );
    assert_eq!(data["token-id"], id);
    assert_eq!(data["token-secret"], secret);
    assert_eq!(data["auth-extra-groups"], DEFAULT_GROUP);
    assert_eq!(data["description"], "e2e kubelet");
    assert_eq!(data["usage-bootstrap-authentication"], "true");
    let exp = &data["expiration"];
    assert!(exp.ends_with('Z') && exp.len() == 20, "{exp}");
    let ttl = rfc3339(exp).as_second() - jiff::Timestamp::now().as_second();
    assert!((24 * 3600 - 60..=24 * 3600).contains(&ttl), "{ttl}");
    let secrets = Api::<Secret>::namespaced(cp.admin_client().unwrap(), "kube-system");
    let s = secrets.get(&format!("bootstrap-token-{id}")).await.unwrap();
    assert_eq!(s.type_.as_deref(), Some("bootstrap.kubernetes.io/token"));

    // The kubeconfig is private and holds this token.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&format!("token: {token}")), "{text}");
    assert!(text.contains("certificate-authority-data: "), "{text}");
    assert!(
        text.contains(&format!("server: {}", cp.server_url())),
        "{text}"
    );

    // Used as-is by a kubelet: it verifies the server with the embedded CA and
    // authenticates through the real bootstrap-token authenticator.
    wait_authenticates(cp, &token).await;
    let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    let mut opts = KubeletOptions::new(cp.unique_name("tok-node"));
    opts.stop_after = Stage::ClientCsrCreated;
    let report = SimKubelet::new(config, opts).unwrap().run().await.unwrap();
    let csr_name = report.client_csr.expect("client CSR");
    let csr = Api::<CertificateSigningRequest>::all(cp.admin_client().unwrap())
        .get(&csr_name)
        .await
        .unwrap();
    assert_eq!(
        csr.spec.username.as_deref(),
        Some(format!("system:bootstrap:{id}").as_str())
    );
    let groups = csr.spec.groups.unwrap_or_default();
    for g in [
        "system:bootstrappers",
        DEFAULT_GROUP,
        "system:authenticated",
    ] {
        assert!(groups.iter().any(|x| x == g), "{g} missing from {groups:?}");
    }
}

#[tokio::test]
async fn kubeconfig_ca_comes_from_flag_context_or_cluster_info() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_pem = std::fs::read_to_string(cp.ca_path()).unwrap();
    let ca_b64 = |text: &str| -> Vec<u8> {
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).unwrap();
        let data = doc["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap()
            .to_string();
        serde_json::from_value::<ByteString>(serde_json::Value::String(data))
            .unwrap()
            .0
    };
    let same_certs = |a: &[u8], b: &str| {
        let der = |pem: &[u8]| -> Vec<Vec<u8>> {
            x509_parser::pem::Pem::iter_from_buffer(pem)
                .map(|p| p.unwrap().contents)
                .collect()
        };
        der(a) == der(b.as_bytes())
    };

    // 1. --ca-file, and "-" puts the kubeconfig (only) on stdout.
    let run = tlsboot(
        cp,
        &[
            "token",
            "create",
            "--print-kubeconfig",
            "-",
            "--ca-file",
            cp.ca_path().to_str().unwrap(),
            "--server",
            cp.server_url(),
        ],
    )
    .ok();
    assert!(
        run.stdout.starts_with("apiVersion: v1\nkind: Config\n"),
        "{}",
        run.stdout
    );
    assert!(same_certs(&ca_b64(&run.stdout), &ca_pem));
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&run.stdout).unwrap();
    let token = doc["users"][0]["user"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    wait_authenticates(cp, &token).await;

    // 2. The current context's CA (the default).
    let run = tlsboot(cp, &["token", "create", "--print-kubeconfig", "-"]).ok();
    assert!(same_certs(&ca_b64(&run.stdout), &ca_pem));

    // 3. A context without a CA (insecure-skip-tls-verify): kube-public/cluster-info.
    let admin_text = std::fs::read_to_string(cp.kubeconfig_path()).unwrap();
    let mut insecure: serde_yaml_ng::Value = serde_yaml_ng::from_str(&admin_text).unwrap();
    let cluster = insecure["clusters"][0]["cluster"].as_mapping_mut().unwrap();
    cluster.remove("certificate-authority-data");
    cluster.remove("certificate-authority");
    cluster.insert("insecure-skip-tls-verify".into(), true.into());
    let insecure_path = dir.path().join("insecure.kubeconfig");
    std::fs::write(&insecure_path, serde_yaml_ng::to_string(&insecure).unwrap()).unwrap();

    let cms = Api::<ConfigMap>::namespaced(cp.admin_client().unwrap(), "kube-public");
    // Without cluster-info there is nowhere to take the CA from: a clear error.
    if cms.get_opt("cluster-info").await.unwrap().is_none() {
        let run = tlsboot_with(
            &insecure_path,
            &["token", "create", "--print-kubeconfig", "-"],
        );
        assert!(
            run.error().starts_with(
                "reading ConfigMap kube-public/cluster-info for the cluster CA: configmaps \"cluster-info\" not found"
            ),
            "{run:#?}"
        );
        // Nothing was created for that failed run.
        assert!(run.stdout.is_empty());
        let info_kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: \"\"\n  cluster:\n    certificate-authority-data: {}\n    server: {}\ncontexts: []\nusers: []\n",
            serde_json::to_value(ByteString(ca_pem.clone().into_bytes()))
                .unwrap()
                .as_str()
                .unwrap(),
            cp.server_url()
        );
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some("cluster-info".into()),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(
                "kubeconfig".to_string(),
                info_kubeconfig,
            )])),
            ..ConfigMap::default()
        };
        match cms.create(&PostParams::default(), &cm).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => panic!("{e}"),
        }
    }
    let path = dir.path().join("from-cluster-info.conf");
    let run = tlsboot_with(
        &insecure_path,
        &[
            "token",
            "create",
            "--print-kubeconfig",
            path.to_str().unwrap(),
        ],
    )
    .ok();
    let token = run.stdout.trim_end().to_string();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(same_certs(&ca_b64(&text), &ca_pem));
    assert!(text.contains(&token));
}

#[tokio::test]
async fn expired_and_deleted_tokens_are_refused() {
    let Some(cp) = control_plane().await else {
        return;
    };

    // Expires 2 s after creation and is never used before: refused once expired.
    let expiring = tlsboot(cp, &["token", "create", "--ttl", "2s"]).ok();
    let expiring = expiring.stdout.trim_end().to_string();
    // A deleted token, used before deletion (the apiserver caches a success for 10 s).
    let used = tlsboot(cp, &["token", "create"])
        .ok()
        .stdout
        .trim_end()
        .to_string();
    // A deleted token never used before.
    let unused = tlsboot(cp, &["token", "create"])
        .ok()
        .stdout
        .trim_end()
        .to_string();

    wait_authenticates(cp, &used).await;
    let used_id = used.split_once('.').unwrap().0;
    let run = tlsboot(
        cp,
        &["token", "delete", &used, unused.split_once('.').unwrap().0],
    )
    .ok();
    assert_eq!(
        run.stdout,
        format!(
            "bootstrap token \"{used_id}\" deleted\nbootstrap token \"{}\" deleted\n",
            unused.split_once('.').unwrap().0
        )
    );

    eventually(
        "the unused deleted token to be refused",
        Duration::from_secs(10),
        || async { (authenticate(&token_client(cp, &unused)).await == Err(401)).then_some(()) },
    )
    .await;
    // Within the 10 s success cache plus informer delay.
    eventually(
        "the used deleted token to be refused",
        Duration::from_secs(20),
        || async { (authenticate(&token_client(cp, &used)).await == Err(401)).then_some(()) },
    )
    .await;

    // By now (> 2 s after creation) it has expired; its Secret is still there unless
    // the cleaner test running alongside removed it: refused either way.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(authenticate(&token_client(cp, &expiring)).await, Err(401));
}

#[tokio::test]
async fn list_and_delete_match_kubeadm() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let timed = generated_token();
    let forever = generated_token();
    tlsboot(
        cp,
        &[
            "token",
            "create",
            &timed,
            "--ttl",
            "2h",
            "--description",
            "list e2e",
        ],
    )
    .ok();
    tlsboot(
        cp,
        &[
            "token",
            "create",
            &forever,
            "--ttl",
            "0",
            "--usages",
            "authentication",
            "--groups",
            "system:bootstrappers:e2e-a,system:bootstrappers:e2e-b",
        ],
    )
    .ok();
    // A malformed token Secret: reported on stderr and skipped, like kubeadm (naming the
    // Secret and the defect, never its token-id: see malformed_token_secrets_never_echo_token_bytes).
    let bad_id = generated_token()[..6].to_string();
    let bad = Secret {
        metadata: ObjectMeta {
            name: Some(format!("bootstrap-token-{bad_id}")),
            ..ObjectMeta::default()
        },
        type_: Some("bootstrap.kubernetes.io/token".into()),
        data: Some(BTreeMap::from([
            ("token-id".to_string(), ByteString(b"zzzzzz".to_vec())),
            (
                "token-secret".to_string(),
                ByteString(b"0123456789abcdef".to_vec()),
            ),
        ])),
        ..Secret::default()
    };
    let secrets = Api::<Secret>::namespaced(cp.admin_client().unwrap(), "kube-system");
    secrets.create(&PostParams::default(), &bad).await.unwrap();

    let run = tlsboot(cp, &["token", "list"]).ok();
    assert!(
        run.stderr.contains(&format!(
            "bootstrap Token Secret \"bootstrap-token-{bad_id}\" is invalid: its name is not bootstrap-token- followed by its token-id"
        )) && !run.stderr.contains("zzzzzz"),
        "{}",
        run.stderr
    );
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("TOKEN"), "{}", run.stdout);
    for h in ["TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS"] {
        assert!(lines[0].contains(h), "{}", lines[0]);
    }
    let row = |token: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(token))
            .unwrap_or_else(|| panic!("{token} not listed:\n{}", run.stdout))
    };
    // kubeadm's fixed-width cells inside Go's tabwriter (minwidth 10, padding 3).
    let timed_row = row(&timed);
    let exp = timed_row.split_whitespace().nth(2).unwrap();
    assert!(
        (7190..=7200).contains(&(rfc3339(exp).as_second() - jiff::Timestamp::now().as_second()))
    );
    assert_eq!(
        timed_row,
        format!(
            "{timed:<26}{:<12}{exp:<23}{:<25}{:<59}{DEFAULT_GROUP}",
            "1h", "authentication,signing", "list e2e"
        )
    );
    assert_eq!(
        row(&forever),
        format!(
            "{forever:<26}{:<12}{:<10}{:<25}{:<59}{}",
            "<forever>",
            "<never>",
            "authentication",
            "<none>",
            "system:bootstrappers:e2e-a,system:bootstrappers:e2e-b"
        )
    );
    assert!(!run.stdout.contains(&bad_id));

    // -o json: one output.kubeadm.k8s.io/v1alpha3 BootstrapToken object per token.
    let run = tlsboot(cp, &["token", "list", "-o", "json"]).ok();
    let objs: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&run.stdout)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let find = |objs: &[serde_json::Value], t: &str| {
        objs.iter()
            .find(|o| o["token"] == t)
            .cloned()
            .unwrap_or_else(|| panic!("{t} missing"))
    };
    let o = find(&objs, &timed);
    assert_eq!(o["kind"], "BootstrapToken");
    assert_eq!(o["apiVersion"], "output.kubeadm.k8s.io/v1alpha3");
    assert_eq!(o["description"], "list e2e");
    assert_eq!(o["expires"], exp);
    assert_eq!(
        o["usages"],
        serde_json::json!(["authentication", "signing"])
    );
    assert_eq!(o["groups"], serde_json::json!([DEFAULT_GROUP]));
    let f = find(&objs, &forever);
    assert!(
        f.get("expires").is_none() && f.get("description").is_none(),
        "{f}"
    );
    assert!(
        run.stdout
            .contains("{\n    \"kind\": \"BootstrapToken\",\n    \"apiVersion\"")
    );

    // -o yaml: documents separated by ---.
    let run = tlsboot(cp, &["token", "list", "-o", "yaml"]).ok();
    let docs: Vec<serde_json::Value> = run
        .stdout
        .split("---\n")
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect();
    assert_eq!(docs.len(), objs.len());
    assert_eq!(
        find(&docs, &forever)["groups"][1],
        "system:bootstrappers:e2e-b"
    );
    assert!(
        run.stdout.contains(&format!("expires: \"{exp}\"\n")),
        "{}",
        run.stdout
    );

    // delete: by id and by full token, kubeadm's message for each.
    let run = tlsboot(cp, &["token", "delete", &timed[..6], &forever]).ok();
    assert_eq!(
        run.stdout,
        format!(
            "bootstrap token \"{}\" deleted\nbootstrap token \"{}\" deleted\n",
            &timed[..6],
            &forever[..6]
        )
    );
    assert!(token_data(cp, &timed[..6]).await.is_none());
    assert!(token_data(cp, &forever[..6]).await.is_none());
    // Deleting what is gone is kubeadm's wrapped NotFound.
    let run = tlsboot(cp, &["token", "delete", &timed[..6]]);
    assert_eq!(
        run.error(),
        format!(
            "failed to delete bootstrap token \"{0}\": secrets \"bootstrap-token-{0}\" not found",
            &timed[..6]
        )
    );
    secrets
        .delete(&format!("bootstrap-token-{bad_id}"), &Default::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_inputs_give_kubeadms_messages() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let cases: [(&[&str], &str); 8] = [
        (
            &["token", "create", "--ttl", "1d"],
            r#"invalid argument "1d" for "--ttl" flag: time: unknown unit "d" in duration "1d""#,
        ),
        (
            &["token", "create", "--ttl", "soon"],
            r#"invalid argument "soon" for "--ttl" flag: time: invalid duration "soon""#,
        ),
        (
            &["token", "create", "--usages", "authentication,bogus"],
            r#"bootstrapTokens.0.usages: Invalid value: []string{"authentication", "bogus"}: invalid bootstrap token usage string: bogus, valid usage options: signing,authentication"#,
        ),
        (
            &["token", "create", "--usages", "signing"],
            r#"bootstrapTokens.0.groups: Invalid value: []string{"system:bootstrappers:kubeadm:default-node-token"}: token groups cannot be specified unless --usages includes "authentication""#,
        ),
        (
            &["token", "create", "--groups", "system:masters"],
            r#"bootstrapTokens.0.groups: Invalid value: []string{"system:masters"}: bootstrap group "system:masters" is invalid (must match \Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z)"#,
        ),
        (
            &["token", "create", "Abcdef.0123456789abcdef"],
            r#"the bootstrap token "Abcdef.0123456789abcdef" was not of the form "\\A([a-z0-9]{6})\\.([a-z0-9]{16})\\z""#,
        ),
        (
            &["token", "delete"],
            r#"missing argument; 'token delete' is missing token of form "\\A([a-z0-9]{6})\\.([a-z0-9]{16})\\z" or "\\A([a-z0-9]{6})\\z""#,
        ),
        (
            &["token", "delete", "abcdef.short"],
            r#"given token didn't match pattern "\\A([a-z0-9]{6})\\.([a-z0-9]{16})\\z" or "\\A([a-z0-9]{6})\\z""#,
        ),
    ];
    for (args, want) in cases {
        let run = tlsboot(cp, args);
        assert_eq!(run.code, 1, "{args:?}: {run:#?}");
        assert_eq!(run.error(), want, "{args:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:#?}");
    }

    // An id that exists already: kubeadm's error, and the first token is untouched.
    let token = generated_token();
    tlsboot(cp, &["token", "create", &token, "--description", "first"]).ok();
    let other_secret = format!("{}.{}", &token[..6], &generated_token()[7..]);
    let run = tlsboot(cp, &["token", "create", &other_secret]);
    assert_eq!(
        run.error(),
        format!("a token with id \"{}\" already exists", &token[..6])
    );
    let data = token_data(cp, &token[..6]).await.unwrap();
    assert_eq!(data["token-secret"], token[7..]);
    assert_eq!(data["description"], "first");

    // Unreachable server and missing kubeconfig are named as such.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.kubeconfig");
    let run = tlsboot_with(&missing, &["token", "list"]);
    assert!(
        run.error().starts_with(&format!(
            "kubeconfig {}: cannot read it: ",
            missing.display()
        )),
        "{run:#?}"
    );
    let admin_text = std::fs::read_to_string(cp.kubeconfig_path()).unwrap();
    let dead = admin_text.replace(cp.server_url(), "https://127.0.0.1:1");
    let dead_path = dir.path().join("dead.kubeconfig");
    std::fs::write(&dead_path, dead).unwrap();
    let run = tlsboot_with(&dead_path, &["token", "list"]);
    assert!(
        run.error()
            .starts_with("failed to list bootstrap tokens: cannot reach the Kubernetes API server"),
        "{run:#?}"
    );
    // A user without rights gets the API's Forbidden, with what was attempted.
    let nobody = cp.user_kubeconfig("tlsboot-e2e-nobody", &[]).await.unwrap();
    let run = tlsboot_with(nobody.path(), &["token", "create"]);
    assert!(
        run.error()
            .starts_with("checking for bootstrap token Secret kube-system/bootstrap-token-")
            && run
                .error()
                .contains(": forbidden: secrets \"bootstrap-token-"),
        "{run:#?}"
    );
}

#[tokio::test]
async fn cleaner_deletes_expired_tokens_and_keeps_live_ones() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let client = cp.admin_client().unwrap();
    let secrets = Api::<Secret>::namespaced(client.clone(), "kube-system");
    let make = |expiration: Option<String>| {
        let t = BootstrapToken::generate().unwrap();
        let mut data = BTreeMap::from([
            (
                "token-id".to_string(),
                ByteString(t.id.clone().into_bytes()),
            ),
            (
                "token-secret".to_string(),
                ByteString(t.secret.clone().into_bytes()),
            ),
            (
                "usage-bootstrap-authentication".to_string(),
                ByteString(b"true".to_vec()),
            ),
        ]);
        if let Some(e) = expiration {
            data.insert("expiration".into(), ByteString(e.into_bytes()));
        }
        (
            t.id.clone(),
            Secret {
                metadata: ObjectMeta {
                    name: Some(t.secret_name()),
                    ..ObjectMeta::default()
                },
                type_: Some("bootstrap.kubernetes.io/token".into()),
                data: Some(data),
                ..Secret::default()
            },
        )
    };
    let at = |secs: i64| {
        let t = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + secs).unwrap();
        t.to_string()
    };
    let (expired, s1) = make(Some(at(-60)));
    let (garbled, s2) = make(Some("not a time".into()));
    let (soon, s3) = make(Some(at(4)));
    let (live, s4) = make(Some(at(3600)));
    let (forever, s5) = make(None);
    // Not a token at all, though named like one: never touched.
    let (opaque, mut s6) = make(Some(at(-60)));
    s6.type_ = Some("Opaque".into());
    for s in [&s1, &s2, &s3, &s4, &s5, &s6] {
        secrets.create(&PostParams::default(), s).await.unwrap();
    }

    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(tlsboot::token::run_token_cleaner(
        client.clone(),
        stop.clone(),
    ));
    let gone = |id: String| {
        let secrets = secrets.clone();
        async move {
            secrets
                .get_opt(&format!("bootstrap-token-{id}"))
                .await
                .unwrap()
                .is_none()
                .then_some(())
        }
    };
    eventually(
        "the expired token to be deleted",
        Duration::from_secs(15),
        || gone(expired.clone()),
    )
    .await;
    eventually(
        "the garbled token to be deleted",
        Duration::from_secs(15),
        || gone(garbled.clone()),
    )
    .await;
    // Deleted at its expiry (requeued), not at the next resync.
    eventually(
        "the token expiring in 4 s to be deleted",
        Duration::from_secs(15),
        || gone(soon.clone()),
    )
    .await;
    for id in [&live, &forever, &opaque] {
        assert!(
            secrets
                .get_opt(&format!("bootstrap-token-{id}"))
                .await
                .unwrap()
                .is_some(),
            "{id} must be kept"
        );
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the cleaner stops when cancelled")
        .unwrap()
        .unwrap();
    for id in [&live, &forever, &opaque] {
        let _ = secrets
            .delete(&format!("bootstrap-token-{id}"), &Default::default())
            .await;
    }

    // Without the rights it needs, it fails at start with what it was doing.
    let nobody = cp
        .user_kubeconfig("tlsboot-e2e-cleaner-nobody", &[])
        .await
        .unwrap();
    let err = tlsboot::token::run_token_cleaner(nobody.client().unwrap(), Default::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("listing bootstrap token Secrets in kube-system"),
        "{err}"
    );
    assert!(err.contains("forbidden"), "{err}");
}

/// `token list` (every format) and `doctor` on malformed token Secrets whose token-id or
/// token-secret bytes are a recognisable marker: the Secret's name and the defect are printed,
/// the bytes never are (kubeadm would quote them).
#[tokio::test]
async fn malformed_token_secrets_never_echo_token_bytes() {
    let Some(cp) = control_plane().await else {
        return;
    };
    const MARKER: &str = "leakmarker";
    let secrets = Api::<Secret>::namespaced(cp.admin_client().unwrap(), "kube-system");
    let past = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() - 3600)
        .unwrap()
        .to_string();
    let id = |t: &str| t[..6].to_string();
    // (Secret id, token-id, token-secret, expiration, the defect `token list` must name)
    let short_id = id(&generated_token());
    let upper_id = id(&generated_token());
    let pasted_id = id(&generated_token());
    let expired_id = id(&generated_token());
    let cases = [
        (
            short_id.clone(),
            short_id.clone(),
            format!("{MARKER}abcde"),
            None,
            "token-secret is 15 bytes, want 16",
        ),
        (
            upper_id.clone(),
            upper_id.clone(),
            format!("{}123456", MARKER.to_uppercase()),
            None,
            "token-secret has bytes outside [a-z0-9]",
        ),
        // A whole token pasted into token-id.
        (
            pasted_id.clone(),
            format!("{pasted_id}.{MARKER}012345"),
            format!("{MARKER}012345"),
            None,
            "token-id is 23 bytes, want 6",
        ),
        // The same, expired, so doctor lists it among the expired tokens. The cleaner test
        // running alongside may delete it at any moment, so only doctor's output uses it.
        (
            expired_id.clone(),
            format!("{expired_id}.{MARKER}012345"),
            format!("{MARKER}012345"),
            Some(past),
            "token-id is 23 bytes, want 6",
        ),
    ];
    for (name_id, token_id, token_secret, expiration, _) in &cases {
        let mut data = BTreeMap::from([
            (
                "token-id".to_string(),
                ByteString(token_id.as_bytes().to_vec()),
            ),
            (
                "token-secret".to_string(),
                ByteString(token_secret.as_bytes().to_vec()),
            ),
            (
                "usage-bootstrap-authentication".to_string(),
                ByteString(b"true".to_vec()),
            ),
        ]);
        if let Some(e) = expiration {
            data.insert("expiration".into(), ByteString(e.as_bytes().to_vec()));
        }
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(format!("bootstrap-token-{name_id}")),
                ..ObjectMeta::default()
            },
            type_: Some("bootstrap.kubernetes.io/token".into()),
            data: Some(data),
            ..Secret::default()
        };
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }

    let leaks = |what: &str, text: &str| {
        assert!(
            !text.to_lowercase().contains(MARKER),
            "{what} repeats token bytes:\n{text}"
        );
    };
    for format in ["text", "json", "yaml"] {
        let run = tlsboot(cp, &["token", "list", "-o", format]).ok();
        leaks(&format!("token list -o {format} stdout"), &run.stdout);
        leaks(&format!("token list -o {format} stderr"), &run.stderr);
        for (name_id, _, _, _, defect) in &cases[..3] {
            let line = format!(
                "bootstrap Token Secret \"bootstrap-token-{name_id}\" is invalid: {defect}\n"
            );
            assert!(
                run.stderr.contains(&line),
                "{line:?} not in:\n{}",
                run.stderr
            );
            assert!(!run.stdout.contains(name_id.as_str()), "{}", run.stdout);
        }
    }
    // doctor passes, warns or fails depending on the rest of the cluster; whatever it says, it
    // names the expired Secret instead of repeating its pasted token-id.
    for format in ["text", "json"] {
        let run = tlsboot(cp, &["doctor", "-o", format]);
        assert!(run.code == 0 || run.code == 1, "{run:#?}");
        leaks(&format!("doctor -o {format} stdout"), &run.stdout);
        leaks(&format!("doctor -o {format} stderr"), &run.stderr);
    }

    for (name_id, ..) in &cases {
        let _ = secrets
            .delete(&format!("bootstrap-token-{name_id}"), &Default::default())
            .await;
    }
}
