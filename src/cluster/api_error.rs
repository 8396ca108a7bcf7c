//! The one reading of a failed API call: did the server answer, with which HTTP status and
//! reason, and how to say it on one line.
//!
//! kube-rs's own `Display` for an API error embeds the whole `Status` in Debug form, so no
//! user-facing text may print a `kube::Error` directly: it goes through [`ApiError`].

use std::fmt;

use super::client::chain_text;

/// A borrowed view of a `kube::Error` that answers the questions every caller asks.
#[derive(Debug, Clone, Copy)]
pub struct ApiError<'a>(pub &'a kube::Error);

impl<'a> ApiError<'a> {
    pub fn of(error: &'a kube::Error) -> Self {
        ApiError(error)
    }

    /// The HTTP status the API server answered with; `None` when it did not answer
    /// (unreachable, TLS, credentials plugin, decoding).
    pub fn code(self) -> Option<u16> {
        match self.0 {
            kube::Error::Api(status) => Some(status.code),
            _ => None,
        }
    }

    /// The server answered with this status.
    pub fn is(self, code: u16) -> bool {
        self.code() == Some(code)
    }

    /// The server answered at all (any HTTP status).
    pub fn answered(self) -> bool {
        self.code().is_some()
    }

    /// The Status's CamelCase reason (`NotFound`, `Forbidden`, …) when it has one.
    pub fn reason(self) -> Option<&'a str> {
        match self.0 {
            kube::Error::Api(status) if !status.reason.is_empty() => Some(&status.reason),
            _ => None,
        }
    }

    /// The server's own message for an answer, else the error and its causes on one line.
    pub fn message(self) -> String {
        match self.0 {
            kube::Error::Api(status) => status.message.clone(),
            other => chain_text(other),
        }
    }

    /// [`Display`](fmt::Display) with advice for the cases people meet most: rejected
    /// credentials, a refusal, an API server that does not answer.
    pub fn explained(self) -> String {
        match self.code() {
            Some(401) => format!(
                "unauthorized: the credentials in the kubeconfig were rejected ({})",
                self.message()
            ),
            Some(403) => format!("forbidden: {}", self.message()),
            Some(_) => self.to_string(),
            None if matches!(self.0, kube::Error::HyperError(_) | kube::Error::Service(_)) => {
                format!(
                    "cannot reach the Kubernetes API server (is it up, and are \
                     --kubeconfig/--context right?): {}",
                    chain_text(self.0)
                )
            }
            None => chain_text(self.0),
        }
    }
}

/// A watch's failure on one line, without kube's Debug dump of the Status.
pub fn watch_error_text(e: &kube::runtime::watcher::Error) -> String {
    use kube::runtime::watcher::Error as W;
    match e {
        W::InitialListFailed(k) => format!("listing: {}", ApiError::of(k)),
        W::WatchStartFailed(k) => format!("starting the watch: {}", ApiError::of(k)),
        W::WatchFailed(k) => format!("watching: {}", ApiError::of(k)),
        W::WatchError(status) => format!("the API server ended the watch: {}", status.message),
        W::NoResourceVersion => e.to_string(),
    }
}

/// One line: `message (Reason, HTTP code)` for an answer, else the error and its causes.
impl fmt::Display for ApiError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kube::Error::Api(status) = self.0 else {
            return f.write_str(&chain_text(self.0));
        };
        f.write_str(&status.message)?;
        match (self.reason(), status.code) {
            (Some(reason), 0) => write!(f, " ({reason})"),
            (Some(reason), code) => write!(f, " ({reason}, HTTP {code})"),
            (None, 0) => Ok(()),
            (None, code) => write!(f, " (HTTP {code})"),
        }
    }
}

/// The error kube returns when the API server answered `code`/`reason`, for unit tests of
/// every layer that reads one.
#[cfg(test)]
pub(crate) fn api_answer(code: u16, reason: &str, message: &str) -> kube::Error {
    kube::Error::Api(Box::new(kube::core::Status {
        code,
        reason: reason.into(),
        message: message.into(),
        ..kube::core::Status::default()
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    use super::api_answer as api;

    #[test]
    fn an_answer_is_one_line_with_reason_and_status() {
        let nf = api(404, "NotFound", "namespaces \"tlsboot-system\" not found");
        let e = ApiError::of(&nf);
        assert_eq!(e.code(), Some(404));
        assert!(e.is(404) && e.answered());
        assert_eq!(e.reason(), Some("NotFound"));
        assert_eq!(
            e.to_string(),
            "namespaces \"tlsboot-system\" not found (NotFound, HTTP 404)"
        );
        // kube's own Display carries the Status in Debug form; ours never does.
        assert!(!e.to_string().contains("Status {"), "{e}");
        assert_eq!(
            ApiError::of(&api(500, "", "boom")).to_string(),
            "boom (HTTP 500)"
        );
    }

    #[test]
    fn explained_names_the_cause_people_act_on() {
        let unauth = api(401, "Unauthorized", "Unauthorized");
        assert!(
            ApiError::of(&unauth)
                .explained()
                .starts_with("unauthorized: the credentials"),
        );
        let forbidden = api(403, "Forbidden", "secrets is forbidden");
        assert_eq!(
            ApiError::of(&forbidden).explained(),
            "forbidden: secrets is forbidden"
        );
        let other = kube::Error::LinesCodecMaxLineLengthExceeded;
        assert_eq!(ApiError::of(&other).code(), None);
        assert!(!ApiError::of(&other).answered());
    }
}
