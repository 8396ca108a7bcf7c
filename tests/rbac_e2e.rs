//! `tlsboot rbac print|apply` against the real control plane: the three bindings,
//! idempotent (apply twice = no write), narrowing with --group, and never anything
//! broader than the bootstrap roles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod token_support;

use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::Api;
use kube::api::{ListParams, PostParams};
use token_support::*;

const NAMES: [&str; 3] = [
    "tlsboot:node-bootstrapper",
    "tlsboot:node-autoapprove-bootstrap",
    "tlsboot:node-autoapprove-certificate-rotation",
];
const PREFIX: &str = "clusterrolebinding.rbac.authorization.k8s.io/";

fn applied(words: [&str; 3]) -> String {
    NAMES
        .iter()
        .zip(words)
        .map(|(n, w)| format!("{PREFIX}{n} {w}\n"))
        .collect()
}

async fn ours(api: &Api<ClusterRoleBinding>) -> Vec<ClusterRoleBinding> {
    let mut v = Vec::new();
    for n in NAMES {
        v.push(api.get(n).await.unwrap());
    }
    v
}

fn subject(b: &ClusterRoleBinding) -> (String, String) {
    let s = &b.subjects.as_ref().unwrap()[0];
    (s.kind.clone(), s.name.clone())
}

#[tokio::test]
async fn apply_is_idempotent_narrowable_and_never_broad() {
    let Some(cp) = control_plane().await else {
        return;
    };
    let api = Api::<ClusterRoleBinding>::all(cp.admin_client().unwrap());

    // print is the same objects apply writes.
    let printed = tlsboot(cp, &["rbac", "print"]).ok().stdout;
    let docs: Vec<ClusterRoleBinding> = printed
        .split("---\n")
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 3);

    let run = tlsboot(cp, &["rbac", "apply"]).ok();
    assert_eq!(run.stdout, applied(["created", "created", "created"]));
    let first = ours(&api).await;
    for (live, want) in first.iter().zip(&docs) {
        assert_eq!(live.role_ref, want.role_ref);
        assert_eq!(live.subjects, want.subjects);
    }
    let roles: Vec<&str> = first.iter().map(|b| b.role_ref.name.as_str()).collect();
    assert_eq!(
        roles,
        [
            "system:node-bootstrapper",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
        ]
    );
    let subjects: Vec<(String, String)> = first.iter().map(subject).collect();
    assert_eq!(
        subjects,
        [
            ("Group".into(), "system:bootstrappers".into()),
            ("Group".into(), "system:bootstrappers".into()),
            ("Group".into(), "system:nodes".into())
        ]
    );

    // Twice = no change: nothing written, resourceVersions untouched.
    let run = tlsboot(cp, &["rbac", "apply"]).ok();
    assert_eq!(run.stdout, applied(["unchanged", "unchanged", "unchanged"]));
    let again = ours(&api).await;
    let rv = |v: &[ClusterRoleBinding]| -> Vec<Option<String>> {
        v.iter()
            .map(|b| b.metadata.resource_version.clone())
            .collect()
    };
    assert_eq!(rv(&first), rv(&again));

    // --group narrows the two bootstrap bindings; the node one stays.
    let group = "system:bootstrappers:kubeadm:default-node-token";
    let run = tlsboot(cp, &["rbac", "apply", "--group", group]).ok();
    assert_eq!(
        run.stdout,
        applied(["configured", "configured", "unchanged"])
    );
    let narrowed: Vec<(String, String)> = ours(&api).await.iter().map(subject).collect();
    assert_eq!(narrowed[0].1, group);
    assert_eq!(narrowed[1].1, group);
    assert_eq!(narrowed[2].1, "system:nodes");
    let run = tlsboot(cp, &["rbac", "apply"]).ok();
    assert_eq!(
        run.stdout,
        applied(["configured", "configured", "unchanged"])
    );

    // Nothing broader, ever: refused before any request, and nothing changed.
    let before = rv(&ours(&api).await);
    for broad in [
        "system:masters",
        "system:authenticated",
        "system:nodes",
        "developers",
    ] {
        let run = tlsboot(cp, &["rbac", "apply", "--group", broad]);
        assert_eq!(run.code, 1);
        assert!(
            run.error()
                .starts_with(&format!("--group {broad:?} is not a bootstrap token group")),
            "{run:#?}"
        );
        let run = tlsboot(cp, &["rbac", "print", "--group", broad]);
        assert_eq!(run.code, 1);
        assert!(run.stdout.is_empty());
    }
    assert_eq!(rv(&ours(&api).await), before);
    let managed = api
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=tlsboot"))
        .await
        .unwrap()
        .items;
    assert_eq!(managed.len(), 3);
    for b in &managed {
        assert_ne!(b.role_ref.name, "cluster-admin");
        for s in b.subjects.iter().flatten() {
            assert_eq!(s.kind, "Group");
            assert!(
                s.name == "system:nodes" || s.name == "system:bootstrappers",
                "{s:?}"
            );
        }
    }

    // A binding of ours re-pointed at another role: roleRef is immutable, so apply
    // refuses (rather than deleting someone's object) and leaves it as it is.
    let name = NAMES[1];
    api.delete(name, &Default::default()).await.unwrap();
    let foreign = tlsboot_harness::group_binding(name, "view", "system:bootstrappers");
    api.create(&PostParams::default(), &foreign).await.unwrap();
    let run = tlsboot(cp, &["rbac", "apply"]);
    assert_eq!(
        run.error(),
        format!(
            "refusing to apply ClusterRoleBinding {name}: it exists with roleRef ClusterRole \"view\", and roleRef cannot be changed: delete it (kubectl delete clusterrolebinding {name}) and apply again"
        )
    );
    assert_eq!(api.get(name).await.unwrap().role_ref.name, "view");
    api.delete(name, &Default::default()).await.unwrap();
    let run = tlsboot(cp, &["rbac", "apply"]).ok();
    assert_eq!(run.stdout, applied(["unchanged", "created", "unchanged"]));

    // Without rights: the API's Forbidden, naming what was attempted.
    let nobody = cp
        .user_kubeconfig("tlsboot-e2e-rbac-nobody", &[])
        .await
        .unwrap();
    let run = tlsboot_with(nobody.path(), &["rbac", "apply"]);
    assert!(
        run.error()
            .starts_with("reading ClusterRoleBinding tlsboot:node-bootstrapper: forbidden: "),
        "{run:#?}"
    );
}
