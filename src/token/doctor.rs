//! `tlsboot doctor`: is this cluster ready for kubelet TLS bootstrapping? Facts are
//! gathered from the API once ([`gather`]), then judged by a pure function
//! ([`evaluate`]) into ok / warn / fail lines that each say how to fix themselves.

use jiff::Timestamp;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::Api;
use kube::api::ListParams;
use serde::Serialize;

use super::bootstrap::{
    Expiry, KEY_TOKEN_ID, NAMESPACE, SECRET_TYPE, authenticates, expiry, get_data, is_valid_id,
    secret_name, token_groups,
};
use super::error::TokenError;
use super::gocompat::{format_rfc3339_utc, short_human_duration};
use super::rbac::{self, Need};
use crate::cluster::ApiError;
use crate::cluster::csr_status::{
    awaits_approver, awaits_decision, has_failed, is_approved, is_issued,
};

pub const DEFAULT_LEASE_NAME: &str = "tlsboot-controller";
pub const DEFAULT_LEASE_NAMESPACE: &str = "tlsboot-system";
pub const KCM_LEASE_NAME: &str = "kube-controller-manager";
pub const KCM_LEASE_NAMESPACE: &str = "kube-system";
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
pub const SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
/// Signers kube-controller-manager's csrsigning controller issues for.
const KCM_SIGNERS: [&str; 4] = [
    CLIENT_SIGNER,
    SERVING_SIGNER,
    "kubernetes.io/kube-apiserver-client",
    "kubernetes.io/legacy-unknown",
];
/// csrcleaner deletes CSRs pending longer than this.
const PENDING_GC_SECS: i64 = 24 * 3600;
/// Pending client CSRs younger than this are just the approver working.
const PENDING_GRACE_SECS: i64 = 120;
/// Approved CSRs without a certificate for longer than this mean no signer.
const SIGNER_GRACE_SECS: i64 = 60;
/// Tolerated clock skew when judging a Lease's renewTime.
const LEASE_SKEW_SECS: i64 = 5;
const NS_PER_S: i128 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(name: &str, status: Status, message: String, fix: Option<&str>) -> Check {
    Check {
        name: name.to_string(),
        status,
        message,
        fix: fix.map(str::to_string),
    }
}

/// Everything `evaluate` looks at. `Err` holds why a fact could not be read (usually
/// Forbidden): the affected checks fail, since readiness could not be shown.
#[derive(Debug, Clone)]
pub struct Facts {
    pub now: Timestamp,
    pub bindings: Result<Vec<ClusterRoleBinding>, String>,
    pub lease_namespace: String,
    pub lease_name: String,
    pub tlsboot_lease: Result<Option<Lease>, String>,
    pub kcm_lease: Result<Option<Lease>, String>,
    pub tokens: Result<Vec<Secret>, String>,
    pub csrs: Result<Vec<CertificateSigningRequest>, String>,
}

fn age(now: Timestamp, then: Timestamp) -> String {
    short_human_duration(now.as_nanosecond() - then.as_nanosecond())
}

fn secs_between(now: Timestamp, then: Timestamp) -> i64 {
    i64::try_from((now.as_nanosecond() - then.as_nanosecond()) / NS_PER_S).unwrap_or(i64::MAX)
}

// --- RBAC -------------------------------------------------------------------------

fn rbac_check(need: Need, bindings: &Result<Vec<ClusterRoleBinding>, String>) -> Check {
    let all = match bindings {
        Ok(all) => all,
        Err(e) => {
            return check(
                need.check_name(),
                Status::Fail,
                format!("could not list ClusterRoleBindings: {e}"),
                Some("run doctor with credentials that can list clusterrolebindings"),
            );
        }
    };
    let found = rbac::find(need, all);
    if found.is_empty() {
        let holder = match need {
            Need::SelfNodeClient => "group system:nodes",
            Need::Bootstrapper | Need::NodeClient => "a bootstrap token group",
        };
        return check(
            need.check_name(),
            Status::Fail,
            format!(
                "no ClusterRoleBinding binds ClusterRole {} to {holder}: {}",
                need.role(),
                need.consequence()
            ),
            Some("tlsboot rbac apply"),
        );
    }
    let list: Vec<String> = found
        .iter()
        .map(|f| format!("group {} (ClusterRoleBinding {})", f.group, f.binding))
        .collect();
    check(
        need.check_name(),
        Status::Ok,
        format!("{} is bound to {}", need.role(), list.join(", ")),
        None,
    )
}

// --- approver ---------------------------------------------------------------------

/// A Lease's state: `Ok(holder, last renewal)` when held and fresh, else why not.
fn lease_state(lease: &Option<Lease>, now: Timestamp) -> Result<(String, Timestamp), String> {
    let Some(lease) = lease else {
        return Err("does not exist".into());
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.unwrap_or_default();
    if holder.is_empty() {
        return Err("is not held by anyone".into());
    }
    let Some(renewed) = spec
        .renew_time
        .map(|t| t.0)
        .or(spec.acquire_time.map(|t| t.0))
    else {
        return Err(format!("is held by {holder} but was never renewed"));
    };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    if secs_between(now, renewed) > duration + LEASE_SKEW_SECS {
        return Err(format!(
            "is stale: {holder} last renewed it {} ago (lease duration {duration}s)",
            age(now, renewed)
        ));
    }
    Ok((holder, renewed))
}

fn approver_check(f: &Facts) -> Check {
    const NAME: &str = "approver";
    let ours = format!("{}/{}", f.lease_namespace, f.lease_name);
    let kcm = format!("{KCM_LEASE_NAMESPACE}/{KCM_LEASE_NAME}");
    let tlsboot = f
        .tlsboot_lease
        .as_ref()
        .map_err(|e| format!("could not be read ({e})"))
        .and_then(|l| lease_state(l, f.now));
    if let Ok((holder, renewed)) = &tlsboot {
        return check(
            NAME,
            Status::Ok,
            format!(
                "tlsboot approver {holder} holds Lease {ours} (renewed {} ago)",
                age(f.now, *renewed)
            ),
            None,
        );
    }
    let tlsboot_why = tlsboot.err().unwrap_or_default();
    let kcm_state = f
        .kcm_lease
        .as_ref()
        .map_err(|e| format!("could not be read ({e})"))
        .and_then(|l| lease_state(l, f.now));
    match kcm_state {
        Ok((holder, renewed)) => check(
            NAME,
            Status::Warn,
            format!(
                "tlsboot's Lease {ours} {tlsboot_why}; kube-controller-manager is alive ({holder} holds {kcm}, renewed {} ago), \
                 but that does not prove its csrapproving controller is enabled (--controllers)",
                age(f.now, renewed)
            ),
            Some(
                "run the tlsboot approver (tlsboot controller), or check kube-controller-manager's --controllers includes csrapproving",
            ),
        ),
        Err(kcm_why) => check(
            NAME,
            Status::Fail,
            format!(
                "no approver holds a fresh Lease: tlsboot's {ours} {tlsboot_why}, kube-controller-manager's {kcm} {kcm_why}; \
                 kubelet client CSRs will stay Pending (an approver run with --leader-elect=false holds no Lease)"
            ),
            Some("start the approver: tlsboot controller (see manifests/)"),
        ),
    }
}

// --- tokens -----------------------------------------------------------------------

/// How doctor names a token: its id when the Secret is well-formed (the id is no secret: it is
/// the Secret's name), else the Secret's name. Never the bytes of a malformed token-id, which
/// may be a secret pasted into the wrong key.
fn token_id(s: &Secret) -> String {
    let name = s.metadata.name.clone().unwrap_or_default();
    let id = get_data(s, KEY_TOKEN_ID);
    if is_valid_id(&id) && name == secret_name(&id) {
        id
    } else {
        format!("Secret {name}")
    }
}

fn tokens_check(f: &Facts) -> Check {
    const NAME: &str = "tokens";
    let secrets = match &f.tokens {
        Ok(s) => s,
        Err(e) => {
            return check(
                NAME,
                Status::Fail,
                format!("could not list bootstrap token Secrets in {NAMESPACE}: {e}"),
                Some("run doctor with credentials that can list secrets in kube-system"),
            );
        }
    };
    let mut valid: Vec<(&Secret, Option<Timestamp>)> = Vec::new();
    let mut expired: Vec<String> = Vec::new();
    for s in secrets
        .iter()
        .filter(|s| s.type_.as_deref() == Some(SECRET_TYPE))
    {
        match authenticates(s, f.now) {
            Ok(()) => {
                let at = match expiry(s, f.now) {
                    Expiry::At(t) => Some(t),
                    _ => None,
                };
                valid.push((s, at));
            }
            Err(_) if matches!(expiry(s, f.now), Expiry::Expired(_) | Expiry::Unparseable) => {
                expired.push(token_id(s));
            }
            Err(_) => {}
        }
    }
    let hang = if expired.is_empty() {
        String::new()
    } else {
        format!(
            "; expired token(s) still present ({}): a kubelet given one retries forever with 401 Unauthorized, so its join hangs silently",
            expired.join(", ")
        )
    };
    if valid.is_empty() {
        return check(
            NAME,
            Status::Warn,
            format!("no valid bootstrap token: new nodes cannot join{hang}"),
            Some(if expired.is_empty() {
                "tlsboot token create --print-kubeconfig bootstrap-kubelet.conf"
            } else {
                "tlsboot token create --print-kubeconfig bootstrap-kubelet.conf; delete expired ones with tlsboot token delete ID (or run the controller with --clean-expired-tokens)"
            }),
        );
    }
    let next = valid
        .iter()
        .filter_map(|(s, at)| at.map(|t| (t, token_id(s))))
        .min();
    let when = match &next {
        Some((t, id)) => format!(
            "; the next expires in {} ({id} at {})",
            short_human_duration(t.as_nanosecond() - f.now.as_nanosecond()),
            format_rfc3339_utc(*t)
        ),
        None => "; none of them expires".to_string(),
    };
    let mut message = format!("{} valid bootstrap token(s){when}", valid.len());
    let mut status = Status::Ok;
    let mut fix = None;
    if !expired.is_empty() {
        status = Status::Warn;
        message.push_str(&hang);
        fix = Some("tlsboot token delete ID (or run the controller with --clean-expired-tokens)");
    }
    // A token whose groups no bootstrap binding covers authenticates but then cannot
    // create a CSR.
    if let Ok(bindings) = &f.bindings {
        let bound: Vec<String> = rbac::find(Need::Bootstrapper, bindings)
            .into_iter()
            .map(|b| b.group)
            .collect();
        if !bound.is_empty() {
            let uncovered: Vec<String> = valid
                .iter()
                .filter(|(s, _)| !token_groups(s).iter().any(|g| bound.contains(g)))
                .map(|(s, _)| token_id(s))
                .collect();
            if !uncovered.is_empty() {
                status = Status::Warn;
                message.push_str(&format!(
                    "; token(s) {} authenticate in no group bound to {} ({}): kubelets using them get Forbidden",
                    uncovered.join(", "),
                    rbac::BOOTSTRAPPER_ROLE,
                    bound.join(", ")
                ));
                fix = Some(
                    "tlsboot rbac apply (binds system:bootstrappers), or create tokens with --groups matching the bound group",
                );
            }
        }
    }
    check(NAME, status, message, fix)
}

// --- CSRs -------------------------------------------------------------------------

fn created(csr: &CertificateSigningRequest) -> Option<Timestamp> {
    csr.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

fn approved_at(csr: &CertificateSigningRequest) -> Option<Timestamp> {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Approved"))
        .and_then(|c| {
            c.last_update_time
                .as_ref()
                .or(c.last_transition_time.as_ref())
        })
        .map(|t| t.0)
        .or_else(|| created(csr))
}

fn name(csr: &CertificateSigningRequest) -> String {
    csr.metadata.name.clone().unwrap_or_default()
}

/// The oldest of `csrs` by `when`, with its instant.
fn oldest<'a>(
    csrs: &[&'a CertificateSigningRequest],
    when: impl Fn(&CertificateSigningRequest) -> Option<Timestamp>,
) -> Option<(&'a CertificateSigningRequest, Timestamp)> {
    csrs.iter()
        .filter_map(|c| when(c).map(|t| (*c, t)))
        .min_by_key(|(_, t)| *t)
}

fn csr_checks(f: &Facts) -> Vec<Check> {
    let csrs = match &f.csrs {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("could not list CertificateSigningRequests: {e}");
            let fix = Some("run doctor with credentials that can list certificatesigningrequests");
            return ["csr/pending", "csr/unissued", "csr/serving"]
                .into_iter()
                .map(|n| check(n, Status::Fail, msg.clone(), fix))
                .collect();
        }
    };
    let signer = |c: &CertificateSigningRequest| c.spec.signer_name.clone();
    vec![
        pending_client_check(f.now, csrs, signer),
        unissued_check(f.now, csrs, signer),
        serving_check(f.now, csrs, signer),
    ]
}

fn pending_client_check(
    now: Timestamp,
    csrs: &[CertificateSigningRequest],
    signer: impl Fn(&CertificateSigningRequest) -> String,
) -> Check {
    const NAME: &str = "csr/pending";
    let pending: Vec<&CertificateSigningRequest> = csrs
        .iter()
        .filter(|c| signer(c) == CLIENT_SIGNER && awaits_approver(c))
        .collect();
    let Some((old, at)) = oldest(&pending, created) else {
        return check(
            NAME,
            Status::Ok,
            "no pending kubelet client CSRs".into(),
            None,
        );
    };
    let secs = secs_between(now, at);
    let who = old.spec.username.clone().unwrap_or_default();
    let base = format!(
        "{} pending kubelet client CSR(s); oldest {} from {who}, {} old",
        pending.len(),
        name(old),
        age(now, at)
    );
    if secs < PENDING_GRACE_SECS {
        return check(
            NAME,
            Status::Ok,
            format!("{base} (the approver may still be at it)"),
            None,
        );
    }
    let gc = if secs >= PENDING_GC_SECS {
        "older than the 24h after which csrcleaner deletes pending CSRs: is kube-controller-manager's csrcleaner running?".to_string()
    } else {
        format!(
            "csrcleaner deletes it in {} (pending CSRs live 24h), and the kubelet then starts over",
            short_human_duration(i128::from(PENDING_GC_SECS - secs) * NS_PER_S)
        )
    };
    check(
        NAME,
        Status::Warn,
        format!("{base}: {gc}"),
        Some(
            "kubectl describe csr NAME to see why it is not approved (approver logs and Events say which check refused it)",
        ),
    )
}

fn unissued_check(
    now: Timestamp,
    csrs: &[CertificateSigningRequest],
    signer: impl Fn(&CertificateSigningRequest) -> String,
) -> Check {
    const NAME: &str = "csr/unissued";
    let unissued: Vec<&CertificateSigningRequest> = csrs
        .iter()
        .filter(|c| {
            KCM_SIGNERS.contains(&signer(c).as_str())
                && is_approved(c)
                && !has_failed(c)
                && !is_issued(c)
        })
        .collect();
    let Some((old, at)) = oldest(&unissued, approved_at) else {
        return check(
            NAME,
            Status::Ok,
            "every approved CSR has its certificate".into(),
            None,
        );
    };
    let base = format!(
        "{} approved CSR(s) without a certificate; oldest {} approved {} ago",
        unissued.len(),
        name(old),
        age(now, at)
    );
    if secs_between(now, at) < SIGNER_GRACE_SECS {
        return check(
            NAME,
            Status::Ok,
            format!("{base} (the signer may still be at it)"),
            None,
        );
    }
    check(
        NAME,
        Status::Fail,
        format!(
            "{base}: the signer is not running, so approved kubelets never get their certificate"
        ),
        Some(
            "run kube-controller-manager with --cluster-signing-cert-file and --cluster-signing-key-file (its csrsigning controller issues kubernetes.io/* certificates)",
        ),
    )
}

fn serving_check(
    now: Timestamp,
    csrs: &[CertificateSigningRequest],
    signer: impl Fn(&CertificateSigningRequest) -> String,
) -> Check {
    const NAME: &str = "csr/serving";
    let waiting: Vec<&CertificateSigningRequest> = csrs
        .iter()
        .filter(|c| signer(c) == SERVING_SIGNER && awaits_decision(c))
        .collect();
    let Some((old, at)) = oldest(&waiting, created) else {
        return check(
            NAME,
            Status::Ok,
            "no kubelet serving CSRs waiting for review".into(),
            None,
        );
    };
    check(
        NAME,
        Status::Warn,
        format!(
            "{} kubelet serving CSR(s) waiting for review (oldest {} from {}, {} old): serving certificates are never auto-approved; until then kubectl logs/exec to those nodes fail TLS verification",
            waiting.len(),
            name(old),
            old.spec.username.clone().unwrap_or_default(),
            age(now, at)
        ),
        Some("check each one's SANs against the node, then kubectl certificate approve NAME"),
    )
}

/// Every check, in a stable order.
pub fn evaluate(f: &Facts) -> Vec<Check> {
    let mut checks: Vec<Check> = Need::ALL
        .iter()
        .map(|n| rbac_check(*n, &f.bindings))
        .collect();
    checks.push(approver_check(f));
    checks.push(tokens_check(f));
    checks.extend(csr_checks(f));
    checks
}

pub fn any_failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}

pub fn render_text(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let tag = match c.status {
            Status::Ok => "[ok]  ",
            Status::Warn => "[WARN]",
            Status::Fail => "[FAIL]",
        };
        out.push_str(&format!("{tag} {:<width$}  {}\n", c.name, c.message));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("       {:<width$}  fix: {fix}\n", ""));
        }
    }
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "\n{} ok, {} warning(s), {} failed\n",
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail)
    ));
    out
}

#[derive(Serialize)]
struct Report<'a> {
    ready: bool,
    summary: Summary,
    checks: &'a [Check],
}

#[derive(Serialize)]
struct Summary {
    ok: usize,
    warn: usize,
    fail: usize,
}

pub fn render_json(checks: &[Check]) -> Result<String, serde_json::Error> {
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    let report = Report {
        ready: !any_failed(checks),
        summary: Summary {
            ok: count(Status::Ok),
            warn: count(Status::Warn),
            fail: count(Status::Fail),
        },
        checks,
    };
    serde_json::to_string_pretty(&report).map(|s| s + "\n")
}

/// An API answer (Forbidden, NotFound…) becomes a fact's `Err`; not reaching the
/// server at all aborts the whole run, since no check could say anything.
fn soft<T>(what: &str, r: Result<T, kube::Error>) -> Result<Result<T, String>, TokenError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) if ApiError::of(&e).answered() => Ok(Err(ApiError::of(&e).explained())),
        Err(e) => Err(TokenError::kube(what.to_string(), e)),
    }
}

/// Reads what [`evaluate`] needs.
pub async fn gather(
    client: &kube::Client,
    lease_namespace: &str,
    lease_name: &str,
) -> Result<Facts, TokenError> {
    let lp = ListParams::default();
    let crbs = Api::<ClusterRoleBinding>::all(client.clone())
        .list(&lp)
        .await;
    let bindings = soft("listing ClusterRoleBindings", crbs.map(|l| l.items))?;
    let tlsboot_lease = soft(
        "reading the approver Lease",
        Api::<Lease>::namespaced(client.clone(), lease_namespace)
            .get_opt(lease_name)
            .await,
    )?;
    let kcm_lease = soft(
        "reading kube-controller-manager's Lease",
        Api::<Lease>::namespaced(client.clone(), KCM_LEASE_NAMESPACE)
            .get_opt(KCM_LEASE_NAME)
            .await,
    )?;
    let tokens = soft(
        "listing bootstrap token Secrets",
        Api::<Secret>::namespaced(client.clone(), NAMESPACE)
            .list(&ListParams::default().fields(&format!("type={SECRET_TYPE}")))
            .await
            .map(|l| l.items),
    )?;
    let csrs = soft(
        "listing CertificateSigningRequests",
        Api::<CertificateSigningRequest>::all(client.clone())
            .list(&lp)
            .await
            .map(|l| l.items),
    )?;
    Ok(Facts {
        now: Timestamp::now(),
        bindings,
        lease_namespace: lease_namespace.to_string(),
        lease_name: lease_name.to_string(),
        tlsboot_lease,
        kcm_lease,
        tokens,
        csrs,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::token::bootstrap::{KUBEADM_DEFAULT_GROUP, TokenSpec, TokenString};
    use crate::token::gocompat::parse_rfc3339;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestCondition, CertificateSigningRequestSpec,
        CertificateSigningRequestStatus,
    };
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};

    fn ts(s: &str) -> Timestamp {
        parse_rfc3339(s).map(|t| t.timestamp).unwrap_or_default()
    }

    const NOW: &str = "2030-01-01T12:00:00Z";

    fn lease(holder: &str, renewed: &str) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(15),
                renew_time: Some(MicroTime(ts(renewed))),
                ..LeaseSpec::default()
            }),
        }
    }

    fn token(id: &str, expires: Option<&str>, groups: &[&str]) -> Secret {
        let t = TokenString::parse(&format!("{id}.0123456789abcdef"));
        let Ok(token) = t else { panic!("{t:?}") };
        TokenSpec {
            token,
            description: String::new(),
            expires: expires.map(ts),
            usages: vec!["signing".into(), "authentication".into()],
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
        .to_secret()
    }

    fn csr(
        name: &str,
        signer: &str,
        created: &str,
        conditions: &[(&str, &str)],
        cert: bool,
    ) -> CertificateSigningRequest {
        CertificateSigningRequest {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(ts(created))),
                ..ObjectMeta::default()
            },
            spec: CertificateSigningRequestSpec {
                signer_name: signer.into(),
                username: Some("system:bootstrap:abcdef".into()),
                ..CertificateSigningRequestSpec::default()
            },
            status: Some(CertificateSigningRequestStatus {
                certificate: cert.then(|| ByteString(b"PEM".to_vec())),
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, at)| CertificateSigningRequestCondition {
                            type_: t.to_string(),
                            status: "True".into(),
                            last_update_time: Some(Time(ts(at))),
                            ..CertificateSigningRequestCondition::default()
                        })
                        .collect(),
                ),
            }),
        }
    }

    fn healthy() -> Facts {
        let Ok(bindings) = rbac::bindings("system:bootstrappers") else {
            panic!("valid")
        };
        Facts {
            now: ts(NOW),
            bindings: Ok(bindings),
            lease_namespace: DEFAULT_LEASE_NAMESPACE.into(),
            lease_name: DEFAULT_LEASE_NAME.into(),
            tlsboot_lease: Ok(Some(lease("tlsboot-abc", "2030-01-01T11:59:58Z"))),
            kcm_lease: Ok(Some(lease("kcm", "2030-01-01T11:59:59Z"))),
            tokens: Ok(vec![token(
                "abcdef",
                Some("2030-01-02T11:00:00Z"),
                &[KUBEADM_DEFAULT_GROUP],
            )]),
            csrs: Ok(vec![csr(
                "node-csr-1",
                CLIENT_SIGNER,
                "2030-01-01T11:00:00Z",
                &[("Approved", "2030-01-01T11:00:01Z")],
                true,
            )]),
        }
    }

    fn by_name<'a>(checks: &'a [Check], name: &str) -> &'a Check {
        match checks.iter().find(|c| c.name == name) {
            Some(c) => c,
            None => panic!("no check {name}"),
        }
    }

    #[test]
    fn healthy_cluster_is_all_ok() {
        let checks = evaluate(&healthy());
        assert_eq!(checks.len(), 8);
        for c in &checks {
            assert_eq!(c.status, Status::Ok, "{c:?}");
        }
        assert!(!any_failed(&checks));
        assert!(
            by_name(&checks, "tokens")
                .message
                .contains("the next expires in 23h (abcdef at 2030-01-02T11:00:00Z)")
        );
    }

    #[test]
    fn bare_cluster_reports_missing_bindings_with_the_fix() {
        let mut f = healthy();
        f.bindings = Ok(vec![]);
        let checks = evaluate(&f);
        for n in [
            "rbac/node-bootstrapper",
            "rbac/nodeclient",
            "rbac/selfnodeclient",
        ] {
            let c = by_name(&checks, n);
            assert_eq!(c.status, Status::Fail);
            assert_eq!(c.fix.as_deref(), Some("tlsboot rbac apply"));
        }
        assert!(any_failed(&checks));
    }

    #[test]
    fn kubeadm_bindings_count_but_broad_ones_do_not() {
        let mut f = healthy();
        let mk = |name: &str, role: &str, group: &str| {
            let mut b = rbac::binding(Need::Bootstrapper, "system:bootstrappers");
            b.metadata.name = Some(name.into());
            b.role_ref.name = role.into();
            if let Some(s) = b.subjects.as_mut().and_then(|s| s.first_mut()) {
                s.name = group.into();
            }
            b
        };
        f.bindings = Ok(vec![
            mk(
                "kubeadm:kubelet-bootstrap",
                rbac::BOOTSTRAPPER_ROLE,
                KUBEADM_DEFAULT_GROUP,
            ),
            mk(
                "kubeadm:node-autoapprove-bootstrap",
                rbac::NODECLIENT_ROLE,
                KUBEADM_DEFAULT_GROUP,
            ),
            mk(
                "too-broad",
                rbac::SELFNODECLIENT_ROLE,
                "system:authenticated",
            ),
        ]);
        let checks = evaluate(&f);
        assert_eq!(
            by_name(&checks, "rbac/node-bootstrapper").status,
            Status::Ok
        );
        assert!(
            by_name(&checks, "rbac/node-bootstrapper")
                .message
                .contains("kubeadm:kubelet-bootstrap")
        );
        assert_eq!(by_name(&checks, "rbac/nodeclient").status, Status::Ok);
        assert_eq!(by_name(&checks, "rbac/selfnodeclient").status, Status::Fail);
    }

    #[test]
    fn approver_lease_states() {
        let mut f = healthy();
        f.tlsboot_lease = Ok(None);
        let c = approver_check(&f);
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.message
                .contains("does not prove its csrapproving controller is enabled"),
            "{}",
            c.message
        );
        f.kcm_lease = Ok(Some(lease("kcm", "2030-01-01T11:00:00Z")));
        let c = approver_check(&f);
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.message.contains("is stale: kcm last renewed it 1h ago"),
            "{}",
            c.message
        );
        f.tlsboot_lease = Ok(Some(lease("", "2030-01-01T11:59:59Z")));
        assert!(approver_check(&f).message.contains("is not held by anyone"));
        // Just inside duration + skew is fresh.
        f.tlsboot_lease = Ok(Some(lease("t", "2030-01-01T11:59:40Z")));
        assert_eq!(approver_check(&f).status, Status::Ok);
        f.tlsboot_lease = Ok(Some(lease("t", "2030-01-01T11:59:39Z")));
        assert_eq!(approver_check(&f).status, Status::Fail);
        f.tlsboot_lease = Err("forbidden: leases".into());
        f.kcm_lease = Err("forbidden: leases".into());
        let c = approver_check(&f);
        assert_eq!(c.status, Status::Fail);
        assert!(c.message.contains("could not be read (forbidden: leases)"));
    }

    #[test]
    fn token_states() {
        let mut f = healthy();
        f.tokens = Ok(vec![]);
        let c = tokens_check(&f);
        assert_eq!(c.status, Status::Warn);
        assert!(c.message.starts_with("no valid bootstrap token"));

        f.tokens = Ok(vec![token("old123", Some("2030-01-01T00:00:00Z"), &[])]);
        let c = tokens_check(&f);
        assert_eq!(c.status, Status::Warn);
        assert!(c.message.contains("old123"));
        assert!(c.message.contains("hangs silently"), "{}", c.message);

        f.tokens = Ok(vec![
            token("old123", Some("2030-01-01T00:00:00Z"), &[]),
            token("new456", None, &[]),
        ]);
        let c = tokens_check(&f);
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.message
                .starts_with("1 valid bootstrap token(s); none of them expires")
        );

        f.tokens = Ok(vec![token("new456", None, &[])]);
        assert_eq!(tokens_check(&f).status, Status::Ok);

        // Bound only to kubeadm's narrower group: a token without it is not covered.
        let Ok(narrow) = rbac::bindings(KUBEADM_DEFAULT_GROUP) else {
            panic!()
        };
        f.bindings = Ok(narrow);
        let c = tokens_check(&f);
        assert_eq!(c.status, Status::Warn);
        assert!(c.message.contains("new456"), "{}", c.message);
        f.tokens = Ok(vec![token("new456", None, &[KUBEADM_DEFAULT_GROUP])]);
        assert_eq!(tokens_check(&f).status, Status::Ok);

        f.tokens = Err("forbidden: secrets".into());
        assert_eq!(tokens_check(&f).status, Status::Fail);
    }

    /// An expired token Secret whose token-id is not an id (here a whole token pasted into it)
    /// is named by its Secret, never by the token-id bytes.
    #[test]
    fn expired_malformed_tokens_are_named_by_their_secret() {
        let mut f = healthy();
        let mut pasted = token("abcdef", Some("2030-01-01T00:00:00Z"), &[]);
        if let Some(data) = pasted.data.as_mut() {
            data.insert(
                KEY_TOKEN_ID.into(),
                ByteString(b"abcdef.leakmarker012345".to_vec()),
            );
        }
        f.tokens = Ok(vec![
            pasted,
            token("old123", Some("2030-01-01T00:00:00Z"), &[]),
        ]);
        let c = tokens_check(&f);
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.message
                .contains("expired token(s) still present (Secret bootstrap-token-abcdef, old123)"),
            "{}",
            c.message
        );
        assert!(!c.message.contains("leakmarker"), "{}", c.message);
    }

    /// "Pending" here is what `/metrics` counts and what the approver still acts on: a
    /// `Failed` condition on an undecided CSR does not take it out of the queue (it used to).
    #[test]
    fn an_undecided_failed_csr_is_still_pending() {
        let now = ts(NOW);
        let failed = csr(
            "f",
            CLIENT_SIGNER,
            "2030-01-01T09:00:00Z",
            &[("Failed", "2030-01-01T09:00:01Z")],
            false,
        );
        let c = pending_client_check(now, std::slice::from_ref(&failed), |c| {
            c.spec.signer_name.clone()
        });
        assert_eq!(c.status, Status::Warn, "{}", c.message);
        assert!(
            c.message.contains("1 pending kubelet client CSR(s)"),
            "{}",
            c.message
        );
        let serving = csr(
            "g",
            SERVING_SIGNER,
            "2030-01-01T09:00:00Z",
            &[("Failed", "2030-01-01T09:00:01Z")],
            false,
        );
        let c = serving_check(now, &[serving], |c| c.spec.signer_name.clone());
        assert_eq!(c.status, Status::Warn, "{}", c.message);
    }

    #[test]
    fn csr_states() {
        let now = ts(NOW);
        let fresh = csr("a", CLIENT_SIGNER, "2030-01-01T11:59:30Z", &[], false);
        let old = csr("b", CLIENT_SIGNER, "2030-01-01T09:00:00Z", &[], false);
        let c = pending_client_check(now, std::slice::from_ref(&fresh), |c| {
            c.spec.signer_name.clone()
        });
        assert_eq!(c.status, Status::Ok);
        let c = pending_client_check(now, &[fresh, old], |c| c.spec.signer_name.clone());
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.message.contains(
                "2 pending kubelet client CSR(s); oldest b from system:bootstrap:abcdef, 3h old"
            ),
            "{}",
            c.message
        );
        assert!(
            c.message.contains("csrcleaner deletes it in 21h"),
            "{}",
            c.message
        );
        let ancient = csr("c", CLIENT_SIGNER, "2029-12-30T00:00:00Z", &[], false);
        let c = pending_client_check(now, &[ancient], |c| c.spec.signer_name.clone());
        assert!(c.message.contains("older than the 24h"));

        let waiting = csr(
            "d",
            CLIENT_SIGNER,
            "2030-01-01T11:00:00Z",
            &[("Approved", "2030-01-01T11:59:30Z")],
            false,
        );
        assert_eq!(
            unissued_check(now, &[waiting], |c| c.spec.signer_name.clone()).status,
            Status::Ok
        );
        let stuck = csr(
            "e",
            CLIENT_SIGNER,
            "2030-01-01T11:00:00Z",
            &[("Approved", "2030-01-01T11:50:00Z")],
            false,
        );
        let c = unissued_check(now, std::slice::from_ref(&stuck), |c| {
            c.spec.signer_name.clone()
        });
        assert_eq!(c.status, Status::Fail);
        assert!(c.message.contains("signer is not running"));
        let failed = csr(
            "f",
            CLIENT_SIGNER,
            "2030-01-01T11:00:00Z",
            &[
                ("Approved", "2030-01-01T11:50:00Z"),
                ("Failed", "2030-01-01T11:50:01Z"),
            ],
            false,
        );
        assert_eq!(
            unissued_check(now, &[failed], |c| c.spec.signer_name.clone()).status,
            Status::Ok
        );
        let custom = csr(
            "g",
            "example.com/custom",
            "2030-01-01T11:00:00Z",
            &[("Approved", "2030-01-01T11:00:00Z")],
            false,
        );
        assert_eq!(
            unissued_check(now, &[custom], |c| c.spec.signer_name.clone()).status,
            Status::Ok
        );

        let serving = csr("h", SERVING_SIGNER, "2030-01-01T11:57:00Z", &[], false);
        let c = serving_check(now, &[serving], |c| c.spec.signer_name.clone());
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.message
                .starts_with("1 kubelet serving CSR(s) waiting for review (oldest h")
        );
        let denied = csr(
            "i",
            SERVING_SIGNER,
            "2030-01-01T11:57:00Z",
            &[("Denied", NOW)],
            false,
        );
        assert_eq!(
            serving_check(now, &[denied], |c| c.spec.signer_name.clone()).status,
            Status::Ok
        );

        let mut f = healthy();
        f.csrs = Err("forbidden".into());
        let checks = evaluate(&f);
        assert_eq!(by_name(&checks, "csr/serving").status, Status::Fail);
    }

    #[test]
    fn renderings() {
        let mut f = healthy();
        f.bindings = Ok(vec![]);
        let checks = evaluate(&f);
        let text = render_text(&checks);
        assert!(text.contains("[FAIL] rbac/node-bootstrapper"), "{text}");
        assert!(text.contains("fix: tlsboot rbac apply"));
        assert!(text.ends_with("5 ok, 0 warning(s), 3 failed\n"), "{text}");
        let Ok(json) = render_json(&checks) else {
            panic!()
        };
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(v["ready"], false);
        assert_eq!(v["summary"]["fail"], 3);
        assert_eq!(v["checks"][0]["status"], "fail");
        assert_eq!(v["checks"][0]["name"], "rbac/node-bootstrapper");
        assert!(v["checks"][3].get("fix").is_none());
    }
}
