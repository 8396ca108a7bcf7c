//! The deployment manifests (`manifests/`) grant least privilege and run the daemon
//! under the restricted Pod Security Standard. Pure file parsing: no cluster, fast.
//!
//! The RBAC rules are compared against an exact list on purpose: widening the
//! daemon's permissions must be a visible, reviewed change to this file too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

const NAMESPACE: &str = "tlsboot-system";
const SERVICE_ACCOUNT: &str = "tlsboot-controller";
const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every YAML document of a file, as JSON values (empty documents skipped).
fn docs(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| {
            let y = serde_yaml_ng::Value::deserialize(d)
                .unwrap_or_else(|e| panic!("{}: invalid YAML: {e}", path.display()));
            serde_json::to_value(y)
                .unwrap_or_else(|e| panic!("{}: not JSON-compatible: {e}", path.display()))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The base's resources, in kustomization order, plus the file each came from.
fn base() -> Vec<(String, Value)> {
    let k = docs(&root().join("manifests/kustomization.yaml"));
    assert_eq!(k.len(), 1);
    let resources = k[0]["resources"].as_array().expect("resources list");
    resources
        .iter()
        .flat_map(|r| {
            let file = r.as_str().expect("resource path").to_owned();
            docs(&root().join("manifests").join(&file))
                .into_iter()
                .map(move |d| (file.clone(), d))
        })
        .collect()
}

fn objects() -> Vec<Value> {
    base().into_iter().map(|(_, d)| d).collect()
}

fn one<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = objs
        .iter()
        .filter(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "expected exactly one {kind} {name}");
    found[0]
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// All string scalars in a value (keys included), recursively.
fn all_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| all_strings(x, out)),
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            out.push(k.clone());
            all_strings(x, out);
        }),
        _ => {}
    }
}

/// The `#[arg(...)]` text that declares `env = "<env>"` in a source file.
fn arg_block<'a>(src: &'a str, env: &str) -> Option<&'a str> {
    let at = src.find(&format!("env = \"{env}\""))?;
    let start = src[..at].rfind("#[arg(")?;
    let end = at + src[at..].find(")]")?;
    Some(&src[start..end])
}

/// Env vars the binary reads through clap (controller flags and global flags).
fn known_env_vars() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for file in ["src/controller/config.rs", "src/cli.rs"] {
        let src = read(file);
        for piece in src.split("env = \"").skip(1) {
            if let Some(end) = piece.find('"') {
                out.insert(piece[..end].to_owned());
            }
        }
    }
    out
}

#[test]
fn kustomization_lists_every_manifest_and_all_parse() {
    let k = &docs(&root().join("manifests/kustomization.yaml"))[0];
    assert!(
        k.get("namespace").is_none(),
        "a kustomize namespace would move the Events Role out of `default`"
    );
    let listed: BTreeSet<String> = strings(&k["resources"]).into_iter().collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(root().join("manifests"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, on_disk, "kustomization.yaml resources vs files");
    for (file, obj) in base() {
        for field in ["apiVersion", "kind"] {
            assert!(obj[field].is_string(), "{file}: object without {field}");
        }
        assert!(
            obj["metadata"]["name"].is_string(),
            "{file}: unnamed object"
        );
    }
    for component in ["deny-invalid", "control-plane-only"] {
        let c = &docs(&root().join(format!(
            "manifests/components/{component}/kustomization.yaml"
        )))[0];
        assert_eq!(c["kind"], "Component", "{component}");
    }
}

type Rule = (Vec<String>, Vec<String>, Vec<String>, Vec<String>);

fn rules_of(obj: &Value) -> Vec<Rule> {
    obj["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            assert!(
                r.get("nonResourceURLs").is_none(),
                "no nonResourceURLs needed"
            );
            let sorted = |v: &Value| {
                let mut s = strings(v);
                s.sort();
                s
            };
            (
                sorted(&r["apiGroups"]),
                sorted(&r["resources"]),
                sorted(&r["resourceNames"]),
                sorted(&r["verbs"]),
            )
        })
        .collect()
}

fn rule(groups: &[&str], resources: &[&str], names: &[&str], verbs: &[&str]) -> Rule {
    let v = |x: &[&str]| {
        let mut s: Vec<String> = x.iter().map(|s| (*s).to_owned()).collect();
        s.sort();
        s
    };
    (v(groups), v(resources), v(names), v(verbs))
}

#[test]
fn rbac_is_exactly_what_the_daemon_uses() {
    let objs = objects();
    let cr = one(&objs, "ClusterRole", "tlsboot-controller");
    assert_eq!(
        rules_of(cr),
        vec![
            rule(
                &["certificates.k8s.io"],
                &["certificatesigningrequests"],
                &[],
                &["get", "list", "watch"]
            ),
            rule(
                &["certificates.k8s.io"],
                &["certificatesigningrequests/approval"],
                &[],
                &["update"]
            ),
            rule(
                &["certificates.k8s.io"],
                &["signers"],
                &[KUBELET_CLIENT_SIGNER],
                &["approve"]
            ),
            rule(
                &["authorization.k8s.io"],
                &["subjectaccessreviews"],
                &[],
                &["create"]
            ),
        ]
    );
    assert!(cr.get("aggregationRule").is_none());

    let lease = one(&objs, "Role", "tlsboot-controller-lease");
    assert_eq!(lease["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        rules_of(lease),
        vec![
            rule(
                &["coordination.k8s.io"],
                &["leases"],
                &["tlsboot-controller"],
                &["get", "update"]
            ),
            rule(&["coordination.k8s.io"], &["leases"], &[], &["create"]),
        ]
    );

    let events = one(&objs, "Role", "tlsboot-controller-events");
    assert_eq!(events["metadata"]["namespace"], "default");
    assert_eq!(
        rules_of(events),
        vec![rule(&["events.k8s.io"], &["events"], &[], &["create"])]
    );

    let roles: Vec<&Value> = objs
        .iter()
        .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
        .collect();
    assert_eq!(roles.len(), 3, "no roles beyond the three checked above");
}

#[test]
fn no_wildcards_and_approve_only_on_the_kubelet_client_signer() {
    for obj in objects()
        .iter()
        .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
    {
        for (groups, resources, names, verbs) in rules_of(obj) {
            for s in groups.iter().chain(&resources).chain(&names).chain(&verbs) {
                assert!(!s.contains('*'), "wildcard {s:?} in {}", obj["metadata"]);
            }
            for forbidden in ["sign", "escalate", "bind", "impersonate", "delete", "patch"] {
                assert!(
                    !verbs.iter().any(|v| v == forbidden),
                    "verb {forbidden} in {}",
                    obj["metadata"]
                );
            }
            if verbs.iter().any(|v| v == "approve") {
                assert_eq!(verbs, vec!["approve"]);
                assert_eq!(resources, vec!["signers"]);
                assert_eq!(names, vec![KUBELET_CLIENT_SIGNER]);
            }
            assert!(
                !resources.iter().any(|r| r == "secrets" || r == "nodes"),
                "{resources:?}"
            );
        }
    }
}

#[test]
fn bindings_give_our_roles_to_our_service_account_only() {
    let objs = objects();
    let mut all = Vec::new();
    for o in &objs {
        all_strings(o, &mut all);
    }
    for s in &all {
        assert!(
            !s.contains("cluster-admin") && !s.contains("system:masters"),
            "{s:?} appears in the manifests"
        );
    }
    let bindings: Vec<&Value> = objs
        .iter()
        .filter(|o| o["kind"] == "RoleBinding" || o["kind"] == "ClusterRoleBinding")
        .collect();
    assert_eq!(bindings.len(), 3);
    for b in bindings {
        let role_kind = b["roleRef"]["kind"].as_str().unwrap();
        let role_name = b["roleRef"]["name"].as_str().unwrap();
        assert_eq!(b["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
        let role = one(&objs, role_kind, role_name);
        assert!(
            role_name.starts_with("tlsboot-"),
            "binds a role not ours: {role_name}"
        );
        if b["kind"] == "RoleBinding" {
            assert_eq!(role_kind, "Role");
            assert_eq!(b["metadata"]["namespace"], role["metadata"]["namespace"]);
        } else {
            assert_eq!(role_kind, "ClusterRole");
        }
        let subjects = b["subjects"].as_array().unwrap();
        assert_eq!(subjects.len(), 1, "{}", b["metadata"]);
        assert_eq!(subjects[0]["kind"], "ServiceAccount");
        assert_eq!(subjects[0]["name"], SERVICE_ACCOUNT);
        assert_eq!(subjects[0]["namespace"], NAMESPACE);
    }
    let sa = one(&objs, "ServiceAccount", SERVICE_ACCOUNT);
    assert_eq!(sa["metadata"]["namespace"], NAMESPACE);
}

#[test]
fn rbac_names_match_the_daemon_defaults() {
    // Lease name and namespace defaults (config.rs) must match the Role and Namespace.
    let config = read("src/controller/config.rs");
    let name = arg_block(&config, "TLSBOOT_LEADER_ELECT_RESOURCE_NAME").expect("lease name flag");
    assert!(
        name.contains("default_value = \"tlsboot-controller\""),
        "{name}"
    );
    let ns = arg_block(&config, "POD_NAMESPACE").expect("lease namespace flag");
    assert!(
        ns.contains(&format!("default_value = \"{NAMESPACE}\"")),
        "{ns}"
    );
    // Events go to the namespace reconcile.rs posts them in.
    let reconcile = read("src/controller/reconcile.rs");
    assert!(
        reconcile.contains("pub const EVENT_NAMESPACE: &str = \"default\";"),
        "the Events Role lives in `default`; update rbac.yaml if EVENT_NAMESPACE moves"
    );
    let objs = objects();
    let ns = one(&objs, "Namespace", NAMESPACE);
    let labels = &ns["metadata"]["labels"];
    for mode in ["enforce", "audit", "warn"] {
        assert_eq!(
            labels[format!("pod-security.kubernetes.io/{mode}")],
            "restricted"
        );
    }
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
}

#[test]
fn deployment_is_restricted_ha_and_probed() {
    let objs = objects();
    let d = one(&objs, "Deployment", "tlsboot-controller");
    assert_eq!(d["metadata"]["namespace"], NAMESPACE);
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    let pod_labels = &d["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&d["spec"]["selector"]["matchLabels"], pod_labels);
    assert_eq!(pod["serviceAccountName"], SERVICE_ACCOUNT);
    assert_eq!(pod["automountServiceAccountToken"], true);
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        assert!(pod[host].is_null() || pod[host] == false, "{host}");
    }
    let psc = &pod["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true);
    assert_ne!(psc["runAsUser"], 0);
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");
    let tolerations = pod["tolerations"].as_array().unwrap();
    assert!(
        tolerations
            .iter()
            .any(|t| t["key"] == "node-role.kubernetes.io/control-plane")
    );
    assert_eq!(
        pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
            ["topologyKey"],
        "kubernetes.io/hostname"
    );

    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    assert!(pod["initContainers"].is_null() && pod["volumes"].is_null());
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["runAsNonRoot"], true);
    assert!(sc["privileged"].is_null() || sc["privileged"] == false);
    assert_eq!(strings(&sc["capabilities"]["drop"]), vec!["ALL"]);
    assert!(sc["capabilities"]["add"].is_null());
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");

    assert_eq!(strings(&c["args"]), vec!["controller"]);
    let pod_ns = env_value(c, "POD_NAMESPACE").expect("POD_NAMESPACE");
    assert_eq!(
        pod_ns["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(
        env_value(c, "TLSBOOT_LEADER_ELECT").expect("leader election")["value"],
        "true"
    );

    // One port serves /metrics, /healthz and /readyz: the probes and the bind address agree.
    let port = &c["ports"][0];
    let bind = env_value(c, "TLSBOOT_METRICS_BIND_ADDRESS").expect("bind address")["value"]
        .as_str()
        .unwrap();
    assert!(
        bind.ends_with(&format!(":{}", port["containerPort"])),
        "{bind}"
    );
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert!(
            get["port"] == port["name"] || get["port"] == port["containerPort"],
            "{probe}"
        );
    }
    let res = &c["resources"];
    for r in ["cpu", "memory"] {
        assert!(res["requests"][r].is_string(), "requests.{r}");
    }
    assert!(res["limits"]["memory"].is_string(), "limits.memory");

    // Lease hand-over fits in the grace period.
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() >= 20);

    let pdb = one(&objs, "PodDisruptionBudget", "tlsboot-controller");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], pod_labels);
    let svc = one(&objs, "Service", "tlsboot-controller-metrics");
    assert_eq!(&svc["spec"]["selector"], pod_labels);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], port["name"]);
}

#[test]
fn every_env_var_set_is_one_the_binary_reads() {
    let known = known_env_vars();
    assert!(known.contains("TLSBOOT_DENY_INVALID"), "{known:?}");
    let d = objects()
        .into_iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap();
    let mut names: Vec<String> = d["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    // The components' patches add env vars too.
    for component in ["deny-invalid", "control-plane-only"] {
        let text = read(&format!(
            "manifests/components/{component}/kustomization.yaml"
        ));
        for piece in text.split("name: ").skip(1) {
            let n = piece.lines().next().unwrap_or("").trim();
            if n.starts_with("TLSBOOT_") {
                names.push(n.to_owned());
            }
        }
    }
    assert!(names.iter().any(|n| n == "TLSBOOT_DENY_INVALID"));
    for n in names {
        assert!(known.contains(&n), "{n} is not read by tlsboot");
    }
}
