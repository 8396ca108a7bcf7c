//! `tlsboot token|rbac|doctor`: flags (kubeadm's names and defaults for `token`) and
//! the thin async drivers around the pure parts in the sibling modules.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};

use super::bootstrap::{
    KNOWN_USAGES, KUBEADM_DEFAULT_GROUP, NAMESPACE, SECRET_TYPE, StoredToken, TOKEN_ID_PATTERN,
    TOKEN_PATTERN, TokenSpec, TokenString, USAGE_AUTHENTICATION, group_error, is_valid_group,
    is_valid_id, secret_name, usages_error,
};
use super::doctor;
use super::error::TokenError;
use super::gocompat::{parse_duration, quote};
use super::kubeconfig::{self, CaSource};
use super::list::{self, ListFormat};
use super::rbac;
use crate::cluster::ApiError;
use crate::cluster::Connection;

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

impl TokenArgs {
    /// Subcommands that never contact the cluster.
    pub fn offline(&self) -> bool {
        matches!(self.command, TokenCommand::Generate)
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a bootstrap token on the server and print it (kubeadm-compatible).
    Create(CreateArgs),
    /// Print a random bootstrap token without contacting the server.
    Generate,
    /// List bootstrap tokens on the server.
    List(ListArgs),
    /// Delete bootstrap tokens by id ([a-z0-9]{6}) or full token.
    Delete(DeleteArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// The token to write, "[a-z0-9]{6}.[a-z0-9]{16}"; a random one when omitted.
    #[arg(value_name = "TOKEN")]
    pub token: Option<String>,

    /// The duration before the token expires (e.g. 1s, 2m, 3h). If set to '0', the token will never expire.
    #[arg(
        long,
        default_value = "24h0m0s",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub ttl: String,

    /// Describes the ways in which this token can be used. Repeat the flag or give a comma-separated
    /// list. Valid options: [signing,authentication] [default: signing,authentication]
    #[arg(long, value_name = "USAGES")]
    pub usages: Vec<String>,

    /// Extra groups that this token will authenticate as when used for authentication. Must match
    /// "\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z" [default: system:bootstrappers:kubeadm:default-node-token]
    #[arg(long, value_name = "GROUPS")]
    pub groups: Vec<String>,

    /// A human friendly description of how this token is used.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub description: String,

    /// Also write the kubelet's bootstrap kubeconfig (--bootstrap-kubeconfig) to FILE, mode 0600;
    /// "-" prints it on stdout instead of the token.
    #[arg(long, value_name = "FILE|-")]
    pub print_kubeconfig: Option<String>,

    /// API server URL for the bootstrap kubeconfig (default: the current context's).
    #[arg(long, value_name = "URL", requires = "print_kubeconfig")]
    pub server: Option<String>,

    /// CA bundle to embed in the bootstrap kubeconfig (default: the current context's CA,
    /// else the kube-public/cluster-info ConfigMap's).
    #[arg(long, value_name = "FILE", requires = "print_kubeconfig")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(short, long = "output", value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    /// Token ids or full tokens.
    #[arg(value_name = "ID|TOKEN")]
    pub tokens: Vec<String>,
}

/// pflag's StringSlice: every occurrence is CSV; an empty occurrence is an empty list;
/// no occurrence means the default.
fn string_slice(occurrences: &[String], default: &[&str]) -> Vec<String> {
    if occurrences.is_empty() {
        return default.iter().map(|s| s.to_string()).collect();
    }
    occurrences
        .iter()
        .filter(|o| !o.is_empty())
        .flat_map(|o| o.split(',').map(str::to_string))
        .collect()
}

/// Go's `%#v` of a `[]string`.
fn go_string_slice(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| quote(s)).collect();
    format!("[]string{{{}}}", items.join(", "))
}

/// kubeadm's validation of a token's usages and groups, as the field-error aggregate
/// it prints (`bootstrapTokens.0.usages: Invalid value: []string{"x"}: …`).
pub fn validate_usages_and_groups(usages: &[String], groups: &[String]) -> Result<(), TokenError> {
    let mut errors: Vec<String> = Vec::new();
    if let Some(e) = usages_error(usages) {
        errors.push(format!(
            "bootstrapTokens.0.usages: Invalid value: {}: {e}",
            go_string_slice(usages)
        ));
    }
    let groups_value = go_string_slice(groups);
    if !groups.is_empty() && !usages.iter().any(|u| u == USAGE_AUTHENTICATION) {
        errors.push(format!(
            "bootstrapTokens.0.groups: Invalid value: {groups_value}: token groups cannot be specified unless --usages includes {}",
            quote(USAGE_AUTHENTICATION)
        ));
    }
    for g in groups.iter().filter(|g| !is_valid_group(g)) {
        errors.push(format!(
            "bootstrapTokens.0.groups: Invalid value: {groups_value}: {}",
            group_error(g)
        ));
    }
    // apimachinery's aggregate: duplicates dropped, one error bare, several in [a, b].
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert(e.clone()));
    match errors.as_slice() {
        [] => Ok(()),
        [one] => Err(TokenError::Invalid(one.clone())),
        many => Err(TokenError::Invalid(format!("[{}]", many.join(", ")))),
    }
}

/// `--ttl`, checked like pflag's DurationVar (same error text). Unlike kubeadm, a
/// negative TTL is refused: kubeadm silently turns it into a token that never expires.
pub fn parse_ttl(raw: &str) -> Result<Option<SignedDuration>, TokenError> {
    let invalid = |why: String| {
        TokenError::Invalid(format!(
            "invalid argument {} for \"--ttl\" flag: {why}",
            quote(raw)
        ))
    };
    let nanos = parse_duration(raw).map_err(invalid)?;
    if nanos < 0 {
        return Err(invalid(
            "a negative TTL would create a token that never expires; use 0 for that".into(),
        ));
    }
    Ok((nanos > 0).then(|| SignedDuration::from_nanos(nanos)))
}

/// Everything `token create` checks before talking to the server, in kubeadm's order:
/// the TTL flag, the token argument, then usages and groups.
pub fn create_spec<E: std::fmt::Display>(
    args: &CreateArgs,
    now: Timestamp,
    generate: impl FnOnce() -> Result<TokenString, E>,
) -> Result<TokenSpec, TokenError> {
    let ttl = parse_ttl(&args.ttl)?;
    let token = match &args.token {
        Some(t) => TokenString::parse(t).map_err(TokenError::Invalid)?,
        None => generate()
            .map_err(|e| TokenError::Invalid(format!("couldn't generate random token: {e}")))?,
    };
    let usages = string_slice(&args.usages, &KNOWN_USAGES);
    let groups = string_slice(&args.groups, &[KUBEADM_DEFAULT_GROUP]);
    validate_usages_and_groups(&usages, &groups)?;
    let expires = match ttl {
        None => None,
        Some(d) => Some(now.checked_add(d).map_err(|_| {
            TokenError::Invalid(format!(
                "invalid argument {} for \"--ttl\" flag: too far in the future",
                quote(&args.ttl)
            ))
        })?),
    };
    Ok(TokenSpec {
        token,
        description: args.description.clone(),
        expires,
        usages,
        groups,
    })
}

fn stdout_write(text: &str) -> Result<(), TokenError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Server and CA for the bootstrap kubeconfig: flags first, then the current context,
/// then `kube-public/cluster-info` for the CA.
async fn kubeconfig_target(
    conn: &Connection,
    client: &kube::Client,
    args: &CreateArgs,
) -> Result<(String, Vec<u8>, CaSource), TokenError> {
    let config = crate::cluster::config(conn).await?;
    let server = match &args.server {
        Some(s) => s.trim_end_matches('/').to_string(),
        None => kubeconfig::server_from_uri(&config.cluster_url.to_string()),
    };
    kubeconfig::check_server(&server)?;
    let read_ca = |path: &std::path::PathBuf| {
        crate::cluster::kubeconfig::read_pem_file(path).map_err(|error| TokenError::ReadFile {
            what: "CA file",
            path: path.clone(),
            error,
        })
    };
    let (ca, source) = if let Some(path) = &args.ca_file {
        let pem = read_ca(path)?;
        (pem, CaSource::File(path.clone()))
    } else if let Some(certs) = config.root_cert.as_ref().filter(|c| !c.is_empty()) {
        (kubeconfig::der_to_pem(certs), CaSource::Kubeconfig)
    } else if let Some(path) = &config.root_cert_file {
        let pem = read_ca(path)?;
        (pem, CaSource::Kubeconfig)
    } else {
        (
            kubeconfig::ca_from_cluster_info(client).await?,
            CaSource::ClusterInfo,
        )
    };
    kubeconfig::validate_ca_pem(&ca)
        .map_err(|e| TokenError::Kubeconfig(format!("the CA from {source} is unusable: {e}")))?;
    Ok((server, ca, source))
}

async fn create(conn: &Connection, args: &CreateArgs) -> Result<(), TokenError> {
    let spec = create_spec(args, Timestamp::now(), TokenString::generate)?;
    let client = crate::cluster::client(conn).await?;
    let rendered = match &args.print_kubeconfig {
        None => None,
        Some(dest) => {
            let (server, ca, source) = kubeconfig_target(conn, &client, args).await?;
            tracing::debug!(%server, ca = %source, "bootstrap kubeconfig target");
            Some((dest.clone(), kubeconfig::render(&server, &ca, &spec.token)?))
        }
    };
    let id = spec.token.id().to_string();
    let name = secret_name(&id);
    let api: Api<Secret> = Api::namespaced(client, NAMESPACE);
    let exists = || TokenError::Invalid(format!("a token with id {} already exists", quote(&id)));
    let found = api.get_opt(&name).await.map_err(|e| {
        TokenError::kube(
            format!("checking for bootstrap token Secret {NAMESPACE}/{name}"),
            e,
        )
    })?;
    if found.is_some() {
        return Err(exists());
    }
    match api.create(&PostParams::default(), &spec.to_secret()).await {
        Ok(_) => {}
        Err(e) if ApiError::of(&e).is(409) => return Err(exists()),
        Err(e) => {
            return Err(TokenError::kube(
                format!("creating bootstrap token Secret {NAMESPACE}/{name}"),
                e,
            ));
        }
    }
    tracing::debug!(token_id = %id, "created bootstrap token Secret");
    match rendered {
        None => stdout_write(&format!("{}\n", spec.token.expose())),
        Some((dest, text)) if dest == "-" => stdout_write(&text),
        Some((dest, text)) => {
            let path = PathBuf::from(&dest);
            if let Err(e) = kubeconfig::write_private(&path, &text) {
                // Don't leave a live credential behind that nobody was told about.
                let cleanup = api.delete(&name, &DeleteParams::default()).await;
                if cleanup.is_err() {
                    tracing::warn!(token_id = %id, "could not delete the new token after the kubeconfig write failed; run: tlsboot token delete {id}");
                }
                return Err(e);
            }
            tracing::info!(path = %path.display(), token_id = %id, "wrote bootstrap kubeconfig");
            stdout_write(&format!("{}\n", spec.token.expose()))
        }
    }
}

async fn list_tokens(conn: &Connection, args: &ListArgs) -> Result<(), TokenError> {
    let client = crate::cluster::client(conn).await?;
    let api: Api<Secret> = Api::namespaced(client, NAMESPACE);
    let secrets = api
        .list(&ListParams::default().fields(&format!("type={SECRET_TYPE}")))
        .await
        .map_err(|e| TokenError::kube("failed to list bootstrap tokens", e))?;
    let mut tokens = Vec::new();
    for s in &secrets.items {
        match StoredToken::from_secret(s) {
            Ok(t) => tokens.push(t),
            // kubeadm reports malformed token Secrets on stderr and goes on.
            Err(e) => eprintln!("{e}"),
        }
    }
    let text = match args.output {
        ListFormat::Text => list::format_text(&tokens, Timestamp::now()),
        ListFormat::Json => {
            list::format_json(&tokens).map_err(|e| TokenError::Encode(e.to_string()))?
        }
        ListFormat::Yaml => {
            list::format_yaml(&tokens).map_err(|e| TokenError::Encode(e.to_string()))?
        }
    };
    stdout_write(&text)
}

/// The ids to delete, or kubeadm's error for the first argument that is neither an id
/// nor a token. All are checked before anything is deleted.
pub fn delete_ids(args: &[String]) -> Result<Vec<String>, TokenError> {
    if args.is_empty() {
        return Err(TokenError::Invalid(format!(
            "missing argument; 'token delete' is missing token of form {} or {}",
            quote(TOKEN_PATTERN),
            quote(TOKEN_ID_PATTERN)
        )));
    }
    args.iter()
        .map(|a| {
            if is_valid_id(a) {
                return Ok(a.clone());
            }
            TokenString::parse(a)
                .map(|t| t.id().to_string())
                .map_err(|_| {
                    TokenError::Invalid(format!(
                        "given token didn't match pattern {} or {}",
                        quote(TOKEN_PATTERN),
                        quote(TOKEN_ID_PATTERN)
                    ))
                })
        })
        .collect()
}

async fn delete(conn: &Connection, args: &DeleteArgs) -> Result<(), TokenError> {
    let ids = delete_ids(&args.tokens)?;
    let client = crate::cluster::client(conn).await?;
    let api: Api<Secret> = Api::namespaced(client, NAMESPACE);
    for id in ids {
        match api
            .delete(&secret_name(&id), &DeleteParams::default())
            .await
        {
            Ok(_) => stdout_write(&format!("bootstrap token {} deleted\n", quote(&id)))?,
            Err(e) if ApiError::of(&e).answered() => {
                return Err(TokenError::Invalid(format!(
                    "failed to delete bootstrap token {}: {}",
                    quote(&id),
                    ApiError::of(&e).message()
                )));
            }
            Err(e) => {
                return Err(TokenError::kube(
                    format!("failed to delete bootstrap token {}", quote(&id)),
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// `tlsboot token generate`: no cluster, no runtime.
pub fn run_token_offline(args: &TokenArgs) -> Result<ExitCode, TokenError> {
    match args.command {
        TokenCommand::Generate => {
            let token = TokenString::generate().map_err(TokenError::Random)?;
            stdout_write(&format!("{}\n", token.expose()))?;
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(TokenError::Invalid(
            "this token subcommand needs the cluster".into(),
        )),
    }
}

/// `tlsboot token …`.
pub async fn run_token(conn: &Connection, args: TokenArgs) -> Result<ExitCode, TokenError> {
    match &args.command {
        TokenCommand::Generate => return run_token_offline(&args),
        TokenCommand::Create(a) => create(conn, a).await?,
        TokenCommand::List(a) => list_tokens(conn, a).await?,
        TokenCommand::Delete(a) => delete(conn, a).await?,
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct RbacArgs {
    #[command(subcommand)]
    pub command: RbacCommand,
}

impl RbacArgs {
    pub fn offline(&self) -> bool {
        matches!(self.command, RbacCommand::Print(_))
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum RbacCommand {
    /// Print the TLS bootstrap ClusterRoleBindings as YAML.
    Print(RbacOpts),
    /// Create or update the TLS bootstrap ClusterRoleBindings (idempotent).
    Apply(RbacOpts),
}

#[derive(Debug, Clone, clap::Args)]
pub struct RbacOpts {
    /// Group whose bootstrap tokens may create and auto-renew node client CSRs:
    /// system:bootstrappers, or a narrower system:bootstrappers:… token group.
    #[arg(long, default_value = super::bootstrap::DEFAULT_GROUP, value_name = "GROUP")]
    pub group: String,
}

/// `tlsboot rbac print`.
pub fn run_rbac_offline(args: &RbacArgs) -> Result<ExitCode, TokenError> {
    match &args.command {
        RbacCommand::Print(o) => {
            stdout_write(&rbac::to_yaml(&rbac::bindings(&o.group)?)?)?;
            Ok(ExitCode::SUCCESS)
        }
        RbacCommand::Apply(_) => Err(TokenError::Invalid("rbac apply needs the cluster".into())),
    }
}

/// `tlsboot rbac …`.
pub async fn run_rbac(conn: &Connection, args: RbacArgs) -> Result<ExitCode, TokenError> {
    let opts = match &args.command {
        RbacCommand::Print(_) => return run_rbac_offline(&args),
        RbacCommand::Apply(o) => o,
    };
    let bindings = rbac::bindings(&opts.group)?;
    let client = crate::cluster::client(conn).await?;
    for (name, result) in rbac::apply(&client, &bindings).await? {
        stdout_write(&format!(
            "clusterrolebinding.rbac.authorization.k8s.io/{name} {result}\n"
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DoctorFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// Output format.
    #[arg(short, long = "output", value_enum, default_value_t = DoctorFormat::Text)]
    pub output: DoctorFormat,

    /// Namespace of the tlsboot approver's leader-election Lease.
    #[arg(long, default_value = doctor::DEFAULT_LEASE_NAMESPACE, value_name = "NAMESPACE")]
    pub lease_namespace: String,

    /// Name of the tlsboot approver's leader-election Lease.
    #[arg(long, default_value = doctor::DEFAULT_LEASE_NAME, value_name = "NAME")]
    pub lease_name: String,
}

/// `tlsboot doctor`: exit code 1 when any check fails.
pub async fn run_doctor(conn: &Connection, args: DoctorArgs) -> Result<ExitCode, TokenError> {
    let client = crate::cluster::client(conn).await?;
    let facts = doctor::gather(&client, &args.lease_namespace, &args.lease_name).await?;
    let checks = doctor::evaluate(&facts);
    let text = match args.output {
        DoctorFormat::Text => doctor::render_text(&checks),
        DoctorFormat::Json => {
            doctor::render_json(&checks).map_err(|e| TokenError::Encode(e.to_string()))?
        }
    };
    stdout_write(&text)?;
    Ok(if doctor::any_failed(&checks) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        create: CreateArgs,
    }

    fn args(argv: &[&str]) -> CreateArgs {
        let mut full = vec!["t"];
        full.extend_from_slice(argv);
        match T::try_parse_from(full) {
            Ok(t) => t.create,
            Err(e) => panic!("{e}"),
        }
    }

    fn now() -> Timestamp {
        super::super::gocompat::parse_rfc3339("2030-01-01T00:00:00Z")
            .map(|t| t.timestamp)
            .unwrap_or_default()
    }

    fn fixed() -> Result<TokenString, String> {
        TokenString::parse("abcdef.0123456789abcdef")
    }

    fn spec(argv: &[&str]) -> Result<TokenSpec, String> {
        create_spec(&args(argv), now(), fixed).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_kubeadms() {
        let Ok(s) = spec(&[]) else { panic!() };
        assert_eq!(s.usages, vec!["signing", "authentication"]);
        assert_eq!(
            s.groups,
            vec!["system:bootstrappers:kubeadm:default-node-token"]
        );
        assert_eq!(s.description, "");
        assert_eq!(
            s.expires.map(|e| e.as_second() - now().as_second()),
            Some(24 * 3600)
        );
        assert_eq!(s.token.expose(), "abcdef.0123456789abcdef");
    }

    #[test]
    fn flags_follow_pflag_slices() {
        let Ok(s) = spec(&[
            "--usages",
            "authentication",
            "--usages",
            "signing,authentication",
            "--ttl",
            "0",
            "--groups",
            "",
            "--description",
            "d",
        ]) else {
            panic!()
        };
        assert_eq!(
            s.usages,
            vec!["authentication", "signing", "authentication"]
        );
        assert!(s.groups.is_empty());
        assert_eq!(s.expires, None);
        assert_eq!(s.description, "d");
        let Ok(s) = spec(&["--ttl", "1h30m", "ghijkl.0123456789abcdef"]) else {
            panic!()
        };
        assert_eq!(
            s.expires.map(|e| e.as_second() - now().as_second()),
            Some(5400)
        );
        assert_eq!(s.token.id(), "ghijkl");
    }

    #[test]
    fn bad_inputs_give_kubeadms_messages() {
        assert_eq!(
            spec(&["--ttl", "1d"]).err().as_deref(),
            Some(
                r#"invalid argument "1d" for "--ttl" flag: time: unknown unit "d" in duration "1d""#
            )
        );
        assert_eq!(
            spec(&["--ttl", "forever"]).err().as_deref(),
            Some(
                r#"invalid argument "forever" for "--ttl" flag: time: invalid duration "forever""#
            )
        );
        assert_eq!(
            spec(&["--ttl", "10"]).err().as_deref(),
            Some(r#"invalid argument "10" for "--ttl" flag: time: missing unit in duration "10""#)
        );
        assert!(
            spec(&["--ttl", "-1h"])
                .err()
                .unwrap_or_default()
                .contains("negative TTL")
        );
        assert_eq!(
            spec(&["abc"]).err().as_deref(),
            Some(
                r#"the bootstrap token "abc" was not of the form "\\A([a-z0-9]{6})\\.([a-z0-9]{16})\\z""#
            )
        );
        assert_eq!(
            spec(&["--usages", "authentication,foo"]).err().as_deref(),
            Some(
                r#"bootstrapTokens.0.usages: Invalid value: []string{"authentication", "foo"}: invalid bootstrap token usage string: foo, valid usage options: signing,authentication"#
            )
        );
        assert_eq!(
            spec(&["--usages", "signing"]).err().as_deref(),
            Some(
                r#"bootstrapTokens.0.groups: Invalid value: []string{"system:bootstrappers:kubeadm:default-node-token"}: token groups cannot be specified unless --usages includes "authentication""#
            )
        );
        assert_eq!(
            spec(&["--groups", "system:masters"]).err().as_deref(),
            Some(
                r#"bootstrapTokens.0.groups: Invalid value: []string{"system:masters"}: bootstrap group "system:masters" is invalid (must match \Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z)"#
            )
        );
        // Several problems: apimachinery's "[a, b]" aggregate, in kubeadm's order.
        assert_eq!(
            spec(&["--usages", "bogus", "--groups", "bad"])
                .err()
                .as_deref(),
            Some(concat!(
                r#"[bootstrapTokens.0.usages: Invalid value: []string{"bogus"}: invalid bootstrap token usage string: bogus, valid usage options: signing,authentication, "#,
                r#"bootstrapTokens.0.groups: Invalid value: []string{"bad"}: token groups cannot be specified unless --usages includes "authentication", "#,
                r#"bootstrapTokens.0.groups: Invalid value: []string{"bad"}: bootstrap group "bad" is invalid (must match \Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z)]"#
            ))
        );
        // The TTL flag is checked first, like pflag does before kubeadm runs.
        assert!(
            spec(&["--ttl", "x", "bad-token"])
                .err()
                .unwrap_or_default()
                .starts_with("invalid argument \"x\"")
        );
    }

    #[test]
    fn generation_failure_is_reported() {
        let r = create_spec(&args(&[]), now(), || Err::<TokenString, _>("no entropy"));
        assert_eq!(
            r.err().map(|e| e.to_string()).as_deref(),
            Some("couldn't generate random token: no entropy")
        );
    }

    #[test]
    fn server_and_ca_flags_need_print_kubeconfig() {
        assert!(T::try_parse_from(["t", "--server", "https://x"]).is_err());
        assert!(T::try_parse_from(["t", "--ca-file", "/ca.pem"]).is_err());
        assert!(
            T::try_parse_from(["t", "--print-kubeconfig", "-", "--server", "https://x"]).is_ok()
        );
    }

    #[test]
    fn delete_arguments() {
        let ok = delete_ids(&["abcdef".into(), "ghijkl.0123456789abcdef".into()]);
        assert_eq!(
            ok.ok(),
            Some(vec!["abcdef".to_string(), "ghijkl".to_string()])
        );
        assert_eq!(
            delete_ids(&[]).err().map(|e| e.to_string()).as_deref(),
            Some(
                r#"missing argument; 'token delete' is missing token of form "\\A([a-z0-9]{6})\\.([a-z0-9]{16})\\z" or "\\A([a-z0-9]{6})\\z""#
            )
        );
        assert_eq!(
            delete_ids(&["abcdef".into(), "nope".into()])
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some(
                r#"given token didn't match pattern "\\A([a-z0-9]{6})\\.([a-z0-9]{16})\\z" or "\\A([a-z0-9]{6})\\z""#
            )
        );
    }
}
