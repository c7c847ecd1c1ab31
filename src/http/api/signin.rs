//! How one signs in here (`GET /v1/auth`), and sign-in with OpenID Connect:
//! `GET /v1/sessions/oidc` sends the browser to the provider, and the provider sends it back to
//! `GET /v1/sessions/oidc/callback`, which starts the session (the same cookie as a password
//! sign-in) and returns to the app. Whoever the provider signs in gets an account, linked to
//! their `(issuer, subject)`; the provider's role claim sets its role at every sign-in. An
//! account with the same email is linked only when the provider says it verified that email.

use super::accounts::open_session;
use crate::app::App;
use crate::auth::{accounts, oidc};
use crate::http::openapi::ME;
use crate::http::problem::Problem;
use crate::store::{Account, Created, NewAccount};
use crate::util;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(options))
        .routes(routes!(begin))
        .routes(routes!(callback))
}

/// A way to sign in through a provider.
#[derive(Serialize, ToSchema)]
pub struct Provider {
    /// What the button says: "Sign in with …".
    pub name: String,
    /// Where the button leads.
    pub url: String,
}

/// How one signs in here.
#[derive(Serialize, ToSchema)]
pub struct SignInOptions {
    /// `open`, `invite` or `closed`: who may make an account with a password.
    pub registration: String,
    /// The OpenID provider, when one is configured.
    pub oidc: Option<Provider>,
}

/// How one signs in here: whether accounts may be made, and through which provider.
#[utoipa::path(
    get, path = "/v1/auth", tag = ME,
    responses((status = 200, description = "The sign-in options", body = SignInOptions)),
    security(())
)]
async fn options(State(app): State<Arc<App>>) -> Json<SignInOptions> {
    Json(SignInOptions {
        registration: app
            .config
            .auth
            .registration(app.dev_api_key.is_some())
            .to_owned(),
        oidc: app.auth.oidc.as_ref().map(|o| Provider {
            name: o.name.clone(),
            url: "/v1/sessions/oidc".into(),
        }),
    })
}

fn redirect_uri(app: &App) -> String {
    format!("{}/v1/sessions/oidc/callback", app.public_url)
}

/// Back to the app: signed in, or with why not in plain words.
fn to_app(result: Result<String, String>) -> Response {
    let location = match &result {
        Ok(_) => "/?signed_in=1#/".to_owned(),
        Err(why) => format!("/?sign_in_error={}", util::percent_encode(why)),
    };
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    let h = r.headers_mut();
    // The flow's cookie is spent either way.
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{}=; Path=/v1/sessions/oidc; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
        oidc::COOKIE
    )) {
        h.append(header::SET_COOKIE, v);
    }
    if let Ok(session) = result {
        if let Ok(v) = HeaderValue::from_str(&session) {
            h.append(header::SET_COOKIE, v);
        }
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Sign in with the OpenID provider: sends the browser there.
#[utoipa::path(
    get, path = "/v1/sessions/oidc", tag = ME,
    responses(
        (status = 303, description = "To the provider's sign-in, with the flow's cookie set"),
        (status = 404, description = "No provider is configured", body = crate::http::openapi::ProblemDoc, content_type = crate::http::openapi::JSON_PROBLEM),
        (status = 502, description = "The provider's discovery document cannot be read", body = crate::http::openapi::ProblemDoc, content_type = crate::http::openapi::JSON_PROBLEM),
    ),
    security(())
)]
async fn begin(State(app): State<Arc<App>>) -> Result<Response, Problem> {
    let o = app
        .auth
        .oidc
        .as_ref()
        .ok_or_else(|| Problem::not_found("sign-in with OpenID Connect is not configured"))?;
    let begun = o
        .begin(&redirect_uri(&app), util::now_secs())
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "OpenID sign-in could not begin");
            Problem::new(
                StatusCode::BAD_GATEWAY,
                "identity-provider",
                "Bad gateway",
                "the identity provider cannot be reached; try again later",
            )
        })?;
    let cookie = format!(
        "{}={}; Path=/v1/sessions/oidc; Max-Age=600; HttpOnly; Secure; SameSite=Lax",
        oidc::COOKIE,
        begun.cookie
    );
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, begun.url)]).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// What the provider sends back (OpenID Connect Core 1.0, 3.1.2.5 and 3.1.2.6).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Callback {
    /// The authorization code.
    pub code: Option<String>,
    /// This sign-in's state.
    pub state: Option<String>,
    /// Why the provider did not sign in.
    pub error: Option<String>,
    /// In its words.
    pub error_description: Option<String>,
}

fn flow_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(n, _)| *n == oidc::COOKIE)
        .map(|(_, v)| v)
        .filter(|v| v.len() <= 512)
}

/// Where the provider sends the browser back: starts the session and returns to the app.
#[utoipa::path(
    get, path = "/v1/sessions/oidc/callback", tag = ME, params(Callback),
    responses((status = 303, description = "To the app: signed in (the session cookie set), or with sign_in_error")),
    security(())
)]
async fn callback(
    State(app): State<Arc<App>>,
    Query(q): Query<Callback>,
    headers: HeaderMap,
) -> Response {
    let Some(o) = app.auth.oidc.as_ref() else {
        return to_app(Err("sign-in with single sign-on is not configured".into()));
    };
    if let Some(e) = q.error {
        let why = q.error_description.unwrap_or(e);
        return to_app(Err(format!(
            "the identity provider did not sign you in: {why}"
        )));
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return to_app(Err("the identity provider's answer is incomplete".into()));
    };
    let person = match o
        .finish(
            flow_cookie(&headers),
            &state,
            &code,
            &redirect_uri(&app),
            util::now_secs(),
        )
        .await
    {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(error = %e, "OpenID sign-in refused");
            return to_app(Err(match e {
                oidc::Error::Provider(_) => {
                    "the identity provider failed; try again later".to_owned()
                }
                other => other.to_string(),
            }));
        }
    };
    match account_of(&app, &person).await {
        Ok(account) => match open_session(&app, &account).await {
            Ok((_, cookie)) => {
                tracing::info!(account = %account.id, "signed in with OpenID Connect");
                to_app(Ok(cookie))
            }
            Err(p) => to_app(Err(p.detail)),
        },
        Err(why) => to_app(Err(why)),
    }
}

/// The account of the person the provider signed in: theirs from before, an account with
/// their verified email (now linked), or a new one; with the role the provider gives.
async fn account_of(app: &App, p: &oidc::Person) -> Result<Account, String> {
    let store = |e: crate::store::Error| {
        tracing::error!(error = %e, "metadata store");
        "the server cannot sign you in now; try again later".to_owned()
    };
    let now = util::now_ms();
    let role = p.role.as_str();
    if let Some(mut a) = app
        .store
        .account_by_oidc(&p.issuer, &p.subject)
        .await
        .map_err(store)?
    {
        if a.role != role {
            app.store.set_role(a.id, role, now).await.map_err(store)?;
            a.role = role.to_owned();
        }
        return Ok(a);
    }
    let email = p.email.clone().filter(|e| accounts::plausible_email(e));
    if let Some(email) = &email {
        if let Some(mut a) = app
            .store
            .account_by_email(&Account::email_key(email))
            .await
            .map_err(store)?
        {
            if !p.email_verified || a.oidc.is_some() {
                return Err(format!(
                    "an account already uses {email}: sign in with its password"
                ));
            }
            app.store
                .link_oidc(a.id, &p.issuer, &p.subject, now)
                .await
                .map_err(store)?;
            app.store.set_role(a.id, role, now).await.map_err(store)?;
            a.role = role.to_owned();
            a.oidc = Some((p.issuer.clone(), p.subject.clone()));
            return Ok(a);
        }
    }
    // No email to show: one that cannot receive mail (RFC 2606 .invalid), unique to the person.
    let email = email.unwrap_or_else(|| {
        let digest = accounts::digest(&format!("{}\n{}", p.issuer, p.subject));
        format!("{}@oidc.invalid", &digest[..16])
    });
    let name = p
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or("listener").to_owned());
    let name = crate::store::printable(name.trim(), 80);
    let account = Account {
        id: uuid::Uuid::now_v7(),
        email,
        password_hash: None,
        handle: accounts::handle_from(&name),
        display_name: name,
        role: role.to_owned(),
        oidc: Some((p.issuer.clone(), p.subject.clone())),
        created_at: now,
    };
    let made = app
        .store
        .create_account(
            &NewAccount {
                account: &account,
                first_is_admin: false,
                invite: None,
            },
            now,
        )
        .await
        .map_err(store)?;
    match made {
        Created::Made { role, handle } => Ok(Account {
            role,
            handle,
            ..account
        }),
        _ => Err("an account already uses this email: sign in with its password".into()),
    }
}
