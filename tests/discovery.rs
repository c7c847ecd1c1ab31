//! What a music product shows of its tracks, against the real server on SQLite (its embedded
//! defaults) and PostgreSQL: titles, artists, albums, years, genres and covers read from real
//! tagged files (`../shared/fixtures/audio`), edited by their owner, covers uploaded and checked;
//! search-as-you-type over the store's full-text engine (prefixes, accents, case), browsing,
//! artist pages, oEmbed and the embed players' framing policy.

mod common;

use common::fixtures;
use common::server::{Db, Server};
use serde_json::{json, Value};

async fn account(s: &Server, email: &str, name: &str) -> String {
    let (st, _, body) = s
        .call(
            "POST",
            "/v1/accounts",
            "",
            Some(json!({"email": email, "password": "a long passphrase", "display_name": name})),
            &[],
        )
        .await;
    assert_eq!(st, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

async fn ready(s: &Server, file: &str, token: &str, title: Option<&str>) -> Value {
    let path = fixtures().join(file);
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let mut query = vec![("filename", name.as_str())];
    if let Some(t) = title {
        query.push(("title", t));
    }
    let r = s
        .client()
        .post(format!("{}/v1/tracks", s.url))
        .query(&query)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/octet-stream")
        .body(tokio::fs::read(&path).await.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{file}");
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = s.wait_final(&id).await;
    assert_eq!(t["status"], "ready", "{t}");
    let (_, _, t) = s
        .call("GET", &format!("/v1/tracks/{id}"), token, None, &[])
        .await;
    t
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn search(s: &Server, query: &str, bearer: &str) -> Vec<Value> {
    let (st, _, page) = s
        .call("GET", &format!("/v1/search?{query}"), bearer, None, &[])
        .await;
    assert_eq!(st, 200, "{query}: {page}");
    page["items"].as_array().unwrap().clone()
}

fn titles(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect()
}

async fn journey(db: Db) {
    let s = Server::start(db, &[]).await;
    account(&s, "admin@example.org", "Admin").await;
    let zoe = account(&s, "zoe@example.org", "Zoë Keating").await;
    let other = account(&s, "ann@example.org", "Ann").await;

    // Tags give the title (over the file name), artist, album, year, genre and track number,
    // and the embedded art becomes the cover.
    let mp3 = ready(&s, "formats/mp3_id3v2_apic_stereo_44k.mp3", &zoe, None).await;
    assert_eq!(mp3["title"], "Fixture Clip", "{mp3}");
    assert_eq!(mp3["title_source"], "tags");
    assert_eq!(mp3["artist"], "Fixture Generator");
    assert_eq!(mp3["album"], "Audio Fixtures");
    assert_eq!(mp3["year"], 2024);
    assert_eq!(mp3["genre"], "Electronic");
    assert_eq!(mp3["track_number"], 2);
    let cover = mp3["cover_url"]
        .as_str()
        .expect("a cover from the APIC frame")
        .to_string();
    let r = s.client().get(&cover).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let img = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
    assert!(img.width() <= 600 && img.height() <= 600);
    // A title given at upload stays; the FLAC's Vorbis comments fill the rest.
    let flac = ready(
        &s,
        "formats/flac_tags_picture_16bit_44k.flac",
        &zoe,
        Some("Given title"),
    )
    .await;
    assert_eq!(
        (flac["title"].as_str(), flac["title_source"].as_str()),
        (Some("Given title"), Some("given"))
    );
    assert_eq!(flac["year"], 2024);
    assert_eq!(flac["genre"], "Electronic");
    assert!(flac["cover_url"].is_string());
    // No tags: the file name.
    let plain = ready(&s, "formats/wav_pcm16_mono_16k.wav", &zoe, None).await;
    assert_eq!(plain["title"], "wav_pcm16_mono_16k");
    assert!(plain["cover_url"].is_null());
    let id = mp3["id"].as_str().unwrap().to_string();

    // The owner edits; a field left out stays, null clears.
    let path = format!("/v1/tracks/{id}");
    let (st, _, t) = s
        .call("PATCH", &path, &zoe, Some(json!({"artist": "Zoë Keating", "album": null, "year": 2019, "visibility": "public"})), &[])
        .await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(
        (
            t["artist"].as_str(),
            t["album"].as_str(),
            t["year"].as_i64()
        ),
        (Some("Zoë Keating"), None, Some(2019))
    );
    assert_eq!(t["genre"], "Electronic");
    for bad in [
        json!({"year": 3000}),
        json!({"track_number": 0}),
        json!({"genre": "x".repeat(101)}),
    ] {
        let (st, _, p) = s.call("PATCH", &path, &zoe, Some(bad), &[]).await;
        assert_eq!(st, 422, "{p}");
    }
    let (st, _, _) = s
        .call(
            "PATCH",
            &path,
            &other,
            Some(json!({"artist": "Mine now"})),
            &[],
        )
        .await;
    assert_eq!(st, 403);

    // A cover upload is checked and normalised; a new cover has a new URL.
    let put = |body: Vec<u8>, bearer: String| {
        let s = &s;
        let path = format!("{}/v1/tracks/{id}/cover", s.url);
        async move {
            s.client()
                .put(path)
                .header("authorization", format!("Bearer {bearer}"))
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let r = put(png(1200, 900), zoe.clone()).await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let new_cover = t["cover_url"].as_str().unwrap().to_string();
    assert_ne!(new_cover, cover);
    let img = image::load_from_memory(
        &s.client()
            .get(&new_cover)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!((img.width(), img.height()), (600, 450));
    assert_eq!(
        s.client().get(&cover).send().await.unwrap().status(),
        404,
        "the old cover is gone"
    );
    assert_eq!(
        put(b"GIF89a\x01\x00".to_vec(), zoe.clone()).await.status(),
        415
    );
    assert_eq!(
        put(vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0], zoe.clone())
            .await
            .status(),
        422
    );
    assert_eq!(put(png(10, 10), other.clone()).await.status(), 403);
    let guessed = new_cover.replace(
        &new_cover[new_cover.len() - 12..new_cover.len() - 4],
        "00000000",
    );
    assert_eq!(s.client().get(&guessed).send().await.unwrap().status(), 404);

    // Search-as-you-type: a word's start, any case, accents ignored; public items for anyone,
    // the caller's own besides.
    for q in [
        "fix",
        "FIXTURE",
        "clip",
        "zoe",
        "Zoë",
        "keat",
        "fixture%20keat",
        "electro",
    ] {
        let found = search(&s, &format!("kind=track&q={q}"), "").await;
        assert_eq!(titles(&found), ["Fixture Clip"], "q={q}");
    }
    assert!(
        search(&s, "kind=track&q=ixture", "").await.is_empty(),
        "prefixes, not infixes"
    );
    assert!(
        search(&s, "kind=track&q=given", "").await.is_empty(),
        "private"
    );
    let mine = search(&s, "kind=track&q=given", &zoe).await;
    assert_eq!(titles(&mine), ["Given title"]);
    assert_eq!(mine[0]["mine"], true);
    assert!(search(&s, "kind=track&q=given", &other).await.is_empty());
    // Query syntax is words, never the engine's operators.
    for q in ["%22", "*", "a%20OR%20b", "NEAR(x)", "%27%3A*"] {
        search(&s, &format!("q={q}"), "").await;
    }
    let artists = search(&s, "kind=artist&q=zo", "").await;
    assert_eq!(titles(&artists), ["Zoë Keating"]);
    assert_eq!(artists[0]["id"], "zoe-keating");
    assert!(
        search(&s, "kind=artist&q=ann", "").await.is_empty(),
        "no public items"
    );

    // Playlists and channels by name; browsing pages with the cursor.
    let (st, _, pl) = s
        .call(
            "POST",
            "/v1/playlists",
            &zoe,
            Some(json!({"title": "Café sessions", "visibility": "public", "track_ids": [id]})),
            &[],
        )
        .await;
    assert_eq!(st, 201, "{pl}");
    let (st, _, ch) = s
        .call(
            "POST",
            "/v1/channels",
            &zoe,
            Some(json!({"title": "Night Radio", "visibility": "public", "playlist_id": pl["id"]})),
            &[],
        )
        .await;
    assert_eq!(st, 201, "{ch}");
    // The playlists list: covers and counts, in the asked order.
    let (st, _, two) = s
        .call(
            "POST",
            "/v1/playlists",
            &zoe,
            Some(json!({"title": "Another", "track_ids": [id, plain["id"]]})),
            &[],
        )
        .await;
    assert_eq!(st, 201, "{two}");
    for (query, first) in [
        ("sort=title", "Another"),
        ("sort=title&order=desc", "Café sessions"),
        ("sort=duration", "Another"),
        ("", "Another"),
    ] {
        let (st, _, page) = s
            .call("GET", &format!("/v1/playlists?{query}"), &zoe, None, &[])
            .await;
        assert_eq!(st, 200, "{page}");
        assert_eq!(page["items"][0]["title"], first, "{query}: {page}");
    }
    let (_, _, page) = s
        .call("GET", "/v1/playlists?sort=title&limit=1", &zoe, None, &[])
        .await;
    assert_eq!(page["next_cursor"], "o1");
    assert_eq!(page["items"][0]["track_count"], 2);
    assert_eq!(page["items"][0]["covers"][0], new_cover.as_str());
    let (st, _, _) = s
        .call("GET", "/v1/playlists?sort=length", &zoe, None, &[])
        .await;
    assert_eq!(st, 400);
    let found = search(&s, "q=cafe", "").await;
    assert_eq!(titles(&found), ["Café sessions"]);
    assert_eq!(
        found[0]["covers"][0],
        new_cover.as_str(),
        "a playlist shows its tracks' covers"
    );
    assert_eq!(
        titles(&search(&s, "kind=channel&q=night%20rad", "").await),
        ["Night Radio"]
    );
    let (st, _, one) = s
        .call(
            "GET",
            "/v1/search?kind=track&sort=newest&limit=1",
            &zoe,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    let cursor = one["next_cursor"].as_str().expect("more pages").to_string();
    let (_, _, two) = s
        .call(
            "GET",
            &format!("/v1/search?kind=track&sort=newest&limit=1&cursor={cursor}"),
            &zoe,
            None,
            &[],
        )
        .await;
    assert_ne!(two["items"][0]["id"], one["items"][0]["id"]);
    let browse = search(&s, "kind=track&sort=plays", "").await;
    assert_eq!(
        titles(&browse),
        ["Fixture Clip"],
        "only public tracks for anyone"
    );
    for bad in [
        "kind=user",
        "sort=best",
        "limit=0",
        "cursor=x",
        &format!("q={}", "a".repeat(201)),
    ] {
        let (st, _, _) = s
            .call("GET", &format!("/v1/search?{bad}"), "", None, &[])
            .await;
        assert_eq!(st, 400, "{bad}");
    }

    // The artist page.
    let (st, _, page) = s
        .call("GET", "/v1/public/artists/zoe-keating", "", None, &[])
        .await;
    assert_eq!(st, 200);
    assert_eq!(page["display_name"], "Zoë Keating");
    assert_eq!(titles(page["tracks"].as_array().unwrap()), ["Fixture Clip"]);
    assert_eq!(
        titles(page["playlists"].as_array().unwrap()),
        ["Café sessions"]
    );
    assert_eq!(
        titles(page["channels"].as_array().unwrap()),
        ["Night Radio"]
    );
    let (st, _, _) = s
        .call("GET", "/v1/public/artists/nobody", "", None, &[])
        .await;
    assert_eq!(st, 404);

    // oEmbed for each kind, from the share link; nothing for what is private or elsewhere.
    for (kind, item, title) in [
        ("track", id.as_str(), "Fixture Clip"),
        ("playlist", pl["id"].as_str().unwrap(), "Café sessions"),
        ("channel", ch["id"].as_str().unwrap(), "Night Radio"),
    ] {
        let link = format!("{}/play/{kind}/{item}", s.url);
        let r = s
            .client()
            .get(format!("{}/oembed", s.url))
            .query(&[("url", &link), ("format", &"json".to_string())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{kind}");
        let o: Value = r.json().await.unwrap();
        assert_eq!(
            (o["type"].as_str(), o["version"].as_str()),
            (Some("rich"), Some("1.0"))
        );
        assert_eq!(o["title"], title);
        assert_eq!(o["author_name"], "Zoë Keating");
        let html = o["html"].as_str().unwrap();
        assert!(
            html.starts_with(&format!("<iframe src=\"{}/embed/{kind}/{item}\"", s.url)),
            "{html}"
        );
        assert!(o["width"].as_u64().unwrap() > 0 && o["height"].as_u64().unwrap() > 0);
        // The share page names its oEmbed document.
        let page = s
            .client()
            .get(&link)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("application/json+oembed"), "{page}");
        // The embed player may be framed anywhere; the app's own pages nowhere.
        let r = s
            .client()
            .get(format!("{}/embed/{kind}/{item}", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("frame-ancestors *"), "{csp}");
        assert!(r.headers().get("x-frame-options").is_none());
    }
    let private = format!("{}/play/track/{}", s.url, flac["id"].as_str().unwrap());
    for (url, status) in [
        (private.as_str(), 404),
        ("https://elsewhere.example/play/track/x", 404),
        ("", 400),
    ] {
        let r = s
            .client()
            .get(format!("{}/oembed", s.url))
            .query(&[("url", url)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{url}");
    }
    let r = s
        .client()
        .get(format!("{}/oembed", s.url))
        .query(&[
            ("url", format!("{}/play/track/{id}", s.url).as_str()),
            ("format", "xml"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 501);
    let r = s.client().get(format!("{}/", s.url)).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-frame-options"], "DENY");
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_covers_search_and_oembed_on_the_embedded_defaults() {
    journey(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_covers_search_and_oembed_on_postgres() {
    journey(Db::Postgres).await;
}
