//! Local accounts against the real server on its embedded defaults, and on PostgreSQL with
//! registration by invitation: registration, sign-in with its cookie, CSRF token and JWT,
//! sign-out, the same refusal for an unknown email and a wrong password, and the refusal of
//! password guessing per account and per address.

mod common;

use common::server::{Db, Server};
use serde_json::{json, Value};

/// The session cookie's `name=value` from a `Set-Cookie`, and the whole header.
fn cookie(h: &reqwest::header::HeaderMap) -> (String, String) {
    let set = h["set-cookie"].to_str().unwrap().to_string();
    let pair = set.split(';').next().unwrap().trim().to_string();
    (pair, set)
}

async fn with_cookie(
    s: &Server,
    method: &str,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let mut headers = vec![("cookie", cookie)];
    if let Some(c) = csrf {
        headers.push(("x-csrf-token", c));
    }
    s.call(method, path, "", body, &headers).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_signs_up_in_and_out_on_the_embedded_defaults() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let (st, h, first) = s
        .call(
            "POST",
            "/v1/accounts",
            "",
            Some(json!({"email": "Zoe@Example.org", "password": "a long passphrase", "display_name": "Zoë Keating"})),
            &[],
        )
        .await;
    assert_eq!(st, 201, "{first}");
    assert_eq!(
        first["role"], "admin",
        "the first account on embedded defaults"
    );
    assert_eq!(first["account"]["handle"], "zoe-keating");
    let (_, set) = cookie(&h);
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }

    let (st, _, second) = s
        .call(
            "POST",
            "/v1/accounts",
            "",
            Some(json!({"email": "ann@example.org", "password": "another passphrase", "display_name": "Ann"})),
            &[],
        )
        .await;
    assert_eq!(
        (st.as_u16(), second["role"].as_str()),
        (201, Some("artist"))
    );
    // The email is unique whatever its case.
    let (st, _, p) = s
        .call(
            "POST",
            "/v1/accounts",
            "",
            Some(json!({"email": "ANN@example.org", "password": "whatever it is", "display_name": "A"})),
            &[],
        )
        .await;
    assert_eq!(
        (st.as_u16(), p["type"].as_str()),
        (409, Some("https://veza.stream/problems/email-taken"))
    );
    for (body, kind) in [
        (
            json!({"email": "nope", "password": "long enough", "display_name": "A"}),
            "bad-email",
        ),
        (
            json!({"email": "b@x.org", "password": "short", "display_name": "A"}),
            "weak-password",
        ),
        (
            json!({"email": "b@x.org", "password": "long enough", "display_name": " "}),
            "bad-name",
        ),
    ] {
        let (st, _, p) = s.call("POST", "/v1/accounts", "", Some(body), &[]).await;
        assert_eq!(st, 422, "{p}");
        assert!(p["type"].as_str().unwrap().ends_with(kind), "{p}");
    }

    // Wrong password and unknown email: the same answer.
    let (st1, _, p1) = s
        .call(
            "POST",
            "/v1/sessions",
            "",
            Some(json!({"email": "ann@example.org", "password": "wrong one"})),
            &[],
        )
        .await;
    let (st2, _, p2) = s
        .call(
            "POST",
            "/v1/sessions",
            "",
            Some(json!({"email": "who@example.org", "password": "wrong one"})),
            &[],
        )
        .await;
    assert_eq!((st1.as_u16(), st2.as_u16()), (401, 401));
    assert_eq!(p1, p2);

    // Sign in, in any case of the email.
    let (st, h, signed) = s
        .call(
            "POST",
            "/v1/sessions",
            "",
            Some(json!({"email": "Ann@EXAMPLE.org", "password": "another passphrase"})),
            &[],
        )
        .await;
    assert_eq!(st, 201, "{signed}");
    let (c, _) = cookie(&h);
    let csrf = signed["csrf"].as_str().unwrap().to_string();
    let (st, _, me) = with_cookie(&s, "GET", "/v1/me", &c, None, None).await;
    assert_eq!(st, 200);
    assert_eq!(me["account"]["email"], "ann@example.org");
    assert_eq!(me["role"], "artist");
    assert_eq!(me["csrf"], csrf.as_str());
    let subject = me["subject"].as_str().unwrap().to_string();
    assert!(subject.starts_with("acct:"), "{subject}");

    // A change made with the cookie needs the CSRF token.
    let playlist = json!({"title": "Mine"});
    let (st, _, p) = with_cookie(
        &s,
        "POST",
        "/v1/playlists",
        &c,
        None,
        Some(playlist.clone()),
    )
    .await;
    assert_eq!(
        (st.as_u16(), p["type"].as_str()),
        (403, Some("https://veza.stream/problems/csrf"))
    );
    let (st, _, made) = with_cookie(
        &s,
        "POST",
        "/v1/playlists",
        &c,
        Some("not-the-token"),
        Some(playlist.clone()),
    )
    .await;
    assert_eq!(st, 403, "{made}");
    let (st, _, made) =
        with_cookie(&s, "POST", "/v1/playlists", &c, Some(&csrf), Some(playlist)).await;
    assert_eq!(st, 201, "{made}");

    // The JWT works as a Bearer credential, for the same subject.
    let token = signed["token"].as_str().unwrap();
    let (st, _, me) = s.call("GET", "/v1/me", token, None, &[]).await;
    assert_eq!(
        (st.as_u16(), me["subject"].as_str()),
        (200, Some(subject.as_str()))
    );
    assert_eq!(me["account"]["handle"], "ann");
    let (st, _, mine) = s
        .call("GET", "/v1/playlists?scope=mine", token, None, &[])
        .await;
    assert_eq!(st, 200);
    assert_eq!(mine["items"][0]["id"], made["id"]);
    // API keys and platform JWTs keep working; a platform JWT cannot be an account.
    let (st, _, me) = s.call("GET", "/v1/me", &s.key, None, &[]).await;
    assert_eq!((st.as_u16(), me["role"].as_str()), (200, Some("admin")));
    let (st, _, _) = s
        .call("GET", "/v1/me", &s.token("alice", "artist"), None, &[])
        .await;
    assert_eq!(st, 200);
    let (st, _, _) = s
        .call("GET", "/v1/me", &s.token(&subject, "admin"), None, &[])
        .await;
    assert_eq!(st, 401);

    // Sign out: the cookie is cleared and its session is over.
    let (st, h, _) = with_cookie(&s, "DELETE", "/v1/sessions/current", &c, Some(&csrf), None).await;
    assert_eq!(st, 204);
    assert!(cookie(&h).1.contains("Max-Age=0"));
    let (st, _, p) = with_cookie(&s, "GET", "/v1/me", &c, None, None).await;
    assert_eq!(
        (st.as_u16(), p["type"].as_str()),
        (401, Some("https://veza.stream/problems/session-ended"))
    );
    // And in again.
    let (st, _, _) = s
        .call(
            "POST",
            "/v1/sessions",
            "",
            Some(json!({"email": "ann@example.org", "password": "another passphrase"})),
            &[],
        )
        .await;
    assert_eq!(st, 201);
    // The store holds hashes, never the password or the cookie.
    let hash = s
        .text("SELECT password_hash FROM accounts WHERE email_key = 'ann@example.org'")
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let n = s
        .scalar(&format!(
            "SELECT COUNT(*) FROM sessions WHERE token_hash = '{}'",
            c.split('=').nth(1).unwrap()
        ))
        .await;
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn password_guessing_is_refused_per_account_and_per_address() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let (st, _, _) = s
        .call(
            "POST",
            "/v1/accounts",
            "",
            Some(json!({"email": "a@x.org", "password": "right password", "display_name": "A"})),
            &[],
        )
        .await;
    assert_eq!(st, 201);
    let attempt = |email: &'static str, password: &'static str| {
        let s = &s;
        async move {
            s.call(
                "POST",
                "/v1/sessions",
                "",
                Some(json!({"email": email, "password": password})),
                &[],
            )
            .await
        }
    };
    // The default allows 5 failures for one account; the sixth is refused, and so is the right
    // password after it.
    for _ in 0..5 {
        assert_eq!(attempt("a@x.org", "wrong").await.0, 401);
    }
    let (st, h, p) = attempt("a@x.org", "wrong").await;
    assert_eq!(st, 429, "{p}");
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(attempt("a@x.org", "right password").await.0, 429);
    // 20 failures from one address, whatever the accounts: then every account is refused from it.
    let emails: Vec<&'static str> = (0..14)
        .map(|i| &*Box::leak(format!("u{i}@x.org").into_boxed_str()))
        .collect();
    for e in &emails {
        assert_eq!(attempt(e, "wrong").await.0, 401, "{e}");
    }
    assert_eq!(attempt("last@x.org", "wrong").await.0, 429);
    assert_eq!(attempt("fresh@x.org", "wrong").await.0, 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_is_closed_or_by_invitation_outside_the_embedded_defaults() {
    let key = "prod-key-0123456789abcdef";
    let s = Server::start(
        Db::Postgres,
        &[("VEZA_AUTH__API_KEYS", &format!("[\"{key}\"]"))],
    )
    .await;
    let body = json!({"email": "a@x.org", "password": "a passphrase", "display_name": "A"});
    let (st, _, p) = s
        .call("POST", "/v1/accounts", "", Some(body.clone()), &[])
        .await;
    assert_eq!(
        (st.as_u16(), p["type"].as_str()),
        (
            403,
            Some("https://veza.stream/problems/registration-closed")
        )
    );
    drop(s);

    let s = Server::start(
        Db::Postgres,
        &[
            ("VEZA_AUTH__API_KEYS", &format!("[\"{key}\"]")),
            ("VEZA_AUTH__REGISTRATION", "invite"),
        ],
    )
    .await;
    let (st, _, p) = s
        .call("POST", "/v1/accounts", "", Some(body.clone()), &[])
        .await;
    assert_eq!(
        (st.as_u16(), p["type"].as_str()),
        (403, Some("https://veza.stream/problems/invite-invalid"))
    );
    let (st, _, invite) = s
        .call("POST", "/v1/invites", key, Some(json!({"days": 2})), &[])
        .await;
    assert_eq!(st, 201, "{invite}");
    let code = invite["code"].as_str().unwrap();
    let mut with_code = body.clone();
    with_code["invite"] = json!(code);
    let (st, _, made) = s
        .call("POST", "/v1/accounts", "", Some(with_code.clone()), &[])
        .await;
    assert_eq!(st, 201, "{made}");
    // Not admin: only embedded defaults make the first account one.
    assert_eq!(made["role"], "artist");
    with_code["email"] = json!("b@x.org");
    let (st, _, _) = s
        .call("POST", "/v1/accounts", "", Some(with_code), &[])
        .await;
    assert_eq!(st, 403, "a code is used once");
    // Only admins invite.
    let token = made["token"].as_str().unwrap();
    let (st, _, _) = s
        .call("POST", "/v1/invites", token, Some(json!({})), &[])
        .await;
    assert_eq!(st, 403);
    let (st, _, _) = s
        .call("POST", "/v1/invites", key, Some(json!({"days": 0})), &[])
        .await;
    assert_eq!(st, 422);
}
