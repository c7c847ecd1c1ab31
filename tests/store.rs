//! The metadata store's contract, run against both backends: SQLite and PostgreSQL.

mod common;

use common::server::pg_schema;
use std::sync::Arc;
use veza_stream::store::{
    self, Entry, Failure, Idempotent, MetadataStore, Playlist, PlaylistFilter, PlaylistId,
    Rendition, Settle, Track, TrackId, TrackStatus, Upload,
};

async fn sqlite() -> (Arc<dyn MetadataStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sub/veza.db").display());
    let s = store::open(&url, 4).await.unwrap();
    s.migrate().await.unwrap();
    (s, dir)
}

async fn postgres() -> Arc<dyn MetadataStore> {
    let s = store::open(&pg_schema().await, 8).await.unwrap();
    s.migrate().await.unwrap();
    s
}

fn track(title: &str) -> Track {
    let id = TrackId::new();
    Track {
        id,
        owner: "alice".into(),
        title: title.into(),
        filename: format!("{title}.flac"),
        content_type: "audio/flac".into(),
        size_bytes: 10,
        original_key: format!("originals/{id}"),
        status: TrackStatus::Queued,
        progress: 0.0,
        error: None,
        analysis: None,
        media_prefix: None,
        public: false,
        meta: Default::default(),
        cover: None,
        title_source: "file".into(),
        created_at: 0,
        updated_at: 0,
    }
}

fn rendition(name: &str) -> Rendition {
    Rendition {
        name: name.into(),
        codecs: "fLaC".into(),
        sample_rate: 44100,
        channels: 2,
        bandwidth: 900_000,
        average_bandwidth: 800_000,
        segments: 3,
    }
}

async fn lifecycle(s: Arc<dyn MetadataStore>) {
    s.migrate().await.unwrap(); // idempotent
    s.ping().await.unwrap();
    let t = track("one");
    s.create_track(&t, "job-1", 1000).await.unwrap();
    let got = s.track(t.id).await.unwrap().unwrap();
    assert_eq!(
        (got.status, got.title.as_str(), got.created_at),
        (TrackStatus::Queued, "one", 1000)
    );
    assert_eq!(s.job_counts().await.unwrap().queued, 1);
    assert!(!got.public, "tracks start private");
    let mut edit = got.clone();
    edit.title = "One (live)".into();
    edit.public = true;
    edit.meta.genre = Some("Ambient".into());
    assert!(s.update_track(&edit, 1500).await.unwrap());
    let got = s.track(t.id).await.unwrap().unwrap();
    assert_eq!(
        (got.title.as_str(), got.public, got.updated_at),
        ("One (live)", true, 1500)
    );
    assert_eq!(got.meta.genre.as_deref(), Some("Ambient"));
    edit.title = "one".into();
    edit.public = false;
    assert!(s.update_track(&edit, 1600).await.unwrap());
    assert!(!s.track(t.id).await.unwrap().unwrap().public);
    let nobody = Track {
        id: TrackId::new(),
        ..edit.clone()
    };
    assert!(!s.update_track(&nobody, 1).await.unwrap());

    // Not due yet, then claimed once.
    assert!(s.claim("early", 5000, 999).await.unwrap().is_none());
    let job = s.claim("lease-a", 31_000, 1000).await.unwrap().unwrap();
    assert_eq!(
        (job.track_id, job.attempts, job.stale_staging.as_deref()),
        (t.id, 1, None)
    );
    assert!(
        s.claim("lease-b", 31_000, 1001).await.unwrap().is_none(),
        "a held lease is not claimed"
    );
    assert!(s.heartbeat(&job, 40_000).await.unwrap());
    assert!(s.set_staging(&job, "tracks/x/attempt-1").await.unwrap());
    assert!(s.set_progress(&job, 0.5, 1100).await.unwrap());
    assert_eq!(
        s.track(t.id).await.unwrap().unwrap().status,
        TrackStatus::Processing
    );
    assert_eq!(s.job_counts().await.unwrap().running, 1);

    // The lease expires: another worker takes over and learns the stale staging prefix; the first
    // worker's writes are refused from then on.
    let taken = s.claim("lease-c", 100_000, 40_001).await.unwrap().unwrap();
    assert_eq!(taken.attempts, 2);
    assert_eq!(taken.stale_staging.as_deref(), Some("tracks/x/attempt-1"));
    assert!(!s.heartbeat(&job, 50_000).await.unwrap());
    assert!(!s
        .publish(
            &job,
            "tracks/x/attempt-1",
            "{}",
            &[rendition("flac")],
            &Default::default(),
            41_000
        )
        .await
        .unwrap());

    // A retry goes back to the queue with its backoff.
    let retry = Failure::Retry {
        at: 60_000,
        error: "storage down".into(),
    };
    assert!(s.fail(&taken, &retry, 41_000).await.unwrap());
    assert!(s.claim("lease-d", 100_000, 59_999).await.unwrap().is_none());
    let third = s.claim("lease-d", 100_000, 60_000).await.unwrap().unwrap();
    assert_eq!(third.attempts, 3);

    // Publishing flips the track and writes its renditions in one go. The tags' title replaces
    // the file name's; their other fields fill what the track lacks.
    let rs = [rendition("aac-128"), rendition("flac")];
    let found = store::Found {
        title: Some("One (from its tags)".into()),
        meta: store::TrackMeta {
            artist: Some("Ann".into()),
            genre: Some("Techno".into()),
            year: Some(2024),
            ..Default::default()
        },
        cover: Some("ab".repeat(32)),
        duration_ms: Some(4000),
    };
    assert!(s
        .publish(
            &third,
            "tracks/x/attempt-3",
            "{\"a\":1}",
            &rs,
            &found,
            61_000
        )
        .await
        .unwrap());
    let ready = s.track(t.id).await.unwrap().unwrap();
    assert_eq!(ready.status, TrackStatus::Ready);
    assert_eq!(ready.progress, 1.0);
    assert_eq!(ready.media_prefix.as_deref(), Some("tracks/x/attempt-3"));
    assert_eq!(ready.analysis.as_deref(), Some("{\"a\":1}"));
    assert_eq!(
        (ready.title.as_str(), ready.title_source.as_str()),
        ("One (from its tags)", "tags")
    );
    assert_eq!(ready.meta.artist.as_deref(), Some("Ann"));
    assert_eq!(ready.meta.genre.as_deref(), Some("Ambient"), "edited, kept");
    assert_eq!(ready.meta.year, Some(2024));
    assert_eq!(ready.cover, found.cover);
    let by = |sort, descending| {
        let s = s.clone();
        async move {
            s.sorted_tracks(None, sort, descending, 0, 10)
                .await
                .unwrap()
                .iter()
                .map(|t| t.title.clone())
                .collect::<Vec<_>>()
        }
    };
    // The packaged track first by duration, then the one still queued.
    assert_eq!(
        by(store::TrackSort::Duration, true)
            .await
            .first()
            .map(String::as_str),
        Some("One (from its tags)")
    );
    assert_eq!(by(store::TrackSort::Title, false).await.len(), 1);
    assert_eq!(s.renditions(t.id).await.unwrap(), rs.to_vec());
    assert_eq!(s.job_counts().await.unwrap(), Default::default());
    assert!(
        !s.publish(&third, "tracks/x/attempt-3", "{}", &rs, &found, 62_000)
            .await
            .unwrap(),
        "exactly once"
    );

    // Final failure.
    let bad = track("bad");
    s.create_track(&bad, "job-2", 70_000).await.unwrap();
    let job = s.claim("lease-e", 100_000, 70_000).await.unwrap().unwrap();
    assert!(s
        .fail(&job, &Failure::Final("not audio".into()), 70_001)
        .await
        .unwrap());
    let failed = s.track(bad.id).await.unwrap().unwrap();
    assert_eq!(
        (failed.status, failed.error.as_deref()),
        (TrackStatus::Failed, Some("not audio"))
    );
    assert_eq!(s.job_counts().await.unwrap().failed, 1);
    assert!(s.claim("lease-f", 100_000, 99_000).await.unwrap().is_none());

    // Release at shutdown: queued again and the attempt not counted.
    let rel = track("released");
    s.create_track(&rel, "job-3", 80_000).await.unwrap();
    let job = s.claim("lease-g", 200_000, 80_000).await.unwrap().unwrap();
    assert!(s.release(&job, 80_500).await.unwrap());
    let again = s.claim("lease-h", 200_000, 80_500).await.unwrap().unwrap();
    assert_eq!(again.attempts, 1);

    // Deleting a track mid-job: the job goes with it and publishing finds nothing.
    let gone = s.delete_track(rel.id, 81_000).await.unwrap().unwrap();
    assert_eq!(gone.id, rel.id);
    assert!(s.delete_track(rel.id, 81_000).await.unwrap().is_none());
    assert!(!s
        .publish(&again, "p", "{}", &[], &Default::default(), 81_000)
        .await
        .unwrap());
    assert!(s.track(rel.id).await.unwrap().is_none());

    // Newest first, with a cursor.
    let page = s.tracks(None, 1, None).await.unwrap();
    assert_eq!(page[0].id, bad.id);
    let rest = s.tracks(Some(bad.id), 10, None).await.unwrap();
    assert_eq!(rest.iter().map(|t| t.id).collect::<Vec<_>>(), vec![t.id]);
    assert_eq!(s.tracks(None, 10, Some("alice")).await.unwrap().len(), 2);
    assert!(s.tracks(None, 10, Some("bob")).await.unwrap().is_empty());

    // Each final change wrote its event in its own transaction.
    let kinds: Vec<String> = s
        .events(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .rev()
        .collect();
    assert_eq!(kinds, ["track.ready", "track.failed", "track.deleted"]);
}

/// Playlists (compare-and-set on the version), the outbox (claim, retry, dead letter, replay),
/// idempotency records and resumable uploads.
async fn control(s: Arc<dyn MetadataStore>) {
    let t = track("in a playlist");
    s.create_track(&t, "job-p", 0).await.unwrap();
    let p = Playlist {
        id: PlaylistId::new(),
        owner: "alice".into(),
        title: "Mix".into(),
        description: String::new(),
        public: false,
        version: 1,
        created_at: 1,
        updated_at: 1,
    };
    let e = |id| Entry {
        id: uuid::Uuid::new_v4(),
        track_id: id,
    };
    let entries = vec![e(t.id), e(t.id)];
    s.create_playlist(&p, &entries, 1).await.unwrap();
    let (got, got_entries) = s.playlist(p.id).await.unwrap().unwrap();
    assert_eq!((got.title.as_str(), got.version), ("Mix", 1));
    assert_eq!(got_entries, entries);
    // One update wins; the second, made against the same version, does not.
    let mut v2 = got.clone();
    v2.title = "Mix 2".into();
    v2.version = 2;
    assert!(s
        .update_playlist(&v2, Some(&entries[..1]), 1, 2)
        .await
        .unwrap());
    assert!(!s.update_playlist(&v2, None, 1, 3).await.unwrap());
    let (got, got_entries) = s.playlist(p.id).await.unwrap().unwrap();
    assert_eq!(
        (got.title.as_str(), got.version, got_entries.len()),
        ("Mix 2", 2, 1)
    );
    assert!(s
        .playlists(PlaylistFilter::Public, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.playlists(PlaylistFilter::Owner("alice"), None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(!s.delete_playlist(p.id, Some(1), 4).await.unwrap());
    assert!(s.delete_playlist(p.id, Some(2), 4).await.unwrap());
    assert!(s.playlist(p.id).await.unwrap().is_none());

    // The outbox: claimed once under a lease, retried, dead, replayed.
    let batch = s.claim_events("l1", 1_000, 10, 10).await.unwrap();
    let kinds: Vec<&str> = batch.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["playlist.created", "playlist.updated", "playlist.deleted"]
    );
    assert!(s
        .claim_events("l2", 1_000, 10, 10)
        .await
        .unwrap()
        .is_empty());
    let first = &batch[0];
    let retry = Settle::Retry {
        delivered: vec!["amqp".into()],
        next_at: 500,
        error: "receiver down".into(),
    };
    assert!(s.settle_event(first, &retry).await.unwrap());
    assert!(!s.settle_event(first, &retry).await.unwrap());
    assert!(s
        .settle_event(
            &batch[1],
            &Settle::Delivered {
                delivered: vec!["amqp".into()]
            },
        )
        .await
        .unwrap());
    let dead = Settle::Dead {
        delivered: vec![],
        error: "gone".into(),
    };
    assert!(s.settle_event(&batch[2], &dead).await.unwrap());
    // Not due yet; then due again, remembering where it was delivered.
    assert!(s
        .claim_events("l3", 2_000, 499, 10)
        .await
        .unwrap()
        .is_empty());
    let again = s.claim_events("l3", 2_000, 500, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].attempts, again[0].delivered.clone()),
        (1, vec!["amqp".to_string()])
    );
    assert_eq!(s.events(Some("dead"), 10).await.unwrap().len(), 1);
    assert!(s.replay_event(&batch[2].id, 600).await.unwrap());
    assert!(!s.replay_event("no-such-event", 600).await.unwrap());
    let replayed = s.claim_events("l4", 3_000, 600, 10).await.unwrap();
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].id, batch[2].id);

    // Idempotency: the first response is kept.
    let r = Idempotent {
        fingerprint: "f1".into(),
        status: 201,
        body: "{}".into(),
    };
    assert!(s.idempotent("alice", "k").await.unwrap().is_none());
    assert!(s.remember("alice", "k", &r, 1).await.unwrap());
    assert!(!s.remember("alice", "k", &r, 2).await.unwrap());
    assert_eq!(s.idempotent("alice", "k").await.unwrap(), Some(r));
    assert!(s.idempotent("bob", "k").await.unwrap().is_none());
    assert_eq!(s.forget_idempotency(2).await.unwrap(), 1);

    // Uploads: the offset moves by compare-and-set; completion inserts the track once.
    let u = Upload {
        id: uuid::Uuid::new_v4().to_string(),
        owner: "alice".into(),
        length: 10,
        offset: 0,
        metadata: String::new(),
        track_id: None,
        created_at: 1,
        expires_at: 100,
    };
    s.create_upload(&u).await.unwrap();
    assert!(s.advance_upload(&u.id, 0, 6).await.unwrap());
    assert!(!s.advance_upload(&u.id, 0, 6).await.unwrap());
    let done = track("from tus");
    assert!(!s.complete_upload(&u.id, &done, "job-u", 5).await.unwrap());
    assert!(s.advance_upload(&u.id, 6, 10).await.unwrap());
    assert!(s.complete_upload(&u.id, &done, "job-u", 5).await.unwrap());
    assert!(!s.complete_upload(&u.id, &done, "job-u2", 5).await.unwrap());
    assert_eq!(
        s.upload(&u.id).await.unwrap().unwrap().track_id,
        Some(done.id)
    );
    assert_eq!(
        s.track(done.id).await.unwrap().unwrap().status,
        TrackStatus::Queued
    );
    assert_eq!(s.expired_uploads(101).await.unwrap().len(), 1);
    assert!(s.delete_upload(&u.id).await.unwrap());

    // Listener tokens: newest first, revoked once, only by their channel.
    let ch = store::ChannelId::new();
    let lt = |n: i64| store::ListenToken {
        id: uuid::Uuid::now_v7(),
        channel_id: ch,
        label: format!("speaker {n}"),
        created_by: "alice".into(),
        created_at: n,
        expires_at: n + 31_536_000_000,
        revoked_at: None,
    };
    let (a, b) = (lt(1), lt(2));
    s.create_listen_token(&a).await.unwrap();
    s.create_listen_token(&b).await.unwrap();
    let listed = s.listen_tokens(ch).await.unwrap();
    assert_eq!(listed, vec![b.clone(), a.clone()]);
    assert!(s
        .listen_tokens(store::ChannelId::new())
        .await
        .unwrap()
        .is_empty());
    assert!(!s
        .revoke_listen_token(store::ChannelId::new(), a.id, 5)
        .await
        .unwrap());
    assert!(s.revoke_listen_token(ch, a.id, 5).await.unwrap());
    assert!(!s.revoke_listen_token(ch, a.id, 6).await.unwrap());
    assert_eq!(
        s.listen_token(a.id).await.unwrap().unwrap().revoked_at,
        Some(5)
    );
    assert_eq!(s.listen_token(b.id).await.unwrap(), Some(b));
    assert!(s
        .listen_token(uuid::Uuid::now_v7())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn sqlite_store_control() {
    let (s, _dir) = sqlite().await;
    control(s).await;
}

#[tokio::test]
async fn postgres_store_control() {
    control(postgres().await).await;
}

#[tokio::test]
async fn sqlite_store_lifecycle() {
    let (s, _dir) = sqlite().await;
    lifecycle(s).await;
}

#[tokio::test]
async fn postgres_store_lifecycle() {
    lifecycle(postgres().await).await;
}

/// Many workers claiming at once each get a different job and every job is claimed once.
async fn concurrent_claims(s: Arc<dyn MetadataStore>) {
    let mut ids = Vec::new();
    for i in 0..40 {
        let t = track(&format!("t{i}"));
        s.create_track(&t, &format!("job-{i}"), 0).await.unwrap();
        ids.push(t.id);
    }
    let claimers = (0..8).map(|w| {
        let s = s.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(job) = s
                .claim(&format!("w{w}-{}", mine.len()), i64::MAX / 2, 1)
                .await
                .unwrap()
            {
                mine.push(job.track_id);
            }
            mine
        })
    });
    let mut claimed: Vec<TrackId> = Vec::new();
    for c in claimers {
        claimed.extend(c.await.unwrap());
    }
    claimed.sort();
    ids.sort();
    assert_eq!(claimed, ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_claims_never_collide() {
    let (s, _dir) = sqlite().await;
    concurrent_claims(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_claims_never_collide() {
    concurrent_claims(postgres().await).await;
}

/// Station data: programme versions, history, recordings, listener minutes and plays.
async fn station(s: Arc<dyn MetadataStore>) {
    use veza_stream::store::{ChannelId, HistoryItem, ListenerMinute, Recording};
    let ch = ChannelId::new();
    // The programme: version 0 is "none"; a stale expected version writes nothing.
    assert_eq!(s.schedule(ch).await.unwrap(), None);
    assert_eq!(
        s.put_schedule(ch, "{\"a\":1}", Some(0), 1).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        s.put_schedule(ch, "{\"a\":2}", Some(0), 2).await.unwrap(),
        None
    );
    assert_eq!(
        s.put_schedule(ch, "{\"a\":3}", None, 3).await.unwrap(),
        Some(2)
    );
    assert_eq!(s.schedule(ch).await.unwrap(), Some(("{\"a\":3}".into(), 2)));
    // History: each item on air closes the one before.
    let item = |title: &str, at: i64| HistoryItem {
        id: uuid::Uuid::now_v7(),
        channel_id: ch,
        kind: "track".into(),
        title: title.into(),
        artist: None,
        track_id: Some(TrackId::new()),
        started_at: at,
        ended_at: None,
        listeners: 3,
    };
    for (i, t) in ["one", "two", "three"].iter().enumerate() {
        s.on_air(ch, i as i64 * 1000, Some(&item(t, i as i64 * 1000)))
            .await
            .unwrap();
    }
    s.on_air(ch, 5000, None).await.unwrap();
    let h = s.history(ch, None, 2).await.unwrap();
    assert_eq!(
        h.iter()
            .map(|x| (x.title.as_str(), x.ended_at))
            .collect::<Vec<_>>(),
        vec![("three", Some(5000)), ("two", Some(2000))]
    );
    let older = s.history(ch, Some(h[1].id), 10).await.unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(
        (older[0].title.as_str(), older[0].ended_at),
        ("one", Some(1000))
    );
    // Recordings.
    let mut r = Recording {
        id: uuid::Uuid::now_v7(),
        channel_id: ch,
        owner: "alice".into(),
        title: "Show".into(),
        state: "recording".into(),
        reason: None,
        track_id: None,
        started_at: 10,
        ended_at: None,
        seconds: 0.0,
    };
    s.create_recording(&r).await.unwrap();
    r.state = "published".into();
    r.track_id = Some(TrackId::new());
    r.ended_at = Some(20);
    r.seconds = 12.5;
    s.update_recording(&r).await.unwrap();
    assert_eq!(s.recording(r.id).await.unwrap(), Some(r.clone()));
    assert_eq!(s.recordings(ch, None, 10).await.unwrap(), vec![r]);
    // Listener minutes are replaced when written again; plays add up.
    let minute = |peak: i64| ListenerMinute {
        channel_id: ch,
        minute: 60_000,
        dimension: "protocol".into(),
        name: "hls".into(),
        peak,
        mean: 1.5,
        sessions: 2,
    };
    s.add_listener_minutes(&[minute(2)]).await.unwrap();
    s.add_listener_minutes(&[minute(4)]).await.unwrap();
    assert_eq!(
        s.listener_minutes(ch, 0, 120_000).await.unwrap(),
        vec![minute(4)]
    );
    let t = TrackId::new();
    s.add_plays(t, 86_400_000, 2).await.unwrap();
    s.add_plays(t, 86_400_000, 1).await.unwrap();
    assert_eq!(
        s.plays(t, 0, 2 * 86_400_000).await.unwrap(),
        vec![(86_400_000, 3)]
    );
    // Retention forgets what is older, and a deleted channel's station data goes.
    assert!(s.forget_stats(100_000_000).await.unwrap() >= 4);
    assert!(s
        .listener_minutes(ch, 0, i64::MAX)
        .await
        .unwrap()
        .is_empty());
    s.forget_station(ch).await.unwrap();
    assert_eq!(s.schedule(ch).await.unwrap(), None);
    assert!(s.recordings(ch, None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_store_station() {
    let (s, _dir) = sqlite().await;
    station(s).await;
}

#[tokio::test]
async fn postgres_store_station() {
    station(postgres().await).await;
}

async fn accounts(s: Arc<dyn MetadataStore>) {
    use veza_stream::store::{Account, Created, NewAccount, Session};
    let account = |email: &str, name: &str| Account {
        id: uuid::Uuid::now_v7(),
        email: email.into(),
        password_hash: Some("$argon2id$x".into()),
        display_name: name.into(),
        handle: "ann".into(),
        role: "artist".into(),
        oidc: None,
        created_at: 1,
    };
    let first = account("Ann@Example.org", "Ann");
    let new = |a| NewAccount {
        account: a,
        first_is_admin: true,
        invite: None,
    };
    assert_eq!(
        s.create_account(&new(&first), 1).await.unwrap(),
        Created::Made {
            role: "admin".into(),
            handle: "ann".into()
        },
        "the first account becomes admin"
    );
    // The email is unique whatever its case; the handle gets a suffix.
    let again = account("ann@EXAMPLE.org", "Ann");
    assert_eq!(
        s.create_account(&new(&again), 2).await.unwrap(),
        Created::EmailTaken
    );
    let second = account("ann2@example.org", "Ann");
    assert_eq!(
        s.create_account(&new(&second), 2).await.unwrap(),
        Created::Made {
            role: "artist".into(),
            handle: "ann-2".into()
        }
    );
    let found = s
        .account_by_email(&Account::email_key("ANN@example.ORG"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, found.role.as_str()), (first.id, "admin"));
    assert_eq!(
        s.account_by_handle("ann-2").await.unwrap().unwrap().id,
        second.id
    );
    assert!(s.handle_taken("ann").await.unwrap());
    assert!(!s.handle_taken("bob").await.unwrap());

    // Invitations are used once and expire.
    s.create_invite("h1", "key:x", 100, 1).await.unwrap();
    s.create_invite("h2", "key:x", 5, 1).await.unwrap();
    let store = &s;
    let invited = |email: &'static str, code: &'static str| {
        let a = account(email, "Cy");
        async move {
            let n = NewAccount {
                account: &a,
                first_is_admin: false,
                invite: Some(code),
            };
            store.create_account(&n, 10).await.unwrap()
        }
    };
    assert!(matches!(
        invited("c1@x.org", "h1").await,
        Created::Made { .. }
    ));
    assert_eq!(invited("c2@x.org", "h1").await, Created::BadInvite, "used");
    assert_eq!(
        invited("c3@x.org", "h2").await,
        Created::BadInvite,
        "expired"
    );
    assert_eq!(invited("c4@x.org", "nope").await, Created::BadInvite);
    assert!(s.account_by_email("c2@x.org").await.unwrap().is_none());

    // Sessions: found until they expire, ended by deletion, swept when expired.
    let session = Session {
        token_hash: "t1".into(),
        account_id: first.id,
        created_at: 10,
        expires_at: 1000,
    };
    s.create_session(&session).await.unwrap();
    let (got, who) = s.session("t1", 999).await.unwrap().unwrap();
    assert_eq!((got, who.id), (session.clone(), first.id));
    assert!(s.session("t1", 1000).await.unwrap().is_none(), "expired");
    assert!(s.session("t2", 10).await.unwrap().is_none());
    assert!(s.delete_session("t1").await.unwrap());
    assert!(!s.delete_session("t1").await.unwrap());
    s.create_session(&Session {
        token_hash: "t3".into(),
        expires_at: 50,
        ..session
    })
    .await
    .unwrap();
    // One session and the unused expired invitation.
    assert_eq!(s.forget_sessions(60).await.unwrap(), 2);

    // OIDC accounts are found by issuer and subject.
    let o = Account {
        oidc: Some(("https://id.example".into(), "sub-1".into())),
        password_hash: None,
        ..account("o@x.org", "O")
    };
    assert!(matches!(
        s.create_account(&new(&o), 20).await.unwrap(),
        Created::Made { .. }
    ));
    let got = s
        .account_by_oidc("https://id.example", "sub-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.id, got.password_hash), (o.id, None));
    assert!(s
        .account_by_oidc("https://id.example", "sub-2")
        .await
        .unwrap()
        .is_none());

    // Revoked tokens: listed from when they were revoked, the later expiry kept, forgotten once
    // expired.
    s.revoke_token("jti-1", 5_000, 100).await.unwrap();
    s.revoke_token("jti-2", 9_000, 200).await.unwrap();
    s.revoke_token("jti-1", 4_000, 300).await.unwrap();
    let mut got = s.revocations_since(150).await.unwrap();
    got.sort();
    assert_eq!(
        got,
        vec![("jti-1".into(), 5_000, 300), ("jti-2".into(), 9_000, 200)]
    );
    assert!(s.revocations_since(301).await.unwrap().is_empty());
    s.forget_sessions(6_000).await.unwrap();
    assert_eq!(
        s.revocations_since(0).await.unwrap(),
        vec![("jti-2".into(), 9_000, 200)]
    );
}

#[tokio::test]
async fn sqlite_store_accounts() {
    let (s, _dir) = sqlite().await;
    accounts(s).await;
}

#[tokio::test]
async fn postgres_store_accounts() {
    accounts(postgres().await).await;
}
