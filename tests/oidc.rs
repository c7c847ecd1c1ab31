//! Sign-in with OpenID Connect against a real provider: oidc-provider (OpenID-certified) run by
//! `tests/browser/oidc_provider.mjs` on 127.0.0.1, with the server on its embedded defaults plus
//! the provider's settings. The flow's refusals are tried directly; the whole sign-in, twice,
//! in Chromium (`tests/browser/app_oidc.mjs`).

mod common;

use common::server::{free_port, Db, Server};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Provider(Child);

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn provider(port: u16, redirect: &str) -> Provider {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let mut child = Command::new("node")
        .arg(dir.join("oidc_provider.mjs"))
        .args([
            &port.to_string(),
            "veza",
            "client-secret-0123456789",
            redirect,
        ])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready "), "{line}");
    // Whatever else it prints (its development warnings) is read, so that it never writes into a
    // closed pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    Provider(child)
}

#[tokio::test(flavor = "multi_thread")]
async fn people_sign_in_through_an_openid_provider() {
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let s = Server::start(
        Db::Sqlite,
        &[
            ("VEZA_AUTH__OIDC_ISSUER", &issuer),
            ("VEZA_AUTH__OIDC_CLIENT_ID", "veza"),
            ("VEZA_AUTH__OIDC_CLIENT_SECRET", "client-secret-0123456789"),
            ("VEZA_AUTH__OIDC_NAME", "Test ID"),
            ("VEZA_AUTH__OIDC_SCOPES", "openid email profile roles"),
        ],
    )
    .await;
    let _p = provider(port, &format!("{}/v1/sessions/oidc/callback", s.url));
    let (st, _, options) = s.call("GET", "/v1/auth", "", None, &[]).await;
    assert_eq!(st, 200);
    assert_eq!(options["oidc"]["name"], "Test ID");
    assert_eq!(options["registration"], "open");

    // The way there: a code request with PKCE (S256), and the flow's cookie.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = plain
        .get(format!("{}/v1/sessions/oidc", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with(&format!("{issuer}/auth?")), "{to}");
    for p in [
        "response_type=code",
        "client_id=veza",
        "code_challenge_method=S256",
        "code_challenge=",
        "nonce=",
        "state=",
    ] {
        assert!(to.contains(p), "{p}: {to}");
    }
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.starts_with("veza_oidc=") && set.contains("HttpOnly"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    // Answers that are not this browser's sign-in go back to the app with a reason.
    for (query, cookie) in [
        ("code=x&state=forged", cookie.as_str()),
        ("code=x&state=forged", ""),
        ("error=access_denied&error_description=denied", ""),
        ("state=only", cookie.as_str()),
    ] {
        let mut req = plain.get(format!("{}/v1/sessions/oidc/callback?{query}", s.url));
        if !cookie.is_empty() {
            req = req.header("cookie", cookie);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 303, "{query}");
        let back = r.headers()["location"].to_str().unwrap();
        assert!(back.starts_with("/?sign_in_error="), "{query}: {back}");
        assert!(
            !r.headers()
                .get_all("set-cookie")
                .iter()
                .any(|c| c.to_str().unwrap().starts_with("veza_session=")),
            "{query}"
        );
    }

    // The whole sign-in, in a browser, twice; then the first person again.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("webapp");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/app_oidc.mjs"))
        .args([&format!("{}/", s.url), "Test ID"])
        .arg(&shots)
        .output()
        .expect("node");
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)));
    assert!(out.status.success(), "{r}\n{}", s.log());
    assert_eq!(r["consoleErrors"], serde_json::json!([]), "{r}");
    assert_eq!(r["axe"]["signedIn"], serde_json::json!([]), "{r}");
    let people = r["people"].as_array().unwrap();
    assert_eq!(people[0]["shown"], "Oidc admin-olga", "{r}");
    assert_eq!(people[0]["role"], "admin", "the role claim: {r}");
    assert_eq!(people[1]["shown"], "Oidc ari", "{r}");
    assert_eq!(people[1]["role"], "artist", "{r}");
    assert_eq!(
        r["again"]["subject"], people[0]["subject"],
        "the same account: {r}"
    );
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM accounts WHERE oidc_issuer IS NOT NULL")
            .await,
        2
    );
}
