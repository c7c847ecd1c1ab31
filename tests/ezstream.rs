//! ezstream, Debian's libshout source client (the library BUTT and Mixxx use too), going live
//! with an MP3 file and the title from its tags, which it sends through `/admin/metadata`.

mod common;

use common::live::*;
use common::server::{Db, Server};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread")]
async fn ezstream_goes_live_with_its_tags_as_now_playing() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let c = create(&s, json!({"title": "Ez"})).await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    // An MP3 with ID3 tags, which ezstream reads and sends as `Artist - Title`.
    let mp3 = s.dir.join("tagged.mp3");
    let made = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-i"])
        .arg(track_mp3())
        .args([
            "-t",
            "30",
            "-c",
            "copy",
            "-metadata",
            "artist=Ezra",
            "-metadata",
        ])
        .arg("title=Tagged Song")
        .arg(&mp3)
        .status()
        .expect("ffmpeg");
    assert!(made.success());
    let (host, port) = addr(&s)
        .split_once(':')
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .unwrap();
    let config = s.dir.join("ezstream.xml");
    std::fs::write(
        &config,
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<ezstream>
  <servers><server>
    <protocol>HTTP</protocol><hostname>{host}</hostname><port>{port}</port>
    <user>source</user><password>{key}</password><tls>None</tls>
  </server></servers>
  <streams><stream>
    <mountpoint>/ingest/{id}</mountpoint><format>MP3</format>
    <stream_name>Ez Radio</stream_name>
  </stream></streams>
  <intakes><intake>
    <type>file</type><filename>{mp3}</filename><stream_once>No</stream_once>
  </intake></intakes>
  <metadata><format_str>@a@ - @t@</format_str></metadata>
</ezstream>
"#,
            mp3 = mp3.display()
        ),
    )
    .unwrap();
    // ezstream refuses a configuration others may read: it holds the stream key.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut ez = Proc(
        Command::new("ezstream")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ezstream"),
    );
    let live = wait_for(&s, &id, "/state", "live").await;
    assert_eq!(live["source"]["name"], "Ez Radio", "{live}");
    let np = now_playing_agrees(&s, &id, "Ezra - Tagged Song").await;
    assert!(np["now_playing"]["track_id"].is_null(), "{np}");
    let (token, _) = playback(&s, &id).await;
    llhls_check(
        &format!("{}/hls/live/{id}/opus-128/index.m3u8?token={token}", s.url),
        4,
    );
    ez.stop();
    let off = wait_for(&s, &id, "/state", "offline").await;
    assert!(
        off["source"].is_null() && off["now_playing"].is_null(),
        "{off}"
    );
}
