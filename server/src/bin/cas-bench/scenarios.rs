//! The measured operations: a fixed GET (the ceiling), SSO ticket issue, ticket
//! validation and full password logins.

use std::sync::Mutex;

use async_trait::async_trait;
use http::header::{LOCATION, SET_COOKIE};
use http::HeaderMap;
use http::StatusCode;

use crate::client::{BenchError, Connection};
use crate::load::{Outcome, Step};

/// GET of a fixed path that must return 200.
pub struct FixedGet {
    pub path: String,
}

#[async_trait]
impl Step for FixedGet {
    async fn run(&self, connection: &mut Connection) -> Result<Outcome, BenchError> {
        let reply = connection.get(&self.path, None).await?;
        expect_status(reply.status, StatusCode::OK)?;
        Ok(Outcome::Done)
    }
}

/// `GET {base}/login?service=…` with a TGC: one service ticket from single sign-on.
/// Keeps up to `keep` tickets for the validation run.
pub struct SsoIssue {
    pub path: String,
    pub cookie: String,
    pub keep: usize,
    pub tickets: Mutex<Vec<String>>,
}

#[async_trait]
impl Step for SsoIssue {
    async fn run(&self, connection: &mut Connection) -> Result<Outcome, BenchError> {
        let reply = connection.get(&self.path, Some(&self.cookie)).await?;
        expect_status(reply.status, StatusCode::FOUND)?;

        let location = reply
            .headers
            .get(LOCATION)
            .ok_or("no Location header")?
            .to_str()?;
        let ticket = location
            .split("ticket=")
            .nth(1)
            .ok_or("no ticket in Location")?;
        let mut tickets = self
            .tickets
            .lock()
            .map_err(|_| "ticket list lock poisoned")?;
        if tickets.len() < self.keep {
            tickets.push(ticket.to_owned());
        }
        Ok(Outcome::Done)
    }
}

/// `GET {base}/p3/serviceValidate` of one pre-issued ticket, which must succeed.
pub struct Validate {
    pub base: String,
    pub service_query: String,
    pub tickets: Mutex<Vec<String>>,
}

#[async_trait]
impl Step for Validate {
    async fn run(&self, connection: &mut Connection) -> Result<Outcome, BenchError> {
        let ticket = self
            .tickets
            .lock()
            .map_err(|_| "ticket list lock poisoned")?
            .pop();
        let Some(ticket) = ticket else {
            return Ok(Outcome::Exhausted);
        };

        let path = format!(
            "{}/p3/serviceValidate?service={}&ticket={ticket}",
            self.base, self.service_query
        );
        let reply = connection.get(&path, None).await?;
        expect_status(reply.status, StatusCode::OK)?;
        let body = std::str::from_utf8(&reply.body)?;
        if !body.contains("<cas:authenticationSuccess>") {
            return Err(format!("validation failed: {body}").into());
        }
        Ok(Outcome::Done)
    }
}

/// A full login: GET the form for its login ticket, then POST the credentials, which
/// must start a session.
pub struct FullLogin {
    pub base: String,
    pub service_query: String,
    pub form_tail: String,
}

#[async_trait]
impl Step for FullLogin {
    async fn run(&self, connection: &mut Connection) -> Result<Outcome, BenchError> {
        let (status, _, cookie) =
            log_in(connection, &self.base, &self.service_query, &self.form_tail).await?;
        expect_status(status, StatusCode::SEE_OTHER)?;
        if cookie.is_none() {
            return Err("login set no TGC".into());
        }
        Ok(Outcome::Done)
    }
}

/// Logs in once and returns the status, the Location and the `TGC=…` cookie pair. The
/// form's cookie goes back with the POST, because the server binds each login form to
/// the browser that fetched it.
pub async fn log_in(
    connection: &mut Connection,
    base: &str,
    service_query: &str,
    form_tail: &str,
) -> Result<(StatusCode, Option<String>, Option<String>), BenchError> {
    let page = connection
        .get(&format!("{base}/login?service={service_query}"), None)
        .await?;
    expect_status(page.status, StatusCode::OK)?;
    let login_ticket = login_ticket(&page.body).ok_or("no login ticket in the form")?;
    let form_cookie = cookie_pair(&page.headers, "CASLOGIN=");

    let form = format!("lt={login_ticket}&service={service_query}&{form_tail}");
    let reply = connection
        .post_form(&format!("{base}/login"), form, form_cookie.as_deref())
        .await?;
    let location = reply
        .headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let cookie = cookie_pair(&reply.headers, "TGC=");
    Ok((reply.status, location, cookie))
}

/// Returns the `name=value` pair of the first `Set-Cookie` header that starts with
/// `prefix` and sets a value.
fn cookie_pair(headers: &HeaderMap, prefix: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .find(|pair| pair.starts_with(prefix) && pair.len() > prefix.len())
        .map(str::to_owned)
}

fn login_ticket(page: &[u8]) -> Option<String> {
    let page = std::str::from_utf8(page).ok()?;
    let marker = "name=\"lt\" value=\"";
    let start = page.find(marker)? + marker.len();
    let end = page[start..].find('"')?;
    Some(page[start..start + end].to_owned())
}

fn expect_status(status: StatusCode, expected: StatusCode) -> Result<(), BenchError> {
    if status != expected {
        return Err(format!("status {status}, expected {expected}").into());
    }
    Ok(())
}
