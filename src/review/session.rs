//! The review commands' reads: CSRs, the Nodes and Service they are compared with, who the caller
//! is, and — after a 403 — which permission the caller lacks. Every API error is turned into a
//! [`ReviewError`] a person can act on.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec, SubjectAccessReview,
};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::{Api, ListParams, PostParams};

use super::assess::{
    ClusterFacts, NodeLookup, OwnedAddress, SarAnswer, SarQuestion, assess, sar_subresources,
};
use super::error::ReviewError;
use crate::cluster::{ApiError, Connection};

/// A connected client and the server it talks to (for error messages).
#[derive(Clone)]
pub struct Session {
    pub client: kube::Client,
    pub url: String,
}

/// What a list or get needs permission for, for the Forbidden explanation.
#[derive(Debug, Clone, Copy)]
pub enum Access<'a> {
    ListCsrs,
    GetCsr(&'a str),
}

impl Session {
    pub async fn connect(conn: &Connection) -> Result<Self, ReviewError> {
        let config = crate::cluster::config(conn).await?;
        let url = config.cluster_url.to_string();
        let client = crate::cluster::client_from(conn, config)?;
        Ok(Session { client, url })
    }

    pub fn csrs(&self) -> Api<CertificateSigningRequest> {
        Api::all(self.client.clone())
    }

    /// Maps a transport-level failure to [`ReviewError::Unreachable`], anything else to `Api`.
    pub fn api_error(&self, what: impl Into<String>, e: kube::Error) -> ReviewError {
        let detail = ApiError::of(&e).to_string();
        match e {
            kube::Error::Api(_) => ReviewError::Api {
                what: what.into(),
                detail,
            },
            kube::Error::Auth(_) => ReviewError::Api {
                what: format!("{} (authenticating to {})", what.into(), self.url),
                detail,
            },
            _ => ReviewError::Unreachable {
                url: self.url.clone(),
                detail,
            },
        }
    }

    fn read_error(&self, access: Access<'_>, e: kube::Error) -> ReviewError {
        match (ApiError::of(&e).code(), access) {
            (Some(404), Access::GetCsr(name)) => ReviewError::NotFound { name: name.into() },
            (Some(403), Access::GetCsr(name)) => ReviewError::Forbidden(format!(
                "forbidden: cannot read certificate signing request {name:?}: needs `get` on \
                 `certificatesigningrequests` (API group certificates.k8s.io)\nserver said: {}",
                ApiError::of(&e).message()
            )),
            (Some(403), Access::ListCsrs) => ReviewError::Forbidden(format!(
                "forbidden: cannot list certificate signing requests: needs `list` (and `watch` \
                 for --watch) on `certificatesigningrequests` (API group certificates.k8s.io)\n\
                 server said: {}",
                ApiError::of(&e).message()
            )),
            (_, Access::GetCsr(name)) => {
                self.api_error(format!("reading certificate signing request {name:?}"), e)
            }
            (_, Access::ListCsrs) => self.api_error("listing certificate signing requests", e),
        }
    }

    pub async fn get_csr(&self, name: &str) -> Result<CertificateSigningRequest, ReviewError> {
        self.csrs()
            .get(name)
            .await
            .map_err(|e| self.read_error(Access::GetCsr(name), e))
    }

    /// The CSRs that could be read, in `names` order, and whether all could. A missing or
    /// forbidden one is reported on stderr and skipped; an unreachable cluster stops it all.
    pub async fn get_csrs(
        &self,
        names: &[String],
    ) -> Result<(Vec<CertificateSigningRequest>, bool), ReviewError> {
        let mut all = true;
        let mut csrs = Vec::with_capacity(names.len());
        for name in names {
            match self.get_csr(name).await {
                Ok(c) => csrs.push(c),
                Err(e @ (ReviewError::Unreachable { .. } | ReviewError::Connection(_))) => {
                    return Err(e);
                }
                Err(e) => {
                    super::error::report(&e);
                    all = false;
                }
            }
        }
        Ok((csrs, all))
    }

    /// CSRs of `signers` (all signers when empty), one list call per signer (the API's field
    /// selector matches one value).
    pub async fn list_csrs(
        &self,
        signers: &[String],
    ) -> Result<Vec<CertificateSigningRequest>, ReviewError> {
        let api = self.csrs();
        let mut out = Vec::new();
        let selectors: Vec<Option<String>> = if signers.is_empty() {
            vec![None]
        } else {
            signers
                .iter()
                .map(|s| Some(format!("spec.signerName={s}")))
                .collect()
        };
        for sel in selectors {
            let mut lp = ListParams::default();
            if let Some(sel) = &sel {
                lp = lp.fields(sel);
            }
            let list = api
                .list(&lp)
                .await
                .map_err(|e| self.read_error(Access::ListCsrs, e))?;
            out.extend(list.items);
        }
        Ok(out)
    }

    /// Nodes and the API server Service, for [`super::assess::assess`]. Listing Nodes is tried
    /// first (it also answers "does another node own this address?"); when that is refused, the
    /// nodes `csrs` are for are read one by one. Only an unreachable server fails: what could
    /// not be read is recorded and shows up as a failed or unknown check.
    pub async fn cluster_facts(
        &self,
        csrs: &[CertificateSigningRequest],
    ) -> Result<ClusterFacts, ReviewError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let mut facts = ClusterFacts::default();
        match nodes.list(&ListParams::default()).await {
            Ok(list) => {
                facts.nodes = Ok(list
                    .items
                    .into_iter()
                    .filter_map(|n| {
                        let name = n.metadata.name.clone()?;
                        Some((name, node_addresses(&n)))
                    })
                    .collect());
            }
            Err(e) if !ApiError::of(&e).answered() => {
                return Err(self.api_error("listing Nodes", e));
            }
            Err(e) => {
                facts.nodes = Err(ApiError::of(&e).message());
                for name in wanted_nodes(csrs) {
                    let lookup = self.lookup_node(&name).await?;
                    facts.node.insert(name, lookup);
                }
            }
        }
        facts.api_service_ips = self.api_service_ips().await?;
        self.ask_sars(&mut facts, csrs).await;
        Ok(facts)
    }

    /// Asks the SubjectAccessReviews the daemon would send for the kubelet client CSRs among
    /// `csrs` (built by the daemon's own builder), in its order, stopping per CSR where the
    /// daemon would stop; questions already answered in `facts` are not asked again. Nothing
    /// fails here: a review that cannot be asked is recorded, and its check is unknown.
    pub async fn ask_sars(&self, facts: &mut ClusterFacts, csrs: &[CertificateSigningRequest]) {
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        // After one 403 every other review would get the same answer: don't ask N times.
        let mut refused: Option<String> = None;
        for csr in csrs {
            for sub in sar_subresources(csr) {
                let question = SarQuestion::of(csr, sub);
                let answer = match facts.sars.get(&question) {
                    Some(a) => a.clone(),
                    None => {
                        let a = match &refused {
                            Some(why) => SarAnswer::Unasked(why.clone()),
                            None => {
                                let sar = crate::policy::subject_access_review(csr, sub);
                                match api.create(&PostParams::default(), &sar).await {
                                    Ok(r) => sar_answer(r),
                                    Err(e) => {
                                        let why = ApiError::of(&e).to_string();
                                        if ApiError::of(&e).is(403) {
                                            refused = Some(why.clone());
                                        }
                                        SarAnswer::Unasked(why)
                                    }
                                }
                            }
                        };
                        facts.sars.insert(question, a.clone());
                        a
                    }
                };
                if !matches!(answer, SarAnswer::Denied(_)) {
                    break;
                }
            }
        }
    }

    /// One Node by GET.
    pub async fn lookup_node(&self, name: &str) -> Result<NodeLookup, ReviewError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        match nodes.get(name).await {
            Ok(n) => Ok(NodeLookup::Found(node_addresses(&n))),
            Err(e) if ApiError::of(&e).is(404) => Ok(NodeLookup::NotFound),
            Err(e) if ApiError::of(&e).answered() => {
                Ok(NodeLookup::Unreadable(ApiError::of(&e).message()))
            }
            Err(e) => Err(self.api_error(format!("reading Node {name:?}"), e)),
        }
    }

    async fn api_service_ips(&self) -> Result<Result<Vec<IpAddr>, String>, ReviewError> {
        let services: Api<Service> = Api::namespaced(self.client.clone(), "default");
        match services.get("kubernetes").await {
            Ok(svc) => {
                let spec = svc.spec.unwrap_or_default();
                let mut ips: Vec<String> = spec.cluster_ips.unwrap_or_default();
                ips.extend(spec.cluster_ip);
                let mut parsed: Vec<IpAddr> = ips.iter().filter_map(|s| s.parse().ok()).collect();
                parsed.sort();
                parsed.dedup();
                Ok(Ok(parsed))
            }
            Err(e) if ApiError::of(&e).answered() => Ok(Err(ApiError::of(&e).message())),
            Err(e) => Err(self.api_error("reading Service default/kubernetes", e)),
        }
    }

    /// The caller's user name from a SelfSubjectReview (`authentication.k8s.io/v1`), for the
    /// condition message. `Err` carries why it is unknown.
    pub async fn whoami(&self) -> Result<String, String> {
        let api: Api<SelfSubjectReview> = Api::all(self.client.clone());
        match api
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await
        {
            Ok(r) => r
                .status
                .and_then(|s| s.user_info)
                .and_then(|u| u.username)
                .filter(|u| !u.is_empty())
                .ok_or_else(|| "the SelfSubjectReview returned no user name".to_owned()),
            Err(e) => Err(ApiError::of(&e).message()),
        }
    }

    async fn can(
        &self,
        verb: &str,
        resource: &str,
        subresource: Option<&str>,
        name: &str,
    ) -> Option<bool> {
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some("certificates.k8s.io".into()),
                    resource: Some(resource.into()),
                    subresource: subresource.map(str::to_owned),
                    verb: Some(verb.into()),
                    name: Some(name.into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        api.create(&PostParams::default(), &review)
            .await
            .ok()
            .and_then(|r| r.status)
            .map(|s| s.allowed)
    }

    /// After a 403 on `…/approval`: which of the two permissions an approval needs is missing,
    /// found with SelfSubjectAccessReviews (every authenticated user may create those).
    pub async fn explain_approval_forbidden(
        &self,
        user: Option<&str>,
        action: &str,
        csr: &str,
        signer: &str,
        server_message: &str,
    ) -> String {
        let update = self
            .can(
                "update",
                "certificatesigningrequests",
                Some("approval"),
                csr,
            )
            .await;
        // CertificateApproval admission accepts the signer's exact name or its `<domain>/*`.
        let wildcard = signer
            .split_once('/')
            .map(|(domain, _)| format!("{domain}/*"));
        let mut approve = self.can("approve", "signers", None, signer).await;
        if approve == Some(false)
            && let Some(w) = &wildcard
        {
            approve = self.can("approve", "signers", None, w).await;
        }
        let need_update =
            "`update` on `certificatesigningrequests/approval` (API group certificates.k8s.io)"
                .to_owned();
        let need_approve = format!(
            "`approve` on `signers` named {signer:?}{} (API group certificates.k8s.io)",
            wildcard
                .as_deref()
                .map(|w| format!(" or {w:?}"))
                .unwrap_or_default()
        );
        let mut missing = Vec::new();
        let mut unsure = Vec::new();
        match update {
            Some(false) => missing.push(need_update),
            None => unsure.push(need_update),
            Some(true) => {}
        }
        match approve {
            Some(false) => missing.push(need_approve),
            None => unsure.push(need_approve),
            Some(true) => {}
        }
        let who = user
            .map(|u| format!("user {u:?}"))
            .unwrap_or_else(|| "you".to_owned());
        let mut out = format!(
            "forbidden: {who} may not {action} certificate signing request {csr:?} (signer {signer})"
        );
        if !missing.is_empty() {
            out.push_str(": missing permission");
            if missing.len() > 1 {
                out.push('s');
            }
            for m in &missing {
                out.push_str("\n  - ");
                out.push_str(m);
            }
        }
        if !unsure.is_empty() {
            out.push_str("\nneeded (could not be checked with a SelfSubjectAccessReview):");
            for m in &unsure {
                out.push_str("\n  - ");
                out.push_str(m);
            }
        }
        out.push_str("\nserver said: ");
        out.push_str(server_message);
        out
    }
}

/// `status.allowed` decides, as for the daemon; no status at all is no answer.
fn sar_answer(r: SubjectAccessReview) -> SarAnswer {
    let Some(status) = r.status else {
        return SarAnswer::Unasked("the SubjectAccessReview came back without a status".into());
    };
    if status.allowed {
        return SarAnswer::Allowed;
    }
    let mut why: Vec<String> = Vec::new();
    if let Some(reason) = status.reason.filter(|r| !r.is_empty()) {
        why.push(reason);
    }
    if let Some(err) = status.evaluation_error.filter(|e| !e.is_empty()) {
        why.push(format!("evaluation error: {err}"));
    }
    SarAnswer::Denied(why.join("; "))
}

fn node_addresses(n: &Node) -> Vec<OwnedAddress> {
    n.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .map(|a| {
            a.iter()
                .map(|a| OwnedAddress {
                    kind: a.type_.clone(),
                    address: a.address.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Names of the nodes these CSRs are for, as [`assess`] picks them (requester, else CN).
pub fn wanted_nodes(csrs: &[CertificateSigningRequest]) -> BTreeSet<String> {
    let none = ClusterFacts::default();
    csrs.iter()
        .filter_map(|c| assess(c, &none).node_name)
        .collect()
}
