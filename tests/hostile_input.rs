//! Hostile input to every command that reads a file: `inspect FILE`, `--kubeconfig FILE` (all
//! cluster commands) and `token create --ca-file FILE`. Each case runs the real binary and checks
//! the exit code, the exact error line (it names the file and what is wrong with it), that
//! nothing panicked and that stdout shows no success. No cluster is needed: every kubeconfig case
//! fails before a connection, except the one that checks the unreachable-server message
//! (127.0.0.1:1). The cases and their output are listed in docs/reliability.md ("Hostile input").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_tlsboot");

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_in(home: &Path, args: &[&str], stdin: &[u8]) -> Outcome {
    run_with_kubeconfig_env(home, None, args, stdin)
}

/// `run_in` with `$KUBECONFIG` set to `kubeconfig_env` (else unset).
fn run_with_kubeconfig_env(
    home: &Path,
    kubeconfig_env: Option<&str>,
    args: &[&str],
    stdin: &[u8],
) -> Outcome {
    let mut cmd = command(Path::new(BIN), home);
    // Nothing from the developer's environment may decide which kubeconfig is read.
    match kubeconfig_env {
        Some(v) => cmd.env("KUBECONFIG", v),
        None => cmd.env_remove("KUBECONFIG"),
    };
    finish(cmd.args(args), stdin)
}

/// `bin` in `home`, with nothing from the environment that could change what it reads.
fn command(bin: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_remove("KUBECONFIG")
        .env_remove("TLSBOOT_CONTEXT")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env_remove("RUST_LOG")
        .env("HOME", home)
        .current_dir(home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn finish(cmd: &mut Command, stdin: &[u8]) -> Outcome {
    use std::io::Write as _;
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut pipe = child.stdin.take().unwrap();
    // A command that fails before reading stdin closes it: a broken pipe here is fine.
    let _ = pipe.write_all(stdin);
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    Outcome {
        code: out.status.code().expect("killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn no_panic(o: &Outcome, what: &str) {
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(
            !o.stderr.contains(bad),
            "{what}: panic text in\n{}",
            o.stderr
        );
    }
}

/// A failed command: `code`, nothing on stdout, and stderr exactly one line that starts with
/// `prefix` (which names the file) and contains `detail` (the part worded by a library or the
/// OS, e.g. a YAML parser position).
fn assert_failed(o: &Outcome, what: &str, code: i32, prefix: &str, detail: &str) {
    no_panic(o, what);
    assert_eq!(o.code, code, "{what}: exit code; stderr:\n{}", o.stderr);
    assert_eq!(o.stdout, "", "{what}: stdout must be empty");
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: one error line expected:\n{}",
        o.stderr
    );
    assert!(
        lines[0].starts_with(prefix),
        "{what}:\n  got      {}\n  expected {prefix}…",
        lines[0]
    );
    assert!(
        lines[0].contains(detail),
        "{what}: {detail:?} missing in {}",
        lines[0]
    );
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn csr_pem() -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "system:node:worker-1");
    p.serialize_request(&key).unwrap().pem().unwrap()
}

/// A certificate and its key, PEM.
fn cert_and_key() -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["tlsboot-test".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

/// The first half of a PEM's lines: cut off mid-body, no END line.
fn truncated(pem: &str) -> String {
    let lines: Vec<&str> = pem.lines().collect();
    lines[..lines.len() / 2].join("\n") + "\n"
}

fn csr_object(name: &str, request: &str) -> String {
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  \
         name: {name}\nspec:\n  signerName: kubernetes.io/kube-apiserver-client-kubelet\n  \
         request: {request}\n  usages: [digital signature, client auth]\n  \
         username: system:bootstrap:abcdef\n  groups: [system:bootstrappers]\n"
    )
}

struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn path(&self, name: &str) -> String {
        self.tmp.path().join(name).to_str().unwrap().to_owned()
    }

    fn run(&self, args: &[&str]) -> Outcome {
        run_in(self.tmp.path(), args, b"")
    }

    /// `run` as uid/gid 65534, for a test running as root (whom file modes do not stop). The
    /// directory is opened up for that user to enter; the binary is copied into it when its
    /// own path is closed to others (a checkout under /root).
    fn run_as_nobody(&self, args: &[&str]) -> Outcome {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        use std::os::unix::process::CommandExt as _;
        const NOBODY: u32 = 65534;
        let uid = std::fs::metadata("/proc/self").unwrap().uid();
        assert_eq!(
            uid, 0,
            "a mode-000 file is readable to uid {uid}, which is not root and cannot drop \
             privileges to test it (CAP_DAC_OVERRIDE?)"
        );
        let home = self.tmp.path();
        std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o755)).unwrap();
        let open_to_others = |p: &Path, bits: u32| {
            std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & bits == bits)
        };
        let bin = Path::new(BIN);
        let reachable = open_to_others(bin, 0o005)
            && bin
                .ancestors()
                .skip(1)
                .all(|dir| open_to_others(dir, 0o001));
        let bin = if reachable {
            bin.to_path_buf()
        } else {
            let copy = home.join("tlsboot");
            std::fs::copy(bin, &copy).unwrap();
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
            copy
        };
        let mut cmd = command(&bin, home);
        cmd.uid(NOBODY).gid(NOBODY).args(args);
        finish(&mut cmd, b"")
    }
}

fn binary_garbage() -> Vec<u8> {
    // Deterministic, not UTF-8 from the second byte on, no PEM or YAML structure.
    let mut v = vec![b'x'];
    v.extend((0..512u32).map(|i| (0x80 + (i * 7919) % 128) as u8));
    v
}

#[test]
fn inspect_refuses_files_that_are_not_csrs() {
    let d = Dir::new();
    let huge = d.path("huge.yaml");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(64 * 1024 * 1024 + 1)
        .unwrap();
    std::fs::create_dir(d.path("a-directory")).unwrap();
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("empty file", d.file("empty.yaml", ""), "file is empty", ""),
        (
            "binary garbage",
            d.file("garbage.bin", binary_garbage()),
            "neither a CertificateSigningRequest object (YAML/JSON) nor a PEM CERTIFICATE \
             REQUEST: binary data, not text (invalid UTF-8 at byte 1)",
            "",
        ),
        (
            "garbage YAML",
            d.file("garbage.yaml", "foo: [bar\n  baz: : :\n"),
            "neither a CertificateSigningRequest object (YAML/JSON) nor a PEM CERTIFICATE \
             REQUEST: invalid YAML: ",
            "at line 2 column 6",
        ),
        (
            "garbage JSON",
            d.file(
                "garbage.json",
                r#"{"kind": "CertificateSigningRequest", "spec": "#,
            ),
            "neither a CertificateSigningRequest object (YAML/JSON) nor a PEM CERTIFICATE \
             REQUEST: invalid JSON: EOF while parsing a value at line 1 column 46",
            "",
        ),
        (
            "YAML nested 100,000 deep",
            d.file("deep.yaml", "- ".repeat(100_000) + "x\n"),
            "neither a CertificateSigningRequest object (YAML/JSON) nor a PEM CERTIFICATE \
             REQUEST: invalid YAML: recursion limit exceeded",
            "",
        ),
        (
            "JSON nested 100,000 deep",
            d.file("deep.json", "[".repeat(100_000)),
            "neither a CertificateSigningRequest object (YAML/JSON) nor a PEM CERTIFICATE \
             REQUEST: invalid JSON: recursion limit exceeded",
            "",
        ),
        (
            "YAML alias bomb (billion laughs)",
            d.file("bomb.yaml", alias_bomb()),
            "neither a CertificateSigningRequest object (YAML/JSON) nor a PEM CERTIFICATE \
             REQUEST: invalid YAML: repetition limit exceeded",
            "",
        ),
        (
            "a Secret",
            d.file(
                "secret.yaml",
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  a: Zm9v\n",
            ),
            "not a CertificateSigningRequest (kind \"Secret\")",
            "",
        ),
        (
            "a ConfigMap (JSON)",
            d.file(
                "cm.json",
                r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}"#,
            ),
            "not a CertificateSigningRequest (kind \"ConfigMap\")",
            "",
        ),
        (
            "an object without kind",
            d.file("nokind.yaml", "apiVersion: v1\nmetadata:\n  name: x\n"),
            "not a Kubernetes object: no kind field",
            "",
        ),
        (
            "a plain string",
            d.file("words.txt", "just some words\n"),
            "neither a CertificateSigningRequest object (YAML/JSON) nor a PEM CERTIFICATE \
             REQUEST: a plain value, not an object",
            "",
        ),
        (
            "a CSR without spec",
            d.file(
                "nospec.yaml",
                "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\n\
                 metadata:\n  name: x\n",
            ),
            "not a valid certificates.k8s.io/v1 CertificateSigningRequest: spec is missing",
            "",
        ),
        (
            "a CSR whose spec.request is a number",
            d.file("numreq.yaml", csr_object("csr-n", "5")),
            "not a valid certificates.k8s.io/v1 CertificateSigningRequest: spec.request is not \
             a string",
            "",
        ),
        (
            "a List whose items is not a list",
            d.file("baditems.yaml", "apiVersion: v1\nkind: List\nitems: 5\n"),
            "neither a CertificateSigningRequest object (YAML/JSON) nor a PEM CERTIFICATE \
             REQUEST: the List's items is a number, not a list",
            "",
        ),
        (
            "a directory",
            d.path("a-directory"),
            "cannot read it: Is a directory",
            "",
        ),
        (
            "a missing file",
            d.path("missing.yaml"),
            "cannot read it: No such file or directory",
            "",
        ),
        (
            "a file over the 64 MiB cap",
            huge.clone(),
            "file is larger than 64 MiB",
            "",
        ),
    ];
    for (what, path, message, detail) in &cases {
        let o = d.run(&["inspect", path]);
        assert_failed(&o, what, 1, &format!("error: {path}: {message}"), detail);
        // -o json must not print an array that looks like a (empty) success either.
        let o = d.run(&["inspect", "-o", "json", path]);
        no_panic(&o, what);
        assert_eq!(o.code, 1, "{what} -o json");
        assert_eq!(o.stdout.trim(), "[]", "{what} -o json");
    }
}

/// kubectl-style YAML aliases, each level nine times the one before: 9^10 nodes if expanded.
fn alias_bomb() -> String {
    let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        s.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    s
}

#[test]
fn inspect_names_each_wrong_item_of_a_list() {
    let d = Dir::new();
    let list = d.file(
        "list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: \
         {name: a}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: b}\n- 42\n",
    );
    let o = d.run(&["inspect", &list]);
    no_panic(&o, "list");
    assert_eq!(o.code, 1);
    assert_eq!(o.stdout, "");
    assert_eq!(
        o.stderr,
        format!(
            "error: {list}: item 1: not a CertificateSigningRequest (kind \"Secret\")\n\
             error: {list}: item 2: not a CertificateSigningRequest (kind \"ConfigMap\")\n\
             error: {list}: item 3: not a Kubernetes object: a number, not a mapping\n"
        )
    );
    // Documents of a multi-document file are numbered.
    let multi = d.file(
        "multi.yaml",
        format!(
            "{}---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n",
            csr_object("csr-ok", &base64(csr_pem().as_bytes()))
        ),
    );
    let o = d.run(&["inspect", &multi]);
    no_panic(&o, "multi");
    assert_eq!(o.code, 1, "one bad document fails the run");
    assert!(o.stdout.contains("csr-ok  ("), "{}", o.stdout);
    assert_eq!(
        o.stderr,
        format!("error: {multi}: document 2: not a CertificateSigningRequest (kind \"Secret\")\n")
    );
}

#[test]
fn a_bad_file_does_not_hide_the_good_ones() {
    let d = Dir::new();
    let good = d.file("good.csr", csr_pem());
    let missing = d.path("missing.csr");
    let o = d.run(&["inspect", &good, &missing]);
    no_panic(&o, "good + missing");
    assert_eq!(o.code, 1);
    assert!(
        o.stdout.contains("  verdict:     authorize"),
        "{}",
        o.stdout
    );
    assert!(o.stderr.starts_with(&format!(
        "error: {missing}: cannot read it: No such file or directory"
    )));
    // stdin: garbage is attributed to `<stdin>`.
    let o = run_in(d.tmp.path(), &["inspect", "-"], b"{]");
    assert_failed(
        &o,
        "stdin",
        1,
        "error: <stdin>: neither a CertificateSigningRequest object (YAML/JSON) nor a PEM \
         CERTIFICATE REQUEST: invalid JSON: ",
        "line 1 column 2",
    );
}

/// A name that is not an existing file is a CSR name (see `tlsboot inspect --help`): a mistyped
/// file name reaches the cluster code, and the run says so.
#[test]
fn a_mistyped_file_name_is_explained() {
    let d = Dir::new();
    let o = d.run(&["inspect", "missing.yaml"]);
    no_panic(&o, "missing.yaml");
    assert_eq!(o.code, 1);
    assert_eq!(o.stdout, "");
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", o.stderr);
    assert!(
        lines[0].starts_with("error: no kubeconfig found and not running in a cluster"),
        "{}",
        o.stderr
    );
    assert_eq!(
        lines[1],
        "note: there is no file \"missing.yaml\": it was looked up as a CSR name (--file reads \
         arguments as files only)"
    );
    let o = d.run(&["inspect", "--file", "missing.yaml"]);
    assert_failed(
        &o,
        "--file missing.yaml",
        1,
        "error: missing.yaml: cannot read it: No such file or directory",
        "",
    );
}

/// A mode-000 file is unreadable to an ordinary user. Root reads it anyway, so as root (CI runs
/// as root) the binary runs as `nobody` (uid/gid 65534): the check happens either way.
#[test]
fn unreadable_file() {
    let d = Dir::new();
    let path = d.file("secret.csr", csr_pem());
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    let privileged = std::fs::read(&path).is_ok();
    let run = |args: &[&str]| {
        if privileged {
            d.run_as_nobody(args)
        } else {
            d.run(args)
        }
    };
    let o = run(&["inspect", &path]);
    assert_failed(
        &o,
        "mode 000",
        1,
        &format!("error: {path}: cannot read it: Permission denied"),
        "",
    );
    let o = run(&["list", "--kubeconfig", &path]);
    assert_failed(
        &o,
        "mode 000 kubeconfig",
        1,
        &format!("error: kubeconfig {path}: cannot read it: Permission denied"),
        "",
    );
}

/// A garbage `spec.request` is a verdict about that CSR, not an unreadable file: the CSR is
/// shown with a FAIL line and verdict reject, and the run succeeds (exit 0) as for any other
/// CSR that fails its checks.
#[test]
fn garbage_requests_are_judged_reject() {
    let d = Dir::new();
    let pem = csr_pem();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "spec.request that is not base64",
            d.file("badb64.yaml", csr_object("csr-badb64", "'not*base64!'")),
            "    FAIL  pem: spec.request is not valid base64: invalid character at offset 3",
        ),
        (
            "spec.request that is base64 of garbage",
            d.file(
                "b64garbage.yaml",
                csr_object("csr-garbage", &base64(b"hello garbage\n")),
            ),
            "    FAIL  pem: PEM block type must be CERTIFICATE REQUEST: no PEM block found",
        ),
        (
            "spec.request that is a truncated PEM",
            d.file(
                "trunc.yaml",
                csr_object("csr-trunc", &base64(truncated(&pem).as_bytes())),
            ),
            "    FAIL  pem: the CERTIFICATE REQUEST PEM block has no END line",
        ),
        (
            "raw PEM truncated mid-body",
            d.file("trunc.csr", truncated(&pem)),
            "    FAIL  pem: the CERTIFICATE REQUEST PEM block has no END line",
        ),
        (
            "raw PEM labelled CERTIFICATE",
            d.file(
                "wrong-label.pem",
                pem.replace("CERTIFICATE REQUEST", "CERTIFICATE"),
            ),
            "    FAIL  pem: PEM block type must be CERTIFICATE REQUEST: found a \"CERTIFICATE\" block",
        ),
        (
            "raw PEM with a corrupted body",
            d.file("corrupt.csr", corrupt_body(&pem)),
            "    FAIL  pem: the CERTIFICATE REQUEST PEM body is not valid base64: invalid \
             character at offset",
        ),
    ];
    for (what, path, fail_line) in &cases {
        let o = d.run(&["inspect", path]);
        no_panic(&o, what);
        assert_eq!(o.code, 0, "{what}: stderr {}", o.stderr);
        assert_eq!(o.stderr, "", "{what}");
        assert!(
            o.stdout.contains(&format!("  ({path})\n")),
            "{what}: names the file\n{}",
            o.stdout
        );
        assert!(
            o.stdout.contains(fail_line),
            "{what}: {fail_line:?} missing in\n{}",
            o.stdout
        );
        assert!(
            o.stdout.contains("  verdict:     reject (1 violation)"),
            "{what}:\n{}",
            o.stdout
        );
        assert!(!o.stdout.contains("authorize"), "{what}:\n{}", o.stdout);
        let o = d.run(&["inspect", "-o", "json", path]);
        let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        assert_eq!(v[0]["verdict"], "reject", "{what}");
    }
}

fn corrupt_body(pem: &str) -> String {
    let mut lines: Vec<String> = pem.lines().map(str::to_owned).collect();
    lines[1].replace_range(5..6, "*");
    lines.join("\n") + "\n"
}

/// One cluster, one context `ctx`, one user `u` with a client certificate and key (base64).
fn kubeconfig(
    server: &str,
    current: &str,
    cluster_ref: &str,
    ca: &str,
    (cert, key): (&str, &str),
) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    \
         certificate-authority-data: {ca}\ncontexts:\n- name: ctx\n  context:\n    cluster: \
         {cluster_ref}\n    user: u\ncurrent-context: {current}\nusers:\n- name: u\n  user:\n    \
         client-certificate-data: {cert}\n    client-key-data: {key}\n"
    )
}

/// A kubeconfig for https://127.0.0.1:1 (nothing listens there) whose self-signed `cert` is both
/// the CA and the client certificate, with `key` as the client key PEM.
fn kubeconfig_for_port_1(cert: &str, key: &str) -> String {
    kubeconfig(
        "https://127.0.0.1:1",
        "ctx",
        "c",
        &base64(cert.as_bytes()),
        (&base64(cert.as_bytes()), &base64(key.as_bytes())),
    )
}

#[test]
fn broken_kubeconfigs_are_named_before_any_connection() {
    let d = Dir::new();
    // The client certificate is self-signed: it doubles as the CA.
    let (cert, key) = cert_and_key();
    let (ca64, key64) = (base64(cert.as_bytes()), base64(key.as_bytes()));
    let cert64 = ca64.clone();
    let srv = "https://127.0.0.1:1";
    let good = |server: &str| kubeconfig(server, "ctx", "c", &ca64, (&cert64, &key64));
    std::fs::create_dir(d.path("kc-dir")).unwrap();
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "missing file",
            d.path("missing"),
            "cannot read it: No such file or directory",
            "",
        ),
        (
            "a directory",
            d.path("kc-dir"),
            "cannot read it: Is a directory",
            "",
        ),
        ("empty file", d.file("empty", ""), "the file is empty", ""),
        (
            "binary garbage",
            d.file("binary", binary_garbage()),
            "binary data, not a YAML kubeconfig (invalid UTF-8 at byte 1)",
            "",
        ),
        (
            "garbage YAML",
            d.file("garbage", "foo: [bar\n  baz: : :\n"),
            "invalid YAML: ",
            "at line 2 column 6",
        ),
        (
            "a Secret",
            d.file(
                "secret",
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  a: Zm9v\n",
            ),
            "not a kubeconfig: kind is Secret (a kubeconfig has kind: Config)",
            "",
        ),
        (
            "YAML that is a list",
            d.file("list", "- a\n- b\n"),
            "not a kubeconfig: a YAML sequence, not a mapping",
            "",
        ),
        (
            "a mapping with nothing of a kubeconfig",
            d.file("mapping", "foo: bar\n"),
            "not a kubeconfig: it has no clusters, contexts or users",
            "",
        ),
        (
            "no current-context",
            d.file(
                "nocurrent",
                kubeconfig(srv, "\"\"", "c", &ca64, (&cert64, &key64)),
            ),
            "no current-context is set and --context was not given (contexts: \"ctx\")",
            "",
        ),
        (
            "current-context naming a missing context",
            d.file(
                "nocontext",
                kubeconfig(srv, "other", "c", &ca64, (&cert64, &key64)),
            ),
            "context \"other\" is not in the file (contexts: \"ctx\")",
            "",
        ),
        (
            "context naming a missing cluster",
            d.file(
                "nocluster",
                kubeconfig(srv, "ctx", "nosuch", &ca64, (&cert64, &key64)),
            ),
            "context \"ctx\" names cluster \"nosuch\", which is not in the file (clusters: \"c\")",
            "",
        ),
        (
            "certificate-authority-data that is not base64",
            d.file(
                "badca",
                kubeconfig(srv, "ctx", "c", "'not*base64!'", (&cert64, &key64)),
            ),
            "cluster \"c\": certificate-authority-data is not valid base64: invalid character \
             at offset 3",
            "",
        ),
        (
            "certificate-authority-data that is base64 of garbage",
            d.file(
                "garbageca",
                kubeconfig(srv, "ctx", "c", &base64(b"garbage\n"), (&cert64, &key64)),
            ),
            "cluster \"c\": certificate-authority-data: no PEM block found (expected -----BEGIN \
             CERTIFICATE-----)",
            "",
        ),
        (
            "certificate-authority-data holding a CSR",
            d.file(
                "csrca",
                kubeconfig(
                    srv,
                    "ctx",
                    "c",
                    &base64(csr_pem().as_bytes()),
                    (&cert64, &key64),
                ),
            ),
            "cluster \"c\": certificate-authority-data: expected a PEM CERTIFICATE block, found \
             \"CERTIFICATE REQUEST\"",
            "",
        ),
        (
            "client-key-data that is a truncated PEM",
            d.file(
                "trunckey",
                kubeconfig(
                    srv,
                    "ctx",
                    "c",
                    &ca64,
                    (&cert64, &base64(truncated(&key).as_bytes())),
                ),
            ),
            "user \"u\": client-key-data: truncated PEM: the PRIVATE KEY block has no END line",
            "",
        ),
        (
            "server that is not a URL",
            d.file("badurl", good("'::not a url::'")),
            "cluster \"c\": server \"::not a url::\" is not a URL (expected https://HOST[:PORT])",
            "",
        ),
        (
            "server with a space",
            d.file("spaceurl", good("'https://api example'")),
            "cluster \"c\": server \"https://api example\" is not a valid URL (it contains spaces \
             or characters URLs cannot hold)",
            "",
        ),
    ];
    for (what, path, message, detail) in &cases {
        let o = d.run(&["list", "--kubeconfig", path]);
        assert_failed(
            &o,
            what,
            1,
            &format!("error: kubeconfig {path}: {message}"),
            detail,
        );
    }

    // A certificate and key that do not belong together pass the file checks; the TLS setup
    // refuses them, and the error still names the file.
    let (_, other_key) = cert_and_key();
    let mismatch = d.file(
        "mismatch",
        kubeconfig(
            srv,
            "ctx",
            "c",
            &ca64,
            (&cert64, &base64(other_key.as_bytes())),
        ),
    );
    let o = d.run(&["list", "--kubeconfig", &mismatch]);
    assert_failed(
        &o,
        "mismatched key",
        1,
        &format!("error: building the Kubernetes client from kubeconfig {mismatch}: "),
        "KeyMismatch",
    );

    // Every cluster command reads the kubeconfig the same way.
    let trunckey = d.path("trunckey");
    let missing = d.path("missing");
    for cmd in [
        &["list"][..],
        &["inspect", "csr-abc"],
        &["approve", "csr-abc"],
        &["deny", "csr-abc"],
        &["approve", "--all-valid"],
        &["token", "create"],
        &["token", "list"],
        &["token", "delete", "abcdef"],
        &["rbac", "apply"],
        &["doctor"],
        &["controller"],
    ] {
        for (path, message) in [
            (
                &trunckey,
                "user \"u\": client-key-data: truncated PEM: the PRIVATE KEY block has no END line",
            ),
            (&missing, "cannot read it: No such file or directory"),
        ] {
            let mut args = cmd.to_vec();
            args.extend(["--kubeconfig", path]);
            let o = d.run(&args);
            assert_failed(
                &o,
                &args.join(" "),
                1,
                &format!("error: kubeconfig {path}: {message}"),
                "",
            );
        }
    }

    // --context naming a missing context.
    let goodpath = d.file("good", good(srv));
    let o = d.run(&["list", "--kubeconfig", &goodpath, "--context", "prod"]);
    assert_failed(
        &o,
        "--context prod",
        1,
        &format!(
            "error: kubeconfig {goodpath}: context \"prod\" is not in the file (contexts: \"ctx\")"
        ),
        "",
    );
}

#[test]
fn the_default_kubeconfig_is_checked_like_an_explicit_one() {
    let home = tempfile::tempdir().unwrap();
    let kube = home.path().join(".kube");
    std::fs::create_dir(&kube).unwrap();
    let config = kube.join("config");
    std::fs::write(&config, "apiVersion: v1\nkind: Secret\n").unwrap();
    // ~/.kube/config exists but is broken: an error naming it, not an in-cluster fall-back.
    let o = run_in(home.path(), &["list"], b"");
    assert_failed(
        &o,
        "~/.kube/config is a Secret",
        1,
        &format!("error: kubeconfig {}: not a kubeconfig", config.display()),
        "kind is Secret",
    );
    // A single $KUBECONFIG path wins over ~/.kube/config and is named the same way.
    let env_file = home.path().join("env.kubeconfig");
    std::fs::write(&env_file, "clusters: [").unwrap();
    let o = run_with_kubeconfig_env(
        home.path(),
        Some(env_file.to_str().unwrap()),
        &["list"],
        b"",
    );
    assert_failed(
        &o,
        "$KUBECONFIG is garbage YAML",
        1,
        &format!("error: kubeconfig {}: invalid YAML", env_file.display()),
        "line",
    );
    // A truncated client key in the default file fails before any connection, naming the user.
    let (cert, key) = cert_and_key();
    std::fs::write(&config, kubeconfig_for_port_1(&cert, &truncated(&key))).unwrap();
    let o = run_in(home.path(), &["list"], b"");
    assert_failed(
        &o,
        "~/.kube/config with a truncated key",
        1,
        &format!("error: kubeconfig {}: user", config.display()),
        "truncated PEM",
    );
}

#[test]
fn kubeconfig_pointing_at_bad_files() {
    let d = Dir::new();
    let (ca, key) = cert_and_key();
    let (cert, _) = cert_and_key();
    d.file("ca.crt", &ca);
    d.file("trunc-ca.crt", truncated(&ca));
    d.file("client.crt", &cert);
    d.file("client.key", &key);
    let kc = |ca_file: &str, key_file: &str| {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: \
             https://127.0.0.1:1\n    certificate-authority: {ca_file}\ncontexts:\n- name: ctx\n  \
             context: {{cluster: c, user: u}}\ncurrent-context: ctx\nusers:\n- name: u\n  user:\n    \
             client-certificate: client.crt\n    client-key: {key_file}\n"
        )
    };
    let cases = [
        (
            d.file("kc-missing-ca", kc("nope.crt", "client.key")),
            "cluster \"c\": certificate-authority nope.crt: cannot read it: No such file or \
             directory",
        ),
        (
            d.file("kc-trunc-ca", kc("trunc-ca.crt", "client.key")),
            "cluster \"c\": certificate-authority trunc-ca.crt: truncated PEM: the CERTIFICATE \
             block has no END line",
        ),
        (
            d.file("kc-key-is-cert", kc("ca.crt", "client.crt")),
            "user \"u\": client-key client.crt: expected a PEM PRIVATE KEY block, found \
             \"CERTIFICATE\"",
        ),
    ];
    for (path, message) in &cases {
        let o = d.run(&["list", "--kubeconfig", path]);
        assert_failed(
            &o,
            message,
            1,
            &format!("error: kubeconfig {path}: {message}"),
            "",
        );
    }
}

#[test]
fn unreachable_server_is_said_plainly() {
    let d = Dir::new();
    let (ca, key) = cert_and_key();
    let path = d.file("good", kubeconfig_for_port_1(&ca, &key));
    let o = d.run(&["list", "--kubeconfig", &path]);
    no_panic(&o, "list");
    assert_eq!(o.code, 1);
    assert_eq!(o.stdout, "");
    assert!(
        o.stderr
            .starts_with("error: cannot reach the Kubernetes API server at https://127.0.0.1:1/: "),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("Connection refused"), "{}", o.stderr);
    let o = d.run(&["token", "list", "--kubeconfig", &path]);
    no_panic(&o, "token list");
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.starts_with(
            "error: failed to list bootstrap tokens: cannot reach the Kubernetes API server"
        ),
        "{}",
        o.stderr
    );
}

#[test]
fn token_create_ca_file() {
    let d = Dir::new();
    let (ca, key) = cert_and_key();
    let kc = d.file("kc", kubeconfig_for_port_1(&ca, &key));
    std::fs::create_dir(d.path("dir")).unwrap();
    let unusable = |p: &str| {
        format!("error: building the bootstrap kubeconfig: the CA from --ca-file {p} is unusable: ")
    };
    let cases: Vec<(&str, String, String)> = {
        let missing = d.path("missing.crt");
        let dir = d.path("dir");
        let empty = d.file("empty.crt", "");
        let binary = d.file("binary.crt", binary_garbage());
        let trunc = d.file("trunc.crt", truncated(&ca));
        let csr = d.file("csr.pem", csr_pem());
        let bad64 = d.file(
            "bad64.crt",
            "-----BEGIN CERTIFICATE-----\nnot*base64!\n-----END CERTIFICATE-----\n",
        );
        let secret = d.file("secret.yaml", "apiVersion: v1\nkind: Secret\n");
        vec![
            (
                "missing",
                missing.clone(),
                format!("error: reading CA file {missing}: No such file or directory"),
            ),
            (
                "directory",
                dir.clone(),
                format!("error: reading CA file {dir}: Is a directory"),
            ),
            (
                "empty",
                empty.clone(),
                unusable(&empty) + "empty (expected a PEM CERTIFICATE block)",
            ),
            (
                "binary",
                binary.clone(),
                unusable(&binary) + "no PEM block found (expected -----BEGIN CERTIFICATE-----)",
            ),
            (
                "truncated",
                trunc.clone(),
                unusable(&trunc) + "truncated PEM: the CERTIFICATE block has no END line",
            ),
            (
                "a CSR",
                csr.clone(),
                unusable(&csr) + "expected a PEM CERTIFICATE block, found \"CERTIFICATE REQUEST\"",
            ),
            (
                "bad base64",
                bad64.clone(),
                unusable(&bad64)
                    + "invalid base64 in the CERTIFICATE PEM block: invalid character at offset 3",
            ),
            (
                "a Secret",
                secret.clone(),
                unusable(&secret) + "no PEM block found (expected -----BEGIN CERTIFICATE-----)",
            ),
        ]
    };
    for (what, path, prefix) in &cases {
        let o = d.run(&[
            "token",
            "create",
            "--kubeconfig",
            &kc,
            "--print-kubeconfig",
            "-",
            "--ca-file",
            path,
        ]);
        assert_failed(&o, what, 1, prefix, "");
    }
}

#[test]
fn usage_errors_exit_2() {
    let d = Dir::new();
    let o = d.run(&["inspect"]);
    no_panic(&o, "inspect without files");
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.starts_with("error: "), "{}", o.stderr);
    let o = d.run(&["inspect", "-o", "xml", "x.yaml"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
}
